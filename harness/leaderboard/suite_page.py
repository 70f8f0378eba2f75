"""One suite version as its pages see it: ranked rows, columns, entries, plots, index card.

Ranking (best primary metric first), display names that tell same-label configs apart, the
file names (slugs) of its pages, the table's columns (a latency column per measurement
setting its records hold), and what its records say about the suite itself.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from harness.leaderboard import aggregate, usable
from harness.leaderboard.baselines import (
    COMPARISON_COLUMNS,
    COMPARISON_KEYS,
    SIZE_RATIO,
    add_baseline_comparison,
)
from harness.leaderboard.columns import (
    COLUMN_BY_KEY,
    DETAIL_COLUMNS,
    MFLOPS_BELOW,
    TASK_AWARE,
    Column,
    latency_statistic,
    suite_columns,
)
from harness.leaderboard.entries import entry_page
from harness.leaderboard.figure_style import PlotStyles
from harness.leaderboard.plots import plan_plots
from harness.leaderboard.recipe import recipe_texts
from harness.leaderboard.task_fronts import task_front_panels

logger = logging.getLogger(__name__)

MAX_SLUG = 60  # characters of a label kept in a file name


@dataclass(frozen=True)
class SuiteJob:
    """Everything needed to build one suite version's pages, in this or another process."""

    name: str
    version: int
    latest: int  # the suite's current version
    counts: dict[str, int]  # ok / failed / debug records
    rows: pd.DataFrame  # its summary rows, with Pareto columns
    latencies: pd.DataFrame  # its rows of ``latencies.summarize_latencies``
    records: list[Mapping[str, Any]]  # all of its records, failed and debug included
    sources: dict[str, Path]
    styles: PlotStyles
    # Records set apart as stale (``stale``): listed on the page, never ranked.
    stale: tuple[dict[str, Any], ...] = ()


