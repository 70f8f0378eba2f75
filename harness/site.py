"""Records -> a static leaderboard site: an index, one page per suite version and per entry.

Layout of the output folder (every link relative, so it works from ``file://`` and any host):

    index.html                          suites, sizes, versions, best entries, Pareto thumbnails
    suites/<suite>-v<N>.html            sortable, filterable table; Pareto plots; metric legend
    entries/<suite>-v<N>/<entry>.html   config, provenance, per-seed numbers, curves, heatmap
    plots/<suite>-v<N>-*.svg|.png       matplotlib figures: SVG on the pages, PNG to share
    records/<run id>.json               every record shown, as the harness wrote it
    style.css, leaderboard.js           the only assets: no CDN, no network at view time

Same records, same bytes: everything is sorted, matplotlib's SVG ids are salted with a constant
and no file carries a date, except the one build stamp on ``index.html``. Dependency fence:
jinja2, matplotlib (no pyplot), pandas, numpy and the standard library; never torch or Ray.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
import os
import re
import shlex
import shutil
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import jinja2
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

from harness import aggregate
from harness.metrics import accuracy_on_seen

logger = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).parent / "templates"
ASSETS = {"style.css": "style.css.j2", "leaderboard.js": "leaderboard.js.j2"}
# Generated subfolders and the file kinds the build owns in them; only these are cleaned.
OWNED = {
    "suites": (".html",),
    "entries": (".html",),
    "plots": (".svg", ".png"),
    "records": (".json",),
}
REFERENCE_NAMES = {"upper_bound": "upper bound", "lower_bound": "lower bound"}
PARALLEL_FROM_RECORDS = 500  # below this, starting worker processes costs more than it saves
MAX_SLUG = 60  # characters of a label kept in a file name
LABEL_ALL_POINTS_UP_TO = 30  # more entries than this: label only the Pareto front's points
PLOT_RC = {"svg.hashsalt": "cilbench-site", "svg.fonttype": "none", "font.size": 9}
# Known frameworks and strategies keep their colour and marker whatever else is present.
FRAMEWORK_COLOURS = {"none": "#1f77b4", "prepruning": "#ff7f0e", "postpruning": "#2ca02c",
                     "kd": "#d62728"}  # fmt: skip
SPARE_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
STRATEGY_MARKERS = {"finetune": "v", "joint": "^", "lwf": "o", "icarl": "s", "ssil": "D"}
SPARE_MARKERS = ("P", "X", "*", "h", "<", ">", "p", "d")


@dataclass(frozen=True)
class Column:
    """One numeric column: a summary mean (``key``) and its ``<key>_std``, and its legend."""

    key: str
    header: str
    unit: str
    short_unit: str  # under the table header
    definition: str
    measured: str
    spec: str  # format spec for mean and std
    # Accuracies show "± 0.00" when seeds agree exactly (that is news); costs that do not vary
    # across seeds (FLOPs, params) would only add noise, so they show a std only when it is > 0.
    always_std: bool = True
    better: str = "higher"  # the first click on its header sorts best first


ACCURACY_MEASURED = (
    "top-1 on the suite's fixed test split, without a task id, evaluated by the harness after "
    "every task (the accuracy matrix in each record); mean ± sample std over seeds"
)
# "g" for costs: they range from 1e-4 GFLOPs (tiny test CNNs) to tens (ImageNet backbones).
COLUMNS: tuple[Column, ...] = (
    Column(
        key="final_acc_pct",
        header="ACC",
        unit="%",
        short_unit="%",
        definition="accuracy over all classes seen, after the last task",
        measured=ACCURACY_MEASURED,
        spec=".2f",
    ),
    Column(
        key="avg_incremental_acc_pct",
        header="avg. inc. acc",
        unit="%",
        short_unit="%",
        definition="mean over tasks of the accuracy on all classes seen so far, after each task",
        measured=ACCURACY_MEASURED,
        spec=".2f",
    ),
    Column(
        key="bwt_pct",
        header="BWT",
        unit="percentage points",
        short_unit="pp",
        definition="backward transfer: mean over the tasks before the last of (final accuracy "
        "on the task − its accuracy right after it was learned); negative means forgetting",
        measured=ACCURACY_MEASURED,
        spec=".2f",
    ),
    Column(
        key="avg_forgetting_pct",
        header="forgetting",
        unit="percentage points",
        short_unit="pp",
        definition="mean over the tasks before the last of (best earlier accuracy on the task − "
        "final accuracy on it)",
        measured=ACCURACY_MEASURED,
        spec=".2f",
        better="lower",
    ),
    Column(
        key="gflops_per_image",
        header="GFLOPs",
        unit="GFLOPs per image",
        short_unit="G/img",
        definition="floating-point operations (2 × multiply-accumulates) of the whole inference "
        "path: every forward pass and the classifier the method predicts with",
        measured="torch FlopCounterMode over every aten op at batch 1, cross-checked by ptflops",
        spec=".4g",
        always_std=False,
        better="lower",
    ),
    Column(
        key="params_millions",
        header="params",
        unit="millions",
        short_unit="M",
        definition="parameters of the model that serves inference, classifier head included",
        measured="counted on the inference module after the last task",
        spec=".4g",
        always_std=False,
        better="lower",
    ),
    Column(
        key="latency_ms_b1",
        header="latency",
        unit="ms per image",
        short_unit="ms",
        definition="wall-clock time of one batch-1 prediction",
        measured="median of repeated calls after warm-up, on the device and torch thread count "
        "stored in each record; compare only entries measured on one machine",
        spec=".3g",
        always_std=False,
        better="lower",
    ),
)
TASK_AWARE = Column(
    key="final_task_aware_acc_pct",
    header="task-aware ACC †",
    unit="%",
    short_unit="%",
    definition="diagnostic only: argmax restricted to each task's own classes, i.e. the task id "
    "is given at test time, which class-incremental learning forbids; never used for ranking",
    measured="as ACC, with the task id given",
    spec=".2f",
)
COLUMN_BY_KEY = {column.key: column for column in (*COLUMNS, TASK_AWARE)}


def build_site(
    records: Iterable[Mapping[str, Any]],
    out_dir: str | Path,
    *,
    generated_at: datetime | None = None,
    skipped: Sequence[str] = (),
    sources: Mapping[str, Path] | None = None,
    workers: int | None = None,
) -> Path:
    """Write the site into ``out_dir`` and return the path of its ``index.html``.

    ``skipped``: the loader's warnings (``LoadedRecords.warnings``), listed on the index.
    ``sources``: run id -> record file (``LoadedRecords.sources``), copied byte for byte; other
    records are written as ``write_record`` would. ``workers``: processes building suite
    versions side by side (default: one per CPU for large builds, none for small ones).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records, duplicates = aggregate.drop_duplicate_trials(list(records))
    for warning in duplicates:
        logger.warning("%s", warning)
    jobs = _suite_jobs(records, sources or {})
    cards = _run_suite_jobs(jobs, out_dir, workers)
    _prune(out_dir, {path for card in cards for path in card.pop("written")})
    env = _environment()
    for name, template in ASSETS.items():
        (out_dir / name).write_text(_raw_template(env, template), encoding="utf-8")
    index = out_dir / "index.html"
    shown = sum(card["counts"]["ok"] for card in cards)
    _write_page(
        env,
        "index.html.j2",
        index,
        root="",
        current=[card for card in cards if card["current"]],
        archived=[card for card in cards if not card["current"]],
        num_records=len(records) + len(duplicates),
        num_shown=shown,
        generated_at=(generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        skipped=[*skipped, *duplicates],
    )
    logger.info("wrote %s: %d suite versions, %d entries, %d records shown", index, len(cards),
                sum(card["num_entries"] for card in cards), shown)  # fmt: skip
    return index


# ------------------------------------------------------------------------- suite versions


@dataclass(frozen=True)
class _SuiteJob:
    """Everything needed to build one suite version's pages, in this or another process."""

    name: str
    version: int
    latest: int  # the suite's current version
    counts: dict[str, int]  # ok / failed / debug records
    rows: pd.DataFrame  # its summary rows, with Pareto columns
    records: list[Mapping[str, Any]]  # all of its records, failed and debug included
    sources: dict[str, Path]
    styles: _Styles


def _suite_jobs(records: list[Mapping[str, Any]], sources: Mapping[str, Path]) -> list[_SuiteJob]:
    summary = aggregate.add_pareto_columns(aggregate.summarize(aggregate.records_to_frame(records)))
    styles = _Styles.of(summary)
    latest = aggregate.current_versions(records)
    by_version: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for record in records:
        key = (record["suite"]["name"], int(record["suite"]["version"]))
        by_version.setdefault(key, []).append(record)
    jobs = []
    for count in aggregate.count_excluded(records).to_dict("records"):
        name, version = count["suite"], int(count["suite_version"])
        mine = by_version[(name, version)]
        jobs.append(
            _SuiteJob(
                name=name,
                version=version,
                latest=latest[name],
                counts={k: int(count[k]) for k in ("ok", "failed", "debug")},
                rows=summary[(summary["suite"] == name) & (summary["suite_version"] == version)],
                records=mine,
                sources={r["run_id"]: sources[r["run_id"]] for r in mine if r["run_id"] in sources},
                styles=styles,
            )
        )
    # Newest version first within a suite: the index lists the current one, then archives.
    return sorted(jobs, key=lambda job: (job.name, -job.version))


def _run_suite_jobs(
    jobs: list[_SuiteJob], out_dir: Path, workers: int | None
) -> list[dict[str, Any]]:
    """Build every suite version; each returns its index card. Output does not depend on order.

    Suite versions are independent, so large builds fork one worker per CPU. Only fork: the
    workers inherit matplotlib and pandas already imported (spawning costs seconds each and
    needs an importable ``__main__``), and only from a single-threaded process, which fork
    cannot deadlock. Anywhere else the build simply runs in this process.
    """
    if workers is None:
        big = sum(len(job.records) for job in jobs) >= PARALLEL_FROM_RECORDS
        workers = min(_usable_cpus(), len(jobs)) if big else 1
    if workers <= 1 or len(jobs) <= 1 or not _can_fork():
        return [_build_suite(job, out_dir) for job in jobs]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        # Largest first, so one big suite does not start last and finish alone.
        order = sorted(range(len(jobs)), key=lambda i: -len(jobs[i].records))
        futures = {i: pool.submit(_build_suite, jobs[i], out_dir) for i in order}
        return [futures[i].result() for i in range(len(jobs))]


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _build_suite(job: _SuiteJob, out_dir: Path) -> dict[str, Any]:
    """Pages, plots and raw records of one suite version; returns its card for the index."""
    suite = _suite(job)
    env = _environment()
    written = [suite.href]
    _write_page(env, "suite.html.j2", out_dir / suite.href, root="../", suite=suite)
    for entry in suite.entries:
        page = out_dir / entry["href"]
        _write_page(env, "entry.html.j2", page, root="../../", suite=suite, entry=entry)
        written.append(entry["href"])
        for trial, record in zip(entry["trials"], entry["records"], strict=True):
            _publish_record(
                record, job.sources.get(record["run_id"]), out_dir / trial["record_href"]
            )
            written.append(trial["record_href"])
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    for plot_job in suite.plot_jobs:
        written += _draw(plot_job, out_dir / "plots")
    return {**suite.card(), "written": written}


@dataclass
class _Suite:
    """One suite version: its table rows, entries, plots and how it relates to other versions."""

    name: str
    version: int
    current: bool
    superseded_by: int | None
    info: dict[str, Any]
    counts: dict[str, int]
    entries: list[dict[str, Any]] = field(default_factory=list)
    plots: list[dict[str, Any]] = field(default_factory=list)
    plot_jobs: list[dict[str, Any]] = field(default_factory=list)
    comparison_note: str = ""

    slug: str = ""
    href: str = ""  # from the site's root, like every link the templates get
    superseded_href: str = ""

    def __post_init__(self) -> None:
        # Computed once: templates ask for these on every row of every page.
        self.slug = f"{_slug(self.name)}-v{self.version}"
        self.href = f"suites/{self.slug}.html"
        self.superseded_href = f"suites/{_slug(self.name)}-v{self.superseded_by}.html"

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
            "best": {k: best[k] for k in keep} if best else None,
            "thumbs": [p for p in self.plots if p["png"]],
        }


