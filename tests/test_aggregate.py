"""Golden tests of the aggregate step: hand-computed means, stds, fronts, versions, skipping."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd
import pytest

from harness.leaderboard.aggregate import (
    COSTS,
    METRICS,
    count_excluded,
    current_versions,
    drop_duplicate_trials,
    records_to_frame,
    summarize,
)
from harness.leaderboard.fronts import add_pareto_columns, pareto_front, suite_front
from harness.leaderboard.usable import drop_unusable_records, unusable_reason
from harness.records.store import load_records_leniently
from tests.record_factory import make_record

SQRT2 = math.sqrt(2.0)
PRUNED = {"strategy": {}, "framework": {"ratio": 0.4}, "training": {}}


def golden_records() -> list[dict]:
    """Two tasks of 100 test samples each, so every metric is easy to compute by hand.

    lwf seed 1: acc [[90, -], [60, 80]] -> final 70, avg inc (90+70)/2 = 80, BWT -30, forg. 30
    lwf seed 2: acc [[94, -], [70, 84]] -> final 77, avg inc (94+77)/2 = 85.5, BWT -24, forg. 24
    kd  seed 1: acc [[96, -], [40, 70]] -> final 55, avg inc (96+55)/2 = 75.5, BWT -56, forg. 56
    pre seeds 1-3: acc [[a, -], [b, c]] with (a, b, c) = (90, 50, 70), (92, 52, 74), (94, 54, 78)
        -> final 60, 63, 66 (mean 63, std 3); avg inc 75, 77.5, 80 (mean 77.5, std 2.5);
           BWT -40 each (std exactly 0); forgetting 40 each
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
            framework_report={"teacher_gflops_per_image": 1.0},
        ),
        *(
            make_record(
                label="lwf+prepruning@0.4",
                strategy="lwf",
                framework="prepruning",
                config=PRUNED,
                seed=seed,
                acc=[[a, None], [b, c]],
                gflops=0.36,
                params_millions=0.36,
            )
            for seed, (a, b, c) in zip(
                (1, 2, 3), [(90, 50, 70), (92, 52, 74), (94, 54, 78)], strict=True
            )
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
        # An older version of the suite: its own rows, never averaged with version 2.
        make_record(suite_version=0, label="lwf", seed=1, acc=[[80.0, None], [20.0, 60.0]]),
    ]


def golden_summary() -> pd.DataFrame:
    return summarize(records_to_frame(golden_records()))


def test_frame_has_one_row_per_ok_non_debug_trial() -> None:
    frame = records_to_frame(golden_records())
    assert sorted(zip(frame["suite_version"], frame["label"], frame["seed"], strict=True)) == [
        (0, "lwf", 1),
        (1, "joint", 1),
        (1, "lwf", 1),
        (1, "lwf", 2),
        (1, "lwf+kd", 1),
        (1, "lwf+prepruning@0.4", 1),
        (1, "lwf+prepruning@0.4", 2),
        (1, "lwf+prepruning@0.4", 3),
    ]
    for column in ("suite", "strategy", "framework", "backbone", "config_sha256", "reference"):
        assert column in frame.columns
    assert set(METRICS + COSTS) <= set(frame.columns)
    kd = frame[frame["label"] == "lwf+kd"].iloc[0]
    assert (kd["strategy"], kd["framework"], kd["gflops_per_image"]) == ("lwf", "kd", 0.25)
    assert frame.loc[frame["label"] == "joint", "reference"].tolist() == ["upper_bound"]


# The golden table: one row per entry, values computed by hand in golden_records' docstring.
GOLDEN = [
    # version, label, seeds, provisional, ACC, ACC std, AIA, AIA std, BWT, BWT std, forgetting,
    # GFLOPs, params, latency, latency std
    (0, "lwf", 1, True, 40.0, math.nan, 60.0, math.nan, -60.0, math.nan, 60.0, 0.5, 1.0, 2.0,
     math.nan),
    (1, "joint", 1, True, 96.5, math.nan, 97.25, math.nan, -2.0, math.nan, 2.0, 1.0, 1.0, 2.0,
     math.nan),
    (1, "lwf+kd", 1, True, 55.0, math.nan, 75.5, math.nan, -56.0, math.nan, 56.0, 0.25, 1.0, 2.0,
     math.nan),
    (1, "lwf", 2, True, 73.5, 7 / SQRT2, 82.75, 5.5 / SQRT2, -27.0, 6 / SQRT2, 27.0, 1.0, 1.0,
     3.0, SQRT2),
    (1, "lwf+prepruning@0.4", 3, False, 63.0, 3.0, 77.5, 2.5, -40.0, 0.0, 40.0, 0.36, 0.36, 2.0,
     0.0),
]  # fmt: skip
GOLDEN_COLUMNS = ["suite_version", "label", "seeds", "provisional", "final_acc_pct",
                  "final_acc_pct_std", "avg_incremental_acc_pct", "avg_incremental_acc_pct_std",
                  "bwt_pct", "bwt_pct_std", "avg_forgetting_pct", "gflops_per_image",
                  "params_millions", "latency_ms_b1", "latency_ms_b1_std"]  # fmt: skip


