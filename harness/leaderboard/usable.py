"""Which records' numbers the leaderboard may show: every figure present is a finite number in
its schema range, and the newer, optional cost fields are well formed.

A broken figure (NaN, infinity, 1e6 %) would rank first, join the Pareto front or crash the
plots; such a record is left out with a warning naming what is wrong (``cilbench validate``
names every problem of the file). First of the leaderboard's modules: it imports none of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Integral, Real
from typing import Any

from harness.records import schema as schema
from harness.records.schema import METRIC_NAMES

# Metrics and costs, their names and valid ranges, come from the record's schema: a shown
# figure outside its range (NaN, infinity, 1e6 %) is a broken record, which would rank first,
# join the Pareto front or crash the plots. Costs here are the ones averaged over seeds.
METRICS: tuple[str, ...] = METRIC_NAMES
COSTS: tuple[str, ...] = tuple(q.name for q in schema.COSTS)
# Training compute beside the inference cost (from the record's training_budget).
RESOURCES: tuple[str, ...] = tuple(q.name for q in schema.RESOURCES)
VALUE_COLUMNS: tuple[str, ...] = METRICS + COSTS + RESOURCES
VALUE_RANGES: dict[str, tuple[float, float]] = schema.VALUE_RANGES


def is_leaderboard_record(record: Mapping[str, Any]) -> bool:
    """True for records the leaderboard may show: finished, and made without test shortcuts."""
    return record.get("status") == "ok" and not record.get("debug", False)


def unusable_reason(record: Mapping[str, Any]) -> str | None:
    """Why a leaderboard record's numbers cannot be shown, or None when they can.

    Every accuracy metric must be present; every figure present must be a finite number in
    its ``VALUE_RANGES``, and so must every cell of the accuracy matrices (0-100 %). A cost may
    be missing (older records lack some); ``summarize`` counts what it averaged.
    """
    results = record.get("results")
    if not isinstance(results, Mapping) or not isinstance(results.get("metrics"), Mapping):
        return "no results.metrics block"
    cost = record.get("inference_cost") or {}
    if not isinstance(cost, Mapping):
        return "inference_cost is not an object"
    resources = resource_values(record)
    for name in VALUE_COLUMNS:
        value = (results["metrics"] if name in METRICS else {**cost, **resources}).get(name)
        if value is None and name not in METRICS:
            continue
        problem = out_of_range(value, VALUE_RANGES[name])
        if problem:
            return f"{name} is {problem}"
    problem = _newer_cost_problem(cost)
    if problem:
        return f"inference_cost.{problem}"
    for key in ("acc_matrix_pct", "task_aware_acc_matrix_pct"):
        problem = _matrix_problem(results.get(key))
        if problem:
            return f"results.{key} {problem}"
    return None


def _newer_cost_problem(cost: Mapping[str, Any]) -> str:
    """ "" when the optional, newer cost fields are absent or well formed, else the problem."""
    disagreement = cost.get("counter_disagreement_pct")
    if disagreement is not None:
        problem = out_of_range(disagreement, (0.0, math.inf))
        if problem:
            return f"counter_disagreement_pct is {problem}"
    ops = cost.get("uncounted_ops")
    if ops is not None and not (isinstance(ops, list) and all(isinstance(o, str) for o in ops)):
        return f"uncounted_ops is not a list of op names ({ops!r})"
    dtypes = cost.get("param_dtypes")
    if dtypes is not None and not (
        isinstance(dtypes, Mapping)
        and all(isinstance(k, str) and is_count(v) for k, v in dtypes.items())
    ):
        return f"param_dtypes is not an object of dtype name -> parameter count ({dtypes!r})"
    latencies = cost.get("latencies")
    if latencies is None:
        return ""
    if not isinstance(latencies, list):
        return f"latencies is not a list ({latencies!r})"
    for k, item in enumerate(latencies):
        problem = _latency_problem(item)
        if problem:
            return f"latencies[{k}] {problem}"
    return ""


def is_count(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 0


def _latency_problem(item: Any) -> str:
    if not isinstance(item, Mapping):
        return "is not an object"
    for key in ("device", "device_name", "precision"):
        if not isinstance(item.get(key), str) or not item[key]:
            return f"has no {key} name"
    batch, threads = item.get("batch_size"), item.get("threads")
    if not is_count(batch) or batch < 1:
        return f"has batch_size {batch!r}, not a positive integer"
    if threads is not None and (not is_count(threads) or threads < 1):
        return f"has threads {threads!r}, neither null nor a positive integer"
    for key in ("ms_per_batch", "images_per_s"):
        problem = out_of_range(item.get(key), (0.0, math.inf))
        if problem:
            return f"has {key} {problem}"
    return ""


def out_of_range(value: Any, bounds: tuple[float, float]) -> str:
    """ "" for a finite number within ``bounds``, else what is wrong with ``value``."""
    if type(value) is not float and type(value) is not int:  # JSON's own types skip the ABC
        if value is None:
            return "missing"
        if isinstance(value, bool) or not isinstance(value, Real):
            return f"not a number ({value!r})"
    if not math.isfinite(value):
        return f"{value!r}, not a finite number"
    low, high = bounds
    if not low <= value <= high:
        return f"{value!r}, outside [{low:g}, {high:g}]"
    return ""


def _matrix_problem(matrix: Any) -> str:
    if not isinstance(matrix, list) or not matrix or not all(isinstance(r, list) for r in matrix):
        return "is not a list of rows"
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            problem = "" if value is None else out_of_range(value, schema.PERCENT)
            if problem:
                return f"[{i}][{j}] is {problem}"
    return ""


def drop_unusable_records(
    records: Iterable[Mapping[str, Any]],
) -> tuple[list[Mapping[str, Any]], list[str]]:
    """Leave out leaderboard records whose numbers cannot be shown; a warning names each.

    Failed and debug records pass through (they are counted, never shown). The strict loader
    refuses such records already; this guards callers that pass records in directly.
    """
    kept, warnings = [], []
    for record in records:
        reason = unusable_reason(record) if is_leaderboard_record(record) else None
        if reason is None:
            kept.append(record)
        else:
            warnings.append(_unusable_warning(record, reason))
    return kept, sorted(warnings)


def _unusable_warning(record: Mapping[str, Any], reason: str) -> str:
    label = (record.get("method") or {}).get("label")
    return (
        f"record {record.get('run_id')} ({label}, seed {record.get('seed')}): {reason}; left "
        "out of the leaderboard (`cilbench validate` names every problem of the file)"
    )


def resource_values(record: Mapping[str, Any]) -> dict[str, float | None]:
    """RESOURCES figures of a record; None where it predates what they are read from (the
    metered budget, the memory kept, the cost after every task)."""
    samples = schema.TrainingBudget.samples_millions(record.get("training_budget"))
    memory = record.get("memory")
    kept = memory.get("total_bytes") if isinstance(memory, Mapping) else None
    curve = (record.get("inference_cost") or {}).get("after_task")
    first = curve[0] if isinstance(curve, list) and curve and isinstance(curve[0], Mapping) else {}
    return {
        "training_samples_millions": samples,
        "kept_memory_megabytes": kept / 1e6 if is_count(kept) else None,
        "gflops_after_first_task": first.get("gflops_per_image"),
    }