def _suite(job: _SuiteJob) -> _Suite:
    info = _suite_info(job.records)
    suite = _Suite(
        name=job.name,
        version=job.version,
        current=job.version == job.latest,
        superseded_by=None if job.version == job.latest else job.latest,
        info=info,
        counts=job.counts,
    )
    rows = _rank(job.rows, info["primary_metric"])
    by_entry: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for record in job.records:
        if aggregate.is_leaderboard_record(record):
            by_entry.setdefault(aggregate.entry_key(record), []).append(record)
    suite.entries = [
        _entry(row, by_entry[_row_key(row)], suite=suite) for row in rows.to_dict("records")
    ]
    _plan_plots(suite, rows, job.styles)
    return suite


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
    if len(hashes) > 1:
        logger.warning(
            "suite %s v%s: records come from %d different suite files; bump the "
            "version when a suite changes",
            suite["name"],
            suite["version"],
            len(hashes),
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


def _rank(rows: pd.DataFrame, primary: str) -> pd.DataFrame:
    """Best primary metric first; add display names that tell same-label configs apart."""
    rows = rows.sort_values(
        [primary, "gflops_per_image", "label", "backbone", "config_sha256"],
        ascending=[False, True, True, True, True],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)
    ambiguous = rows.duplicated(["label", "backbone"], keep=False)
    short_config = rows["config_sha256"].astype(str).str[:7]
    rows["display"] = rows["label"].where(~ambiguous, rows["label"] + " [" + short_config + "]")
    many_backbones = rows["backbone"].nunique() > 1
    rows["plot_label"] = rows["display"] + (" (" + rows["backbone"] + ")" if many_backbones else "")
    rows["variant"] = [_variant(r) for r in rows.to_dict("records")]
    rows["slug"] = [_entry_slug(r) for r in rows.to_dict("records")]
    return rows


def _row_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k in aggregate.GROUP_KEYS)


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
    digest = hashlib.sha256("\x1f".join(map(str, _row_key(row))).encode()).hexdigest()[:8]
    return f"{_slug(row['label'])}-{_slug(row['backbone'])}-{digest}"


