"""One entry's page: config, per-seed numbers, inference cost, provenance, reproduce commands
and charts.

An entry is one configuration of a method on one suite version, averaged over its seeds. Its
page data is plain dicts and tuples for ``entry.html.j2``: the table cells of every trial, the
resolved config, the inference cost in detail (the FLOP-count checks, model size and dtypes,
sparsity, every latency measured), provenance, the exact ``cilbench run`` line per seed, the
accuracy curve as inline-SVG geometry (drawn by ``curve.svg.j2``) and the mean accuracy matrix
as a heatmap.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from harness.leaderboard import aggregate
from harness.leaderboard.columns import (
    COLUMN_BY_KEY,
    FIRST_TASK_GFLOPS,
    TASK_AWARE,
    Cell,
    Column,
    Flag,
    device_text,
    format_bytes,
    gflops_flags,
    is_finite_number,
    latency_statistic,
    single_cell,
    summary_cell,
)
from harness.leaderboard.entry_charts import (
    accuracy_curve,
    accuracy_heatmap,
    cost_curve,
    sparkline,
)
from harness.leaderboard.fronts import MEMORY_FRONT
from harness.leaderboard.latencies import trial_latencies
from harness.leaderboard.reproduction import (
    config_rows,
    plain_text_of,
    plugin_installs,
    reproduce_command,
    set_options_of,
)
from harness.leaderboard.usable import resource_values
from harness.records.provenance import node_text

REFERENCE_NAMES = {"upper_bound": "upper bound", "lower_bound": "lower bound"}


def entry_page(
    row: Mapping[str, Any],
    records: list[Mapping[str, Any]],
    *,
    suite_slug: str,
    primary_metric: str,
    columns: Sequence[Column],
    trial_columns: Sequence[Column] | None = None,
    detail_columns: Sequence[Column] = (),
) -> dict[str, Any]:
    """Everything ``entry.html.j2`` (and the suite table's row) shows of one entry.

    ``row``: the entry's summary row (``aggregate.summarize`` plus the suite's ranking,
    latency and comparison columns); ``records``: its trials; ``columns``: the suite table's
    (``trial_columns``: the per-seed table's, default ``columns``); ``detail_columns``: more.
    """
    records = sorted(records, key=lambda r: (int(r["suite"].get("order_index", 0)), r["seed"]))
    reference = row["reference"] if isinstance(row["reference"], str) else None
    first = records[0]
    options = set_options_of(first["method"].get("config") or {})  # one config per entry
    per_seed = columns if trial_columns is None else trial_columns
    trials = [_trial(r, set_options=options, columns=per_seed) for r in records]
    flags = gflops_flags(row.get("uncounted_ops"), row.get("counter_disagreement_max_pct"))
    return {
        "display": row["display"],
        "label": row["label"],
        "strategy": row["strategy"],
        "framework": row["framework"],
        "backbone": row["backbone"],
        "inference_backbone": row["inference_backbone"],
        "config_sha256": row["config_sha256"],
        "reference": REFERENCE_NAMES.get(reference, reference) if reference else "",
        "href": f"entries/{suite_slug}/{row['slug']}.html",
        "seeds": int(row["seeds"]),
        "provisional": bool(row["provisional"]),
        **_standing(row),
        "cells": [
            _cost_line(_flagged(summary_cell(row, c), c, flags), c, row, records) for c in columns
        ],  # fmt: skip
        "details": [
            (c, summary_cell(row, c)) for c in detail_columns if is_finite_number(row.get(c.key))
        ],
        "task_aware": summary_cell(row, TASK_AWARE),
        "primary": summary_cell(row, COLUMN_BY_KEY[primary_metric]),
        "gflops": summary_cell(row, COLUMN_BY_KEY["gflops_per_image"])._replace(flags=flags),
        "uncounted_ops": list(row.get("uncounted_ops") or ()),
        "counters_disagree": any(t["counters"].flags for t in trials),
        "config": config_rows(first["method"]["config"]),
        "trials": trials,
        "latencies": _latency_rows(trials),
        "provenance": _provenance_table(trials),
        **_where_it_ran(trials),
        # A tuned twin: which tuned config it ran (cilbench tune), else None.
        "tuned": first["method"].get("tuned"),
        "framework_report": _framework_report(records),
        "curve": accuracy_curve(records),
        "heatmap": accuracy_heatmap(records),
        "records": records,
    }


def _where_it_ran(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """The kinds of hardware the seeds ran on (several: its latencies, maybe its accuracies,
    do not compare) and whether any ran on a Ray cluster (then each seed names its node)."""
    hardware = sorted({t["hardware"] for t in trials})
    return {
        "hardware": hardware,
        "mixed_hardware": len(hardware) > 1,
        "ray_nodes": any(t["ray_node"] for t in trials),
    }


def _standing(row: Mapping[str, Any]) -> dict[str, Any]:
    """Where the entry stands: its slug (what pages and the compare page call it), on which
    Pareto fronts, and the plain entry its Δ and × columns compare it with (None: it is
    plain, or has no unambiguous baseline)."""
    return {
        "slug": row["slug"],
        "pareto": {m: bool(row[f"pareto_{m}"]) for m in aggregate.ACCURACY_METRICS},
        "memory_front": bool(row.get(MEMORY_FRONT, False)),
        "baseline": row.get("baseline_label") or None,
    }


def _flagged(cell: Cell, column: Column, flags: tuple[Flag, ...]) -> Cell:
    """The GFLOPs cell carries the entry's (or trial's) warnings; other cells none."""
    return cell._replace(flags=flags) if column.key == "gflops_per_image" else cell


def _cost_line(
    cell: Cell, column: Column, row: Mapping[str, Any], records: list[Mapping[str, Any]]
) -> Cell:
    """The cost-curve cell: "after task 1 → after the last" and the small line between."""
    if column.key != FIRST_TASK_GFLOPS.key or not cell.value:
        return cell
    curve = cost_curve(records)
    first, final = (
        summary_cell({**row, f"{key}_std": math.nan}, replace(column, key=key)).text
        for key in (column.key, "gflops_per_image")
    )  # means, in the column's unit
    text = f"{first} → {final}"
    return cell._replace(text=text, spark=sparkline(curve) if curve else "")


def _trial(
    record: Mapping[str, Any], *, set_options: list[list[str]], columns: Sequence[Column]
) -> dict[str, Any]:
    cost = record.get("inference_cost") or {}
    latencies = trial_latencies(record)
    # The same figures the table averages: metrics, costs and what is read from other
    # sections (training compute, memory kept, the cost after task 1).
    values = {**record["results"]["metrics"], **cost, **resource_values(record)}
    by_setting = {latency.setting: latency for latency in latencies}
    for column in columns:
        if column.latency is not None:
            measured = by_setting.get(column.latency)
            values[column.key] = getattr(measured, latency_statistic(column), None)
    suite, provenance = record["suite"], record.get("provenance") or {}
    commit = provenance.get("git_commit")
    ops = aggregate.uncounted_ops(cost)
    counters = counter_check(cost)
    flags = gflops_flags(ops, None) + counters.flags
    return {
        "seed": record["seed"],
        "order_index": int(suite.get("order_index", 0)),
        "order_sha256": str(suite.get("class_order_sha256") or "")[:12],
        "run_id": record["run_id"],
        "record_href": f"records/{_record_name(record['run_id'])}",
        "created_utc": record.get("created_utc") or "",
        "cells": [_flagged(single_cell(values.get(c.key), c), c, flags) for c in columns],
        "task_aware": single_cell(values.get(TASK_AWARE.key), TASK_AWARE),
        "counters": counters,
        "uncounted_ops": "not checked" if ops is None else ", ".join(ops) or "none",
        "uncounted": bool(ops),
        "size": format_bytes(cost.get("param_bytes")),
        "param_dtypes": _dtypes_text(cost.get("param_dtypes")),
        "nonzero_params": _plain_number(cost.get("nonzero_params_millions"), ".4g"),
        "sparsity": _plain_number(cost.get("sparsity_pct"), ".3g"),
        "latencies": latencies,
        "wall_time_s": (record.get("timing") or {}).get("trial_wall_time_s"),
        "commit": commit or "unknown",
        "dirty": provenance.get("git_dirty"),
        "hardware": hardware_text(record),
        "ray_node": ray_node_text(record),
        "provenance": {
            **_provenance_rows(provenance),
            **_execution_rows(record.get("execution")),
            **_weights_rows(record["method"]),
        },
        "reproduce": reproduce_command(record, set_options=set_options),
        "checkout": f"git checkout {commit}" if commit else "",
        "install": plugin_installs(record),
    }


def counter_check(cost: Mapping[str, Any]) -> Cell:
    """The two FLOP counters side by side, how far apart, and a flag beyond the limit.

    E.g. "torch 0.5 / ptflops 0.52: 4% apart" (flagged); "—" when the record has neither the
    two figures nor ``counter_disagreement_pct``.
    """
    torch_count, ptflops = cost.get("gflops_per_image_torch"), cost.get("gflops_per_image_ptflops")
    disagreement = aggregate.counter_disagreement_pct(cost)
    parts = []
    if is_finite_number(torch_count) and is_finite_number(ptflops):
        parts.append(f"torch {torch_count:.4g} / ptflops {ptflops:.4g}")
    if disagreement is not None:
        parts.append(f"{disagreement:.3g}% apart")
    value = "" if disagreement is None else repr(float(disagreement))
    return Cell(": ".join(parts) or "—", value, gflops_flags(None, disagreement))


def _dtypes_text(dtypes: Any) -> str:
    """ "qint8 65,000 · float32 11,000": most parameters first; "—" when not recorded."""
    if not isinstance(dtypes, Mapping) or not dtypes:
        return "—"
    ordered = sorted(dtypes.items(), key=lambda item: (-int(item[1]), str(item[0])))
    return " · ".join(f"{name} {int(count):,}" for name, count in ordered)


def _plain_number(value: Any, spec: str) -> str:
    return format(float(value), spec) if is_finite_number(value) else "—"


def _latency_rows(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every latency of every seed, grouped by setting (in the suite table's column order)."""
    rows = []
    for trial in trials:
        for latency in trial["latencies"]:
            setting = latency.setting
            rows.append(
                {
                    "sort": (setting.sort_key(), trial["order_index"], trial["seed"]),
                    "seed": trial["seed"],
                    "where": device_text(setting),
                    "device_name": setting.device_name,
                    "precision": setting.precision,
                    "batch_size": setting.batch_size,
                    "threads": "—" if setting.threads is None else str(setting.threads),
                    "ms_per_batch": _plain_number(latency.ms_per_batch, ".4g"),
                    "images_per_s": _plain_number(latency.images_per_s, ".4g"),
                }
            )
    return sorted(rows, key=lambda row: row["sort"])


