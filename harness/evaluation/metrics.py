"""Class-incremental metrics, all derived from the accuracy matrix and per-task test counts.

``acc[i][j]`` is the accuracy (percent) on the test data of task j after learning task i
(j <= i; entries above the diagonal are None). Each summary metric is one ``Metric``,
registered with ``@metric``: its record key, valid range, meaning, leaderboard column and the
function of the matrices that computes it. The record schema, record validation and the
leaderboard's columns all read ``METRICS``, so adding a metric is this one definition.
Pure Python: the site and record validation use these without importing torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

Matrix = Sequence[Sequence[float | None]]
PERCENT = (0.0, 100.0)
PERCENT_DIFFERENCE = (-100.0, 100.0)


@dataclass(frozen=True)
class Trajectory:
    """What a metric is a function of: both accuracy matrices and the per-task test counts."""

    acc: Matrix
    task_aware_acc: Matrix
    test_counts: Sequence[int]

    @cached_property
    def seen(self) -> list[float]:
        return accuracy_on_seen(self.acc, self.test_counts)

    @cached_property
    def seen_task_aware(self) -> list[float]:
        return accuracy_on_seen(self.task_aware_acc, self.test_counts)


@dataclass(frozen=True)
class Metric:
    """One summary metric: the record key (percent in every name), its valid range and
    meaning, how the leaderboard shows it, and how it is computed."""

    name: str
    low: float
    high: float
    meaning: str  # one line: the schema's description
    compute: Callable[[Trajectory], float | None]
    header: str  # the leaderboard's column header
    definition: str  # the leaderboard legend's definition
    unit: str = "%"
    short_unit: str = "%"
    better: str = "higher"
    measured: str | None = None  # how it was measured, if not as every accuracy
    column: bool = True  # a column of every suite table (diagnostics are not)


METRICS: list[Metric] = []  # registration order: the order records and tables list them


def metric(
    name: str, bounds: tuple[float, float], meaning: str, **display: object
) -> Callable[[Callable[[Trajectory], float | None]], Callable[[Trajectory], float | None]]:
    """Register the decorated function of a ``Trajectory`` as the metric ``name``."""

    def register(compute: Callable[[Trajectory], float | None]) -> Callable[..., float | None]:
        if any(m.name == name for m in METRICS):
            raise ValueError(f"metric {name!r} is registered twice")
        METRICS.append(Metric(name, *bounds, meaning, compute, **display))  # type: ignore[arg-type]
        return compute

    return register


def accuracy_on_seen(acc: Matrix, test_counts: Sequence[int]) -> list[float]:
    """Accuracy over all seen classes after each task: the sample-weighted mean of row i."""
    result = []
    for i, row in enumerate(acc):
        weights = test_counts[: i + 1]
        values = [_entry(row, j) for j in range(i + 1)]
        result.append(sum(w * v for w, v in zip(weights, values, strict=True)) / sum(weights))
    return result


def backward_transfer(acc: Matrix) -> float | None:
    """BWT = mean over j < T-1 of acc[T-1][j] - acc[j][j]; None with a single task."""
    last = len(acc) - 1
    if last < 1:
        return None
    return sum(_entry(acc[last], j) - _entry(acc[j], j) for j in range(last)) / last


def average_forgetting(acc: Matrix) -> float | None:
    """Mean over j < T-1 of max_{j <= i < T-1} acc[i][j] - acc[T-1][j]; None with one task."""
    last = len(acc) - 1
    if last < 1:
        return None
    drops = [
        max(_entry(acc[i], j) for i in range(j, last)) - _entry(acc[last], j) for j in range(last)
    ]
    return sum(drops) / last


@metric(
    "final_acc_pct",
    PERCENT,
    "ACC: accuracy over all classes after the last task",
    header="ACC",
    definition="accuracy over all classes seen, after the last task",
)
def final_accuracy(t: Trajectory) -> float:
    return t.seen[-1]


@metric(
    "avg_incremental_acc_pct",
    PERCENT,
    "mean over tasks of the accuracy on all classes seen so far",
    header="avg. inc. acc",
    definition="mean over tasks of the accuracy on all classes seen so far, after each task",
)
def average_incremental_accuracy(t: Trajectory) -> float:
    return sum(t.seen) / len(t.seen)


@metric(
    "bwt_pct",
    PERCENT_DIFFERENCE,
    "backward transfer (Lopez-Paz & Ranzato, 2017); negative = forgetting",
    header="BWT",
    definition="backward transfer: mean over the tasks before the last of (final accuracy "
    "on the task − its accuracy right after it was learned); negative means forgetting",
    unit="percentage points",
    short_unit="pp",
)
def bwt(t: Trajectory) -> float | None:
    return backward_transfer(t.acc)


@metric(
    "avg_forgetting_pct",
    PERCENT_DIFFERENCE,
    "mean drop from each old task's best accuracy (Chaudhry et al., 2018)",
    header="forgetting",
    definition="mean over the tasks before the last of (best earlier "
    "accuracy on the task − final accuracy on it)",
    unit="percentage points",
    short_unit="pp",
    better="lower",
)
def forgetting(t: Trajectory) -> float | None:
    return average_forgetting(t.acc)


@metric(
    "final_task_aware_acc_pct",
    PERCENT,
    "diagnostic only: argmax restricted to each task's classes",
    header="task-aware ACC †",
    definition="diagnostic only: argmax restricted to each task's own classes, i.e. the task "
    "id is given at test time, which class-incremental learning forbids; never used for "
    "ranking",
    measured="as ACC, with the task id given",
    column=False,
)
def final_task_aware_accuracy(t: Trajectory) -> float:
    return t.seen_task_aware[-1]


@metric(
    "avg_incremental_task_aware_acc_pct",
    PERCENT,
    "diagnostic only",
    header="avg. inc. task-aware acc †",
    definition="diagnostic only: avg. inc. acc with the task id given",
    measured="as avg. inc. acc, with the task id given",
    column=False,
)
def average_incremental_task_aware_accuracy(t: Trajectory) -> float:
    return sum(t.seen_task_aware) / len(t.seen_task_aware)


METRIC_BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}


def compute_metrics(
    acc: Matrix, task_aware_acc: Matrix, test_counts: Sequence[int]
) -> dict[str, float | None]:
    """Every registered metric of a trial, keyed by its name, in registration order."""
    _check_square_lower(acc, "acc")
    _check_square_lower(task_aware_acc, "task_aware_acc")
    if len(test_counts) != len(acc):
        raise ValueError(f"{len(test_counts)} test counts for {len(acc)} tasks")
    trajectory = Trajectory(acc, task_aware_acc, test_counts)
    return {m.name: m.compute(trajectory) for m in METRICS}


def _entry(row: Sequence[float | None], j: int) -> float:
    value = row[j]
    if value is None:
        raise ValueError(f"accuracy matrix entry for task {j} is missing")
    return float(value)


def _check_square_lower(acc: Matrix, name: str) -> None:
    if not acc:
        raise ValueError(f"{name} matrix is empty")
    for i, row in enumerate(acc):
        if len(row) != len(acc):
            raise ValueError(f"{name} matrix row {i} has {len(row)} entries, expected {len(acc)}")
        for j, value in enumerate(row):
            if j <= i and value is None:
                raise ValueError(f"{name}[{i}][{j}] is missing")
            if j > i and value is not None:
                raise ValueError(f"{name}[{i}][{j}] is set before task {j} was learned")