def _slug(name: str) -> str:
    """A file name from a label: safe characters, short, and unique per label."""
    slug = re.sub(r"[^A-Za-z0-9._@=+-]+", "-", str(name)).strip("-.") or "x"
    if slug != name or len(slug) > MAX_SLUG:  # names that clean up alike must not share a file
        slug = slug[:MAX_SLUG] + "-" + hashlib.sha256(str(name).encode()).hexdigest()[:6]
    return slug


# ------------------------------------------------------------------------------ table cells


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


class Cell(NamedTuple):
    """A number as shown, and as the browser sorts it ("" when missing).

    Tuples rather than dicts in the hot paths of the templates: Jinja tries an attribute
    before an item, and a dict's failed attribute lookup costs an exception per cell.
    """

    text: str
    value: str


class HeatCell(NamedTuple):
    text: str
    spread: str
    colour: str
    ink: str


def _cell(row: Mapping[str, Any], column: Column) -> Cell:
    mean = row[column.key]
    text = format_mean_std(
        mean, row[f"{column.key}_std"], spec=column.spec, always_std=column.always_std
    )
    return Cell(text, "" if mean is None or math.isnan(mean) else repr(float(mean)))


def _single(value: Any, column: Column) -> Cell:
    number = math.nan if value is None else float(value)
    return _cell({column.key: number, f"{column.key}_std": math.nan}, column)


