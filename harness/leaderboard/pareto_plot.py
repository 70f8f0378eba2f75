"""The Pareto figure: accuracy against GFLOPs per image (log x), error bars over seeds, the
front as a dashed step line, labelled points, and a red ring where the GFLOPs are in doubt.

Published reference points (``targets.reference_frame``), when given, are drawn apart: hollow
black stars labelled "paper: …", outside the front and the entries' legend groups."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from harness.leaderboard.columns import COLUMN_BY_KEY
from harness.leaderboard.figure_style import (
    DOUBT_COLOUR,
    PlotStyles,
    new_figure,
    plain_text,
    set_flops_axis,
)

LABEL_ALL_POINTS_UP_TO = 30  # more entries than this: label only the Pareto front's points
# A published figure: a shape no strategy gets by default, hollow, in black (not a framework).
PAPER_MARKER = "*"
PAPER_STYLE = {"marker": PAPER_MARKER, "linestyle": "none", "markerfacecolor": "none",
               "color": "black", "markeredgewidth": 1.1}  # fmt: skip
PAPER_LEGEND = "paper (published, not ranked)"
X = "_x"  # the plotted cost, whichever column it comes from


class Axis(NamedTuple):
    label: str  # under the x axis
    short: str  # in the title: "ACC vs <short>"


# The costs accuracy is plotted against, each with its own Pareto front: inference compute
# (the main board), the size of what serves, and all the memory a method keeps.
AXES = {
    "gflops_per_image": Axis(
        "GFLOPs per image (2 × MACs, whole inference path, batch 1; log scale)", "GFLOPs"
    ),
    "params_millions": Axis(
        "parameters of the model that serves, millions (log scale)", "parameters"
    ),  # fmt: skip
    "kept_memory_megabytes": Axis(
        "memory kept between tasks, MB: exemplars and every model kept (log scale)",
        "memory kept",
    ),
}


def pareto_figure(
    rows: pd.DataFrame,
    *,
    metric: str,
    title: str,
    styles: PlotStyles,
    references: pd.DataFrame | None = None,
    x: str = "gflops_per_image",
    front_column: str | None = None,
    axis: Axis | None = None,
) -> Figure:
    """Accuracy against a cost (``x``: one of AXES, or any column ``axis`` names; log scale),
    error bars over seeds, the front (``front_column``, default ``pareto_<metric>``), labelled
    points; ``references``: published points drawn apart (never on the front), labelled."""
    axis = axis or AXES[x]
    rows = rows.assign(**{X: rows[x]}).dropna(subset=[metric, X])
    front_column = front_column or f"pareto_{metric}"
    # Published points sit on this axis only where their source gives that cost.
    known = references is not None and x in references
    papers = _drawable(references.assign(**{X: references[x]}) if known else None, metric)
    fig = new_figure(9.0, 5.4)
    fig.subplots_adjust(left=0.08, right=0.75, top=0.93, bottom=0.1)
    ax = fig.add_subplot()
    _draw_points(ax, rows, metric=metric, styles=styles)
    # A doubtful FLOP count concerns the GFLOPs axis only.
    doubtful = rows[rows["gflops_in_doubt"].astype(bool)] if x == "gflops_per_image" else rows[:0]
    if not doubtful.empty:
        ax.plot(doubtful[X], doubtful[metric], linestyle="none", zorder=2.5,
                marker="o", markersize=13, markerfacecolor="none", markeredgewidth=1.4,
                color=DOUBT_COLOUR)  # fmt: skip
    front = rows[rows[front_column].astype(bool)].sort_values([X, metric])
    if not front.empty:
        ax.step(front[X], front[metric], where="post", color="black", linestyle="--",
                linewidth=1.2, zorder=4)  # fmt: skip
    label_all = len(rows) <= LABEL_ALL_POINTS_UP_TO
    labelled, points = rows if label_all else front, rows
    if not papers.empty:
        ax.plot(papers[X], papers[metric], markersize=10, zorder=3.5,
                **PAPER_STYLE)  # fmt: skip
        keep = [X, metric, "reference", "plot_label"]
        labelled = pd.concat([labelled[keep], papers[keep]], ignore_index=True)
        points = pd.concat([rows[keep], papers[keep]], ignore_index=True)
    # First: labels are placed in screen space.
    set_flops_axis(ax, points[X].astype(float))
    _label_points(ax, labelled, points, metric=metric)
    ax.set_xlabel(axis.label)
    ax.set_ylabel(f"{COLUMN_BY_KEY[metric].header} (%), mean ± std over seeds")
    note = "" if label_all else " (labels: Pareto front only)" if not front.empty else ""
    ax.set_title(f"{title}: {COLUMN_BY_KEY[metric].header} vs {axis.short}{note}")
    ax.grid(True, which="both", alpha=0.25)
    _style_legends(ax, rows, styles, has_front=not front.empty, has_doubt=not doubtful.empty,
                   has_paper=not papers.empty)  # fmt: skip
    return fig


def _drawable(references: pd.DataFrame | None, metric: str) -> pd.DataFrame:
    """The published points that have both this metric and a cost to sit at."""
    if references is None or references.empty:
        return pd.DataFrame(columns=[X, metric, "reference", "plot_label"])
    papers = references.dropna(subset=[X, metric])
    return papers[papers[X] > 0]


def _draw_points(ax: Any, rows: pd.DataFrame, *, metric: str, styles: PlotStyles) -> None:
    """Error bars, then one marker per entry: colour by framework, shape by strategy."""
    ax.vlines(
        rows[X],
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
                part[X],
                part[metric],
                linestyle="none",
                zorder=3,
                marker=styles.markers[strategy],
                markersize=6,
                color=colour,
                markerfacecolor="white" if is_reference else colour,
            )


# Where a label may sit around its point, in points: right, then left, above then below.
LABEL_SPOTS = ((5, 3, "left", "bottom"), (5, -3, "left", "top"),
               (-5, 3, "right", "bottom"), (-5, -3, "right", "top"))  # fmt: skip


def _label_points(ax: Any, labelled: pd.DataFrame, points: pd.DataFrame, *, metric: str) -> None:
    """Each label beside its own point, in the first spot inside the axes where it overlaps
    no other label and its near corner is closer to its own point than to any other; a point
    with no such spot stays unlabelled (its marker and the legend still say what it is)
    rather than mislabelled."""
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)  # a label outside the axes would be cut or stray
    xy = points[[X, metric]].to_numpy(dtype=float)
    screen = ax.transData.transform(xy[np.isfinite(xy).all(axis=1)])
    placed: list[Any] = []
    for row in labelled.sort_values([X, metric]).to_dict("records"):
        point = (row[X], row[metric])
        own = ax.transData.transform(point)
        colour = "0.35" if isinstance(row["reference"], str) else "black"
        for dx, dy, ha, va in LABEL_SPOTS:
            text = ax.annotate(
                plain_text(row["plot_label"]),
                point,
                xytext=(dx, dy),
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=7,
                color=colour,
            )
            box = text.get_window_extent(renderer)
            if (
                _within(box, frame)
                and not any(box.overlaps(other) for other in placed)
                and _nearest_is_own(box, own, screen)
            ):
                placed.append(box)
                break
            text.remove()


def _within(box: Any, frame: Any) -> bool:
    return bool(
        box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1
    )


def _nearest_is_own(box: Any, own: np.ndarray, screen: np.ndarray) -> bool:
    """Whether the label's corner next to its point is nearer that point than any other."""
    corner = np.array([box.x0 if box.x0 >= own[0] else box.x1,
                       box.y0 if box.y0 >= own[1] else box.y1])  # fmt: skip
    distances = np.hypot(*(screen - corner).T)
    return bool(np.hypot(*(own - corner)) <= distances.min() + 1e-6)


