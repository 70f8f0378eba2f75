"""The suite pages' matplotlib figures: which ones a suite gets, their captions, drawing them.

Accuracy against GFLOPs with the Pareto front (one per accuracy metric; a red ring marks an
entry whose GFLOPs are in doubt: ops the counter could not count, or the two counters more
than 1% apart) and plain versus enhanced bars per strategy. Figures are drawn with Agg on a
bare ``Figure``, never through pyplot, and the SVG ids are salted with a constant, so the same
records give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from harness.leaderboard import aggregate
from harness.leaderboard.columns import COLUMN_BY_KEY

LABEL_ALL_POINTS_UP_TO = 30  # more entries than this: label only the Pareto front's points
# Names come from records: "$x^2$" or "\\alpha" in a label is text, never math or LaTeX (an
# unbalanced "$" would otherwise stop the whole build).
PLOT_RC = {"svg.hashsalt": "cilbench-site", "svg.fonttype": "none", "font.size": 9,
           "text.parse_math": False, "text.usetex": False}  # fmt: skip
# Known frameworks and strategies keep their colour and marker whatever else is present.
FRAMEWORK_COLOURS = {"none": "#1f77b4", "prepruning": "#ff7f0e", "postpruning": "#2ca02c",
                     "kd": "#d62728"}  # fmt: skip
SPARE_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
STRATEGY_MARKERS = {"finetune": "v", "joint": "^", "lwf": "o", "icarl": "s", "ssil": "D"}
SPARE_MARKERS = ("P", "X", "*", "h", "<", ">", "p", "d")


@dataclass(frozen=True)
class PlotStyles:
    """Colour per framework and marker per strategy, the same on every plot of the site."""

    colours: dict[str, str]
    markers: dict[str, str]

    @classmethod
    def of(cls, summary: pd.DataFrame) -> PlotStyles:
        frameworks = sorted(set(summary["framework"]) - set(FRAMEWORK_COLOURS))
        strategies = sorted(set(summary["strategy"]) - set(STRATEGY_MARKERS))
        colours = dict(FRAMEWORK_COLOURS)
        for i, name in enumerate(frameworks):
            colours[name] = SPARE_COLOURS[i % len(SPARE_COLOURS)]
        markers = dict(STRATEGY_MARKERS)
        for i, name in enumerate(strategies):
            markers[name] = SPARE_MARKERS[i % len(SPARE_MARKERS)]
        return cls(colours, markers)


PLOT_COLUMNS = ["display", "plot_label", "strategy", "framework", "backbone", "variant",
                "reference", "gflops_per_image", *aggregate.ACCURACY_METRICS,
                *(f"{m}_std" for m in aggregate.ACCURACY_METRICS),
                *(f"pareto_{m}" for m in aggregate.ACCURACY_METRICS),
                "gflops_in_doubt"]  # fmt: skip
DOUBT_COLOUR = "#d62728"


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
) -> PlotPlan:
    """Decide the figures of suite version ``name`` v``version``, their files and captions.

    ``rows``: its ranked summary rows; ``slug``: the stem of its files.
    """
    plan = PlotPlan()
    rows = rows.dropna(subset=["gflops_per_image"])
    if rows.empty:
        return plan
    data = rows[PLOT_COLUMNS]
    title = f"{name} v{version}"
    primary = primary_metric
    for metric in sorted(aggregate.ACCURACY_METRICS, key=lambda m: m != primary):
        stem = f"{slug}-pareto-{'acc' if metric == 'final_acc_pct' else 'aia'}"
        # PNG for sharing (and the index thumbnail) only for the metric the suite ranks by:
        # each extra raster costs a third of a second per suite.
        formats = ("svg", "png") if metric == primary else ("svg",)
        plan.jobs.append(
            {
                "kind": "pareto",
                "stem": stem,
                "formats": formats,
                "rows": data,
                "metric": metric,
                "title": title,
                "styles": styles,
            }
        )
        plan.plots.append(_plot_entry(stem, formats, metric=metric, title=title, kind="pareto"))
    groups = _comparison_groups(rows)
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


def _plot_entry(
    stem: str, formats: Sequence[str], *, metric: str, title: str, kind: str
) -> dict[str, Any]:
    header = COLUMN_BY_KEY[metric].header
    if kind == "pareto":
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


def _comparison_groups(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """(strategy, backbone) pairs that have a plain entry and at least one enhanced one."""
    groups = []
    for key, group in rows.groupby(["strategy", "backbone"], sort=True):
        frameworks = set(group["framework"])
        if "none" in frameworks and len(frameworks) > 1:
            groups.append((str(key[0]), str(key[1])))
    return groups


def draw_plot(job: Mapping[str, Any], plot_dir: Path) -> list[str]:
    """Draw one planned figure, save it in each of its formats; return the site paths."""
    written = []
    with matplotlib.rc_context(PLOT_RC):
        rows = job["rows"]
        if job["kind"] == "pareto":
            fig = _pareto_figure(
                rows, metric=job["metric"], title=job["title"], styles=job["styles"]
            )
        else:
            fig = _comparison_figure(
                rows, metric=job["metric"], title=job["title"], styles=job["styles"]
            )
        for fmt in job["formats"]:
            # No dates or software tags: the bytes depend only on the records and matplotlib.
            metadata = {"Date": None} if fmt == "svg" else {"Software": None}
            fig.savefig(plot_dir / f"{job['stem']}.{fmt}", format=fmt, dpi=110, metadata=metadata)
            written.append(f"{plot_dir.name}/{job['stem']}.{fmt}")
    return written


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)  # render with Agg without touching pyplot's global backend state
    return fig


def _pareto_figure(rows: pd.DataFrame, *, metric: str, title: str, styles: PlotStyles) -> Figure:
    """Accuracy against GFLOPs (log x), error bars over seeds, the front, labelled points."""
    rows = rows.dropna(subset=[metric])
    fig = _new_figure(9.0, 5.4)
    fig.subplots_adjust(left=0.08, right=0.75, top=0.93, bottom=0.1)
    ax = fig.add_subplot()
    ax.vlines(
        rows["gflops_per_image"],
        rows[metric] - rows[f"{metric}_std"].fillna(0),
        rows[metric] + rows[f"{metric}_std"].fillna(0),
        colors="0.55",
        linewidth=0.8,
        zorder=2,
    )
    for (framework, strategy), group in rows.groupby(["framework", "strategy"], sort=True):
        colour = styles.colours[framework]
        for is_reference, part in group.groupby(group["reference"].notna()):
            ax.plot(
                part["gflops_per_image"],
                part[metric],
                linestyle="none",
                zorder=3,
                marker=styles.markers[strategy],
                markersize=6,
                color=colour,
                markerfacecolor="white" if is_reference else colour,
            )
    doubtful = rows[rows["gflops_in_doubt"].astype(bool)]
    if not doubtful.empty:
        ax.plot(doubtful["gflops_per_image"], doubtful[metric], linestyle="none", zorder=2.5,
                marker="o", markersize=13, markerfacecolor="none", markeredgewidth=1.4,
                color=DOUBT_COLOUR)  # fmt: skip
    front = rows[rows[f"pareto_{metric}"]].sort_values(["gflops_per_image", metric])
    if not front.empty:
        ax.step(
            front["gflops_per_image"],
            front[metric],
            where="post",
            color="black",
            linestyle="--",
            linewidth=1.2,
            zorder=4,
        )
    label_all = len(rows) <= LABEL_ALL_POINTS_UP_TO
    labelled = rows if label_all else front
    labelled = labelled.sort_values(["gflops_per_image", metric])
    for k, row in enumerate(labelled.to_dict("records")):
        ax.annotate(
            _plain_text(row["plot_label"]),
            (row["gflops_per_image"], row[metric]),
            # Alternate above and below: neighbours on a front otherwise print over each other.
            xytext=(4, 4 if k % 2 == 0 else -10),
            textcoords="offset points",
            fontsize=7,
            color="0.35" if isinstance(row["reference"], str) else "black",
        )
    set_flops_axis(ax, rows["gflops_per_image"])
    ax.set_xlabel("GFLOPs per image (2 × MACs, whole inference path, batch 1; log scale)")
    ax.set_ylabel(f"{COLUMN_BY_KEY[metric].header} (%), mean ± std over seeds")
    note = "" if label_all else " (labels: Pareto front only)"
    ax.set_title(f"{title}: {COLUMN_BY_KEY[metric].header} vs GFLOPs{note}")
    ax.grid(True, which="both", alpha=0.25)
    _style_legends(ax, rows, styles, has_front=not front.empty, has_doubt=not doubtful.empty)
    return fig


def _style_legends(
    ax: Any, rows: pd.DataFrame, styles: PlotStyles, *, has_front: bool, has_doubt: bool
) -> None:
    frameworks = sorted(set(rows["framework"]))
    strategies = sorted(set(rows["strategy"]))
    colour_handles = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="none",
            color=styles.colours[f],
            label=_plain_text(f, limit=22),
        )
        for f in frameworks
    ]
    marker_handles = [
        Line2D(
            [],
            [],
            marker=styles.markers[s],
            linestyle="none",
            color="0.3",
            label=_plain_text(s, limit=22),
        )
        for s in strategies
    ]
    extra = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="none",
            color="0.3",
            markerfacecolor="white",
            label="reference (hollow)",
        )
    ]
    if has_front:
        extra.append(Line2D([], [], color="black", linestyle="--", label="Pareto front"))
    if has_doubt:
        extra.append(Line2D([], [], marker="o", linestyle="none", markersize=9,
                            markerfacecolor="none", color=DOUBT_COLOUR,
                            label="GFLOPs in doubt"))  # fmt: skip
    first = ax.legend(
        handles=colour_handles,
        title="framework",
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=8,
        title_fontsize=8,
    )
    ax.add_artist(first)
    ax.legend(
        handles=marker_handles + extra,
        title="CL strategy",
        loc="lower left",
        bbox_to_anchor=(1.02, 0.0),
        fontsize=8,
        title_fontsize=8,
    )


def _comparison_figure(
    rows: pd.DataFrame, *, metric: str, title: str, styles: PlotStyles
) -> Figure:
    """Grouped bars: per strategy (and backbone), plain next to each enhanced variant.

    Bars are one PolyCollection per variant rather than a patch each: a suite with hundreds of
    bars then draws in a fraction of a second.
    """
    groups = _comparison_groups(rows)
    position = {group: i for i, group in enumerate(groups)}
    slots = [position.get(key) for key in zip(rows["strategy"], rows["backbone"], strict=True)]
    rows = rows.assign(group=slots).dropna(subset=["group"])
    variants = _ordered_variants(rows)
    colours = _variant_colours(rows, variants, styles)
    bar = 0.8 / len(variants)
    rows = rows.assign(left=rows["group"] - 0.4 + bar * rows["variant"].map(variants.index))
    width = min(max(6.0, 1.2 + 0.16 * len(rows)), 16.0)
    total = width + 2.2  # the plot, then room for the legend
    fig = _new_figure(total, 6.5)
    # Margins in inches, so narrow figures keep room for the axis labels.
    fig.subplots_adjust(left=0.95 / total, right=width / total, top=0.93, bottom=0.2, hspace=0.12)
    top, bottom = fig.subplots(2, 1, sharex=True)
    floor = float(rows["gflops_per_image"].min()) / 3.0
    for variant in variants:
        part = rows[rows["variant"] == variant]
        _bars(top, part["left"], part[metric], bar, colours[variant], base=0.0)
        _bars(bottom, part["left"], part["gflops_per_image"], bar, colours[variant], base=floor)
    spread = rows[f"{metric}_std"].fillna(0.0)
    top.vlines(rows["left"] + bar / 2, rows[metric] - spread, rows[metric] + spread,
               colors="0.15", linewidth=0.8)  # fmt: skip
    top.set_xlim(-0.6, len(groups) - 0.4)
    top.set_ylim(0.0, max(float((rows[metric] + spread).max()) * 1.05, 1.0))
    bottom.set_yscale("log")
    bottom.set_ylim(floor, float(rows["gflops_per_image"].max()) * 2.0)
    bottom.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    bottom.yaxis.set_minor_locator(NullLocator())
    many_backbones = len({b for _, b in groups}) > 1
    names = [f"{s}\n({b})" if many_backbones else s for s, b in groups]
    # Many groups: slanted names, or neighbours run into each other.
    slant = {"rotation": 30, "ha": "right"} if len(groups) > 6 else {}
    bottom.set_xticks(range(len(groups)), [_plain_text(n) for n in names], **slant)
    top.set_ylabel(f"{COLUMN_BY_KEY[metric].header} (%)")
    bottom.set_ylabel("GFLOPs per image")
    top.set_title(f"{title}: plain vs enhanced")
    for ax in (top, bottom):
        ax.grid(True, axis="y", alpha=0.25)
    handles = [Patch(color=colours[v], label=_plain_text(v, limit=22)) for v in variants]
    top.legend(handles=handles, title="variant", loc="upper left", bbox_to_anchor=(1.01, 1.0),
               fontsize=8, title_fontsize=8)  # fmt: skip
    return fig


def _bars(ax: Any, lefts: pd.Series, heights: pd.Series, width: float, colour: str, *,
          base: float) -> None:  # fmt: skip
    boxes = [
        [(x, base), (x, h), (x + width, h), (x + width, base)]
        for x, h in zip(lefts, heights, strict=True)
        if not math.isnan(h)
    ]
    ax.add_collection(
        PolyCollection(boxes, facecolors=colour, edgecolors="white", linewidths=0.4), autolim=False
    )


def _ordered_variants(rows: pd.DataFrame) -> list[str]:
    pairs = {
        (framework != "none", framework, variant)
        for framework, variant in zip(rows["framework"], rows["variant"], strict=True)
    }
    return [variant for _, _, variant in sorted(pairs)]


def _variant_colours(rows: pd.DataFrame, variants: list[str], styles: PlotStyles) -> dict[str, str]:
    """The framework's colour, lighter for each further variant of the same framework."""
    framework_of = dict(zip(rows["variant"], rows["framework"], strict=True))
    colours, seen = {}, {}
    for variant in variants:
        framework = framework_of[variant]
        shade = seen.get(framework, 0)
        seen[framework] = shade + 1
        base = np.array(to_rgb(styles.colours[framework]))
        colours[variant] = to_hex(base + (1.0 - base) * min(0.15 * shade, 0.6))
    return colours


def set_flops_axis(ax: Any, gflops: pd.Series) -> None:
    """Log scale with plain-number tick labels ("0.5", not "5×10⁻¹").

    Matplotlib's default log labels collide when the span is only a decade or two, so majors
    sit at 1-2-5 steps (every integer step within a decade, 1 per decade for wide spans).
    """
    gflops = gflops[np.isfinite(gflops.astype(float))]
    if gflops.empty:
        return
    low, high = float(gflops.min()), float(gflops.max())
    if not low > 0:
        return  # a zero cost cannot go on a log axis; keep it linear rather than drop it
    ax.set_xscale("log")
    decades = math.log10(high / low)
    subs = tuple(range(1, 10)) if decades < 1 else (1.0, 2.0, 5.0) if decades <= 3 else (1.0,)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    # No minor ticks: unlabelled, they cost a third of the drawing time of a big plot.
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(low / 10 ** max(0.08, decades * 0.06), high * 10 ** max(0.25, decades * 0.15))


def _plain_text(text: Any, *, limit: int = 48) -> str:
    """A label shortened to ``limit`` characters (PLOT_RC keeps "$" from meaning math)."""
    text = str(text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