def test_summary_matches_the_golden_table() -> None:
    summary = golden_summary()
    # Sorted by entry: suite, version, strategy, framework ("kd" < "none" < "prepruning"), ...
    expected = pd.DataFrame(GOLDEN, columns=GOLDEN_COLUMNS)
    actual = summary[GOLDEN_COLUMNS].reset_index(drop=True)
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False, atol=1e-9, rtol=0)


def test_identical_values_have_an_exact_zero_std() -> None:
    lwf = golden_summary().set_index(["suite_version", "label"]).loc[(1, "lwf")]
    assert lwf["gflops_per_image"] == 1.0 and lwf["gflops_per_image_std"] == 0.0
    pruned = golden_summary().set_index("label").loc["lwf+prepruning@0.4"]
    assert pruned["bwt_pct_std"] == 0.0  # -40 three times: exactly zero, not 1e-15


def test_summary_has_mean_and_std_for_every_value_and_keeps_references() -> None:
    summary = golden_summary()
    for name in METRICS + COSTS:
        assert name in summary.columns and f"{name}_std" in summary.columns
    references = dict(zip(summary["label"], summary["reference"], strict=True))
    assert references["joint"] == "upper_bound" and references["lwf+kd"] is None


def test_excluded_records_are_counted_per_suite_version() -> None:
    assert count_excluded(golden_records()).to_dict("records") == [
        {"suite": "digits-5split", "suite_version": 0, "ok": 1, "failed": 0, "debug": 0},
        # A debug record that also failed counts once, as debug.
        {"suite": "digits-5split", "suite_version": 1, "ok": 7, "failed": 1, "debug": 2},
        {"suite": "other-suite", "suite_version": 1, "ok": 0, "failed": 1, "debug": 0},
    ]


def test_current_version_is_the_highest_per_suite() -> None:
    assert current_versions(golden_records()) == {"digits-5split": 1, "other-suite": 1}


def test_duplicate_trials_are_refused_strictly_and_dropped_leniently() -> None:
    record = make_record(seed=1, created_utc="2026-11-01T00:00:00Z")
    newer = dict(record, run_id="newer", created_utc="2026-11-02T00:00:00Z")
    with pytest.raises(ValueError, match="same trials.*newer"):
        records_to_frame([record, newer])
    kept, warnings = drop_duplicate_trials([newer, record, make_record(seed=2)])
    assert sorted(r["run_id"] for r in kept) == sorted(["newer", make_record(seed=2)["run_id"]])
    assert len(warnings) == 1 and record["run_id"] in warnings[0] and "newer" in warnings[0]


def test_one_label_under_two_names_is_one_entry() -> None:
    # lwf and lwf+none resolve to the same strategy, framework and config: one entry.
    records = [
        make_record(label="lwf", seed=1),
        make_record(label="lwf+none", strategy="lwf", seed=2),
    ]
    summary = summarize(records_to_frame(records))
    assert summary["seeds"].tolist() == [2]


def test_disagreeing_attributes_warn_and_pick_one(caplog: pytest.LogCaptureFixture) -> None:
    records = [make_record(seed=1), make_record(seed=2, reference="upper_bound")]
    with caplog.at_level(logging.WARNING, logger="harness.leaderboard.aggregate"):
        summary = summarize(records_to_frame(records))
    assert summary["seeds"].tolist() == [2]
    assert "disagree on reference" in caplog.text


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


