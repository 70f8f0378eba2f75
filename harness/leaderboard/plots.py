"""The suite pages' matplotlib figures: which ones a suite gets, their captions, drawing them.

Accuracy against GFLOPs with the Pareto front (one per accuracy metric; a red ring marks an
entry whose GFLOPs are in doubt: ops the counter could not count, or the two counters more
than 1% apart) and plain versus enhanced bars per strategy. Figures are drawn with Agg on a
bare ``Figure``, never through pyplot, and the SVG ids are salted with a constant, so the same
records give the same bytes. A suite's published reference points (``targets``) join its
Pareto figures as hollow stars, apart from the entries (``add_reference_points``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd

from harness.leaderboard import aggregate
from harness.leaderboard.columns import COLUMN_BY_KEY, Column
from harness.leaderboard.comparison_plot import comparison_figure, comparison_groups
from harness.leaderboard.figure_style import PLOT_RC, PlotStyles
from harness.leaderboard.fronts import pareto_front
from harness.leaderboard.pareto_plot import AXES, Axis, pareto_figure

GFLOPS = "gflops_per_image"
BWT = "bwt_pct"

PLOT_COLUMNS = ["display", "plot_label", "strategy", "framework", "backbone", "variant",
                "reference", "gflops_per_image", "params_millions", "kept_memory_megabytes",
                *aggregate.ACCURACY_METRICS, BWT,
                *(f"{m}_std" for m in (*aggregate.ACCURACY_METRICS, BWT)),
                *(f"pareto_{m}" for m in aggregate.ACCURACY_METRICS),
                "gflops_in_doubt"]  # fmt: skip


@dataclass
class PlotPlan:
    """A suite version's figures: what its page shows (``plots``), what to draw (``jobs``)."""

    plots: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    comparison_note: str = ""  # why there is no plain-vs-enhanced figure, when there is none


def plan_plots(
    rows: pd.DataFrame,
    styles: PlotStyles,
    *,
    name: str,
    version: int,
    slug: str,
    primary_metric: str,
    current: bool = True,
    latency_columns: Sequence[Column] = (),
) -> PlotPlan:
    """Decide the figures of suite version ``name`` v``version``, their files and captions.

    ``rows``: its ranked summary rows; ``slug``: the stem of its files; ``current``: whether
    it is its suite's newest version (only that one gets the figures on the other axes);
    ``latency_columns``: its table's latency columns (``rows`` holds their values).
    """
    plan = PlotPlan()
    rows = rows.dropna(subset=["gflops_per_image"])
    if rows.empty:
        return plan
    data = rows[PLOT_COLUMNS + [c.key for c in latency_columns]]
    title = f"{name} v{version}"
    primary = primary_metric
    for metric in sorted(aggregate.ACCURACY_METRICS, key=lambda m: m != primary):
        stem = f"{slug}-pareto-{'acc' if metric == 'final_acc_pct' else 'aia'}"
        # PNG for sharing (and the index thumbnail) only for the metric the suite ranks by:
        # each extra raster costs a third of a second per suite.
        formats = ("svg", "png") if metric == primary else ("svg",)
        plan.jobs.append({"kind": "pareto", "stem": stem, "formats": formats, "rows": data,
                          "metric": metric, "title": title, "styles": styles})  # fmt: skip
        plan.plots.append(_plot_entry(stem, formats, metric=metric, title=title, kind="pareto"))
    if current:  # an archived version: nobody ranks against it, and each figure costs the build
        _plan_forgetting(plan, data, title=title, slug=slug, styles=styles)
        _plan_other_axes(plan, data, title=title, slug=slug, metric=primary, styles=styles)
        _plan_latency(plan, data, latency_columns, title=title, slug=slug, metric=primary,
                      styles=styles)  # fmt: skip
    groups = comparison_groups(rows)
    if not groups:
        plan.comparison_note = (
            "No strategy has both a plain and an enhanced (compressed) entry on this suite "
            "version yet, so there is no plain-vs-enhanced comparison."
        )
        return plan
    stem = f"{slug}-plain-vs-enhanced"
    plan.jobs.append(
        {
            "kind": "comparison",
            "stem": stem,
            "formats": ("svg",),
            "rows": data,
            "metric": primary,
            "title": title,
            "styles": styles,
        }
    )
    plan.plots.append(_plot_entry(stem, ("svg",), metric=primary, title=title, kind="comparison"))
    return plan