def _provenance_rows(provenance: Mapping[str, Any]) -> dict[str, str]:
    """Flat name -> value: packages one per row, then everything else, sorted."""
    rows = {f"package {name}": str(version)
            for name, version in sorted((provenance.get("packages") or {}).items())}  # fmt: skip
    for key in sorted(provenance):
        if key != "packages":
            rows[key] = plain_text_of(provenance[key])
    return rows


def hardware_text(record: Mapping[str, Any]) -> str:
    """Where a trial ran, in one line: accelerator, CPU model, torch threads, precision.

    From ``execution`` (how the trial ran) where the record has it, else ``provenance``; e.g.
    "NVIDIA H200 · AMD EPYC 9654 · 8 torch threads · bf16" or "Intel Xeon · 1 torch thread".
    """
    provenance = record.get("provenance") or {}
    execution = record.get("execution") or {}
    if not isinstance(provenance, Mapping) or not isinstance(execution, Mapping):
        return "not recorded"
    device = execution.get("device_name") or provenance.get("device")
    processor = provenance.get("processor")
    threads = provenance.get("torch_threads")
    parts = []
    if device and str(device).lower() != "cpu":  # "cpu" says nothing the CPU model does not
        parts.append(str(device))
    if processor:
        parts.append(str(processor))
    elif device:
        parts.append(f"{device} (model not recorded)")
    if isinstance(threads, int) and not isinstance(threads, bool):
        parts.append(f"{threads} torch thread{'' if threads == 1 else 's'}")
    if execution.get("precision"):
        parts.append(str(execution["precision"]))
    return " · ".join(parts) or "not recorded"


