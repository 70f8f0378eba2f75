"""The trial record, defined once: its sections as typed dataclasses, its metrics and costs as
named quantities with their valid ranges, and ``SCHEMA_VERSION``. The larger sections live in
their own modules (``inference_cost``, ``kept_memory``, ``training_budget``; the quantities in
``quantities``); this module assembles the record and is where readers import it all from.

Everything that writes or reads records takes its fields from here: the trial builds a
``TrialRecord`` and writes ``to_json()``; ``harness.records.validation.validate_record``
checks the keys, types and ranges declared here (and re-derives the metrics from the accuracy
matrix); the leaderboard's aggregation averages ``METRICS`` and ``COSTS`` within
``VALUE_RANGES``; the tests' record factory builds records from these dataclasses. Adding a
metric is one ``@metric`` definition in ``harness.evaluation.metrics`` (read from there);
adding a cost is one field of ``InferenceCost`` (plus a ``COSTS`` line when the leaderboard
averages it).

Pure Python (no torch, no Ray): the site builds from ``results/`` alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from harness.records.inference_cost import LATENCY_DEVICES, CostAfterTask, InferenceCost, Latency
from harness.records.kept_memory import KeptAfterTask, KeptMemory
from harness.records.quantities import (
    ACCURACY_METRICS,
    COSTS,
    COUNTER_DISAGREEMENT,
    COUNTER_TOLERANCE_PCT,
    METRIC_NAMES,
    METRICS,
    NON_NEGATIVE,
    PERCENT,
    PERCENT_DIFFERENCE,
    RESOURCES,
    VALUE_RANGES,
    Quantity,
    is_int,
    is_number,
)
from harness.records.training_budget import SpentTraining, TrainingBudget


def canonical_sha256(obj: Any) -> str:
    """sha256 of ``obj`` as sorted-key JSON: the same content, the same digest. How a record's
    ``method.config_sha256``, its run id and a suite's ``protocol_sha256`` are made."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


# The record's vocabulary, whichever module defines each part: readers import it from here.
__all__ = [
    "ACCURACY_METRICS", "COSTS", "COUNTER_DISAGREEMENT", "COUNTER_TOLERANCE_PCT",
    "LATENCY_DEVICES", "METHOD_KEYS", "METRICS", "METRIC_NAMES", "NON_NEGATIVE",
    "OPTIONAL_KEYS", "PERCENT", "PERCENT_DIFFERENCE", "REQUIRED_KEYS", "SCHEMA_VERSION",
    "RESOURCES", "STATUSES", "SUITE_KEYS", "VALUE_RANGES", "CostAfterTask", "InferenceCost",
    "KeptAfterTask", "KeptMemory", "Latency", "Quantity", "Results", "SpentTraining",
    "TrainingBudget", "TrialRecord", "is_int", "is_number",
]  # fmt: skip

# 2: inference_cost gained op coverage, model size, sparsity and latencies per device, and ok
# records the metered training budget. 3: the cost of what served after every task
# (inference_cost.after_task) and the memory a trial keeps between tasks (memory).
SCHEMA_VERSION = 3
STATUSES = ("ok", "failed")


SUITE_KEYS = ("name", "version", "file_sha256", "class_order", "primary_metric")
METHOD_KEYS = ("label", "strategy", "framework", "backbone", "config", "config_sha256")


@dataclass(frozen=True)
class Results:
    acc_matrix_pct: list[list[float | None]]  # acc[i][j]: task j after learning task i
    task_aware_acc_matrix_pct: list[list[float | None]]
    test_samples_per_task: list[int]
    metrics: dict[str, float | None]  # keyed by METRIC_NAMES, derived from the matrix


@dataclass(frozen=True)
class TrialRecord:
    """One trial's record. ``suite``, ``method``, ``timing``, ``provenance``, ``execution`` and
    ``framework_report`` are open objects (their required keys are checked by the validator);
    the rest is typed here."""

    run_id: str
    status: str  # one of STATUSES
    debug: bool  # test-only shortcuts: the leaderboard refuses such records
    created_utc: str
    suite: dict[str, Any]
    method: dict[str, Any]
    seed: int
    timing: dict[str, Any]
    provenance: dict[str, Any]
    results: Results | None = None  # ok records only
    inference_cost: InferenceCost | None = None  # ok records only
    error: dict[str, Any] | None = None  # failed records only: type, message, traceback
    training_budget: TrainingBudget | None = None  # ok records only
    framework_report: dict[str, Any] | None = None
    execution: dict[str, Any] | None = None
    memory: KeptMemory | None = None  # ok records only
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        raw: dict[str, Any] = {"schema_version": self.schema_version}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "schema_version" and not (value is None and f.name in OPTIONAL_KEYS):
                raw[f.name] = _to_json(value)
        return raw


# Keys every record has (null where they do not apply), and keys only some records have.
OPTIONAL_KEYS = ("training_budget", "framework_report", "execution", "memory")
REQUIRED_KEYS: tuple[str, ...] = tuple(
    f.name for f in fields(TrialRecord) if f.name not in OPTIONAL_KEYS
)


def _to_json(value: Any) -> Any:
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, Results):
        return asdict(value)
    return value
