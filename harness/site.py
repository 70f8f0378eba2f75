"""Records -> a static leaderboard page: ``index.html`` plus one accuracy-vs-GFLOPs plot per suite.

The page is built from record dicts alone (the CLI passes ``harness.record.load_records``
output), is fully static (inline CSS, no scripts, no CDN) and is byte-for-byte deterministic
given the records, except the "generated at" line. Dependency fence: jinja2, matplotlib (Agg),
pandas and the standard library only; never torch or Ray.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from harness import aggregate

logger = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).parent / "templates"
PLOT_DIR_NAME = "plots"
REFERENCE_NAMES = {"upper_bound": "upper bound", "lower_bound": "lower bound"}
LOG_X_SPAN = 10.0  # plot GFLOPs on a log axis once the cheapest and costliest differ this much


@dataclass(frozen=True)
class Column:
    """One numeric leaderboard column: a summary mean (``key``) and its ``<key>_std``."""

    key: str
    header: str
    spec: str  # format spec for mean and std
    # Accuracies show "± 0.00" when seeds agree exactly (that is news); costs that do not vary
    # across seeds (FLOPs, params) would only add noise, so they show a std only when it is > 0.
    always_std: bool
    note: str = ""
    diagnostic: bool = False


def _accuracy(key: str, header: str, note: str, *, diagnostic: bool = False) -> Column:
    return Column(key, header, spec=".2f", always_std=True, note=note, diagnostic=diagnostic)


def _cost(key: str, header: str, note: str, *, spec: str = ".4g") -> Column:
    # "g": costs range from 1e-4 GFLOPs (tiny test CNNs) to tens of GFLOPs (ImageNet backbones).
    return Column(key, header, spec=spec, always_std=False, note=note)


COLUMNS: tuple[Column, ...] = (
    _accuracy(
        "final_acc_pct", "ACC (final, %)", "accuracy over all classes seen, after the last task"
    ),
    _accuracy(
        "avg_incremental_acc_pct",
        "avg. incremental acc (%)",
        "mean over tasks of the accuracy on all classes seen so far",
    ),
    _accuracy(
        "bwt_pct",
        "BWT (%)",
        "backward transfer: mean over old tasks of (final acc - acc right after learning it)",
    ),
    _accuracy(
        "avg_forgetting_pct",
        "forgetting (%)",
        "mean over old tasks of (best earlier acc - final acc)",
    ),
    _accuracy(
        "final_task_aware_acc_pct",
        "task-aware final acc (%) †",
        "diagnostic only: the task id is given at test time, which class-incremental learning "
        "forbids",
        diagnostic=True,
    ),
    _cost("gflops_per_image", "GFLOPs/image", "2 x MACs of the whole inference path, batch 1"),
    _cost("params_millions", "params (M)", "all parameters used at inference"),
    _cost(
        "latency_ms_b1",
        "latency ms (batch 1)",
        "wall-clock per image at batch 1, on the device and thread count in the record",
        spec=".3g",
    ),
)
COLUMN_BY_KEY = {column.key: column for column in COLUMNS}


def build_site(
    records: Iterable[Mapping[str, Any]],
    out_dir: str | Path,
    *,
    generated_at: datetime | None = None,
) -> Path:
    """Write ``out_dir/index.html`` and ``out_dir/plots/*.png``; return the index path."""
    records = list(records)
    out_dir = Path(out_dir)
    plot_dir = out_dir / PLOT_DIR_NAME
    plot_dir.mkdir(parents=True, exist_ok=True)
    # Plots of suites that no longer have records must not linger next to the new page.
    for stale in sorted(plot_dir.glob("*.png")):
        stale.unlink()

    summary = aggregate.summarize(aggregate.records_to_frame(records))
    counts = aggregate.count_excluded(records)
    counts = counts.sort_values(["suite", "suite_version"], ascending=[True, False])
    sections = [
        _section(count, summary, out_dir=out_dir, plot_dir=plot_dir)
        for count in counts.to_dict("records")
    ]
    shown = int(counts["ok"].sum())
    html = _render(
        sections=sections,
        columns=COLUMNS,
        generated_at=(generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        num_records=len(records),
        num_shown=shown,
        num_left_out=len(records) - shown,
    )
    index = out_dir / "index.html"
    index.write_text(html, encoding="utf-8")
    logger.info("wrote %s (%d suite sections, %d records)", index, len(sections), len(records))
    return index


def _render(**context: Any) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        # select_autoescape() decides by extension and would not match "index.html.j2".
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a typo in the template fails the build, not the page
        keep_trailing_newline=True,
    )
    return env.get_template("index.html.j2").render(**context)


def _section(
    count: Mapping[str, Any], summary: pd.DataFrame, *, out_dir: Path, plot_dir: Path
) -> dict[str, Any]:
    suite, version = count["suite"], int(count["suite_version"])
    rows = summary[(summary["suite"] == suite) & (summary["suite_version"] == version)]
    slug = f"{_slug(suite)}-v{version}"
    section: dict[str, Any] = {
        "suite": suite,
        "version": version,
        "anchor": slug,
        "rows": [],
        "plot_src": None,
        "primary_header": None,
        "left_out_text": _left_out_text(int(count["failed"]), int(count["debug"])),
    }
    if rows.empty:
        return section
    primary = rows["primary_metric"].iloc[0]
    if primary not in COLUMN_BY_KEY:
        raise ValueError(
            f"suite {suite} v{version} names primary metric {primary!r}, which the leaderboard "
            f"does not show; use one of {sorted(aggregate.METRICS)}."
        )
    rows = _rank(rows, primary)
    plot_path = plot_dir / f"{slug}.png"
    title = f"{suite} v{version}"
    if plot_accuracy_vs_flops(rows, y=primary, title=title, path=plot_path):
        section["plot_src"] = plot_path.relative_to(out_dir).as_posix()
    section["primary_header"] = COLUMN_BY_KEY[primary].header
    section["rows"] = [_table_row(row) for row in rows.to_dict("records")]
    return section


def _rank(rows: pd.DataFrame, primary: str) -> pd.DataFrame:
    """Sort by the primary metric (best first), add display names and Pareto membership."""
    rows = rows.sort_values(
        [primary, "label", "backbone", "config_sha256"],
        ascending=[False, True, True, True],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)
    # Two configs of one label on one backbone would read as the same method twice.
    ambiguous = rows.duplicated(["label", "backbone"], keep=False)
    short_config = rows["config_sha256"].astype(str).str[:7]
    rows["display"] = rows["label"].where(~ambiguous, rows["label"] + " [" + short_config + "]")
    competing = rows["reference"].isna()
    front = aggregate.pareto_front(rows[competing], x="gflops_per_image", y=primary)
    rows["on_front"] = front.reindex(rows.index, fill_value=False).astype(bool)
    return rows


def _table_row(row: Mapping[str, Any]) -> dict[str, Any]:
    reference = row["reference"] if isinstance(row["reference"], str) else None
    return {
        "display": row["display"],
        "reference": reference,
        "reference_text": REFERENCE_NAMES.get(reference, reference) if reference else "",
        "backbone": row["backbone"],
        "config_sha256": row["config_sha256"],
        "cells": [
            format_mean_std(row[c.key], row[f"{c.key}_std"], spec=c.spec, always_std=c.always_std)
            for c in COLUMNS
        ],
        "seeds": int(row["seeds"]),
        "on_front": bool(row["on_front"]),
    }


def format_mean_std(mean: float, std: float, *, spec: str, always_std: bool = True) -> str:
    """``"71.50 ± 1.20"``; a single seed (std NaN) shows the mean alone, a missing value "—"."""
    if mean is None or math.isnan(mean):
        return "—"
    text = _format_number(mean, spec)
    if std is not None and not math.isnan(std) and (always_std or std > 0):
        text += f" ± {_format_number(std, spec)}"
    return text


def _format_number(value: float, spec: str) -> str:
    text = format(value, spec)
    return text.lstrip("-") if float(text) == 0 else text  # no "-0.00" from rounding noise


def _left_out_text(failed: int, debug: int) -> str:
    if failed + debug == 0:
        return "No failed or debug records were left out."
    noun = "record" if failed + debug == 1 else "records"
    return (
        f"Left out {failed + debug} {noun}: {failed} failed, "
        f"{debug} debug (made with test-only shortcuts)."
    )


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "suite"


def plot_accuracy_vs_flops(rows: pd.DataFrame, *, y: str, title: str, path: Path) -> bool:
    """Scatter of ``y`` (mean ± std over seeds) against GFLOPs/image, with the Pareto front.

    ``rows`` come from ``_rank`` (columns ``display`` and ``on_front``). Returns False, writing
    nothing, when no row has both numbers.
    """
    rows = rows.dropna(subset=["gflops_per_image", y])
    if rows.empty:
        return False
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    FigureCanvasAgg(fig)  # render with Agg without touching pyplot's global backend state
    ax = fig.add_subplot()
    is_reference = rows["reference"].notna()
    _scatter(ax, rows[~is_reference], y=y, reference=False)
    _scatter(ax, rows[is_reference], y=y, reference=True)
    _draw_front(ax, rows[rows["on_front"]], y=y)
    _set_flops_axis(ax, rows["gflops_per_image"])
    ax.set_xlabel("GFLOPs per image (2 × MACs, whole inference path, batch 1)")
    ax.set_ylabel(f"{COLUMN_BY_KEY[y].header}, mean ± std over seeds")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.margins(x=0.15, y=0.12)  # room for the point labels
    ax.legend(loc="best", fontsize=8)
    # No "Software" tag: the PNG bytes then depend only on the records and matplotlib's renderer.
    fig.savefig(path, format="png", dpi=130, metadata={"Software": None})
    return True


def _set_flops_axis(ax: Any, gflops: pd.Series) -> None:
    """Log scale once costs span more than LOG_X_SPAN, with plain-number tick labels.

    Matplotlib's default log labels ("3×10⁻¹" on minor ticks) collide when the span is only a
    decade or two, so majors sit at 1-2-5 steps (1 per decade for wide spans), minors unlabelled.
    """
    low, high = float(gflops.min()), float(gflops.max())
    if low <= 0 or high / low <= LOG_X_SPAN:
        return
    ax.set_xscale("log")
    subs = (1.0, 2.0, 5.0) if math.log10(high / low) <= 3 else (1.0,)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _scatter(ax: Any, rows: pd.DataFrame, *, y: str, reference: bool) -> None:
    if rows.empty:
        return
    style = (
        {"fmt": "s", "color": "0.45", "mfc": "white", "label": "reference (upper/lower bound)"}
        if reference
        else {"fmt": "o", "color": "tab:blue", "label": "method"}
    )
    ax.errorbar(
        rows["gflops_per_image"],
        rows[y],
        yerr=rows[f"{y}_std"].fillna(0.0),
        capsize=3,
        markersize=6,
        linestyle="none",
        zorder=3,
        **style,
    )
    for row in rows.to_dict("records"):
        text = row["display"]
        if reference:
            text += f" ({REFERENCE_NAMES.get(row['reference'], row['reference'])})"
        ax.annotate(
            text,
            (row["gflops_per_image"], row[y]),
            xytext=(5, 5),
            textcoords="offset points",
            fontsize=8,
            style="italic" if reference else "normal",
            color="0.35" if reference else "black",
        )


def _draw_front(ax: Any, front: pd.DataFrame, *, y: str) -> None:
    if front.empty:
        return
    front = front.sort_values(["gflops_per_image", y], ascending=[True, False])
    # steps-post: the best accuracy reachable within a FLOP budget, flat until the next point.
    ax.step(
        front["gflops_per_image"],
        front[y],
        where="post",
        color="tab:red",
        linewidth=1.5,
        alpha=0.8,
        zorder=2,
        label="Pareto front (non-reference methods)",
    )
