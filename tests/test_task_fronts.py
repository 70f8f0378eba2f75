"""The front after any task (``harness.leaderboard.task_fronts``), checked by hand on a fixture:
a network that grows leaves the front once its cost passes another entry's."""

from __future__ import annotations

from typing import Any

import pytest

from harness.leaderboard.task_fronts import task_curves, task_front_panels
from tests.record_factory import make_record

# Two tasks, 100 test images each: accuracy on seen classes after task 1 is acc[0][0], after
# task 2 the mean of acc[1][0] and acc[1][1].
GROWING = [[90.0, None], [60.0, 80.0]]  # after task 1: 90; after task 2: 70
SMALL = [[80.0, None], [50.0, 70.0]]  # 80, then 60
BOUND = [[99.0, None], [95.0, 97.0]]  # a reference: never on a front


def _record(acc: list[list[Any]], curve: list[float], *, seed: int, **kwargs: Any) -> dict:
    record = make_record(acc=acc, seed=seed, gflops=curve[-1], **kwargs)
    for point, gflops in zip(record["inference_cost"]["after_task"], curve, strict=True):
        point["gflops_per_image"] = gflops
    return record


def _entry(display: str, records: list[dict], *, framework: str = "none", reference: str = ""):
    return {"display": display, "href": f"entries/x/{display}.html", "framework": framework,
            "reference": reference, "records": records}  # fmt: skip


def fixture_entries() -> list[dict[str, Any]]:
    # "grows": 0.2 GFLOPs after task 1, 0.6 after task 2 (two seeds, 0.5 and 0.7 at the end).
    grows = [_record(GROWING, [0.2, 0.5], seed=1), _record(GROWING, [0.2, 0.7], seed=2)]
    small = [_record(SMALL, [0.4, 0.4], seed=1)]
    bound = [_record(BOUND, [0.1, 0.1], seed=1, reference="upper_bound")]
    return [_entry("grows", grows), _entry("small", small, framework="kd"),
            _entry("bound", bound, reference="upper bound")]  # fmt: skip


def test_an_entrys_curves_are_seed_means_of_accuracy_on_seen_classes_and_cost() -> None:
    accuracy, gflops = task_curves(fixture_entries()[0]["records"])
    assert accuracy == pytest.approx([90.0, 70.0])
    assert gflops == pytest.approx([0.2, 0.6])


def test_a_record_without_a_cost_curve_leaves_its_entry_out() -> None:
    record = _record(SMALL, [0.4, 0.4], seed=1)
    del record["inference_cost"]["after_task"]
    assert task_curves([record]) is None
    geometry = task_front_panels([_entry("old", [record])], {"none": "#000000"})
    assert geometry is None


def test_the_front_after_each_task_follows_the_costs_of_that_task() -> None:
    geometry = task_front_panels(fixture_entries(), {"none": "#1f77b4", "kd": "#d62728"})
    assert geometry["tasks"] == 2 and [p["task"] for p in geometry["panels"]] == [1, 2]
    first, last = geometry["panels"]
    # After task 1 "grows" is cheaper (0.2 < 0.4) and better (90 > 80): alone on the front.
    assert [f["display"] for f in first["front"]] == ["grows"]
    assert first["front"][0]["acc"] == "90.0" and first["front"][0]["cost"] == "0.2 GFLOPs"
    # After task 2 it costs 0.6, "small" 0.4 at 60 % against 70 %: both on the front, cheaper
    # first.
    assert [(f["display"], f["acc"]) for f in last["front"]] == [("small", "60.0"),
                                                                 ("grows", "70.0")]  # fmt: skip
    by_name = {p["title"].split(":")[0]: p for p in last["points"]}
    assert by_name["bound"]["hollow"] and not by_name["bound"]["front"]  # references never rank
    assert by_name["small"]["colour"] == "#d62728"
    assert by_name["grows"]["title"] == "grows: 70.0 % at 0.6 GFLOPs"
    # Positions: cheaper is left, more accurate is higher, on axes shared by every panel.
    assert float(by_name["small"]["x"]) < float(by_name["grows"]["x"])
    assert float(by_name["grows"]["y"]) < float(by_name["small"]["y"])  # SVG y grows downwards
    moved = {p["title"].split(":")[0]: float(p["x"]) for p in first["points"]}
    assert moved["grows"] < float(by_name["grows"]["x"])  # it grew between the panels
    # The step line runs through both front points: across at 60 %, then up at 0.6 GFLOPs.
    assert len(last["front_line"].split()) == 3


def test_the_axes_span_every_point_of_every_task() -> None:
    geometry = task_front_panels(fixture_entries(), {"none": "#1f77b4", "kd": "#d62728"})
    xs = [float(p["x"]) for panel in geometry["panels"] for p in panel["points"]]
    ys = [float(p["y"]) for panel in geometry["panels"] for p in panel["points"]]
    assert geometry["left"] < min(xs) and max(xs) < geometry["plot_right"]
    assert geometry["top"] < min(ys) and max(ys) < geometry["plot_bottom"]
    assert [t["label"] for t in geometry["y_ticks"]] == ["60", "70", "80", "90", "100"]
    assert geometry["x_label"] == "GFLOPs per image (log scale)"


def test_costs_all_below_a_tenth_of_a_gflop_read_in_mflops() -> None:
    tiny = [_record(SMALL, [0.002, 0.003], seed=1)]
    geometry = task_front_panels([_entry("tiny", tiny)], {"none": "#1f77b4"})
    assert geometry["x_label"] == "MFLOPs per image (log scale)"
    assert geometry["panels"][1]["front"][0]["cost"] == "3 MFLOPs"
    assert [t["label"] for t in geometry["x_ticks"]] == ["2", "3"]