# ------------------------------------------------------------------------------ entry pages


def _entry(row: Mapping[str, Any], records: list[Mapping[str, Any]], *, suite: _Suite) -> dict:
    records = sorted(records, key=lambda r: (int(r["suite"].get("order_index", 0)), r["seed"]))
    reference = row["reference"] if isinstance(row["reference"], str) else None
    first = records[0]
    options = _set_options(first["method"].get("config") or {})  # one config per entry
    trials = [_trial(r, set_options=options) for r in records]
    return {
        "display": row["display"],
        "label": row["label"],
        "strategy": row["strategy"],
        "framework": row["framework"],
        "backbone": row["backbone"],
        "config_sha256": row["config_sha256"],
        "reference": REFERENCE_NAMES.get(reference, reference) if reference else "",
        "href": f"entries/{suite.slug}/{row['slug']}.html",
        "seeds": int(row["seeds"]),
        "provisional": bool(row["provisional"]),
        "pareto": {m: bool(row[f"pareto_{m}"]) for m in aggregate.ACCURACY_METRICS},
        "cells": [_cell(row, c) for c in COLUMNS],
        "task_aware": _cell(row, TASK_AWARE),
        "primary": _cell(row, COLUMN_BY_KEY[suite.info["primary_metric"]]),
        "gflops": _cell(row, COLUMN_BY_KEY["gflops_per_image"]),
        "config": _config_rows(first["method"]["config"]),
        "trials": trials,
        "provenance": _provenance_table(trials),
        "framework_report": _framework_report(records),
        "curve": _curve(records),
        "heatmap": _heatmap(records),
        "records": records,
    }