@dataclass
class SuitePage:
    """One suite version: its table rows, entries, plots and how it relates to other versions."""

    name: str
    version: int
    current: bool
    superseded_by: int | None
    info: dict[str, Any]
    counts: dict[str, int]
    columns: tuple[Column, ...] = ()  # of its table (and each entry's per-seed table)
    detail_columns: tuple[Column, ...] = ()  # figures only entries' pages show
    entries: list[dict[str, Any]] = field(default_factory=list)
    plots: list[dict[str, Any]] = field(default_factory=list)
    plot_jobs: list[dict[str, Any]] = field(default_factory=list)
    comparison_note: str = ""
    with_memory_front: bool = False  # records carry the memory kept: rank at equal memory too
    # The hardware every trial ran on, when it is one kind: said once above the table rather
    # than in a column of identical cells.
    one_hardware: str | None = None
    # Accuracy against GFLOPs after each task (``task_fronts``); None: no cost curves recorded.
    task_fronts: dict[str, Any] | None = None
    # Records made from another suite file than the current one: listed apart, never ranked.
    stale: list[dict[str, Any]] = field(default_factory=list)

    slug: str = ""
    href: str = ""  # from the site's root, like every link the templates get
    compare_href: str = ""  # its entries side by side (compare.html.j2)
    superseded_href: str = ""

    @property
    def optional_keys(self) -> frozenset[str]:
        """Columns the table hides until a reader picks them (its column picker), so that it
        fits a 1280 px screen; without the page's script every column shows. Latency columns
        are optional when there is more than one (one per device and setting)."""
        latency = [c.key for c in self.columns if c.latency is not None]
        return OPTIONAL_COLUMNS | (frozenset(latency) if len(latency) > 1 else frozenset())

    @property
    def trial_columns(self) -> tuple[Column, ...]:
        """The columns of each entry's per-seed table: a seed has no baseline comparison."""
        return tuple(c for c in self.columns if c.key not in COMPARISON_KEYS)

    def __post_init__(self) -> None:
        # Computed once: templates ask for these on every row of every page.
        self.slug = f"{_slug(self.name)}-v{self.version}"
        self.href = f"suites/{self.slug}.html"
        self.compare_href = f"suites/{self.slug}-compare.html"
        self.superseded_href = f"suites/{_slug(self.name)}-v{self.superseded_by}.html"

    @property
    def legend_columns(self) -> tuple[Column, ...]:
        """Every column its pages show, each defined once in the legend."""
        return (*self.columns, *self.detail_columns, TASK_AWARE)

    def card(self) -> dict[str, Any]:
        """What the index shows of this suite version (small: it may cross processes)."""
        competing = [e for e in self.entries if not e["reference"]]
        best = competing[0] if competing else None
        keep = ("display", "href", "primary", "gflops", "provisional")
        return {
            "name": self.name,
            "version": self.version,
            "href": self.href,
            "current": self.current,
            "superseded_by": self.superseded_by,
            "info": self.info,
            "counts": self.counts,
            "num_entries": len(self.entries),
            "best": {**{k: best[k] for k in keep}, "cost": self._cost(best)} if best else None,
            "answers": self._answers(competing),
            "thumb": self._thumbnail(),
            "stale": len(self.stale),
        }

    def _thumbnail(self) -> dict[str, Any] | None:
        """The front after the last task, drawn small on the index (its last panel only)."""
        if self.task_fronts is None:
            return None
        return {**self.task_fronts, "panels": self.task_fronts["panels"][-1:]}

    def _cost(self, entry: Mapping[str, Any]) -> str:
        """The entry's GFLOPs as the table shows them, with their unit: "0.1939 MFLOPs"."""
        i = next(i for i, c in enumerate(self.columns) if c.key == "gflops_per_image")
        return f"{entry['cells'][i].text} {self.columns[i].header}"

    def _answers(self, competing: list[dict[str, Any]]) -> list[dict[str, str]]:
        """The suite's question answered: the best entry (by the primary metric) at no more
        than 1/4 and 1/10 of its own plain baseline's GFLOPs, with what it cost in accuracy."""
        keys = [c.key for c in self.columns]
        delta = f"delta_{self.info['primary_metric']}"
        if "gflops_ratio" not in keys or delta not in keys:
            return []
        answers = []
        for fold in ANSWER_FOLDS:
            for entry in competing:  # ranked best first
                ratio = entry["cells"][keys.index("gflops_ratio")]
                if ratio.value and float(ratio.value) >= fold:
                    if answers and answers[-1]["href"] == entry["href"]:
                        break  # the same entry answers the stricter fold too: say it once
                    answers.append({
                        "fold": str(fold), "display": entry["display"], "href": entry["href"],
                        "primary": entry["primary"].text, "cost": self._cost(entry),
                        "ratio": ratio.text, "delta": entry["cells"][keys.index(delta)].text,
                        "baseline": entry["baseline"] or "",
                    })  # fmt: skip
                    break
        return answers


def build_suite_page(job: SuiteJob) -> SuitePage:
    """Rank the suite version's entries, choose its columns, plan its plots."""
    info = _suite_info(job.records)
    rows = add_baseline_comparison(job.rows)
    first, final = rows["gflops_after_first_task"], rows["gflops_per_image"]
    compared = bool(rows["delta_final_acc_pct"].notna().any())
    columns = suite_columns(
        job.latencies["setting"],
        with_size=bool(rows["param_bytes"].notna().any()),
        with_training=bool(rows["training_samples_millions"].notna().any()),
        with_memory=bool(rows["kept_memory_megabytes"].notna().any()),
        # Only where the cost moved: a flat curve repeats the GFLOPs column.
        with_curve=bool(((first - final).abs() > 1e-3 * final).fillna(False).any()),
        comparison=COMPARISON_COLUMNS if compared else (),
    )
    if bool((rows["gflops_per_image"] < MFLOPS_BELOW).all()):
        columns = tuple(in_mflops(c) if c.key in FLOP_KEYS else c for c in columns)
    suite = SuitePage(
        name=job.name,
        version=job.version,
        current=job.version == job.latest,
        superseded_by=None if job.version == job.latest else job.latest,
        info=info,
        counts=job.counts,
        columns=columns,
        detail_columns=tuple(
            c for c in (*DETAIL_COLUMNS, SIZE_RATIO) if c.key in rows and rows[c.key].notna().any()
        ),
        with_memory_front=bool(rows["kept_memory_megabytes"].notna().any()),
        stale=list(job.stale),
    )
    rows = _rank(_with_latency_columns(rows, job.latencies, columns), info["primary_metric"])
    by_entry: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for record in job.records:
        if usable.is_leaderboard_record(record):
            by_entry.setdefault(aggregate.entry_key(record), []).append(record)
    suite.entries = [
        entry_page(
            row,
            by_entry[aggregate.row_key(row)],
            suite_slug=suite.slug,
            primary_metric=info["primary_metric"],
            columns=suite.columns,
            trial_columns=suite.trial_columns,
            detail_columns=suite.detail_columns,
        )
        for row in rows.to_dict("records")
    ]
    suite.task_fronts = task_front_panels(suite.entries, job.styles.colours)
    kinds = {kind for entry in suite.entries for kind in entry["hardware"]}
    suite.one_hardware = next(iter(kinds)) if len(kinds) == 1 else None
    plan = plan_plots(rows, job.styles, name=suite.name, version=suite.version, slug=suite.slug,
                      primary_metric=info["primary_metric"], current=suite.current,
                      latency_columns=[c for c in columns if c.latency is not None])  # fmt: skip
    suite.plots, suite.plot_jobs, suite.comparison_note = (
        plan.plots,
        plan.jobs,
        plan.comparison_note,
    )
    return suite


