"""What makes a record valid: the one check every reader and writer of records applies.

``write_record`` refuses, ``cilbench validate`` fails on, and the site's lenient loader skips
exactly the records ``validate_record`` rejects. The accuracy matrix is the source of truth:
every summary metric is recomputed from it and must agree with the stored one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.evaluation.metrics import compute_metrics
from harness.records.cross_checks import cross_check_problems
from harness.records.layout import RecordPathError, record_path
from harness.records.schema import (
    COUNTER_TOLERANCE_PCT,
    METHOD_KEYS,
    METRIC_NAMES,
    REQUIRED_KEYS,
    SCHEMA_VERSION,
    STATUSES,
    SUITE_KEYS,
    InferenceCost,
    KeptMemory,
    TrainingBudget,
    is_int,
    is_number,
)

METRIC_TOLERANCE = 1e-6


def validate_record(record: Any) -> list[str]:
    """Every way ``record`` breaks the schema, as readable strings (empty: valid).

    The one check for every reader and writer: ``write_record`` refuses, ``cilbench validate``
    fails on, and the site's lenient loader skips exactly the records this rejects.
    """
    if not isinstance(record, dict):
        return ["a record must be a JSON object"]
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        return [f"missing key(s): {', '.join(missing)}"]
    non_finite = _non_finite_numbers(record) if _may_hold_non_finite(record) else ()
    problems = [f"{where}={value!r}: every number must be finite" for where, value in non_finite]
    if record["schema_version"] != SCHEMA_VERSION:
        problems.append(
            f"schema_version {record['schema_version']!r} is not {SCHEMA_VERSION} (this harness)"
        )
    if record["status"] not in STATUSES:
        problems.append(f"status {record['status']!r} is not one of {', '.join(STATUSES)}")
    if not isinstance(record["debug"], bool):
        problems.append(f"debug={record['debug']!r} must be true or false")
    if not isinstance(record["suite"], dict) or not isinstance(record["method"], dict):
        return [*problems, "suite and method must be objects"]
    for key in SUITE_KEYS:
        if key not in record["suite"]:
            problems.append(f"suite.{key} is missing")
    for key in METHOD_KEYS:
        if key not in record["method"]:
            problems.append(f"method.{key} is missing")
    problems += _type_problems(record) + _timing_problems(record["timing"])
    if record["status"] == "failed":
        error = record["error"]
        if not isinstance(error, dict) or not error.get("message"):
            problems.append("a failed record needs error.message")
        return problems
    if record["status"] != "ok":
        return problems
    problems += (
        _validate_results(record)
        + InferenceCost.problems(record["inference_cost"])
        + _per_task_problems(record)
        + TrainingBudget.problems(record.get("training_budget"))
    )
    # Figures a record repeats must agree: a copy edited by hand is refused, field named.
    return problems + cross_check_problems(record) + _weights_path_problems(record)


def _weights_path_problems(record: dict[str, Any]) -> list[str]:
    """Records are shared: a weights file is named relative to the project or by its file
    name (its sha256 says which bytes), never by the absolute path of the machine that ran."""
    method = record.get("method")
    weights = method.get("weights") if isinstance(method, dict) else None
    problems = []
    for backbone, entry in (weights or {}).items() if isinstance(weights, dict) else ():
        for key in ("source", "path"):
            value = entry.get(key) if isinstance(entry, dict) else None
            if isinstance(value, str) and (value.startswith(("/", "~")) or value[1:3] == ":\\"):
                problems.append(
                    f"method.weights.{backbone}.{key}={value!r} is an absolute path: name the "
                    "file relative to the project or by its file name (its sha256 identifies it)"
                )
    return problems


def _per_task_problems(record: dict[str, Any]) -> list[str]:
    """The cost curve and the memory kept name every task of the suite, once each."""
    tasks = record["suite"].get("num_tasks")
    if not is_int(tasks) or tasks < 1:
        return []  # _validate_results says so
    problems = KeptMemory.problems(record.get("memory"), tasks)
    cost = record["inference_cost"]
    curve = cost.get("after_task") if isinstance(cost, dict) else None
    if isinstance(curve, list) and len(curve) != tasks:
        problems.append(f"inference_cost.after_task has {len(curve)} points, not one per task "
                        f"({tasks})")  # fmt: skip
    return problems


def _may_hold_non_finite(record: dict[str, Any]) -> bool:
    """False when ``record`` provably holds only finite numbers: JSON's C encoder refuses NaN
    and infinities in one pass, ten times faster than the walk that names where they are."""
    try:
        json.dumps(record, allow_nan=False)
    except (ValueError, TypeError):  # a non-finite number, or a value JSON cannot write
        return True
    return False


def _non_finite_numbers(value: Any, where: str = "record") -> Iterable[tuple[str, float]]:
    """NaN and infinities anywhere in a record (JSON readers accept them; the schema does not)."""
    if isinstance(value, float) and not math.isfinite(value):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite_numbers(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _non_finite_numbers(item, f"{where}[{i}]")


def _type_problems(record: dict[str, Any]) -> list[str]:
    """Types that the leaderboard and the results/ layout rely on."""
    suite, method = record["suite"], record["method"]
    checks = {
        "suite.name": isinstance(suite.get("name"), str) and bool(suite["name"]),
        "suite.version": is_int(suite.get("version")),
        "seed": is_int(record.get("seed")),
        "run_id": isinstance(record.get("run_id"), str) and bool(record["run_id"]),
        "method.config": isinstance(method.get("config"), dict),
    }
    for key in ("label", "strategy", "framework", "backbone"):
        checks[f"method.{key}"] = isinstance(method.get(key), str) and bool(method[key])
    if record["status"] == "ok":
        checks["method.config_sha256"] = isinstance(method.get("config_sha256"), str)
    problems = [f"{n} has the wrong type or is missing" for n, ok in checks.items() if not ok]
    if not problems:
        try:
            record_path(Path("results"), record)
        except RecordPathError as error:
            problems.append(str(error))
    return problems


def _timing_problems(timing: Any) -> list[str]:
    if not isinstance(timing, dict):
        return ["timing must be an object"]
    per_task = timing.get("task_wall_time_s", [])
    total = timing.get("trial_wall_time_s")
    if not isinstance(per_task, list) or not all(is_number(t) and t >= 0 for t in per_task):
        return [f"timing.task_wall_time_s={per_task!r} must be a list of seconds >= 0"]
    if not (is_number(total) and total >= 0):
        return [f"timing.trial_wall_time_s={total!r} is not a number of seconds >= 0"]
    return []


def _validate_results(record: dict[str, Any]) -> list[str]:
    results = record["results"]
    if not isinstance(results, dict):
        return ["results must be an object for an ok record"]
    tasks = record["suite"].get("num_tasks")
    if not is_int(tasks) or tasks < 1:
        return [f"suite.num_tasks={tasks!r} is not a positive integer"]
    problems = [
        problem
        for key in ("acc_matrix_pct", "task_aware_acc_matrix_pct")
        for problem in _matrix_problems(key, results.get(key), tasks)
    ]
    counts = results.get("test_samples_per_task")
    if not (isinstance(counts, list) and len(counts) == tasks
            and all(is_int(c) and c > 0 for c in counts)):  # fmt: skip
        problems.append(
            f"results.test_samples_per_task={counts!r} must be {tasks} positive integers"
        )
    if problems:
        return problems
    recomputed = compute_metrics(
        results["acc_matrix_pct"], results["task_aware_acc_matrix_pct"], counts
    )
    stored = results.get("metrics")
    if not isinstance(stored, dict):
        return ["results.metrics must be an object"]
    for name in METRIC_NAMES:
        value, expected = stored.get(name), recomputed[name]
        if expected is None:
            if value is not None:
                problems.append(f"metrics.{name} should be null")
        elif not is_number(value) or abs(value - expected) > METRIC_TOLERANCE:
            problems.append(
                f"metrics.{name}={value!r} disagrees with the accuracy matrix ({expected:.6f})"
            )
    return problems


def _matrix_problems(key: str, matrix: Any, tasks: int) -> list[str]:
    """``tasks`` x ``tasks``, lower-triangular: accuracies in 0..100 on and below the diagonal,
    null above it (task j is not learned before step j)."""
    where = f"results.{key}"
    if not (isinstance(matrix, list) and len(matrix) == tasks
            and all(isinstance(row, list) and len(row) == tasks for row in matrix)):  # fmt: skip
        return [f"{where} must be {tasks} x {tasks} (suite.num_tasks), got {_shape(matrix)}"]
    problems = []
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if j > i and value is not None:
                problems.append(f"{where}[{i}][{j}]={value!r} must be null (task {j} comes later)")
            elif j <= i and not (is_number(value) and 0 <= value <= 100):
                problems.append(f"{where}[{i}][{j}]={value!r} is not an accuracy in 0..100")
    return problems


def _shape(matrix: Any) -> str:
    if not isinstance(matrix, list):
        return type(matrix).__name__
    return f"{len(matrix)} row(s) of " + ", ".join(
        str(len(row)) if isinstance(row, list) else type(row).__name__ for row in matrix
    )


def summarize_failures(records: Iterable[dict[str, Any]]) -> list[str]:
    return [
        f"{r['method']['label']} seed={r['seed']}: {r['error']['message']}"
        for r in records
        if r["status"] == "failed"
    ]


def cost_warnings(records: Iterable[dict[str, Any]]) -> list[str]:
    """Valid records whose FLOP figure may be too low: ops that ran without a FLOP formula, or
    the two counters more than 1% apart (the leaderboard flags the same entries)."""
    lines = []
    for r in records:
        cost = r.get("inference_cost") or {}
        where = f"{r['suite']['name']} {r['method']['label']} seed={r['seed']}"
        if cost.get("uncounted_ops"):
            lines.append(f"{where}: ops without a FLOP formula ran in the served model: "
                         f"{', '.join(cost['uncounted_ops'])}")  # fmt: skip
        if cost.get("counter_disagreement_pct", 0.0) > COUNTER_TOLERANCE_PCT:
            lines.append(f"{where}: the FLOP counters disagree by "
                         f"{cost['counter_disagreement_pct']:.2f}%")  # fmt: skip
    return lines
