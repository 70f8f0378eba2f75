"""The trial record, defined once: its sections as typed dataclasses, its metrics and costs as
named quantities with their valid ranges, and ``SCHEMA_VERSION``.

Everything that writes or reads records takes its fields from here: the trial builds a
``TrialRecord`` and writes ``to_json()``; ``harness.records.validation.validate_record`` checks
the keys, types and ranges declared here (and re-derives the metrics from the accuracy matrix); the
leaderboard's aggregation averages ``METRICS`` and ``COSTS`` within ``VALUE_RANGES``; the
tests' record factory builds records from these dataclasses. Adding a metric is one
``@metric`` definition in ``harness.evaluation.metrics`` (this module reads them); adding a
cost is one field of ``InferenceCost`` (plus a ``COSTS`` line when the leaderboard averages it).

Pure Python (no torch, no Ray): the site builds from ``results/`` alone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from harness.evaluation import metrics as metric_definitions

# 2: inference_cost gained op coverage, model size, sparsity and latencies per device, and ok
# records the metered training budget.
SCHEMA_VERSION = 2
STATUSES = ("ok", "failed")


@dataclass(frozen=True)
class Quantity:
    """A number records carry: its key (unit in the name), valid range and meaning."""

    name: str
    low: float
    high: float
    meaning: str
    integer: bool = False

    def problem(self, value: Any, where: str) -> str | None:
        """Why ``value`` is not a valid figure of this quantity, or None."""
        kind = "an integer" if self.integer else "a finite number"
        if not (is_int(value) if self.integer else is_number(value)):
            return f"{where}.{self.name}={value!r} is not {kind}"
        if not self.low <= value <= self.high:
            return f"{where}.{self.name}={value!r} lies outside [{self.low}, {self.high}]"
        return None


PERCENT = metric_definitions.PERCENT
PERCENT_DIFFERENCE = metric_definitions.PERCENT_DIFFERENCE
NON_NEGATIVE = (0.0, math.inf)

# Derived from the accuracy matrix: each metric is one definition in harness.evaluation.metrics
# (key, range, meaning, computation); the schema takes their names, ranges and meanings.
METRICS: tuple[Quantity, ...] = tuple(
    Quantity(m.name, m.low, m.high, m.meaning) for m in metric_definitions.METRICS
)
METRIC_NAMES: tuple[str, ...] = tuple(q.name for q in METRICS)
# The two accuracies a Pareto front may be drawn on (task-aware ones are diagnostics only).
ACCURACY_METRICS: tuple[str, ...] = ("final_acc_pct", "avg_incremental_acc_pct")

# Inference-cost figures the leaderboard averages over seeds (fields of InferenceCost).
COSTS: tuple[Quantity, ...] = (
    Quantity("gflops_per_image", *NON_NEGATIVE, "torch's count, 2 FLOPs per multiply-add"),
    Quantity("gflops_per_image_ptflops", *NON_NEGATIVE, "ptflops' count, the cross-check"),
    Quantity("gflops_per_image_torch", *NON_NEGATIVE, "torch's count"),
    Quantity("params_millions", *NON_NEGATIVE, "every weight, whatever its storage"),
    Quantity("params_millions_without_head", *NON_NEGATIVE, "without any ClassifierHead"),
    Quantity("latency_ms_b1", *NON_NEGATIVE, "CPU, batch 1, median"),
    Quantity("param_bytes", *NON_NEGATIVE, "storage of the weights", integer=True),
    Quantity("nonzero_params_millions", *NON_NEGATIVE, "weights that are not zero"),
    Quantity("sparsity_pct", *PERCENT, "share of zero weights"),
)
# Training compute the leaderboard shows beside the inference cost, from training_budget.
TRAINING: tuple[Quantity, ...] = (
    Quantity("training_samples_millions", *NON_NEGATIVE,
             "samples seen by every model the method trained, all tasks (millions)"),
)  # fmt: skip
# A check on the FLOP figure rather than a cost: shown as a flag, not averaged.
COUNTER_DISAGREEMENT = Quantity(
    "counter_disagreement_pct", *NON_NEGATIVE, "|torch - ptflops| / torch, in percent"
)
# Beyond this the two counters disagree about the model, not about conventions.
COUNTER_TOLERANCE_PCT = 1.0
VALUE_RANGES: dict[str, tuple[float, float]] = {
    q.name: (q.low, q.high) for q in METRICS + COSTS + TRAINING
}

LATENCY_DEVICES = ("cpu", "cuda")
SUITE_KEYS = ("name", "version", "file_sha256", "class_order", "primary_metric")
METHOD_KEYS = ("label", "strategy", "framework", "backbone", "config", "config_sha256")


def is_int(value: Any) -> bool:
    """An int that is not a bool (JSON's true/false are not counts)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float (JSON's NaN and infinities are not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Latency:
    """One latency measurement of the served model."""

    device: str  # "cpu" or "cuda"
    device_name: str  # the CPU model or GPU name
    precision: str  # "fp32" or "bf16" (autocast, fp32 weights)
    batch_size: int
    threads: int | None  # torch's intra-op threads on a CPU; None on a GPU
    ms_per_batch: float  # median over the repeats

    @property
    def images_per_s(self) -> float:
        return 1e3 * self.batch_size / self.ms_per_batch if self.ms_per_batch > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "images_per_s": self.images_per_s}

    @staticmethod
    def problems(raw: Any, where: str) -> list[str]:
        if not isinstance(raw, dict):
            return [f"{where} is not an object"]
        problems = []
        if raw.get("device") not in LATENCY_DEVICES:
            problems.append(
                f"{where}.device={raw.get('device')!r} is not one of {', '.join(LATENCY_DEVICES)}"
            )
        for key in ("device_name", "precision"):
            if not isinstance(raw.get(key), str) or not raw.get(key):
                problems.append(f"{where}.{key}={raw.get(key)!r} is not a name")
        if not is_int(raw.get("batch_size")) or raw["batch_size"] < 1:
            problems.append(f"{where}.batch_size={raw.get('batch_size')!r} is not >= 1")
        threads = raw.get("threads")
        if threads is not None and (not is_int(threads) or threads < 1):
            problems.append(f"{where}.threads={threads!r} is not a positive integer")
        for key in ("ms_per_batch", "images_per_s"):
            if not is_number(raw.get(key)) or raw[key] < 0:
                problems.append(f"{where}.{key}={raw.get(key)!r} is not a number >= 0")
        return problems