def _with_latency_columns(
    rows: pd.DataFrame, latencies: pd.DataFrame, columns: tuple[Column, ...]
) -> pd.DataFrame:
    """``rows`` plus, per latency column, ``<key>``, ``<key>_std``, ``<key>_count``."""
    rows = rows.copy()
    keys = [aggregate.row_key(row) for row in rows.to_dict("records")]
    for column in columns:
        if column.latency is None:
            continue
        statistic = latency_statistic(column)
        found = {
            aggregate.row_key(row): row
            for row in latencies.to_dict("records")
            if row["setting"] == column.latency
        }
        for suffix in ("", "_std", "_count"):
            rows[f"{column.key}{suffix}"] = [
                found[key][f"{statistic}{suffix}"] if key in found else math.nan for key in keys
            ]
    return rows


def _suite_info(records: list[Mapping[str, Any]]) -> dict[str, Any]:
    """What the records say about their suite version (a finished record's word first)."""
    suite = sorted(records, key=lambda r: r.get("status") != "ok")[0]["suite"]
    primary = suite.get("primary_metric")
    if primary not in aggregate.ACCURACY_METRICS:
        logger.warning(
            "suite %s v%s names primary metric %r; ranking by final_acc_pct instead",
            suite["name"],
            suite["version"],
            primary,
        )
        primary = "final_acc_pct"
    hashes = sorted({str(r["suite"].get("file_sha256")) for r in records})
    # What the numbers depend on: a method added to the file changes its bytes, not this.
    protocols = {str(r["suite"].get("protocol_sha256") or r["suite"].get("file_sha256"))
                 for r in records}  # fmt: skip
    if len(protocols) > 1:
        logger.warning(
            "suite %s v%s: records come from %d different suite protocols; bump the "
            "version when a suite changes",
            suite["name"],
            suite["version"],
            len(protocols),
        )
    orders = sorted(
        {
            (int(r["suite"].get("order_index", 0)), str(r["suite"].get("class_order_sha256") or ""))
            for r in records
        }
    )
    classes = suite.get("classes_per_task")
    return {
        "primary_metric": primary,
        "primary_header": COLUMN_BY_KEY[primary].header,
        "tasks_text": _tasks_text(suite.get("num_tasks"), classes),
        "exemplar_budget": suite.get("exemplar_budget"),
        "recipes": recipe_texts(records),
        "file_sha256": hashes,
        "class_orders": [{"index": i, "sha256": sha} for i, sha in orders],
    }


