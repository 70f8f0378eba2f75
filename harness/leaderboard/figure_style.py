"""What every figure of the site shares: colours per framework, markers per strategy, the
matplotlib settings that make the bytes reproducible, the GFLOPs axis and plain-text labels."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

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
DOUBT_COLOUR = "#d62728"


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


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)  # render with Agg without touching pyplot's global backend state
    return fig


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


def plain_text(text: Any, *, limit: int = 48) -> str:
    """A label shortened to ``limit`` characters (PLOT_RC keeps "$" from meaning math)."""
    text = str(text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
