"""The committed records are the leaderboard's source of truth, so CI validates them (as MTEB
validates submitted results): strictly valid under this schema, one per trial of the suite's
current grid (a schema or run-id change that leaves them stale fails here), and costed with
every op counted.

What is checked is what git tracks under ``results/``: a researcher's own records there (a new
method's trials, a rerun) never fail the project's tests; they are checked when committed.
Outside a git checkout, every file under ``results/`` counts as committed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.records.safe_parse import load_json
from harness.records.validation import cost_warnings, validate_record
from harness.run.grid import plan_trials

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def committed_record_files() -> list[Path]:
    """The record files git tracks under ``results/`` (all of them outside a checkout)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", "results/"], cwd=ROOT, capture_output=True,
            check=True, text=True, timeout=60,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return sorted(RESULTS.glob("**/*.json"))
    return sorted(ROOT / name for name in listed.split("\0") if name.endswith(".json"))


COMMITTED = committed_record_files()
SUITES = sorted({path.relative_to(RESULTS).parts[0] for path in COMMITTED})


def _committed_records() -> list[dict]:
    records, problems = [], []
    for path in COMMITTED:
        record = load_json(path.read_text(encoding="utf-8"), source=path.name)
        problems += [f"{path.relative_to(ROOT)}: {p}" for p in validate_record(record)]
        records.append(record)
    assert problems == [], "\n".join(problems)
    return records


def test_every_committed_record_is_valid_under_this_schema() -> None:
    records = _committed_records()
    assert records and all(r["status"] == "ok" and not r["debug"] for r in records)
    assert cost_warnings(records) == []


@pytest.mark.parametrize("suite", SUITES)
def test_the_committed_records_are_the_suites_current_grid(suite: str) -> None:
    plan = plan_trials(suite=suite, results_dir=RESULTS)
    missing = [f"{t.spec.label} seed {t.spec.seed}" for t in plan.resolved]
    assert missing == [], (
        f"{len(missing)} trial(s) of {suite}'s grid have no record under results/ (restore "
        f"them with git checkout -- results/{suite}, or rerun: cilbench run --suite {suite}): "
        + ", ".join(missing[:10])
    )
    committed = {path.stem.split("-", 1)[1]: path for path in COMMITTED
                 if path.relative_to(RESULTS).parts[0] == suite}  # fmt: skip
    stale = sorted(str(committed[r].relative_to(ROOT)) for r in set(committed) - plan.run_ids)
    assert stale == [], (
        f"committed records of {suite} outside its current grid (an older run id or a method "
        f"the suite does not list): {stale[:10]}; delete them with git rm, or add their "
        "method to the suite"
    )
    assert plan.run_ids <= set(committed), "some trials of the grid have no committed record"
