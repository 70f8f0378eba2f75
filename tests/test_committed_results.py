"""The committed records are the leaderboard's source of truth, so CI validates them (as MTEB
validates submitted results): strictly valid under this schema, one per trial of the suite's
current grid (a schema or run-id change that leaves them stale fails here), and costed with
every op counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.records.store import load_records
from harness.records.validation import cost_warnings
from harness.run.grid import plan_trials

RESULTS = Path(__file__).resolve().parents[1] / "results"
SUITES = sorted(p.name for p in RESULTS.iterdir() if p.is_dir()) if RESULTS.is_dir() else []


def test_every_committed_record_is_valid_under_this_schema() -> None:
    records = load_records(RESULTS)  # raises, naming each file, on any invalid record
    assert records and all(r["status"] == "ok" and not r["debug"] for r in records)
    assert cost_warnings(records) == []


@pytest.mark.parametrize("suite", SUITES)
def test_the_committed_records_are_the_suites_current_grid(suite: str) -> None:
    plan = plan_trials(suite=suite, results_dir=RESULTS)
    assert plan.resolved == [], f"{len(plan.resolved)} trial(s) of {suite} have no record"
    on_disk = {path.stem.split("-", 1)[1] for path in (RESULTS / suite).glob("**/seed*-*.json")}
    assert on_disk == plan.run_ids  # no stale record of an older run id either