def ray_node_text(record: Mapping[str, Any]) -> str:
    """The Ray node that ran the trial, e.g. "gpu-7 (node 3f2a9c1e)"; "" where the record
    does not say (records made before nodes were recorded)."""
    execution = record.get("execution")
    node = execution.get("ray_node") if isinstance(execution, Mapping) else None
    return node_text(node) if isinstance(node, Mapping) else ""


def _execution_rows(execution: Any) -> dict[str, str]:
    """The record's ``execution`` block (device, precision, ...), one row per key."""
    if not isinstance(execution, Mapping):
        return {}
    return {f"execution {key}": plain_text_of(execution[key]) for key in sorted(execution)}


def _weights_rows(method: Mapping[str, Any]) -> dict[str, str]:
    """What each backbone started from: its weights source and file sha256, or random init."""
    rows = {}
    for backbone, weights in sorted((method.get("weights") or {}).items()):
        if isinstance(weights, Mapping):
            source, sha256 = weights.get("source"), weights.get("sha256")
            rows[f"weights {backbone}"] = f"{source} (sha256 {sha256})"
        else:
            rows[f"weights {backbone}"] = "random initialisation"
    return rows


def _provenance_table(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """One column when every seed ran in the same place (the usual case), else one per seed."""
    per_seed = [t["provenance"] for t in trials]
    names = sorted({name for rows in per_seed for name in rows})
    if all(rows == per_seed[0] for rows in per_seed):
        return {"columns": ["all seeds"], "rows": [(n, [per_seed[0][n]]) for n in names]}
    columns = [f"seed {t['seed']}" for t in trials]
    return {
        "columns": columns,
        "rows": [(n, [rows.get(n, "—") for rows in per_seed]) for n in names],
    }


def _framework_report(records: list[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The optional ``framework_report`` objects as one table: a row per key, a column per seed."""
    reports = [r.get("framework_report") for r in records]
    if not any(isinstance(report, Mapping) and report for report in reports):
        return None
    keys = sorted({k for report in reports if isinstance(report, Mapping) for k in report})
    return {
        "seeds": [r["seed"] for r in records],
        "rows": [
            {"key": key, "values": [_report_value(rep, key) for rep in reports]} for key in keys
        ],
    }


def _report_value(report: Any, key: str) -> str:
    if not isinstance(report, Mapping) or key not in report:
        return "—"
    value = report[key]
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(f"{v:.4g}" for v in value) + "]"
    return plain_text_of(value)


def _record_name(run_id: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", run_id):
        return f"{run_id}.json"
    return hashlib.sha256(run_id.encode()).hexdigest()[:16] + ".json"