# Beside GFLOPs, the primary metric against what serves (parameters) and against everything a
# method keeps between tasks (memory, after Zhou et al., ICLR 2023), each with its own front.
OTHER_AXES = {"params_millions": "params", "kept_memory_megabytes": "memory"}


def _plan_other_axes(
    plan: PlotPlan, data: pd.DataFrame, *, title: str, slug: str, metric: str,
    styles: PlotStyles,
) -> None:  # fmt: skip
    for x, name in OTHER_AXES.items():
        if not data[x].notna().any():
            continue  # records older than the figure: no plot rather than an empty one
        _plan_cost_axis(plan, data, x=x, stem=f"{slug}-pareto-{name}", metric=metric,
                        title=title, styles=styles, axis=AXES[x])  # fmt: skip


def _plan_cost_axis(
    plan: PlotPlan, data: pd.DataFrame, *, x: str, stem: str, metric: str, title: str,
    styles: PlotStyles, axis: Axis,
) -> None:  # fmt: skip
    """``metric`` against the cost column ``x`` (SVG), with the front on that axis alone:
    no other entry has both less of that cost and more accuracy (references never compete)."""
    competing = data[data["reference"].isna()]
    front = pareto_front(competing, x=x, y=metric).reindex(data.index, fill_value=False)
    plan.jobs.append({"kind": "pareto", "stem": stem, "formats": ("svg",), "axis": axis,
                      "rows": data.assign(front=front), "metric": metric, "title": title,
                      "styles": styles, "x": x, "front_column": "front"})  # fmt: skip
    plan.plots.append(_plot_entry(stem, ("svg",), metric=metric, title=title, kind="pareto",
                                  x=x, axis=axis))  # fmt: skip


def _plan_forgetting(
    plan: PlotPlan, data: pd.DataFrame, *, title: str, slug: str, styles: PlotStyles
) -> None:
    """BWT against GFLOPs, without a front: a method that learns nothing new forgets nothing,
    so the highest BWT is no goal on its own; the figure shows what compression does to
    forgetting, beside the accuracy it keeps."""
    if data[BWT].isna().all():
        return
    stem = f"{slug}-bwt"
    plan.jobs.append({"kind": "pareto", "stem": stem, "formats": ("svg",), "metric": BWT,
                      "rows": data.assign(no_front=False), "title": title, "styles": styles,
                      "front_column": "no_front"})  # fmt: skip
    plan.plots.append(_plot_entry(stem, ("svg",), metric=BWT, title=title, kind="forgetting"))


def _plan_latency(
    plan: PlotPlan, data: pd.DataFrame, columns: Sequence[Column], *, title: str, slug: str,
    metric: str, styles: PlotStyles,
) -> None:  # fmt: skip
    """The primary metric against batch-1 latency, one figure per device (latencies of two
    devices never share an axis), each with its own front; where a device was measured in
    several settings (threads, precision), the one most entries have."""
    by_device: dict[str, Column] = {}
    for column in columns:
        setting = column.latency
        if setting is None or setting.batch_size != 1 or data[column.key].notna().sum() < 2:
            continue
        device = f"{setting.device}:{setting.device_name}"
        held = by_device.get(device)
        if held is None or data[column.key].notna().sum() > data[held.key].notna().sum():
            by_device[device] = column
    for column in by_device.values():
        axis = Axis(f"latency, ms per image at batch 1, {column.qualifier} (log scale)",
                    f"latency ({column.qualifier})")  # fmt: skip
        _plan_cost_axis(plan, data, x=column.key, stem=f"{slug}-pareto-{column.key}",
                        metric=metric, title=title, styles=styles, axis=axis)  # fmt: skip


