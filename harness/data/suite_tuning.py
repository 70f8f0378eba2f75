"""A suite's tuning budget: the same for every method tuned on it (``cilbench tune``).

Published CL comparisons are often unequal because one method was tuned harder than another
(Cha & Cho, 2024, "Hyperparameters in Continual Learning: a Reality Check"). So the budget
belongs to the suite, not to a method or a command line: every method gets ``samples``
configurations, each learning the suite's tasks with the suite's training recipe, and an
asynchronous successive-halving scheduler (ASHA, Li et al., 2020) that uses tasks as its time
axis stops the weaker ones early. The budget is not part of the suite's protocol (it changes
no trial's numbers), so changing it leaves records current; tuned configs made under another
budget are refused (``harness.tuning.tuned_configs``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from harness.data.suite_fields import SuiteError, check_keys, integer

TUNING_KEYS = {"samples", "grace_tasks", "reduction_factor"}


@dataclass(frozen=True)
class TuningBudget:
    # Configurations tried per method: 8 keeps a digits-5split search near a minute per
    # method on 2 cores; the paper's suites may ask for more.
    samples: int = 8
    # ASHA stops no configuration before it has learned this many tasks (its grace period).
    grace_tasks: int = 2
    # ASHA keeps the best 1/reduction_factor of the configurations at each rung.
    reduction_factor: int = 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_tuning(raw: Any, source: str, *, num_tasks: int) -> TuningBudget:
    if raw is None:
        return TuningBudget()
    where = f"{source}: tuning"
    check_keys(raw, TUNING_KEYS, where, required=set())
    default = TuningBudget()
    budget = TuningBudget(
        samples=integer(
            raw.get("samples", default.samples), source, "tuning.samples", at_least=1
        ),  # fmt: skip
        grace_tasks=integer(
            raw.get("grace_tasks", default.grace_tasks), source, "tuning.grace_tasks", at_least=1
        ),  # fmt: skip
        reduction_factor=integer(
            raw.get("reduction_factor", default.reduction_factor),
            source,
            "tuning.reduction_factor",
            at_least=2,
        ),  # fmt: skip
    )
    if budget.grace_tasks > num_tasks:
        raise SuiteError(f"{where}.grace_tasks={budget.grace_tasks} exceeds the suite's "
                         f"{num_tasks} tasks")  # fmt: skip
    return budget