def test_pareto_columns_per_suite_version_without_references() -> None:
    summary = add_pareto_columns(golden_summary())
    fronts = {
        (v, label): (acc, aia)
        for v, label, acc, aia in summary[
            ["suite_version", "label", "pareto_final_acc_pct", "pareto_avg_incremental_acc_pct"]
        ].itertuples(index=False)
    }
    assert fronts == {
        (0, "lwf"): (True, True),  # alone on its version: versions never compete
        # joint (upper bound) would dominate lwf, but references do not compete.
        (1, "joint"): (False, False),
        # kd is the cheapest, lwf the most accurate, pruning (0.36 GFLOPs) more accurate than kd.
        (1, "lwf+kd"): (True, True),
        (1, "lwf"): (True, True),
        (1, "lwf+prepruning@0.4"): (True, True),
    }


def test_the_accuracy_metric_of_a_front_is_selectable() -> None:
    summary = golden_summary()
    # Move kd's average incremental accuracy above pruning's: on AIA pruning drops off.
    summary.loc[summary["label"] == "lwf+kd", "avg_incremental_acc_pct"] = 79.0
    on_acc = suite_front(summary, suite="digits-5split", version=1, metric="final_acc_pct")
    on_aia = suite_front(
        summary, suite="digits-5split", version=1, metric="avg_incremental_acc_pct"
    )
    assert on_acc["label"].tolist() == ["lwf+kd", "lwf+prepruning@0.4", "lwf"]
    assert on_aia["label"].tolist() == ["lwf+kd", "lwf"]
    with pytest.raises(ValueError, match="Pareto fronts use one of"):
        add_pareto_columns(summary, metrics=["final_task_aware_acc_pct"])


def _write(folder: Path, name: str, content: object) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_lenient_loader_skips_bad_files_and_names_each(tmp_path: Path) -> None:
    good = make_record(seed=1)
    partial = {k: v for k, v in make_record(seed=2).items() if k != "results"}
    wrong_metric = make_record(seed=3, metrics={"final_acc_pct": 1.0})
    unknown_schema = dict(make_record(seed=4), schema_version=99)
    bad_version = make_record(seed=5)
    bad_version["suite"]["version"] = "one"
    files = {
        "ok/good.json": good,
        "bad/truncated.json": json.dumps(good)[:200],
        "bad/partial.json": partial,
        "bad/wrong-metric.json": wrong_metric,
        "bad/unknown-schema.json": unknown_schema,
        "bad/bad-version.json": bad_version,
        "bad/not-an-object.json": [1, 2],
        "ok/debug.json": make_record(seed=6, debug=True),
        "ok/failed.json": make_record(seed=7, status="failed"),
    }
    for name, content in files.items():
        _write(tmp_path, name, content)
    loaded = load_records_leniently(tmp_path)
    assert sorted(r["seed"] for r in loaded.records) == [1, 6, 7]  # debug and failed are counted
    warned = {Path(w.split(":")[0]).name for w in loaded.warnings}
    assert warned == {
        "truncated.json",
        "partial.json",
        "wrong-metric.json",
        "unknown-schema.json",
        "bad-version.json",
        "not-an-object.json",
        "debug.json",
    }
    assert any("schema_version 99" in w for w in loaded.warnings)
    assert loaded.sources[good["run_id"]] == tmp_path / "ok" / "good.json"


def test_lenient_loader_does_not_guess_the_file_of_a_repeated_run_id(tmp_path: Path) -> None:
    record = make_record(seed=1)
    _write(tmp_path, "a.json", record)
    _write(tmp_path, "b.json", record)
    loaded = load_records_leniently(tmp_path)
    assert len(loaded.records) == 2 and record["run_id"] not in loaded.sources


# --------------------------------------------------- non-finite and impossible numbers


def _with_metric(seed: int, name: str, value: object) -> dict:
    record = make_record(seed=seed)
    record["results"]["metrics"][name] = value
    return record