@dataclass(frozen=True)
class InferenceCost:
    """Cost of one prediction of the served model at batch 1; units are part of every name."""

    gflops_per_image: float  # primary: torch's counter, sees every aten op of the path
    gflops_per_image_torch: float
    gflops_per_image_ptflops: float  # 2 x ptflops MACs / 1e9, a cross-check
    counter_disagreement_pct: float  # |torch - ptflops| / torch, in percent
    uncounted_ops: tuple[str, ...]  # ops that computed without a FLOP formula
    params_millions: float  # every weight, whatever its storage
    params_millions_without_head: float
    nonzero_params_millions: float  # beside the dense count: zeros still cost dense FLOPs
    sparsity_pct: float
    param_bytes: int
    param_dtypes: dict[str, int]  # dtype -> number of parameters stored in it
    latency_ms_b1: float  # on the CPU, at batch 1 (latencies[0])
    latency_threads: int
    latencies: tuple[Latency, ...]  # CPU batch 1 first, then any GPU measurements
    input_shape: tuple[int, ...]  # with the batch dimension, which is 1

    def with_latencies(self, extra: tuple[Latency, ...] | list[Latency]) -> InferenceCost:
        return replace(self, latencies=(*self.latencies, *extra))

    def to_json(self) -> dict[str, Any]:
        raw = {f.name: getattr(self, f.name) for f in fields(self)}
        raw["uncounted_ops"] = list(self.uncounted_ops)
        raw["param_dtypes"] = dict(self.param_dtypes)
        raw["latencies"] = [latency.to_json() for latency in self.latencies]
        raw["input_shape"] = list(self.input_shape)
        return raw

    @staticmethod
    def problems(raw: Any) -> list[str]:
        where = "inference_cost"
        if not isinstance(raw, dict):
            return [f"{where} must be an object for an ok record"]
        problems = [p for q in (*COSTS, COUNTER_DISAGREEMENT)
                    if (p := q.problem(raw.get(q.name), where))]  # fmt: skip
        threads = raw.get("latency_threads")
        if not is_int(threads) or threads < 1:
            problems.append(f"{where}.latency_threads={threads!r} is not a positive integer")
        ops = raw.get("uncounted_ops")
        if not isinstance(ops, list) or not all(isinstance(op, str) and op for op in ops):
            problems.append(f"{where}.uncounted_ops={ops!r} is not a list of op names")
        dtypes = raw.get("param_dtypes")
        if not isinstance(dtypes, dict) or not all(
            isinstance(k, str) and is_int(v) and v >= 0 for k, v in dtypes.items()
        ):
            problems.append(f"{where}.param_dtypes={dtypes!r} is not {{dtype: count}}")
        latencies = raw.get("latencies")
        if not isinstance(latencies, list) or not latencies:
            problems.append(f"{where}.latencies={latencies!r} is not a non-empty list")
        else:
            for i, item in enumerate(latencies):
                problems += Latency.problems(item, f"{where}.latencies[{i}]")
        return problems


