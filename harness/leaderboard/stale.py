"""Stale records on the site: made from a suite other than the current one of their version
(or of a suite whose file is gone), set apart before ranking and listed on their suite
version's page, never ranked with current records.

Older *versions* of a suite that still has a file are not stale here: they have archived
pages of their own. What is stale is a record whose version is the current one (or newer) but
whose protocol (or, for a record older than protocol hashes, whose file) is not the current
file's, or whose suite has no current file (``harness.records.staleness.stale_reason``). The
current suites are handed in by the command line: this package never reads suite files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.leaderboard.columns import COLUMNS
from harness.leaderboard.files import template_environment, write_page
from harness.leaderboard.suite_page import SuitePage
from harness.leaderboard.usable import is_leaderboard_record
from harness.records.staleness import CurrentSuite, is_superseded_version, stale_reason

SuiteVersion = tuple[str, int]


def set_apart_stale(
    records: Iterable[Mapping[str, Any]], suites: Mapping[str, CurrentSuite] | None
) -> tuple[list[Mapping[str, Any]], dict[SuiteVersion, list[dict[str, Any]]]]:
    """The records to rank, and per suite version the stale ones as their page lists them.

    Only records the leaderboard would show are set apart (failed and debug ones are left
    out and counted as before); ``suites`` None: nothing is judged, everything is kept.
    Called before trials are deduplicated: a newer stale copy of a trial must never displace
    its current record."""
    kept: list[Mapping[str, Any]] = []
    stale: dict[SuiteVersion, list[dict[str, Any]]] = {}
    for record in records:
        reason = _reason(record, suites)
        if reason is None:
            kept.append(record)
            continue
        key = (record["suite"]["name"], int(record["suite"]["version"]))
        stale.setdefault(key, []).append(_listed(record, reason))
    for listed in stale.values():
        listed.sort(key=lambda s: (s["label"], s["backbone"], s["seed"], s["run_id"]))
    return kept, stale


def _reason(record: Mapping[str, Any], suites: Mapping[str, CurrentSuite] | None) -> str | None:
    if suites is None or not is_leaderboard_record(record):
        return None
    if is_superseded_version(record, suites):
        return None  # an older version: its own archived page
    return stale_reason(record, suites)


def _listed(record: Mapping[str, Any], reason: str) -> dict[str, Any]:
    method = record["method"]
    return {
        "label": method["label"],
        "backbone": method["backbone"],
        "seed": record["seed"],
        "run_id": record["run_id"],
        "file_sha256": str(record["suite"].get("file_sha256")),
        "reason": reason,
    }


def build_stale_only(
    key: SuiteVersion, listed: list[dict[str, Any]], out_dir: Path, *, latest: int
) -> dict[str, Any]:
    """The page of a suite version whose every shown record is stale: no ranked table, the
    stale records listed with why; returns its index card."""
    name, version = key
    suite = SuitePage(
        name=name,
        version=version,
        current=version == latest,
        superseded_by=None if version == latest else latest,
        info={
            "primary_metric": "final_acc_pct",
            "primary_header": "ACC",
            "tasks_text": "no current trials",
            "exemplar_budget": None,
            "file_sha256": [],
            "class_orders": [],
        },
        counts={"ok": 0, "failed": 0, "debug": 0},
        columns=COLUMNS,  # the legend defines the metrics named on the page
        stale=listed,
    )
    write_page(template_environment(), "suite.html.j2", out_dir / suite.href, root="../",
               suite=suite, downloads=[], references=None)  # fmt: skip
    return {**suite.card(), "downloads": [], "written": [suite.href], "method_uses": [],
            "reference_points": 0, "reference_only": False}  # fmt: skip