def test_records_with_impossible_numbers_never_enter_a_mean(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = [
        make_record(seed=1),
        _with_metric(2, "final_acc_pct", math.nan),
        _with_metric(3, "final_acc_pct", 1_000_000.0),
        make_record(seed=4, gflops=math.inf),
    ]
    with caplog.at_level(logging.WARNING, logger="harness.leaderboard.aggregate"):
        summary = summarize(records_to_frame(records))
    # Only seed 1 is averaged, and the row says so: one seed, not four.
    assert summary["seeds"].tolist() == [1]
    assert summary["final_acc_pct"].tolist() == [pytest.approx(75.0)]
    assert summary["final_acc_pct_count"].tolist() == [1]
    for problem in ("final_acc_pct is nan", "final_acc_pct is 1000000.0, outside [0, 100]",
                    "gflops_per_image is inf"):  # fmt: skip
        assert problem in caplog.text


def test_summary_counts_the_values_it_averaged_and_skips_non_finite_ones() -> None:
    frame = records_to_frame([make_record(seed=s, latency_ms=2.0 * s) for s in (1, 2, 3)])
    # A frame made by hand (not through records_to_frame) may hold anything.
    frame.loc[1, "latency_ms_b1"] = math.inf
    frame.loc[2, "latency_ms_b1"] = math.nan
    frame.loc[2, "bwt_pct"] = -math.inf
    row = summarize(frame).iloc[0]
    assert row["seeds"] == 3
    assert (row["latency_ms_b1"], row["latency_ms_b1_count"]) == (2.0, 1)
    assert math.isnan(row["latency_ms_b1_std"])
    assert (row["bwt_pct_count"], row["final_acc_pct_count"]) == (2, 3)
    assert math.isfinite(row["bwt_pct"])


def test_pareto_front_ignores_non_finite_and_impossible_points() -> None:
    inf = float("inf")
    rows = _points((1.0, 70.0), (2.0, 80.0), (1.0, 1e6), (inf, 99.0), (-1.0, 99.0),
                   (0.5, inf), (0.1, -5.0))  # fmt: skip
    assert pareto_front(rows, y="acc").tolist() == [True, True] + [False] * 5


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: r["results"]["metrics"].update(final_acc_pct=math.nan), "final_acc_pct is nan"),
        (lambda r: r["results"]["metrics"].update(bwt_pct=-math.inf), "bwt_pct is -inf"),
        (lambda r: r["results"]["metrics"].update(final_acc_pct=100.5), "outside [0, 100]"),
        (lambda r: r["results"]["metrics"].update(avg_forgetting_pct=-101.0), "outside [-100"),
        (lambda r: r["results"]["metrics"].update(final_acc_pct="70"), "not a number"),
        (lambda r: r["results"]["metrics"].update(final_acc_pct=True), "not a number"),
        (lambda r: r["results"]["metrics"].pop("final_acc_pct"), "final_acc_pct is missing"),
        (lambda r: r["inference_cost"].update(gflops_per_image=-0.1), "outside [0, inf]"),
        (lambda r: r["inference_cost"].update(latency_ms_b1=math.nan), "latency_ms_b1 is nan"),
        (lambda r: r["results"]["acc_matrix_pct"][1].__setitem__(0, math.inf), "[1][0] is inf"),
        (lambda r: r["results"]["task_aware_acc_matrix_pct"][0].__setitem__(0, 250.0), "[0][0]"),
        (lambda r: r.update(results=None), "no results.metrics"),
    ],
)
def test_unusable_reason_names_each_impossible_number(change: object, reason: str) -> None:
    record = make_record(
        acc=[[90.0, None], [60.0, 80.0]], task_aware_acc=[[90.0, None], [70.0, 85.0]]
    )
    assert unusable_reason(record) is None
    change(record)  # type: ignore[operator]
    assert reason in (unusable_reason(record) or "")
    kept, warnings = drop_unusable_records([record, make_record(seed=2, status="failed")])
    assert [r["status"] for r in kept] == ["failed"] and record["run_id"] in warnings[0]


def test_a_missing_cost_is_allowed_and_counted() -> None:
    records = [make_record(seed=s) for s in (1, 2)]
    del records[1]["inference_cost"]["latency_ms_b1"]
    assert unusable_reason(records[1]) is None
    row = summarize(records_to_frame(records)).iloc[0]
    assert (row["seeds"], row["latency_ms_b1_count"], row["gflops_per_image_count"]) == (2, 1, 2)


def test_training_compute_sits_beside_the_inference_cost() -> None:
    metered = make_record(seed=1)  # the factory's budget: 64 samples per task, 2 tasks
    older = make_record(seed=2)
    del older["training_budget"]  # made before the budget was metered: not measured
    frame = records_to_frame([metered, older]).set_index("seed")
    assert frame.loc[1, "training_samples_millions"] == pytest.approx(128 / 1e6)
    assert math.isnan(frame.loc[2, "training_samples_millions"])
    summary = summarize(frame)
    assert summary["training_samples_millions"].iloc[0] == pytest.approx(128 / 1e6)