@dataclass(frozen=True)
class SpentTraining:
    """What one model (``role``) trained on one task (1-based)."""

    task: int
    role: str
    epochs: int
    optimizer_steps: int
    samples: int


@dataclass(frozen=True)
class TrainingBudget:
    """Declared epochs per task and role, and what the harness's training loop counted."""

    declared_epochs: list[dict[str, int]]
    spent: tuple[SpentTraining, ...]

    @property
    def total_optimizer_steps(self) -> int:
        return sum(s.optimizer_steps for s in self.spent)

    @property
    def total_samples(self) -> int:
        return sum(s.samples for s in self.spent)

    @staticmethod
    def samples_millions(raw: Any) -> float | None:
        """``training_samples_millions`` of a record's ``training_budget`` (None: absent)."""
        total = raw.get("total_samples") if isinstance(raw, dict) else None
        return total / 1e6 if is_int(total) else None

    def to_json(self) -> dict[str, Any]:
        return {
            "declared_epochs": [dict(row) for row in self.declared_epochs],
            "spent": [asdict(s) for s in self.spent],
            "total_optimizer_steps": self.total_optimizer_steps,
            "total_samples": self.total_samples,
        }

    @staticmethod
    def problems(raw: Any) -> list[str]:
        where = "training_budget"
        if not isinstance(raw, dict):
            return [f"{where}={raw!r} must be an object for an ok record"]
        problems = []
        declared = raw.get("declared_epochs")
        if not isinstance(declared, list) or not all(
            isinstance(row, dict) and all(is_int(e) and e >= 0 for e in row.values())
            for row in declared
        ):
            problems.append(f"{where}.declared_epochs must be a list of {{role: epochs}}")
        spent = raw.get("spent")
        names = [f.name for f in fields(SpentTraining)]
        if not isinstance(spent, list) or not all(
            isinstance(row, dict) and set(row) == set(names) for row in spent
        ):
            return [*problems, f"{where}.spent must be a list of objects with {names}"]
        for key in ("total_optimizer_steps", "total_samples"):
            column = key.removeprefix("total_")
            if not is_int(raw.get(key)) or raw[key] != sum(row[column] for row in spent):
                problems.append(f"{where}.{key}={raw.get(key)!r} is not the sum of spent {column}")
        return problems


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
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        raw: dict[str, Any] = {"schema_version": self.schema_version}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "schema_version" and not (value is None and f.name in OPTIONAL_KEYS):
                raw[f.name] = _to_json(value)
        return raw


# Keys every record has (null where they do not apply), and keys only some records have.
OPTIONAL_KEYS = ("training_budget", "framework_report", "execution")
REQUIRED_KEYS: tuple[str, ...] = tuple(
    f.name for f in fields(TrialRecord) if f.name not in OPTIONAL_KEYS
)


def _to_json(value: Any) -> Any:
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, Results):
        return asdict(value)
    return value
