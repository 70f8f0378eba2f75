"""Records -> tables: the "aggregate" step between running trials and building the site.

Pure functions over record dicts (as returned by ``harness.record.load_records``) and pandas
frames, so the leaderboard's numbers are unit-testable without running a trial. Dependency
fence: this module imports only pandas and the standard library, never torch or Ray, so the
site builds from ``results/`` alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

# Derived from the accuracy matrix by the harness; percent, so "_pct" is part of every name.
METRICS: tuple[str, ...] = (
    "final_acc_pct",
    "avg_incremental_acc_pct",
    "bwt_pct",
    "avg_forgetting_pct",
    "final_task_aware_acc_pct",
    "avg_incremental_task_aware_acc_pct",
)
# Numeric inference-cost figures; latency_threads and input_shape describe the measurement
# rather than the model, so they are not averaged.
COSTS: tuple[str, ...] = (
    "gflops_per_image",
    "gflops_per_image_ptflops",
    "gflops_per_image_torch",
    "params_millions",
    "params_millions_without_head",
    "latency_ms_b1",
)
VALUE_COLUMNS: tuple[str, ...] = METRICS + COSTS

# One leaderboard row = one method configuration on one suite version, averaged over seeds.
GROUP_KEYS: tuple[str, ...] = ("suite", "suite_version", "label", "backbone", "config_sha256")
# Functions of the group (a label names one strategy x framework); checked, not grouped on.
GROUP_ATTRIBUTES: tuple[str, ...] = ("strategy", "framework", "reference", "primary_metric")
TRIAL_KEYS: tuple[str, ...] = ("order_index", "seed")
FRAME_COLUMNS: tuple[str, ...] = (
    GROUP_KEYS + GROUP_ATTRIBUTES + TRIAL_KEYS + ("run_id",) + VALUE_COLUMNS
)


def is_leaderboard_record(record: Mapping[str, Any]) -> bool:
    """True for records the leaderboard may show: finished, and made without test shortcuts."""
    return record.get("status") == "ok" and not record.get("debug", False)


def _number(value: Any) -> float:
    """Float, with a missing figure as NaN so pandas skips it in means instead of failing."""
    return math.nan if value is None else float(value)


def _record_row(record: Mapping[str, Any]) -> dict[str, Any]:
    suite, method = record["suite"], record["method"]
    metrics = (record.get("results") or {}).get("metrics") or {}
    cost = record.get("inference_cost") or {}
    row: dict[str, Any] = {
        "suite": suite["name"],
        "suite_version": int(suite["version"]),
        "label": method["label"],
        "backbone": method["backbone"],
        "config_sha256": method["config_sha256"],
        "strategy": method["strategy"],
        "framework": method["framework"],
        "reference": method.get("reference"),
        "primary_metric": suite["primary_metric"],
        "order_index": int(suite.get("order_index", 0)),
        "seed": int(record["seed"]),
        "run_id": record["run_id"],
    }
    row.update({name: _number(metrics.get(name)) for name in METRICS})
    row.update({name: _number(cost.get(name)) for name in COSTS})
    return row


def records_to_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One flat row per ok, non-debug trial; failed and debug records are dropped here.

    Raises ``ValueError`` when two records are the same trial (same method configuration,
    class order and seed): averaging both would silently count one seed twice.
    """
    rows = [_record_row(r) for r in records if is_leaderboard_record(r)]
    frame = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
    frame[list(VALUE_COLUMNS)] = frame[list(VALUE_COLUMNS)].astype(float)
    frame["reference"] = _none_for_missing(frame["reference"])
    _check_no_duplicate_trials(frame)
    return frame.sort_values(list(GROUP_KEYS + TRIAL_KEYS), kind="stable", ignore_index=True)


def _none_for_missing(column: pd.Series) -> pd.Series:
    """None rather than NaN for "not a reference", whatever pandas' string dtype would do."""
    return column.astype(object).where(column.notna(), None)