def _style_legends(
    ax: Any,
    rows: pd.DataFrame,
    styles: PlotStyles,
    *,
    has_front: bool,
    has_doubt: bool,
    has_paper: bool = False,
) -> None:
    """Two legends right of the axes: colours (frameworks), then markers and line styles."""
    first = ax.legend(
        handles=[_handle("o", styles.colours[f], f) for f in sorted(set(rows["framework"]))],
        title="framework",
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=8,
        title_fontsize=8,
    )
    ax.add_artist(first)
    markers = [_handle(styles.markers[s], "0.3", s) for s in sorted(set(rows["strategy"]))]
    ax.legend(
        handles=markers
        + _extra_handles(has_front=has_front, has_doubt=has_doubt, has_paper=has_paper),
        title="CL strategy",
        loc="lower left",
        bbox_to_anchor=(1.02, 0.0),
        fontsize=8,
        title_fontsize=8,
    )


def _handle(marker: str, colour: str, name: str) -> Line2D:
    return Line2D(
        [], [], marker=marker, linestyle="none", color=colour, label=plain_text(name, limit=22)
    )


def _extra_handles(*, has_front: bool, has_doubt: bool, has_paper: bool = False) -> list[Line2D]:
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
    if has_paper:
        extra.append(Line2D([], [], markersize=9, label=PAPER_LEGEND, **PAPER_STYLE))
    return extra
