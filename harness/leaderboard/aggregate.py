"""Records -> tables: the "aggregate" step between running trials and building the site.

Pure functions over record dicts (as returned by ``harness.records.store.load_records_leniently``)
and pandas frames, so the leaderboard's numbers are unit-testable without running a trial.
Besides the per-entry means (``summarize``) it gives latencies per measurement setting
(``latency_frame``, ``summarize_latencies``: a device, precision, batch size and CPU thread
count each, never mixed) and the checks on each trial's FLOP count (``uncounted_ops``,
``counter_disagreement_pct``). Fields newer records carry are optional: an older record that
lacks one is "not measured", never an error.
Dependency fence: this module imports only pandas, numpy and the standard library, never torch
or Ray, so the site builds from ``results/`` alone.

An *entry* is one suite version x CL strategy x compression framework x backbone x resolved
config; its trials (seeds x class orders) are averaged into one leaderboard row.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from harness.leaderboard.usable import (
    COSTS,
    METRICS,
    VALUE_COLUMNS,
    drop_unusable_records,
    is_leaderboard_record,
    out_of_range,
    resource_values,
)
from harness.records import schema as schema
from harness.records.schema import ACCURACY_METRICS as ACCURACY_METRICS  # the tables use it

logger = logging.getLogger(__name__)

# Fewer trials than this and an entry's mean is marked provisional.
MIN_SEEDS = 3

# One leaderboard row = one entry on one suite version, averaged over trials.
GROUP_KEYS: tuple[str, ...] = (
    "suite",
    "suite_version",
    "strategy",
    "framework",
    "backbone",
    "config_sha256",
    # A tuned twin's tuned-config sha256, "" for untuned trials: tuned and untuned seeds
    # never share a row, even where the winning config is the default.
    "tuned",
)
# Functions of the entry; when records disagree the first (in sorted order) wins, with a warning.
GROUP_ATTRIBUTES: tuple[str, ...] = ("label", "reference", "primary_metric", "inference_backbone")
TRIAL_KEYS: tuple[str, ...] = ("order_index", "seed")
# Checks on a trial's FLOP count: the ops counted as zero (a tuple of aten op names, None when
# the record predates the check) and how far the two counters disagree (NaN when unknown).
# An entry shows the union of its trials' ops and the worst disagreement.
CHECK_COLUMNS: tuple[str, ...] = ("uncounted_ops", "counter_disagreement_pct")
SUMMARY_CHECK_COLUMNS: tuple[str, ...] = (
    "uncounted_ops",
    "counter_disagreement_max_pct",
    "gflops_in_doubt",
)
# |torch count - ptflops count| / torch count x 100 above this and an entry's GFLOPs are flagged.
COUNTER_DISAGREEMENT_LIMIT_PCT = schema.COUNTER_TOLERANCE_PCT
FRAME_COLUMNS: tuple[str, ...] = (
    GROUP_KEYS
    + GROUP_ATTRIBUTES
    + TRIAL_KEYS
    + ("run_id", "created_utc")
    + VALUE_COLUMNS
    + CHECK_COLUMNS
)


def entry_key(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """The GROUP_KEYS of a record: which leaderboard row its trial belongs to."""
    suite, method = record["suite"], record["method"]
    return (
        suite["name"],
        int(suite["version"]),
        method["strategy"],
        method["framework"],
        method["backbone"],
        method["config_sha256"],
        (method.get("tuned") or {}).get("sha256", ""),
    )


def row_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The GROUP_KEYS of a summary row: ``entry_key`` of its records."""
    return tuple(row[k] for k in GROUP_KEYS)


def entry_names(rows: pd.DataFrame) -> pd.Series:
    """Each row's label, as "label · backbone" where the label is on several backbones among
    ``rows`` (a strategy plain on the teacher and on the student): how the pages name it."""
    across = rows.groupby("label")["backbone"].transform("nunique") > 1
    return rows["label"].where(~across, rows["label"] + " · " + rows["backbone"])