def _tasks_text(num_tasks: Any, classes: Any) -> str:
    """ "5 tasks of 2 classes (10 in all)", or what the records allow of it."""
    if isinstance(classes, list) and classes:
        per_task = (
            f"of {classes[0]} classes"
            if len(set(classes)) == 1
            else "of " + "+".join(map(str, classes)) + " classes"
        )
        return f"{len(classes)} tasks {per_task} ({sum(classes)} in all)"
    if isinstance(num_tasks, int) and isinstance(classes, int):
        return f"{num_tasks} tasks of {classes} classes ({num_tasks * classes} in all)"
    return f"{num_tasks} tasks" if num_tasks is not None else "tasks not recorded"


# Numeric columns hidden until picked: what only some readers compare (forgetting beside BWT,
# the second accuracy difference and cost ratio, size, training samples, memory kept). The
# template also hides the strategy, framework and backbone (the entry's name and page say
# them), the fronts other than ACC's, and the hardware column.
OPTIONAL_COLUMNS = frozenset({
    "avg_forgetting_pct", "delta_avg_incremental_acc_pct", "params_ratio", "param_bytes",
    "training_samples_millions", "kept_memory_megabytes",
})  # fmt: skip
ANSWER_FOLDS = (4, 10)  # the index names the best entry at <= 1/4 and <= 1/10 of its cost
FLOP_KEYS = frozenset({"gflops_per_image", "gflops_after_first_task"})


def in_mflops(column: Column) -> Column:
    """``column`` (a cost in GFLOPs) shown in MFLOPs: "2.986" rather than "0.002986"."""
    return replace(
        column,
        header=column.header.replace("GFLOPs", "MFLOPs"),
        unit=column.unit.replace("GFLOPs", "MFLOPs"),
        short_unit="M/img",
        scale=1e3,
    )


def _rank(rows: pd.DataFrame, primary: str) -> pd.DataFrame:
    """Best primary metric first; add display names that tell same-label configs apart."""
    rows = rows.sort_values(
        [primary, "gflops_per_image", "label", "backbone", "config_sha256"],
        ascending=[False, True, True, True, True],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)
    # One label on several backbones (a strategy plain on the teacher and on the student):
    # "icarl · compact_cnn_small"; one label and backbone with several configs: a config tag.
    display = aggregate.entry_names(rows)
    display = display.where(rows["tuned"].astype(str) == "", display + " (tuned)")
    ambiguous = rows.duplicated(["label", "backbone", "tuned"], keep=False)
    short_config = rows["config_sha256"].astype(str).str[:7]
    rows["display"] = display.where(~ambiguous, display + " [" + short_config + "]")
    # On a plot, name what serves where it is not the backbone (a KD student sits at its own
    # cost, not the teacher's).
    served = rows["inference_backbone"].fillna(rows["backbone"]).astype(str)
    moved = served != rows["backbone"]
    rows["plot_label"] = rows["display"].where(~moved, rows["display"] + " → " + served)
    rows["variant"] = [_variant(r) for r in rows.to_dict("records")]
    rows["slug"] = [_entry_slug(r) for r in rows.to_dict("records")]
    return rows


def _variant(row: Mapping[str, Any]) -> str:
    """How an entry enhances its strategy: "plain", or the label's framework part."""
    label, strategy, framework = row["label"], row["strategy"], row["framework"]
    if framework == "none":
        variant = "plain"
    elif label.startswith(f"{strategy}+"):
        variant = label[len(strategy) + 1 :]
    else:
        variant = framework
    return variant + row["display"][len(label) :]  # keep a config tag "[abc1234]"


def _entry_slug(row: Mapping[str, Any]) -> str:
    key = aggregate.row_key(row)
    key = key[:-1] if key[-1] == "" else key  # untuned: the slug it had before tuning existed
    digest = hashlib.sha256("\x1f".join(map(str, key)).encode()).hexdigest()[:8]
    return f"{_slug(row['label'])}-{_slug(row['backbone'])}-{digest}"


def _slug(name: str) -> str:
    """A file name from a label: safe characters, short, and unique per label."""
    slug = re.sub(r"[^A-Za-z0-9._@=+-]+", "-", str(name)).strip("-.") or "x"
    if slug != name or len(slug) > MAX_SLUG:  # names that clean up alike must not share a file
        slug = slug[:MAX_SLUG] + "-" + hashlib.sha256(str(name).encode()).hexdigest()[:6]
    return slug
