"""The plain-versus-enhanced figure: per strategy (and backbone), the plain entry next to each
compressed variant, accuracy on top and GFLOPs per image (log scale) below, with the values
written on the bars (accuracy, and for a variant its change against plain: points, times)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullLocator

from harness.leaderboard.columns import COLUMN_BY_KEY
from harness.leaderboard.figure_style import PlotStyles, new_figure, plain_text

# More bars than this and their values would be too small to read (and cost the build a
# second on the largest boards): the bars alone, the table has the numbers.
WRITE_VALUES_UP_TO = 80


def comparison_groups(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """(strategy, backbone) pairs that have a plain entry and at least one enhanced one."""
    groups = []
    for key, group in rows.groupby(["strategy", "backbone"], sort=True):
        frameworks = set(group["framework"])
        if "none" in frameworks and len(frameworks) > 1:
            groups.append((str(key[0]), str(key[1])))
    return groups


def comparison_figure(rows: pd.DataFrame, *, metric: str, title: str, styles: PlotStyles) -> Figure:
    """Grouped bars: per strategy (and backbone), plain next to each enhanced variant.

    Bars are one PolyCollection per variant rather than a patch each: a suite with hundreds of
    bars then draws in a fraction of a second.
    """
    groups = comparison_groups(rows)
    position = {group: i for i, group in enumerate(groups)}
    slots = [position.get(key) for key in zip(rows["strategy"], rows["backbone"], strict=True)]
    rows = rows.assign(group=slots).dropna(subset=["group"])
    variants = _ordered_variants(rows)
    colours = _variant_colours(rows, variants, styles)
    bar = 0.8 / len(variants)
    rows = rows.assign(left=rows["group"] - 0.4 + bar * rows["variant"].map(variants.index))
    width = min(max(6.0, 1.2 + 0.16 * len(rows)), 16.0)
    total = width + 2.2  # the plot, then room for the legend
    fig = new_figure(total, 6.5)
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
    top.set_ylim(0.0, max(float((rows[metric] + spread).max()) * 1.3, 1.0))  # room for values
    top.set_yticks(range(0, 101, 20))  # accuracy stops at 100 %: no tick in the headroom
    if len(rows) <= WRITE_VALUES_UP_TO:
        _write_values(top, bottom, rows, metric=metric, bar=bar)
    bottom.set_yscale("log")
    bottom.set_ylim(floor, float(rows["gflops_per_image"].max()) * 2.0)
    bottom.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    bottom.yaxis.set_minor_locator(NullLocator())
    many_backbones = len({b for _, b in groups}) > 1
    names = [f"{s}\n({b})" if many_backbones else s for s, b in groups]
    # Many groups: slanted names, or neighbours run into each other.
    slant = {"rotation": 30, "ha": "right"} if len(groups) > 6 else {}
    bottom.set_xticks(range(len(groups)), [plain_text(n) for n in names], **slant)
    top.set_ylabel(f"{COLUMN_BY_KEY[metric].header} (%)")
    bottom.set_ylabel("GFLOPs per image")
    top.set_title(f"{title}: plain vs enhanced")
    for ax in (top, bottom):
        ax.grid(True, axis="y", alpha=0.25)
    handles = [Patch(color=colours[v], label=plain_text(v, limit=22)) for v in variants]
    top.legend(handles=handles, title="variant", loc="upper left", bbox_to_anchor=(1.01, 1.0),
               fontsize=8, title_fontsize=8)  # fmt: skip
    return fig


def _write_values(top: Any, bottom: Any, rows: pd.DataFrame, *, metric: str, bar: float) -> None:
    """The figures on the bars: each accuracy, and for an enhanced bar what it changed
    against its group's plain entry (points above, times fewer GFLOPs below)."""
    plain = rows[rows["framework"] == "none"].drop_duplicates("group").set_index("group")
    size = 6 if bar * 72 > 18 else 5  # narrow bars: smaller type
    for row in rows.to_dict("records"):
        x, value = row["left"] + bar / 2, row[metric]
        if math.isnan(value):
            continue
        text = f"{value:.1f}"
        base = plain.loc[row["group"]] if row["group"] in plain.index else None
        if row["framework"] != "none" and base is not None:
            text += f" ({value - base[metric]:+.1f})"
            ratio = base["gflops_per_image"] / row["gflops_per_image"]
            bottom.text(x, row["gflops_per_image"], f"{ratio:.2g}×", ha="center", va="bottom",
                        fontsize=size, rotation=90)  # fmt: skip
        # Upright text over a bar: side by side, horizontal labels run into each other.
        top.text(x, value + 1.0, text, ha="center", va="bottom", fontsize=size, rotation=90)


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
