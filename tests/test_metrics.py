"""Metrics on hand-computed matrices."""

from __future__ import annotations

import pytest

from harness.evaluation.metrics import (
    accuracy_on_seen,
    average_forgetting,
    backward_transfer,
    compute_metrics,
)

# acc[i][j]: accuracy on task j after learning task i (percent).
ACC = [
    [90.0, None, None],
    [60.0, 80.0, None],
    [30.0, 70.0, 95.0],
]
TASK_AWARE = [
    [90.0, None, None],
    [85.0, 88.0, None],
    [80.0, 85.0, 96.0],
]


def test_accuracy_on_seen_with_equal_counts_is_the_row_mean() -> None:
    assert accuracy_on_seen(ACC, [10, 10, 10]) == pytest.approx([90.0, 70.0, 65.0])


def test_accuracy_on_seen_weights_tasks_by_test_samples() -> None:
    # Row 1: (60*30 + 80*10) / 40 = 65; row 2: (30*30 + 70*10 + 95*20) / 60 = 58.333...
    assert accuracy_on_seen(ACC, [30, 10, 20]) == pytest.approx([90.0, 65.0, 3500 / 60])


def test_backward_transfer_by_hand() -> None:
    # ((30 - 90) + (70 - 80)) / 2 = -35
    assert backward_transfer(ACC) == pytest.approx(-35.0)


def test_forgetting_uses_the_best_earlier_accuracy() -> None:
    acc = [[50.0, None, None], [80.0, 90.0, None], [40.0, 60.0, 99.0]]
    # task 0: max(50, 80) - 40 = 40; task 1: 90 - 60 = 30 -> 35
    assert average_forgetting(acc) == pytest.approx(35.0)
    # BWT only compares with the accuracy right after learning: ((40-50) + (60-90)) / 2 = -20
    assert backward_transfer(acc) == pytest.approx(-20.0)


def test_single_task_has_no_bwt_or_forgetting() -> None:
    metrics = compute_metrics([[88.0]], [[88.0]], [5])
    assert metrics["bwt_pct"] is None and metrics["avg_forgetting_pct"] is None
    assert metrics["final_acc_pct"] == 88.0


def test_compute_metrics_by_hand() -> None:
    metrics = compute_metrics(ACC, TASK_AWARE, [10, 10, 10])
    assert metrics == pytest.approx(
        {
            "final_acc_pct": 65.0,
            "avg_incremental_acc_pct": (90 + 70 + 65) / 3,
            "bwt_pct": -35.0,
            "avg_forgetting_pct": 35.0,
            "final_task_aware_acc_pct": (80 + 85 + 96) / 3,
            "avg_incremental_task_aware_acc_pct": (90 + 86.5 + 87) / 3,
        }
    )


@pytest.mark.parametrize(
    "matrix, message",
    [
        ([[90.0, 10.0], [50.0, 60.0]], "set before task 1"),
        ([[90.0, None], [None, 60.0]], "missing"),
        ([[90.0, None]], "row 0 has 2 entries"),
    ],
)
def test_malformed_matrices_are_refused(matrix, message) -> None:
    with pytest.raises(ValueError, match=message):
        compute_metrics(matrix, matrix, [1] * len(matrix))
