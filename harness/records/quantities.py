"""The numbers records carry, named once: each with its key (unit in the name), valid range and
meaning. Metrics come from their ``@metric`` definitions (``harness.evaluation.metrics``);
costs and training compute are listed here. Torch-free."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from harness.evaluation import metrics as metric_definitions


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
# What a method spends besides its final inference cost, which the leaderboard shows beside
# it: training compute (training_budget), the memory it keeps (memory) and where its cost
# curve starts (inference_cost.after_task[0]).
RESOURCES: tuple[Quantity, ...] = (
    Quantity("training_samples_millions", *NON_NEGATIVE,
             "samples seen by every model the method trained, all tasks (millions)"),
    Quantity("kept_memory_megabytes", *NON_NEGATIVE,
             "bytes kept between tasks after the last: exemplars and every model (MB)"),
    Quantity("gflops_after_first_task", *NON_NEGATIVE,
             "GFLOPs per image of what served after the first task"),
)  # fmt: skip
# A check on the FLOP figure rather than a cost: shown as a flag, not averaged.
COUNTER_DISAGREEMENT = Quantity(
    "counter_disagreement_pct", *NON_NEGATIVE, "|torch - ptflops| / torch, in percent"
)
# Beyond this the two counters disagree about the model, not about conventions.
COUNTER_TOLERANCE_PCT = 1.0
VALUE_RANGES: dict[str, tuple[float, float]] = {
    q.name: (q.low, q.high) for q in METRICS + COSTS + RESOURCES
}


def is_int(value: Any) -> bool:
    """An int that is not a bool (JSON's true/false are not counts)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float (JSON's NaN and infinities are not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
