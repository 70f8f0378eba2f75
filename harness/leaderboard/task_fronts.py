"""The Pareto front after any task, as inline SVG: each entry's accuracy on the classes seen so
far against its inference GFLOPs at that point, both means over seeds (from the accuracy matrix
and ``inference_cost.after_task``), one small panel per task, drawn by ``_task_front.svg.j2``.

A network that grows (DER, MEMO) moves right from task to task, and the front after task 3 is
not the front after the last: a reader picks the task. The last panel is also the index card's
thumbnail, drawn at the size it is shown, so its text is legible.

Inline SVG rather than matplotlib: a suite of T tasks needs T panels, and a matplotlib figure
costs about a quarter of a second to draw; these are a few dozen elements each. All panels of a
suite share their axes, so they compare by eye.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.evaluation.metrics import accuracy_on_seen
from harness.leaderboard.columns import MFLOPS_BELOW
from harness.leaderboard.fronts import pareto_front

PANEL = {"width": 380, "height": 250, "left": 46, "right": 12, "top": 12, "bottom": 40}
INSET = 7  # pixels between the frame and the outermost point


def task_curves(records: Sequence[Mapping[str, Any]]) -> tuple[list[float], list[float]] | None:
    """An entry's mean accuracy on seen classes and mean GFLOPs after each task, or None where
    a record predates the cost curve or its seeds disagree on the number of tasks."""
    accuracies, costs = [], []
    for record in records:
        results = record["results"]
        points = (record.get("inference_cost") or {}).get("after_task")
        if not isinstance(points, list) or not points:
            return None
        costs.append([float(p["gflops_per_image"]) for p in points])
        accuracies.append(
            accuracy_on_seen(results["acc_matrix_pct"], results["test_samples_per_task"])
        )
    if not costs or len({len(c) for c in costs + accuracies}) != 1:
        return None
    return np.mean(accuracies, axis=0).tolist(), np.mean(costs, axis=0).tolist()


def task_front_panels(
    entries: Sequence[Mapping[str, Any]], colours: Mapping[str, str]
) -> dict[str, Any] | None:
    """Geometry of every task's panel for a suite version's ``entries`` (``entries.entry_page``
    dicts: display, href, framework, reference, records); None when no entry has a cost curve.

    Returns the shared axes (``x_ticks``, ``y_ticks``, ``x_label``, the box) and ``panels``:
    per task its points (position, colour, hover title, link, on the front or not), the
    front's step line, and the front's entries in words. References (upper or lower bounds)
    are drawn hollow and never on a front.
    """
    drawn = []
    for entry in entries:
        curves = task_curves(entry["records"])
        if curves is not None:
            drawn.append((entry, *curves))
    if not drawn:
        return None
    tasks = min(len(acc) for _, acc, _ in drawn)
    accuracy = np.array([acc[:tasks] for _, acc, _ in drawn])
    gflops = np.array([cost[:tasks] for _, _, cost in drawn])
    mflops = bool(np.nanmax(gflops) < MFLOPS_BELOW)
    scale, unit = (1000.0, "MFLOPs") if mflops else (1.0, "GFLOPs")
    x_of, x_ticks = _log_axis(gflops[gflops > 0] * scale)
    y_of, y_ticks = _percent_axis(accuracy)
    scales = _Scales(scale, unit, x_of, y_of)
    entries = [entry for entry, _, _ in drawn]
    panels = [
        {"task": t + 1, **_panel(entries, accuracy[:, t], gflops[:, t], scales, colours)}
        for t in range(tasks)
    ]
    return {
        **PANEL,
        "plot_right": PANEL["width"] - PANEL["right"],
        "plot_bottom": PANEL["height"] - PANEL["bottom"],
        "x_label": f"{unit} per image (log scale)",
        "x_ticks": x_ticks,
        "y_ticks": y_ticks,
        "tasks": tasks,
        "panels": panels,
    }


@dataclass(frozen=True)
class _Scales:
    """How a cost and an accuracy become a position, and a cost its text."""

    scale: float  # GFLOPs to the axis' unit
    unit: str
    x: Callable[[float], float]
    y: Callable[[float], float]

    def cost(self, gflops: float) -> str:
        return f"{gflops * self.scale:.3g} {self.unit}"


def _panel(
    entries: Sequence[Mapping[str, Any]], accuracy: np.ndarray, gflops: np.ndarray,
    scales: _Scales, colours: Mapping[str, str],
) -> dict[str, Any]:  # fmt: skip
    """One task's points, its front (references never compete) as a line and in words."""
    frame = pd.DataFrame({"x": gflops, "y": accuracy})
    competing = [not entry["reference"] for entry in entries]
    front = pareto_front(frame[competing], x="x", y="y").reindex(frame.index, fill_value=False)
    points, on_front = [], []
    for i, entry in enumerate(entries):
        cost = scales.cost(gflops[i])
        points.append({
            "x": f"{scales.x(gflops[i] * scales.scale):.1f}",
            "y": f"{scales.y(accuracy[i]):.1f}",
            "colour": colours.get(entry["framework"], "#7f7f7f"),
            "hollow": bool(entry["reference"]),
            "front": bool(front.iloc[i]),
            "href": entry["href"],
            "title": f"{entry['display']}: {accuracy[i]:.1f} % at {cost}",
        })  # fmt: skip
        if front.iloc[i]:
            on_front.append((gflops[i], accuracy[i], entry, cost))
    on_front.sort(key=lambda item: (item[0], item[1]))
    line = [(scales.x(g * scales.scale), scales.y(a)) for g, a, _, _ in on_front]
    return {
        "points": sorted(points, key=lambda p: p["front"]),  # the front drawn last, on top
        "front_line": _step_line(line),
        "front": [
            {"display": e["display"], "href": e["href"], "acc": f"{a:.1f}", "cost": cost}
            for _, a, e, cost in on_front
        ],  # fmt: skip
    }