def _trial(record: Mapping[str, Any], *, set_options: list[list[str]]) -> dict[str, Any]:
    values = {**record["results"]["metrics"], **record["inference_cost"]}
    cost = record["inference_cost"]
    suite, provenance = record["suite"], record.get("provenance") or {}
    commit = provenance.get("git_commit")
    return {
        "seed": record["seed"],
        "order_index": int(suite.get("order_index", 0)),
        "order_sha256": str(suite.get("class_order_sha256") or "")[:12],
        "run_id": record["run_id"],
        "record_href": f"records/{_record_name(record['run_id'])}",
        "created_utc": record.get("created_utc") or "",
        "cells": [_single(values.get(c.key), c) for c in COLUMNS],
        "task_aware": _single(values.get(TASK_AWARE.key), TASK_AWARE),
        "gflops_check": _gflops_check(cost),
        "params_without_head": cost.get("params_millions_without_head"),
        "latency_threads": cost.get("latency_threads"),
        "wall_time_s": (record.get("timing") or {}).get("trial_wall_time_s"),
        "commit": commit or "unknown",
        "dirty": provenance.get("git_dirty"),
        "provenance": _provenance_rows(provenance),
        "reproduce": reproduce_command(record, set_options=set_options),
        "checkout": f"git checkout {commit}" if commit else "",
    }


def _gflops_check(cost: Mapping[str, Any]) -> str:
    torch_count, ptflops = cost.get("gflops_per_image_torch"), cost.get("gflops_per_image_ptflops")
    if torch_count is None or ptflops is None:
        return ""
    return f"torch {torch_count:.4g} / ptflops {ptflops:.4g}"


def _provenance_rows(provenance: Mapping[str, Any]) -> dict[str, str]:
    """Flat name -> value: packages one per row, then everything else, sorted."""
    rows = {f"package {name}": str(version)
            for name, version in sorted((provenance.get("packages") or {}).items())}  # fmt: skip
    for key in sorted(provenance):
        if key != "packages":
            rows[key] = _plain(provenance[key])
    return rows


def _provenance_table(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """One column when every seed ran in the same place (the usual case), else one per seed."""
    per_seed = [t["provenance"] for t in trials]
    names = sorted({name for rows in per_seed for name in rows})
    if all(rows == per_seed[0] for rows in per_seed):
        return {"columns": ["all seeds"], "rows": [(n, [per_seed[0][n]]) for n in names]}
    columns = [f"seed {t['seed']}" for t in trials]
    return {
        "columns": columns,
        "rows": [(n, [rows.get(n, "—") for rows in per_seed]) for n in names],
    }


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)  # 1.0 stays "1.0": the value as recorded


def _config_rows(config: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {"scope": scope, "key": key, "value": _plain(value)}
        for scope in sorted(config)
        if isinstance(config[scope], Mapping)
        for key, value in sorted(config[scope].items())
    ]