def add_reference_points(
    plots: list[dict[str, Any]], jobs: list[dict[str, Any]], references: pd.DataFrame
) -> None:
    """Put published points (``targets.reference_frame``) on a suite version's Pareto figures
    (``PlotPlan.plots`` and ``.jobs``): each gets those with its metric and a cost, and its
    caption says what they are."""
    for job, plot in zip(jobs, plots, strict=True):
        if job["kind"] != "pareto" or references.empty or job.get("x", GFLOPS) != GFLOPS:
            continue
        drawn = references.dropna(subset=["gflops_per_image", job["metric"]])
        if drawn.empty:
            continue
        job["references"] = drawn
        plot["caption"] += (
            ' Hollow black stars ("paper: …"): published reference points, as their source '
            "reports them (see the table of published reference points); never ranked and "
            "never on the front."
        )


def _plot_entry(
    stem: str, formats: Sequence[str], *, metric: str, title: str, kind: str, x: str = "",
    axis: Axis | None = None,
) -> dict[str, Any]:  # fmt: skip
    header = COLUMN_BY_KEY[metric].header
    if kind == "forgetting":
        alt = f"{header} against GFLOPs per image for {title}"
        caption = (
            f"{header} (backward transfer, mean ± std over seeds; 0: no forgetting, negative: "
            "accuracy lost on earlier tasks) against inference GFLOPs per image, log scale. "
            "No front: a learner that learns nothing new forgets nothing, so read it beside "
            "the accuracy figures. Markers as on the GFLOPs figure."
        )
    elif kind == "pareto" and x and x != GFLOPS:
        axis = axis or AXES[x]
        cost = axis.short
        alt = f"{header} against {cost} for {title}"
        caption = (
            f"{header} (mean ± std over seeds) against {axis.label}. The dashed step line "
            f"is the Pareto front on this axis: no other entry has both less {cost} and more "
            "accuracy. Markers as on the GFLOPs figure."
        )
    elif kind == "pareto":
        alt = f"{header} against GFLOPs per image for {title}"
        caption = (
            f"{header} (mean ± std over seeds) against inference GFLOPs per image, log scale. "
            "Colour: compression framework; marker: CL strategy; hollow: reference (upper or "
            "lower bound, not competing). The dashed step line is the Pareto front: no other "
            "entry is both cheaper and more accurate. A red ring: the entry's GFLOPs are in "
            "doubt (ops the counter could not count, or the two counters more than 1% apart; "
            "see ⚠ in the table)."
        )
    else:
        alt = f"plain versus enhanced strategies on {title}"
        caption = (
            f"Each strategy plain (no compression) next to its enhanced variants: {header} "
            "(mean ± std over seeds, top) and GFLOPs per image (log scale, bottom)."
        )
    return {
        "kind": kind,
        "metric": metric,
        "svg": f"plots/{stem}.svg",
        "png": f"plots/{stem}.png" if "png" in formats else None,
        "alt": alt,
        "caption": caption,
    }


def draw_plot(job: Mapping[str, Any], plot_dir: Path) -> list[str]:
    """Draw one planned figure, save it in each of its formats; return the site paths."""
    written = []
    with matplotlib.rc_context(PLOT_RC):
        rows = job["rows"]
        if job["kind"] == "pareto":
            fig = pareto_figure(rows, metric=job["metric"], title=job["title"],
                                styles=job["styles"], references=job.get("references"),
                                x=job.get("x", GFLOPS), axis=job.get("axis"),
                                front_column=job.get("front_column"))  # fmt: skip
        else:
            fig = comparison_figure(
                rows, metric=job["metric"], title=job["title"], styles=job["styles"]
            )
        for fmt in job["formats"]:
            # No dates or software tags: the bytes depend only on the records and matplotlib.
            metadata = {"Date": None} if fmt == "svg" else {"Software": None}
            fig.savefig(plot_dir / f"{job['stem']}.{fmt}", format=fmt, dpi=110, metadata=metadata)
            written.append(f"{plot_dir.name}/{job['stem']}.{fmt}")
    return written