def _check_no_duplicate_trials(frame: pd.DataFrame) -> None:
    keys = list(GROUP_KEYS + TRIAL_KEYS)
    duplicated = frame[frame.duplicated(keys, keep=False)]
    if duplicated.empty:
        return
    run_ids = ", ".join(sorted(duplicated["run_id"].astype(str)))
    raise ValueError(
        f"{len(duplicated)} records describe the same trials (same suite version, label, "
        f"backbone, config, class order and seed); run_ids: {run_ids}. Delete the stale "
        "records from results/ so each trial is counted once."
    )


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std (n-1) over trials of every metric and cost, one row per group.

    Columns: GROUP_KEYS, GROUP_ATTRIBUTES, ``seeds`` (number of trials averaged), then for each
    value ``<name>`` (the mean) and ``<name>_std`` (NaN for a single seed).
    """
    columns = list(GROUP_KEYS + GROUP_ATTRIBUTES) + ["seeds"]
    for name in VALUE_COLUMNS:
        columns += [name, f"{name}_std"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    groups = frame.groupby(list(GROUP_KEYS), sort=True, dropna=False)
    summary = pd.DataFrame([_summarize_group(keys, group) for keys, group in groups])
    summary["reference"] = _none_for_missing(summary["reference"])
    return summary[columns].reset_index(drop=True)


def _summarize_group(keys: tuple[Any, ...], group: pd.DataFrame) -> dict[str, Any]:
    row: dict[str, Any] = dict(zip(GROUP_KEYS, keys, strict=True))
    for name in GROUP_ATTRIBUTES:
        values = {None if pd.isna(v) else v for v in group[name]}
        if len(values) != 1:
            raise ValueError(
                f"records of {row['label']!r} on {row['suite']} v{row['suite_version']} "
                f"disagree on {name}: {sorted(map(str, values))}. Give differing methods "
                "different labels, or bump the suite version when the suite changes."
            )
        row[name] = values.pop()
    row["seeds"] = len(group)
    for name in VALUE_COLUMNS:
        values = group[name]
        row[name] = values.mean()
        # Identical values (FLOPs, params of one architecture) get an exact 0, not the 1e-17
        # that summing and dividing floats leaves behind.
        identical = len(values) > 1 and values.notna().all() and values.nunique() == 1
        row[f"{name}_std"] = 0.0 if identical else values.std(ddof=1)
    return row


def count_excluded(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Per (suite, suite_version): how many records the leaderboard left out, and why.

    Columns: suite, suite_version, ok, failed, debug. A debug record is counted as debug even
    if it also failed: it would be refused either way, and "debug" says how to fix it. Every
    suite version present in ``records`` gets a row, zero counts included.
    """
    counts: dict[tuple[str, int], dict[str, int]] = {}
    for record in records:
        key = (record["suite"]["name"], int(record["suite"]["version"]))
        tally = counts.setdefault(key, {"ok": 0, "failed": 0, "debug": 0})
        if record.get("debug", False):
            tally["debug"] += 1
        elif record.get("status") != "ok":
            tally["failed"] += 1
        else:
            tally["ok"] += 1
    rows = [
        {"suite": suite, "suite_version": version, **tally}
        for (suite, version), tally in sorted(counts.items())
    ]
    return pd.DataFrame(rows, columns=["suite", "suite_version", "ok", "failed", "debug"])


def pareto_front(summary_rows: pd.DataFrame, *, x: str = "gflops_per_image", y: str) -> pd.Series:
    """Boolean Series (aligned to ``summary_rows``): rows on the lower-x / higher-y front.

    A row is on the front unless another row is at least as good on both axes and strictly
    better on one. Rows with identical (x, y) therefore do not knock each other off: both stay
    on the front. Rows missing x or y are neither on the front nor allowed to dominate others.
    Callers decide which rows compete (the site leaves out upper/lower-bound references).
    """
    xs = summary_rows[x].astype(float).to_numpy()
    ys = summary_rows[y].astype(float).to_numpy()
    valid = ~(pd.isna(xs) | pd.isna(ys))
    on_front = []
    for i in range(len(summary_rows)):
        if not valid[i]:
            on_front.append(False)
            continue
        no_worse = valid & (xs <= xs[i]) & (ys >= ys[i])
        better = (xs < xs[i]) | (ys > ys[i])
        on_front.append(not (no_worse & better).any())
    return pd.Series(on_front, index=summary_rows.index, dtype=bool, name="pareto_front")
