"""Golden tests of the aggregate step: hand-computed means, stds and Pareto fronts."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from harness.aggregate import (
    COSTS,
    METRICS,
    count_excluded,
    pareto_front,
    records_to_frame,
    summarize,
)
from tests.record_factory import make_record

SQRT2 = math.sqrt(2.0)


def golden_records() -> list[dict]:
    """Two tasks of 100 test samples each, so every metric is easy to compute by hand.

    lwf seed 1: acc [[90, -], [60, 80]] -> final 70, avg inc (90+70)/2 = 80, BWT -30, forg. 30
    lwf seed 2: acc [[94, -], [70, 84]] -> final 77, avg inc (94+77)/2 = 85.5, BWT -24, forg. 24
    kd  seed 1: acc [[96, -], [40, 70]] -> final 55, avg inc (96+55)/2 = 75.5, BWT -56, forg. 56
    """
    return [
        make_record(
            label="lwf", seed=1, acc=[[90.0, None], [60.0, 80.0]], gflops=1.0, latency_ms=2.0
        ),
        make_record(
            label="lwf", seed=2, acc=[[94.0, None], [70.0, 84.0]], gflops=1.0, latency_ms=4.0
        ),
        make_record(
            label="lwf+kd",
            strategy="lwf",
            framework="kd",
            seed=1,
            acc=[[96.0, None], [40.0, 70.0]],
            gflops=0.25,
        ),
        make_record(
            label="joint",
            seed=1,
            reference="upper_bound",
            acc=[[98.0, None], [96.0, 97.0]],
            gflops=1.0,
        ),
        make_record(label="ssil", seed=1, status="failed"),
        make_record(label="lwf", seed=3, debug=True),
        make_record(label="lwf", seed=4, debug=True, status="failed"),
        make_record(suite="other-suite", label="lwf", seed=1, status="failed"),
    ]


def test_frame_has_one_row_per_ok_non_debug_trial() -> None:
    frame = records_to_frame(golden_records())
    assert sorted(zip(frame["label"], frame["seed"], strict=True)) == [
        ("joint", 1),
        ("lwf", 1),
        ("lwf", 2),
        ("lwf+kd", 1),
    ]
    for column in (
        "suite",
        "suite_version",
        "strategy",
        "framework",
        "backbone",
        "config_sha256",
        "reference",
        "seed",
        *METRICS,
        *COSTS,
    ):
        assert column in frame.columns
    kd = frame[frame["label"] == "lwf+kd"].iloc[0]
    assert (kd["strategy"], kd["framework"], kd["gflops_per_image"]) == ("lwf", "kd", 0.25)
    assert frame.loc[frame["label"] == "joint", "reference"].tolist() == ["upper_bound"]
    assert frame.loc[frame["label"] == "lwf", "reference"].tolist() == [None, None]


def test_summary_means_and_stds_match_hand_computed_values() -> None:
    summary = summarize(records_to_frame(golden_records())).set_index("label")
    assert summary.index.tolist() == ["joint", "lwf", "lwf+kd"]  # sorted by group keys
    lwf = summary.loc["lwf"]
    assert lwf["seeds"] == 2
    assert lwf["final_acc_pct"] == pytest.approx(73.5)
    assert lwf["final_acc_pct_std"] == pytest.approx(7.0 / SQRT2)
    assert lwf["avg_incremental_acc_pct"] == pytest.approx(82.75)
    assert lwf["avg_incremental_acc_pct_std"] == pytest.approx(5.5 / SQRT2)
    assert lwf["bwt_pct"] == pytest.approx(-27.0)
    assert lwf["bwt_pct_std"] == pytest.approx(6.0 / SQRT2)
    assert lwf["avg_forgetting_pct"] == pytest.approx(27.0)
    assert lwf["latency_ms_b1"] == pytest.approx(3.0)
    assert lwf["latency_ms_b1_std"] == pytest.approx(SQRT2)
    # Identical costs across seeds give an exact zero, not float noise.
    assert lwf["gflops_per_image"] == 1.0 and lwf["gflops_per_image_std"] == 0.0


def test_single_seed_has_mean_and_nan_std() -> None:
    kd = summarize(records_to_frame(golden_records())).set_index("label").loc["lwf+kd"]
    assert kd["seeds"] == 1
    assert kd["avg_incremental_acc_pct"] == pytest.approx(75.5)
    assert kd["bwt_pct"] == pytest.approx(-56.0)
    assert math.isnan(kd["avg_incremental_acc_pct_std"])


def test_summary_has_mean_and_std_for_every_value() -> None:
    summary = summarize(records_to_frame(golden_records()))
    for name in METRICS + COSTS:
        assert name in summary.columns and f"{name}_std" in summary.columns
    assert summary.set_index("label").loc["joint", "reference"] == "upper_bound"
    assert summary.set_index("label").loc["lwf", "reference"] is None


def test_excluded_records_are_counted_per_suite_version() -> None:
    counts = count_excluded(golden_records())
    assert counts.to_dict("records") == [
        # A debug record that also failed counts once, as debug.
        {"suite": "digits-5split", "suite_version": 1, "ok": 4, "failed": 1, "debug": 2},
        {"suite": "other-suite", "suite_version": 1, "ok": 0, "failed": 1, "debug": 0},
    ]


def test_suite_versions_are_summarized_separately() -> None:
    records = [make_record(suite_version=1, seed=1), make_record(suite_version=2, seed=1)]
    summary = summarize(records_to_frame(records))
    assert summary["suite_version"].tolist() == [1, 2]
    assert summary["seeds"].tolist() == [1, 1]


def test_duplicate_trials_are_refused() -> None:
    record = make_record(seed=1)
    twin = dict(record, run_id="another")
    with pytest.raises(ValueError, match="same trials.*another"):
        records_to_frame([record, twin])


def test_inconsistent_method_attributes_are_refused() -> None:
    records = [make_record(seed=1, strategy="lwf"), make_record(seed=2, strategy="icarl")]
    with pytest.raises(ValueError, match="disagree on strategy"):
        summarize(records_to_frame(records))


def test_empty_input_gives_empty_frames_with_columns() -> None:
    frame = records_to_frame([])
    summary = summarize(frame)
    assert frame.empty and summary.empty
    assert {"label", "final_acc_pct", "seed"} <= set(frame.columns)
    assert {"label", "final_acc_pct", "final_acc_pct_std", "seeds"} <= set(summary.columns)
    assert count_excluded([]).empty


def _points(*xy: tuple[float, float]) -> pd.DataFrame:
    return pd.DataFrame(
        xy, columns=["gflops_per_image", "acc"], index=[f"p{i}" for i in range(len(xy))]
    )


def test_pareto_front_keeps_only_undominated_points() -> None:
    rows = _points((1.0, 70.0), (2.0, 80.0), (2.0, 75.0), (3.0, 78.0), (0.5, 60.0), (4.0, 90.0))
    front = pareto_front(rows, y="acc")
    assert front.index.tolist() == rows.index.tolist()
    assert front.tolist() == [True, True, False, False, True, True]


def test_pareto_front_ties() -> None:
    # Identical points both stay; equal accuracy at higher cost, or equal cost at lower
    # accuracy, is dominated.
    rows = _points((1.0, 70.0), (1.0, 70.0), (2.0, 70.0), (1.0, 65.0))
    assert pareto_front(rows, y="acc").tolist() == [True, True, False, False]


def test_pareto_front_ignores_rows_with_missing_values() -> None:
    rows = _points((1.0, 70.0), (float("nan"), 99.0), (0.5, float("nan")), (2.0, 80.0))
    assert pareto_front(rows, y="acc").tolist() == [True, False, False, True]


def test_pareto_front_on_summary_uses_chosen_metric() -> None:
    summary = summarize(records_to_frame(golden_records()))
    competing = summary[summary["reference"].isna()]
    front = pareto_front(competing, y="avg_incremental_acc_pct")
    assert dict(zip(competing["label"], front, strict=True)) == {"lwf": True, "lwf+kd": True}
    with_reference = pareto_front(summary, y="avg_incremental_acc_pct")
    # joint (upper bound) costs the same as lwf and is more accurate, so it would knock lwf off.
    assert dict(zip(summary["label"], with_reference, strict=True)) == {
        "joint": True,
        "lwf": False,
        "lwf+kd": True,
    }
