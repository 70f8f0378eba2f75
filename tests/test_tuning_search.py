"""The real Ray Tune search on the tiny suite (slow: two searches and a run, about a minute)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.api.testing import write_tiny_suite
from harness.cli import main
from harness.leaderboard.aggregate import records_to_frame, summarize
from harness.records.store import load_records
from harness.run.scheduler import SchedulerOptions
from harness.tuning import tune_method

pytestmark = pytest.mark.slow


def test_the_search_is_seeded_spends_the_suites_budget_and_its_winner_runs_as_a_twin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suites = tmp_path / "suites"
    suites.mkdir()
    suite_file = write_tiny_suite(suites)
    suite_file.write_text(suite_file.read_text() + "tuning: {samples: 3, grace_tasks: 1}\n")
    monkeypatch.setenv("CILBENCH_SUITES", str(suites))
    options = SchedulerOptions(max_concurrent=1, num_cpus=1)
    request = tune_method.TuneRequest(suite="tiny-3split", method="lwf", seed=3, debug=True)
    first, path = tune_method.tune(request, options)
    again, _ = tune_method.tune(request, options)
    # The suite's budget: 3 configurations, the method's own first among them.
    assert len(first.tried) == 3
    assert {"strategy.lambda_kd": 1.0, "strategy.temperature": 2.0} in [
        t.values for t in first.tried
    ]
    # Seeded: the same command tries the same configurations, and each scores the same on
    # the tasks it learned in both runs (ASHA's stops may differ with the order Ray runs them).
    assert [t.values for t in first.tried] == [t.values for t in again.tried]
    for one, two in zip(first.tried, again.tried, strict=True):
        learned = min(len(one.val_acc_pct), len(two.val_acc_pct))
        assert one.val_acc_pct[:learned] == two.val_acc_pct[:learned]
    # The tuner saw validation accuracies only, one per task learned.
    assert all(0 < len(t.val_acc_pct) <= 3 for t in first.tried)
    content = json.loads(path.read_text())
    assert content["search"]["debug"] is True  # --quick: only debug runs use it

    results = tmp_path / "results"
    code = main(["run", "--suite", "tiny-3split", "--method", "lwf", "--seeds", "1", "--quick",
                 "--results", str(results), "--no-site", "--num-cpus", "1"])  # fmt: skip
    assert code == 0
    records = load_records(results)
    tuned = [r for r in records if "tuned" in r["method"]]
    assert len(records) == 2 and len(tuned) == 1
    assert tuned[0]["method"]["tuned"]["file"] == "tuned/tiny-3split/compact_cnn/lwf.json"
    # Two rows on the board: the tuned twin is never averaged with the untuned trial.
    shown = [{**r, "debug": False} for r in records]  # the board leaves debug records out
    rows = summarize(records_to_frame(shown))
    assert sorted(rows["tuned"] != "") == [False, True]