def _framework_report(records: list[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The optional ``framework_report`` objects as one table: a row per key, a column per seed."""
    reports = [r.get("framework_report") for r in records]
    if not any(isinstance(report, Mapping) and report for report in reports):
        return None
    keys = sorted({k for report in reports if isinstance(report, Mapping) for k in report})
    return {
        "seeds": [r["seed"] for r in records],
        "rows": [
            {"key": key, "values": [_report_value(rep, key) for rep in reports]} for key in keys
        ],
    }


def _report_value(report: Any, key: str) -> str:
    if not isinstance(report, Mapping) or key not in report:
        return "—"
    value = report[key]
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(f"{v:.4g}" for v in value) + "]"
    return _plain(value)


def reproduce_command(
    record: Mapping[str, Any], *, set_options: list[list[str]] | None = None
) -> str:
    """The ``cilbench run`` line that reruns this trial, one option per line.

    Every key of the resolved config is passed with ``--set``: the record does not say which
    values were defaults, and defaults may have changed since, so only explicit values rerun
    the same trial. ``set_options``: ``_set_options`` of the record's config, if known.
    """
    method = record["method"]
    parts = [
        ["cilbench", "run", "--suite", str(record["suite"]["name"])],
        ["--method", f"{method['strategy']}+{method['framework']}"],
        ["--backbone", str(method["backbone"])],
        ["--seeds", str(record["seed"])],
    ]
    if set_options is None:
        set_options = _set_options(method.get("config") or {})
    return " \\\n  ".join(" ".join(shlex.quote(p) for p in part) for part in parts + set_options)


def _set_options(config: Mapping[str, Any]) -> list[list[str]]:
    """``--set scope.key=value`` per resolved key, values as the command line parses them."""
    options = []
    for row in _config_rows(config):
        value = config[row["scope"]][row["key"]]
        text = value if isinstance(value, str) else json.dumps(value)
        options.append(["--set", f"{row['scope']}.{row['key']}={text}"])
    return options


def _record_name(run_id: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", run_id):
        return f"{run_id}.json"
    return hashlib.sha256(run_id.encode()).hexdigest()[:16] + ".json"


def _matrix(record: Mapping[str, Any]) -> np.ndarray:
    acc = record["results"]["acc_matrix_pct"]
    return np.array([[np.nan if v is None else float(v) for v in row] for row in acc])


def _curve(records: list[Mapping[str, Any]]) -> dict[str, Any]:
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


def _heatmap(records: list[Mapping[str, Any]]) -> dict[str, Any]:
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
            if np.isnan(value):
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


# ------------------------------------------------------------------------------------ plots


@dataclass(frozen=True)
class _Styles:
    """Colour per framework and marker per strategy, the same on every plot of the site."""

    colours: dict[str, str]
    markers: dict[str, str]

    @classmethod
    def of(cls, summary: pd.DataFrame) -> _Styles:
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
                *(f"pareto_{m}" for m in aggregate.ACCURACY_METRICS)]  # fmt: skip


def _plan_plots(suite: _Suite, rows: pd.DataFrame, styles: _Styles) -> None:
    """Decide the suite's figures, their files and captions."""
    rows = rows.dropna(subset=["gflops_per_image"])
    if rows.empty:
        return
    data = rows[PLOT_COLUMNS]
    title = f"{suite.name} v{suite.version}"
    primary = suite.info["primary_metric"]
    for metric in sorted(aggregate.ACCURACY_METRICS, key=lambda m: m != primary):
        stem = f"{suite.slug}-pareto-{'acc' if metric == 'final_acc_pct' else 'aia'}"
        # PNG for sharing (and the index thumbnail) only for the metric the suite ranks by:
        # each extra raster costs a third of a second per suite.
        formats = ("svg", "png") if metric == primary else ("svg",)
        suite.plot_jobs.append(
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
        suite.plots.append(_plot_entry(stem, formats, metric=metric, suite=suite, kind="pareto"))
    groups = _comparison_groups(rows)
    if not groups:
        suite.comparison_note = (
            "No strategy has both a plain and an enhanced (compressed) entry on this suite "
            "version yet, so there is no plain-vs-enhanced comparison."
        )
        return
    stem = f"{suite.slug}-plain-vs-enhanced"
    suite.plot_jobs.append(
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
    suite.plots.append(_plot_entry(stem, ("svg",), metric=primary, suite=suite, kind="comparison"))


def _plot_entry(
    stem: str, formats: Sequence[str], *, metric: str, suite: _Suite, kind: str
) -> dict[str, Any]:
    header = COLUMN_BY_KEY[metric].header
    if kind == "pareto":
        alt = f"{header} against GFLOPs per image for {suite.name} v{suite.version}"
        caption = (
            f"{header} (mean ± std over seeds) against inference GFLOPs per image, log scale. "
            "Colour: compression framework; marker: CL strategy; hollow: reference (upper or "
            "lower bound, not competing). The dashed step line is the Pareto front: no other "
            "entry is both cheaper and more accurate."
        )
    else:
        alt = f"plain versus enhanced strategies on {suite.name} v{suite.version}"
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


def _draw(job: Mapping[str, Any], plot_dir: Path) -> list[str]:
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


def _pareto_figure(rows: pd.DataFrame, *, metric: str, title: str, styles: _Styles) -> Figure:
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
    _set_flops_axis(ax, rows["gflops_per_image"])
    ax.set_xlabel("GFLOPs per image (2 × MACs, whole inference path, batch 1; log scale)")
    ax.set_ylabel(f"{COLUMN_BY_KEY[metric].header} (%), mean ± std over seeds")
    note = "" if label_all else " (labels: Pareto front only)"
    ax.set_title(f"{title}: {COLUMN_BY_KEY[metric].header} vs GFLOPs{note}")
    ax.grid(True, which="both", alpha=0.25)
    _style_legends(ax, rows, styles, has_front=not front.empty)
    return fig


def _style_legends(ax: Any, rows: pd.DataFrame, styles: _Styles, *, has_front: bool) -> None:
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


def _comparison_figure(rows: pd.DataFrame, *, metric: str, title: str, styles: _Styles) -> Figure:
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


def _variant_colours(rows: pd.DataFrame, variants: list[str], styles: _Styles) -> dict[str, str]:
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


def _set_flops_axis(ax: Any, gflops: pd.Series) -> None:
    """Log scale with plain-number tick labels ("0.5", not "5×10⁻¹").

    Matplotlib's default log labels collide when the span is only a decade or two, so majors
    sit at 1-2-5 steps (every integer step within a decade, 1 per decade for wide spans).
    """
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
    """A label as matplotlib should print it: "$" is not math, and long names are shortened."""
    text = str(text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


# ---------------------------------------------------------------------------- writing files


@cache  # compiled templates are reused by every page (and inherited by forked workers)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        # select_autoescape() decides by extension and would not match "index.html.j2".
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a typo in the template fails the build, not the page
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        columns=COLUMNS,
        task_aware=TASK_AWARE,
        column_by_key=COLUMN_BY_KEY,
        accuracy_metrics=aggregate.ACCURACY_METRICS,
        min_seeds=aggregate.MIN_SEEDS,
    )
    return env


def _raw_template(env: jinja2.Environment, name: str) -> str:
    """A template's text as is (CSS and JS are copied, not rendered)."""
    assert env.loader is not None
    return env.loader.get_source(env, name)[0]


def _write_page(env: jinja2.Environment, template: str, path: Path, **context: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(env.get_template(template).render(**context), encoding="utf-8")


def _publish_record(record: Mapping[str, Any], source: Path | None, target: Path) -> None:
    """Put a shown record next to the pages, so its link works from file:// and any host.

    A hard link to the file in results/ when possible: the same bytes, and on slow disks a
    hundred times faster than a copy. Never written through: an old link is replaced, not
    opened for writing, or a rebuild could change a record in results/.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if source is not None:
        if target.exists() and os.path.samefile(source, target):
            return
        target.unlink(missing_ok=True)
        try:
            os.link(source, target)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(source, target)
        return
    text = json.dumps(record, indent=1) + "\n"  # as write_record lays a record out
    if target.exists():
        if target.read_text(encoding="utf-8") == text:
            return
        target.unlink()
    target.write_text(text, encoding="utf-8")


def _prune(out_dir: Path, written: set[str]) -> None:
    """Remove what an earlier build wrote and this one did not (pages of vanished entries).

    Files are overwritten in place rather than deleted first: on some disks deleting costs ten
    times more than rewriting. Only the file kinds this builder writes, inside its own
    subfolders, are touched: pointing ``--out`` at the wrong folder must not delete anything.
    """
    for folder, suffixes in OWNED.items():
        # os.walk and plain strings: a site has tens of thousands of files to look at.
        for parent, _dirs, files in os.walk(out_dir / folder, topdown=False):
            relative = Path(parent).relative_to(out_dir).as_posix()
            for name in files:
                if name.endswith(suffixes) and f"{relative}/{name}" not in written:
                    os.unlink(os.path.join(parent, name))
            if not os.listdir(parent):
                os.rmdir(parent)