def trial_key(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """Entry plus class order and seed: two records with one trial key are the same trial."""
    return entry_key(record) + (int(record["suite"].get("order_index", 0)), int(record["seed"]))


def _number(value: Any) -> float:
    """Float, with a missing figure as NaN; ``unusable_reason`` has refused anything else."""
    return math.nan if value is None else float(value)


def _record_row(record: Mapping[str, Any]) -> dict[str, Any]:
    suite, method = record["suite"], record["method"]
    metrics = (record.get("results") or {}).get("metrics") or {}
    cost = record.get("inference_cost") or {}
    row = dict(zip(GROUP_KEYS, entry_key(record), strict=True))
    row.update(
        label=method["label"],
        reference=method.get("reference"),
        # Older records lack it: then the trial's backbone is the one that served.
        inference_backbone=method.get("inference_backbone") or method["backbone"],
        primary_metric=suite["primary_metric"],
        order_index=int(suite.get("order_index", 0)),
        seed=int(record["seed"]),
        run_id=record["run_id"],
        created_utc=str(record.get("created_utc") or ""),
    )
    row.update({name: _number(metrics.get(name)) for name in METRICS})
    row.update({name: _number(cost.get(name)) for name in COSTS})
    row.update({name: _number(value) for name, value in resource_values(record).items()})
    row["uncounted_ops"] = uncounted_ops(cost)
    row["counter_disagreement_pct"] = _number(counter_disagreement_pct(cost))
    return row


def uncounted_ops(cost: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The aten ops of the served model that compute but have no FLOP formula, sorted.

    ``()`` when the counter knew every op; None when the record predates the check (its
    count may or may not be complete: nothing was measured).
    """
    ops = cost.get("uncounted_ops")
    if not isinstance(ops, list):
        return None
    return tuple(sorted({str(op) for op in ops}))


def counter_disagreement_pct(cost: Mapping[str, Any]) -> float | None:
    """|torch count - ptflops count| / torch count x 100, or None when unknown.

    The record's own ``counter_disagreement_pct`` when it has one; for older records, worked
    out from ``gflops_per_image_torch`` and ``gflops_per_image_ptflops``. A zero torch count
    is compared with the larger of the two (0 when both are zero).
    """
    recorded = cost.get("counter_disagreement_pct")
    if not out_of_range(recorded, (0.0, math.inf)):
        return float(recorded)
    torch_count = cost.get("gflops_per_image_torch")
    ptflops = cost.get("gflops_per_image_ptflops")
    if out_of_range(torch_count, (0.0, math.inf)) or out_of_range(ptflops, (0.0, math.inf)):
        return None
    base = torch_count or max(torch_count, ptflops)
    return 0.0 if base == 0 else abs(torch_count - ptflops) / base * 100.0


def records_to_frame(
    records: Iterable[Mapping[str, Any]], *, checked: bool = False
) -> pd.DataFrame:
    """One flat row per ok, non-debug trial; failed and debug records are dropped here.

    So are records with a non-finite or impossible figure (``unusable_reason``), each with a
    logged warning: no mean, std or front is ever computed over such a value. ``checked``:
    ``drop_unusable_records`` has already kept only usable ones (the site's build does).
    Raises ``ValueError`` when two records are the same trial (same entry, class order and
    seed): averaging both would silently count one seed twice. ``drop_duplicate_trials``
    resolves that leniently for the site.
    """
    shown = [r for r in records if is_leaderboard_record(r)]
    usable, unusable = (shown, []) if checked else drop_unusable_records(shown)
    for warning in unusable:
        logger.warning("%s", warning)
    rows = [_record_row(r) for r in usable]
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
        f"{len(duplicated)} records describe the same trials (same suite version, method, "
        f"backbone, config, class order and seed); run_ids: {run_ids}. Delete the stale "
        "records from results/ so each trial is counted once."
    )


def drop_duplicate_trials(
    records: Iterable[Mapping[str, Any]],
) -> tuple[list[Mapping[str, Any]], list[str]]:
    """Keep the newest leaderboard record of each trial; warn naming the ones dropped.

    A trial run twice under two labels (``lwf`` and ``lwf+none``), or a record copied in by
    hand, must not count one seed twice. Newest by ``created_utc``, then the larger run id, so
    the choice does not depend on file order.
    """
    newest: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    others: list[Mapping[str, Any]] = []
    dropped: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = []
    for record in records:
        if not is_leaderboard_record(record):
            others.append(record)
            continue
        key = trial_key(record)
        kept = newest.get(key)
        if kept is None:
            newest[key] = record
            continue
        older, newer = sorted((kept, record), key=_recency)
        newest[key] = newer
        dropped.append((older, newer))
    warnings = [
        f"record {older['run_id']} ({older['method']['label']}, seed {older['seed']}) repeats "
        f"the trial of {newer['run_id']}; left out (delete the stale file from results/)"
        for older, newer in dropped
    ]
    return others + list(newest.values()), sorted(warnings)


def _recency(record: Mapping[str, Any]) -> tuple[str, str]:
    return (str(record.get("created_utc") or ""), str(record["run_id"]))


def current_versions(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The highest version of each suite name present: the one the leaderboard ranks."""
    versions: dict[str, int] = {}
    for record in records:
        name, version = record["suite"]["name"], int(record["suite"]["version"])
        versions[name] = max(version, versions.get(name, version))
    return versions


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std (n-1) over trials of every metric and cost, one row per entry.

    Columns: GROUP_KEYS, GROUP_ATTRIBUTES, ``seeds`` (number of trials averaged),
    ``provisional`` (fewer than MIN_SEEDS), then for each value ``<name>`` (the mean),
    ``<name>_std`` (NaN for a single trial) and ``<name>_count`` (the trials that value is
    averaged over: ``seeds``, less any that lack it), then SUMMARY_CHECK_COLUMNS:
    ``uncounted_ops`` (every trial's ops together; None when no trial was checked),
    ``counter_disagreement_max_pct`` (the worst trial) and ``gflops_in_doubt`` (either says
    the GFLOPs may be wrong). Non-finite values never enter a mean: they count as missing.
    Rows sorted by GROUP_KEYS.
    """
    columns = list(GROUP_KEYS + GROUP_ATTRIBUTES) + ["seeds", "provisional"]
    for name in VALUE_COLUMNS:
        columns += [name, f"{name}_std", f"{name}_count"]
    columns += list(SUMMARY_CHECK_COLUMNS)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    finite = np.isfinite(frame[list(VALUE_COLUMNS)].to_numpy(dtype=float))
    frame = frame.assign(**{name: frame[name].where(finite[:, k]) for k, name in
                            enumerate(VALUE_COLUMNS)})  # fmt: skip
    groups = frame.groupby(list(GROUP_KEYS), sort=True, dropna=False)
    values = groups[list(VALUE_COLUMNS)]
    means, stds, counts = values.mean(), values.std(ddof=1), values.count()
    # Identical values (FLOPs, params of one architecture) get an exact 0, not the 1e-17
    # that summing and dividing floats leaves behind.
    sizes = groups.size()
    identical = (values.min() == values.max()) & values.count().eq(sizes, axis=0)
    stds = stds.mask(identical & (sizes > 1).to_numpy()[:, None], 0.0)
    summary = pd.concat(
        [
            _attributes(groups),
            sizes.rename("seeds"),
            means,
            stds.add_suffix("_std"),
            counts.add_suffix("_count"),
        ],
        axis=1,
    ).reset_index()
    summary["provisional"] = summary["seeds"] < MIN_SEEDS
    summary["reference"] = _none_for_missing(summary["reference"])
    summary = _add_checks(summary, groups)
    return summary[columns]


def _add_checks(summary: pd.DataFrame, groups: Any) -> pd.DataFrame:
    """The FLOP-count checks of each entry: any trial's doubt is the entry's doubt."""
    trials = groups.obj
    ops: dict[tuple[Any, ...], set[str]] = {}  # entries with at least one trial checked
    for key, found in zip(trials[list(GROUP_KEYS)].itertuples(index=False, name=None),
                          trials["uncounted_ops"], strict=True):  # fmt: skip
        if isinstance(found, tuple):
            ops.setdefault(key, set()).update(found)
    worst = groups["counter_disagreement_pct"].max()  # NaN where no trial could be checked
    keys = list(summary[list(GROUP_KEYS)].itertuples(index=False, name=None))
    entry_ops = [tuple(sorted(ops[k])) if k in ops else None for k in keys]
    summary["uncounted_ops"] = pd.Series(entry_ops, index=summary.index, dtype=object)
    summary["counter_disagreement_max_pct"] = worst.to_numpy(dtype=float)
    summary["gflops_in_doubt"] = [
        bool(o) or d > COUNTER_DISAGREEMENT_LIMIT_PCT
        for o, d in zip(entry_ops, summary["counter_disagreement_max_pct"], strict=True)
    ]
    return summary


def _attributes(groups: Any) -> pd.DataFrame:
    """The first value of each GROUP_ATTRIBUTE per entry; a warning where records disagree."""
    firsts = groups[list(GROUP_ATTRIBUTES)].first()
    distinct = groups[list(GROUP_ATTRIBUTES)].nunique(dropna=False)
    for keys, row in distinct[(distinct > 1).any(axis=1)].iterrows():
        names = [name for name in GROUP_ATTRIBUTES if row[name] > 1]
        logger.warning(
            "records of entry %s disagree on %s; showing %s. Give differing methods different "
            "configs, or bump the suite version when the suite changes.",
            "/".join(map(str, keys)),
            ", ".join(names),
            ", ".join(f"{n}={firsts.loc[keys, n]!r}" for n in names),
        )
    # groupby().first() skips None; an entry whose references are all None must stay None.
    return firsts.where(firsts.notna(), None)


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


# ------------------------------------------------------------- latency per setting
