"""Records -> a static leaderboard site: an index, one page per suite version and per entry.

Layout of the output folder (every link relative, so it works from ``file://`` and any host):

    index.html                          suites, sizes, versions, best entries, Pareto thumbnails
    suites/<suite>-v<N>.html            sortable, filterable table; Pareto plots; metric legend;
                                        the suite's published reference points, when given
    suites/<suite>-v<N>-compare.html    its entries side by side (those chosen on the table)
    entries/<suite>-v<N>/<entry>.html   config, provenance, per-seed numbers, curves, heatmap
    plots/<suite>-v<N>-*.svg|.png       matplotlib figures: SVG on the pages, PNG to share
    records/<run id>.json               every record shown, as the harness wrote it
    downloads/<suite>-v<N>.csv|.json    the suite version's table as data (see ``downloads``)
    downloads/records.zip               every record shown, in one archive, byte for byte
    methods/index.html, methods/<kind>-<name>.html
                                        method cards, when the build is given ``cards``
    style.css, leaderboard.js           the only assets: no CDN, no network at view time

Published reference points (``targets``, read by the command line from ``suites/targets/``)
are shown on the pages of the suite versions they apply to, in a table of their own and on
the Pareto plots, never ranked; a suite with reference points and no records yet gets a page
of them at its current version, linked from the index.

The build owns only the files it lists in ``.cilbench-site.json``; anything else in the folder
is kept. It writes the whole site into a new folder beside ``out_dir`` and swaps it in at the
end, so a failure part-way leaves the previous site as it was (see ``files``).

Same records, same bytes: everything is sorted, matplotlib's SVG ids are salted with a constant
and no file carries a date, except the one build stamp on ``index.html``.

This module runs the build; the pieces live beside it in ``harness.leaderboard``, one
concept each (see the package's docstring). Dependency fence (all of them): jinja2,
matplotlib (no pyplot), pandas, numpy and the standard library; never torch or Ray.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.leaderboard import aggregate, fronts, usable
from harness.leaderboard.columns import COLUMNS
from harness.leaderboard.downloads import write_records_archive, write_suite_downloads
from harness.leaderboard.figure_style import PlotStyles
from harness.leaderboard.files import (
    ASSETS,
    inspect_output_folder,
    new_stage_folder,
    publish_record,
    swap_in,
    template_environment,
    template_source,
    write_page,
)
from harness.leaderboard.latencies import latency_frame, summarize_latencies
from harness.leaderboard.method_cards import (
    card_hrefs,
    entry_card_links,
    method_uses,
    write_method_cards,
)
from harness.leaderboard.plots import add_reference_points, draw_plot
from harness.leaderboard.stale import SuiteVersion, build_stale_only, set_apart_stale
from harness.leaderboard.suite_page import SuiteJob, SuitePage, build_suite_page
from harness.leaderboard.targets import (
    ReferencePoint,
    SuiteTargets,
    reference_frame,
    reference_table,
)
from harness.records.staleness import CurrentSuite

logger = logging.getLogger(__name__)

PARALLEL_FROM_RECORDS = 500  # below this, starting worker processes costs more than it saves


def build_site(
    records: Iterable[Mapping[str, Any]],
    out_dir: str | Path,
    *,
    generated_at: datetime | None = None,
    skipped: Sequence[str] = (),
    sources: Mapping[str, Path] | None = None,
    workers: int | None = None,
    cards: Mapping[str, Mapping[str, Any]] | None = None,
    targets: Mapping[str, SuiteTargets] | None = None,
    suites: Mapping[str, CurrentSuite] | None = None,
) -> Path:
    """Write the site into ``out_dir`` and return the path of its ``index.html``.

    ``skipped``: the loader's warnings (``LoadedRecords.warnings``), listed on the index.
    ``sources``: run id -> record file (``LoadedRecords.sources``), copied byte for byte; other
    records are written as ``write_record`` would. ``workers``: processes building suite
    versions side by side (default: one per CPU for large builds, none for small ones).
    ``cards``: the method cards' content (``harness.cli.method_cards.method_cards``, read from
    the adapters, which this package may not import); without them the site has no card
    pages and its entries link to none. ``targets``: suite name -> its published reference
    points (``harness.leaderboard.targets.load_targets_folder``); without them no page shows
    any. ``suites``: the current suite files (``staleness.read_current_suites``), which
    judge the stale records (``harness.leaderboard.stale``); without them none is stale.

    Raises ``SiteFolderError`` (a ``ValueError``) when ``out_dir`` holds files the builder did
    not write and has no manifest of its own files; nothing is changed then, nor on any other
    error: the previous site stays whole until the new one is complete.
    """
    given = Path(out_dir)
    out_dir = given.resolve()  # a link to a folder: replace the folder, not the link
    previous = inspect_output_folder(out_dir)
    records, stale = set_apart_stale(list(records), suites)  # before deduplicating
    records, duplicates = aggregate.drop_duplicate_trials(records)
    records, unusable = usable.drop_unusable_records(records)
    for warning in duplicates + unusable:
        logger.warning("%s", warning)
    stage = new_stage_folder(out_dir)
    try:
        cards, written = _build_into(
            stage,
            records,
            stale=stale,
            sources=sources or {},
            workers=workers,
            num_records=len(records) + len(duplicates) + len(unusable) + _count(stale),
            generated_at=generated_at or datetime.now(UTC),
            skipped=[*skipped, *duplicates, *unusable],
            method_cards=cards,
            targets=targets or {},
        )
        swap_in(stage, out_dir, written=written, previous=previous)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    index = given / "index.html"
    logger.info("wrote %s: %d suite versions, %d entries, %d records shown", index, len(cards),
                sum(card["num_entries"] for card in cards),
                sum(card["counts"]["ok"] for card in cards))  # fmt: skip
    return index


def _count(stale: Mapping[SuiteVersion, list[dict[str, Any]]]) -> int:
    return sum(len(listed) for listed in stale.values())


def _build_into(
    stage: Path,
    records: list[Mapping[str, Any]],
    *,
    stale: Mapping[SuiteVersion, list[dict[str, Any]]],
    sources: Mapping[str, Path],
    workers: int | None,
    num_records: int,
    generated_at: datetime,
    skipped: list[str],
    method_cards: Mapping[str, Mapping[str, Any]] | None,
    targets: Mapping[str, SuiteTargets],
) -> tuple[list[dict[str, Any]], set[str]]:
    """The whole site in ``stage``; returns the index cards and every file written."""
    jobs = _suite_jobs(records, sources, stale)
    cards = _run_suite_jobs(jobs, stage, workers, card_hrefs(method_cards), targets)
    # A version whose every shown record is stale still gets its page, listing them.
    latest, built = _latest_versions(records, stale), {(job.name, job.version) for job in jobs}
    cards += [build_stale_only(key, stale[key], stage, latest=latest[key[0]])
              for key in sorted(stale) if key not in built]  # fmt: skip
    with_records = {card["name"] for card in cards}
    cards += [_build_reference_only(suite, stage)
              for name, suite in sorted(targets.items()) if name not in with_records]  # fmt: skip
    cards.sort(key=lambda card: (card["name"], -card["version"]))  # as the jobs are
    _warn_unshown(targets, cards)
    written = {path for card in cards for path in card.pop("written")}
    uses = [use for card in cards for use in card.pop("method_uses")]
    methods_index, methods_written = write_method_cards(stage, method_cards, uses)
    archive = write_records_archive(stage, (p for p in written if p.startswith("records/")))
    env = template_environment()
    for name, template in ASSETS.items():
        (stage / name).write_text(template_source(env, template), encoding="utf-8")
    write_page(
        env,
        "index.html.j2",
        stage / "index.html",
        root="",
        current=[card for card in cards if card["current"]],
        archived=[card for card in cards if not card["current"]],
        num_records=num_records,
        num_shown=sum(card["counts"]["ok"] for card in cards),
        no_results=all(card["reference_only"] for card in cards),
        generated_at=generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        skipped=skipped,
        records_archive=archive,
        methods_index=methods_index,
    )
    return cards, written | set(methods_written) | set(ASSETS) | {"index.html", archive.href}


# ------------------------------------------------------------------------- suite versions


def _suite_jobs(
    records: list[Mapping[str, Any]],
    sources: Mapping[str, Path],
    stale: Mapping[SuiteVersion, list[dict[str, Any]]],
) -> list[SuiteJob]:
    """One job per suite version of ``records`` (``build_site`` has dropped unusable ones and
    set the stale ones apart: each job lists its version's)."""
    frame = aggregate.records_to_frame(records, checked=True)
    summary = fronts.add_memory_front(fronts.add_pareto_columns(aggregate.summarize(frame)))
    latencies = summarize_latencies(latency_frame(records, checked=True))
    styles = PlotStyles.of(summary)
    latest = _latest_versions(records, stale)
    by_version: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for record in records:
        key = (record["suite"]["name"], int(record["suite"]["version"]))
        by_version.setdefault(key, []).append(record)
    jobs = []
    for count in aggregate.count_excluded(records).to_dict("records"):
        name, version = count["suite"], int(count["suite_version"])
        mine = by_version[(name, version)]
        jobs.append(
            SuiteJob(
                name=name,
                version=version,
                latest=latest[name],
                counts={k: int(count[k]) for k in ("ok", "failed", "debug")},
                rows=summary[(summary["suite"] == name) & (summary["suite_version"] == version)],
                latencies=latencies[
                    (latencies["suite"] == name) & (latencies["suite_version"] == version)
                ],
                records=mine,
                sources={r["run_id"]: sources[r["run_id"]] for r in mine if r["run_id"] in sources},
                styles=styles,
                stale=tuple(stale.get((name, version), ())),
            )
        )
    # Newest version first within a suite: the index lists the current one, then archives.
    return sorted(jobs, key=lambda job: (job.name, -job.version))


def _latest_versions(
    records: list[Mapping[str, Any]], stale: Mapping[SuiteVersion, list[dict[str, Any]]]
) -> dict[str, int]:
    """Each suite's newest version with a page: of its ranked records or its stale ones."""
    latest = aggregate.current_versions(records)
    for name, version in stale:
        latest[name] = max(version, latest.get(name, version))
    return latest


def _run_suite_jobs(
    jobs: list[SuiteJob],
    out_dir: Path,
    workers: int | None,
    card_pages: Mapping[str, str],
    targets: Mapping[str, SuiteTargets],
) -> list[dict[str, Any]]:
    """Build every suite version; each returns its index card. Output does not depend on order.

    ``card_pages``: ``"<kind>:<name>"`` -> method card page, for the entries' links;
    ``targets``: each suite's published reference points.

    Suite versions are independent, so large builds fork one worker per CPU. Only fork: the
    workers inherit matplotlib and pandas already imported (spawning costs seconds each and
    needs an importable ``__main__``), and only from a single-threaded process, which fork
    cannot deadlock. Anywhere else the build simply runs in this process.
    """
    if workers is None:
        big = sum(len(job.records) for job in jobs) >= PARALLEL_FROM_RECORDS
        workers = min(_usable_cpus(), len(jobs)) if big else 1
    points = [targets[j.name].for_version(j.version) if j.name in targets else () for j in jobs]
    if workers <= 1 or len(jobs) <= 1 or not _can_fork():
        return [_build_suite(jobs[i], out_dir, card_pages, points[i]) for i in range(len(jobs))]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        # Largest first, so one big suite does not start last and finish alone.
        order = sorted(range(len(jobs)), key=lambda i: -len(jobs[i].records))
        futures = {
            i: pool.submit(_build_suite, jobs[i], out_dir, card_pages, points[i]) for i in order
        }
        return [futures[i].result() for i in range(len(jobs))]


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _build_suite(
    job: SuiteJob,
    out_dir: Path,
    card_pages: Mapping[str, str],
    points: Sequence[ReferencePoint] = (),
) -> dict[str, Any]:
    """Pages, downloads, plots and raw records of one suite version; returns its index card
    (with every file written, and what the method cards show of its entries). ``points``: the
    published reference points shown beside its table and on its Pareto plots."""
    suite = build_suite_page(job)
    env = template_environment()
    add_reference_points(suite.plots, suite.plot_jobs, reference_frame(points))
    downloads = write_suite_downloads(suite, job, out_dir)
    written = [suite.href, *(download.href for download in downloads)]
    write_page(env, "suite.html.j2", out_dir / suite.href, root="../", suite=suite,
               downloads=downloads, references=reference_table(points))  # fmt: skip
    if suite.entries:  # its entries side by side; the suite page links it
        write_page(env, "compare.html.j2", out_dir / suite.compare_href, root="../", suite=suite)
        written.append(suite.compare_href)
    for entry in suite.entries:
        page = out_dir / entry["href"]
        links = entry_card_links(entry, card_pages)
        write_page(
            env, "entry.html.j2", page, root="../../", suite=suite, entry=entry, method_links=links
        )
        written.append(entry["href"])
        for trial, record in zip(entry["trials"], entry["records"], strict=True):
            publish_record(
                record, job.sources.get(record["run_id"]), out_dir / trial["record_href"]
            )
            written.append(trial["record_href"])
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    for plot_job in suite.plot_jobs:
        written += draw_plot(plot_job, out_dir / "plots")
    uses = method_uses(suite.entries, suite=f"{suite.name} v{suite.version}",
                       suite_href=suite.href, current=suite.current)  # fmt: skip
    return {**suite.card(), "downloads": downloads, "written": written, "method_uses": uses,
            "reference_points": len(points), "reference_only": False}  # fmt: skip


def _build_reference_only(targets: SuiteTargets, out_dir: Path) -> dict[str, Any]:
    """The page of a suite with published reference points and no records yet (at its
    current version): the points, and that no trial has run; returns its index card."""
    suite = SuitePage(
        name=targets.suite,
        version=targets.current_version,
        current=True,
        superseded_by=None,
        info={
            "primary_metric": "final_acc_pct",
            "primary_header": "ACC",
            "tasks_text": "no trials yet",
            "exemplar_budget": None,
            "file_sha256": [],
            "class_orders": [],
        },
        counts={"ok": 0, "failed": 0, "debug": 0},
        columns=COLUMNS,  # the legend defines the reference table's metrics
    )
    points = targets.for_version(targets.current_version)
    write_page(template_environment(), "suite.html.j2", out_dir / suite.href, root="../",
               suite=suite, downloads=[], references=reference_table(points))  # fmt: skip
    return {**suite.card(), "downloads": [], "written": [suite.href], "method_uses": [],
            "reference_points": len(points), "reference_only": True}  # fmt: skip


def _warn_unshown(targets: Mapping[str, SuiteTargets], cards: list[dict[str, Any]]) -> None:
    """Name the reference points no page shows (a version of their suite with no page)."""
    versions: dict[str, set[int]] = {}
    for card in cards:
        versions.setdefault(card["name"], set()).add(card["version"])
    for name, suite in sorted(targets.items()):
        for point in suite.points:
            if not any(point.applies_to(v) for v in versions.get(name, ())):
                logger.warning("reference point %r of %s applies to v%s, which has no page",
                               point.label, name, point.suite_version)  # fmt: skip