def _log_axis(values: np.ndarray) -> tuple[Any, list[dict[str, str]]]:
    """Position on a log axis spanning ``values`` (padded), and its ticks: every step within
    a decade for a narrow span, 1-2-5 steps up to three decades, whole decades beyond."""
    low, high = (float(values.min()), float(values.max())) if values.size else (1.0, 10.0)
    low, high = low / 10**0.1, high * 10**0.1
    left, right = PANEL["left"] + INSET, PANEL["width"] - PANEL["right"] - INSET
    span = math.log10(high / low)

    def x(value: float) -> float:
        value = max(value, low)  # a zero cost sits at the left edge, not off the panel
        return left + (right - left) * math.log10(value / low) / span

    # As the matplotlib figures' GFLOPs axis (figure_style.set_flops_axis) steps.
    steps = tuple(range(1, 10)) if span < 1 else (1.0, 2.0, 5.0) if span <= 3 else (1.0,)
    ticks = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for step in steps:
            value = step * 10.0**exponent
            if low <= value <= high:
                ticks.append({"x": f"{x(value):.1f}", "label": f"{value:g}"})
    return x, ticks


def _percent_axis(values: np.ndarray) -> tuple[Any, list[dict[str, str]]]:
    """Position on a linear accuracy axis from the lowest to the highest value, rounded out to
    tens (at least 20 points tall), and its ticks."""
    low = max(0.0, math.floor(float(np.nanmin(values)) / 10) * 10)
    high = min(100.0, math.ceil(float(np.nanmax(values)) / 10) * 10)
    if high - low < 20:
        low, high = max(0.0, high - 20), max(high, 20.0)
    # Inset so that a point at 100 % or at the lowest value is not cut by the frame.
    top, bottom = PANEL["top"] + INSET, PANEL["height"] - PANEL["bottom"] - INSET

    def y(value: float) -> float:
        return bottom - (bottom - top) * (min(max(value, low), high) - low) / (high - low)

    step = 10 if high - low <= 50 else 20
    ticks = [{"y": f"{y(v):.1f}", "label": f"{v:g}"} for v in np.arange(low, high + 1e-9, step)]
    return y, ticks


def _step_line(points: list[tuple[float, float]]) -> str:
    """The front as a step line (lower cost first; each step rises at the next point)."""
    line = []
    for i, (x, y) in enumerate(points):
        if i:
            line.append(f"{x:.1f},{points[i - 1][1]:.1f}")
        line.append(f"{x:.1f},{y:.1f}")
    return " ".join(line)
