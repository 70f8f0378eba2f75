"""Class-incremental metrics, all derived from the accuracy matrix and per-task test counts.

``acc[i][j]`` is the accuracy (percent) on the test data of task j after learning task i
(j <= i; entries above the diagonal are None). Pure Python: the site and record validation
use these without importing torch.
"""

from __future__ import annotations

from collections.abc import Sequence

Matrix = Sequence[Sequence[float | None]]

# What each metric means and its valid range: harness.record_schema.METRICS.


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


def compute_metrics(
    acc: Matrix, task_aware_acc: Matrix, test_counts: Sequence[int]
) -> dict[str, float | None]:
    """Every summary metric of a trial, keyed by ``METRIC_NAMES``."""
    _check_square_lower(acc, "acc")
    _check_square_lower(task_aware_acc, "task_aware_acc")
    if len(test_counts) != len(acc):
        raise ValueError(f"{len(test_counts)} test counts for {len(acc)} tasks")
    seen = accuracy_on_seen(acc, test_counts)
    seen_task_aware = accuracy_on_seen(task_aware_acc, test_counts)
    return {
        "final_acc_pct": seen[-1],
        "avg_incremental_acc_pct": sum(seen) / len(seen),
        "bwt_pct": backward_transfer(acc),
        "avg_forgetting_pct": average_forgetting(acc),
        "final_task_aware_acc_pct": seen_task_aware[-1],
        "avg_incremental_task_aware_acc_pct": sum(seen_task_aware) / len(seen_task_aware),
    }


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
