"""An entry's charts: accuracy on the classes seen so far after each task (mean ± std over
seeds, as inline-SVG geometry drawn by ``curve.svg.j2``), the mean accuracy matrix as a
heatmap of table cells, and the small line of its inference cost after each task."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import to_hex

from harness.evaluation.metrics import accuracy_on_seen
from harness.leaderboard.columns import HeatCell


def _matrix(record: Mapping[str, Any]) -> np.ndarray:
    acc = record["results"]["acc_matrix_pct"]
    return np.array([[np.nan if v is None else float(v) for v in row] for row in acc])


def accuracy_curve(records: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Geometry of the accuracy-after-each-task chart (inline SVG, drawn by curve.svg.j2)."""
    curves = [
        accuracy_on_seen(r["results"]["acc_matrix_pct"], r["results"]["test_samples_per_task"])
        for r in records
    ]
    tasks = max(len(c) for c in curves)
    padded = np.array([c + [np.nan] * (tasks - len(c)) for c in curves])
    mean, std = _mean_std(padded)
    return _curve_geometry(padded, mean, np.nan_to_num(std), seeds=[r["seed"] for r in records])


def _mean_std(stacked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample std over axis 0, NaN-aware only when the NaNs differ between seeds.

    Within a suite version every trial has the same tasks, so the NaNs (entries above the
    diagonal) line up and plain numpy is exact and several times faster than nanmean.
    """
    if len(stacked) == 1:
        return stacked[0], np.full(stacked.shape[1:], np.nan)
    missing = np.isnan(stacked)
    if (missing == missing[0]).all():
        return stacked.mean(axis=0), stacked.std(axis=0, ddof=1)
    with warnings.catch_warnings():
        # An entry missing for every seed is NaN by design, not news.
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return np.nanmean(stacked, axis=0), np.nanstd(stacked, axis=0, ddof=1)


CURVE_BOX = {"width": 560, "height": 300, "left": 52, "right": 16, "top": 14, "bottom": 44}


def _curve_geometry(
    curves: np.ndarray, mean: np.ndarray, std: np.ndarray, *, seeds: list[int]
) -> dict[str, Any]:
    box = CURVE_BOX
    plot_w = box["width"] - box["left"] - box["right"]
    plot_h = box["height"] - box["top"] - box["bottom"]
    tasks = len(mean)

    def x(i: int) -> float:
        return box["left"] + (
            plot_w * (i + 0.5) / tasks if tasks == 1 else plot_w * i / (tasks - 1)
        )

    def y(value: float) -> float:
        return box["top"] + plot_h * (100.0 - min(max(value, 0.0), 100.0)) / 100.0

    def points(values: Iterable[float]) -> str:
        return " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values) if not np.isnan(v))

    band = [f"{x(i):.1f},{y(m + s):.1f}" for i, (m, s) in enumerate(zip(mean, std, strict=True))]
    band += [
        f"{x(i):.1f},{y(m - s):.1f}"
        for i, (m, s) in reversed(list(enumerate(zip(mean, std, strict=True))))
    ]
    return {
        **box,
        "plot_right": box["width"] - box["right"],
        "plot_bottom": box["height"] - box["bottom"],
        "y_ticks": [{"y": f"{y(v):.1f}", "label": str(v)} for v in (0, 25, 50, 75, 100)],
        "x_ticks": [{"x": f"{x(i):.1f}", "label": str(i + 1)} for i in range(tasks)],
        "seeds": [{"seed": s, "points": points(c)} for s, c in zip(seeds, curves, strict=True)],
        "mean": points(mean),
        "band": " ".join(band),
        "dots": [
            {"x": f"{x(i):.1f}", "y": f"{y(m):.1f}", "title": f"task {i + 1}: {m:.2f} ± {s:.2f} %"}
            for i, (m, s) in enumerate(zip(mean, std, strict=True))
        ],
        "values": [f"{m:.2f}" for m in mean],
    }


def accuracy_heatmap(records: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The mean accuracy matrix over seeds as table cells coloured by value (viridis)."""
    matrices = [_matrix(r) for r in records]
    size = max(len(m) for m in matrices)
    stacked = np.full((len(matrices), size, size), np.nan)
    for k, m in enumerate(matrices):
        stacked[k, : len(m), : len(m)] = m
    mean, std = _mean_std(stacked)
    shades = _heat_shades()
    rows = []
    for i in range(size):
        cells = []
        for j in range(size):
            value = mean[i, j]
            if not np.isfinite(value):  # above the diagonal (or a value no record should hold)
                cells.append(None)
                continue
            colour, ink = shades[min(max(round(value * 2), 0), 200)]
            spread = "" if np.isnan(std[i, j]) else f" ± {std[i, j]:.1f}"
            cells.append(HeatCell(f"{value:.1f}", spread, colour, ink))
        rows.append({"task": i + 1, "cells": cells})
    scale = [{"label": str(v), "colour": shades[2 * v][0]} for v in (0, 25, 50, 75, 100)]
    return {"tasks": list(range(1, size + 1)), "rows": rows, "scale": scale}


@cache
def _heat_shades() -> list[tuple[str, str]]:
    """(background, text colour) per half percent: viridis, computed once, not per cell."""
    colours = matplotlib.colormaps["viridis"](np.linspace(0.0, 1.0, 201))
    shades = []
    for rgba in colours:
        light = 0.2126 * rgba[0] + 0.7152 * rgba[1] + 0.0722 * rgba[2] > 0.45
        shades.append((to_hex(rgba[:3]), "#000000" if light else "#ffffff"))
    return shades


SPARK_BOX = (60.0, 16.0)  # width, height of the suite table's cost line, in CSS pixels


def cost_curve(records: list[Mapping[str, Any]]) -> list[float] | None:
    """Mean GFLOPs per image of what served after each task, over the entry's seeds (None
    where a record predates the curve or the seeds disagree on the number of tasks)."""
    curves = []
    for record in records:
        points = (record.get("inference_cost") or {}).get("after_task")
        if not isinstance(points, list) or not points:
            return None
        values = [p.get("gflops_per_image") if isinstance(p, Mapping) else None for p in points]
        if not all(isinstance(v, int | float) for v in values):
            return None
        curves.append([float(v) for v in values])
    if not curves or len({len(c) for c in curves}) != 1:
        return None
    return np.mean(np.array(curves), axis=0).tolist()


def sparkline(values: list[float]) -> str:
    """SVG polyline points of ``values`` in ``SPARK_BOX``, from 0 GFLOPs up to the largest
    value, so a flat line sits at the top and a cost that grows T-fold starts at 1/T."""
    width, height = SPARK_BOX
    top = max(values) or 1.0
    step = width / max(1, len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{height - 1 - (height - 2) * v / top:.1f}" for i, v in enumerate(values)
    )
