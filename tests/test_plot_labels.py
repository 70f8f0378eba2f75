"""Pareto plot labels: each beside its own point, none over another (issue 18's measured
defect: two points at one GFLOPs swapped labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.leaderboard import aggregate, fronts
from harness.leaderboard.figure_style import PlotStyles
from harness.leaderboard.pareto_plot import pareto_figure
from harness.leaderboard.suite_page import _rank
from harness.records.store import load_records_leniently

METRIC = "final_acc_pct"
RESULTS = Path(__file__).resolve().parents[1] / "results"


def _row(label: str, strategy: str, framework: str, gflops: float, acc: float) -> dict:
    return {"plot_label": label, "strategy": strategy, "framework": framework,
            "gflops_per_image": gflops, METRIC: acc, f"{METRIC}_std": 1.0, "reference": None,
            "gflops_in_doubt": False, f"pareto_{METRIC}": True}  # fmt: skip


def _labels_by_point(fig) -> list[tuple[str, np.ndarray, object]]:
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    return [(t.get_text(), ax.transData.transform(t.xy), t.get_window_extent(renderer))
            for t in ax.texts]  # fmt: skip


def _check(fig, rows: pd.DataFrame) -> list[str]:
    """The labels drawn, after asserting: each inside the axes, no two overlap, each nearer
    its own point than any other."""
    ax = fig.axes[0]
    points = ax.transData.transform(rows[["gflops_per_image", METRIC]].to_numpy(dtype=float))
    labels = _labels_by_point(fig)
    frame = ax.get_window_extent(fig.canvas.get_renderer())
    for i, (name, own, box) in enumerate(labels):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1, name  # inside the axes: never cut
        assert frame.y0 <= box.y0 and box.y1 <= frame.y1, name
        centre = np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])
        nearest = points[np.argmin(np.hypot(*(points - own).T))]
        assert np.allclose(nearest, own), name
        corner = np.array([box.x0 if box.x0 >= own[0] else box.x1,
                           box.y0 if box.y0 >= own[1] else box.y1])  # fmt: skip
        others = np.hypot(*(points - corner).T)
        assert np.hypot(*(own - corner)) <= others.min() + 1e-6, (name, centre)
        for other_name, _, other in labels[i + 1 :]:
            assert not box.overlaps(other), (name, other_name)
    return [name for name, _, _ in labels]


def test_two_entries_at_one_cost_each_keep_their_own_label() -> None:
    rows = pd.DataFrame([
        _row("ssil", "ssil", "none", 0.0002, 77.0),
        _row("ssil+kd", "ssil", "kd", 0.0002, 76.2),
        _row("icarl", "icarl", "none", 0.003, 98.0),
        _row("icarl+prepruning@0.4", "icarl", "prepruning", 0.00075, 95.0),
    ])  # fmt: skip
    fig = pareto_figure(rows, metric=METRIC, title="t", styles=PlotStyles.of(rows))
    labels = _check(fig, rows)
    assert {"ssil", "ssil+kd"} <= set(labels)
    by_name = {name: own for name, own, _ in _labels_by_point(fig)}
    assert by_name["ssil"][1] > by_name["ssil+kd"][1]  # the higher point keeps "ssil"


@pytest.mark.skipif(not (RESULTS / "digits-5split").is_dir(), reason="no committed records")
def test_no_label_overlaps_or_strays_on_the_committed_suite() -> None:
    records = [r for r in load_records_leniently(RESULTS / "digits-5split").records
               if not r.get("debug")]  # fmt: skip
    summary = fronts.add_pareto_columns(aggregate.summarize(aggregate.records_to_frame(records)))
    version = summary["suite_version"].max()
    rows = _rank(summary[summary["suite_version"] == version], METRIC)
    fig = pareto_figure(rows, metric=METRIC, title="digits", styles=PlotStyles.of(rows))
    labels = _check(fig, rows)
    assert len(labels) >= len(rows[rows[f"pareto_{METRIC}"]]) // 2  # most of the front named


def test_accuracy_against_memory_draws_that_axis_and_its_own_front() -> None:
    """The memory figure plots kept memory on x and steps through the front it is given,
    whatever the GFLOPs front says."""
    rows = pd.DataFrame([
        {**_row("icarl", "icarl", "none", 0.003, 98.0), "kept_memory_megabytes": 0.56},
        {**_row("icarl+kd", "icarl", "kd", 0.0002, 93.9), "kept_memory_megabytes": 0.59},
        {**_row("icarl · small", "icarl", "none", 0.0002, 93.9), "kept_memory_megabytes": 0.06},
    ])  # fmt: skip
    rows["front"] = [True, False, True]  # icarl+kd keeps more for no more accuracy
    fig = pareto_figure(rows, metric=METRIC, title="t", styles=PlotStyles.of(rows),
                        x="kept_memory_megabytes", front_column="front")  # fmt: skip
    ax = fig.axes[0]
    assert "memory kept between tasks" in ax.get_xlabel() and "vs memory kept" in ax.get_title()
    steps = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(steps) == 1 and sorted(steps[0].get_xdata()) == [0.06, 0.56]
    assert {t.get_text() for t in ax.texts} >= {"icarl", "icarl · small"}
