"""The contract, checked automatically for every built-in strategy x framework (timm-style).

A new built-in adapter gets these tests for free: it runs on the tiny suite in about a
second. Each trial runs once per session (``tests/contract_trials.py``, shared with the other
test files) and once more for the determinism check (``tests/contract_source.py``). The
checks are ``harness.api.contract_checks``, the same ones ``cilbench check-adapter`` applies.

Only built-in adapters (``methods.*``) are covered: an installed plugin is checked by
``cilbench check-adapter`` and its own tests, so a broken plugin cannot turn this project's
tests red (``tests/test_check_adapter.py`` checks plugins, installed the way users do).
"""

from __future__ import annotations

import itertools

import pytest

from harness.api import contract_checks as checks
from harness.api.adapters import FRAMEWORKS, STRATEGIES, load_adapters
from harness.api.conformance import built_in_names
from harness.api.testing import tiny_suite
from harness.data.stream import TestDataAccessError
from harness.run.trial import run_trial
from tests.contract_source import rerun_record
from tests.contract_trials import contract_trial, tiny_record, tiny_spec

load_adapters()
BUILT_IN_STRATEGIES = built_in_names(STRATEGIES)
PAIRS = list(itertools.product(BUILT_IN_STRATEGIES, built_in_names(FRAMEWORKS)))
# Compositions a framework refuses (Framework.refusal, e.g. pre-pruning a growing network)
# are checked to fail before training; every other one keeps the whole contract.
REFUSED = [(s, f) for s, f in PAIRS if FRAMEWORKS.get(f).refusal(STRATEGIES.get(s))]
COMBINATIONS = [pair for pair in PAIRS if pair not in REFUSED]
COMPRESSING = [(s, f) for s, f in COMBINATIONS if FRAMEWORKS.get(f).compresses]
# Strategies whose tiny-suite accuracies move with the seed (each says so:
# Strategy.seed_sensitive_on_tiny_suite); at least one must, or nothing checks the seed.
SEED_SENSITIVE = [s for s in BUILT_IN_STRATEGIES if STRATEGIES.get(s).seed_sensitive_on_tiny_suite]


def holds(result: checks.CheckResult) -> None:
    assert result.passed, f"{result.check}: {result.explained()}"


@pytest.mark.parametrize("strategy, framework", COMBINATIONS)
def test_every_adapter_keeps_the_contract(strategy: str, framework: str) -> None:
    """Through the harness's own path (test data sealed while learning: a read fails the
    trial): a prediction for every seen task after every task, memory within budget."""
    trial = contract_trial(strategy, framework)
    record = trial.record
    assert record["status"] == "ok", record["error"]
    holds(checks.check_learns_without_test_data(record))
    holds(checks.check_no_task_id_at_inference(record))
    holds(checks.check_scores_cover_seen_classes(record))  # both matrices: shape, range, None
    holds(checks.check_memory_within_budget(record))
    # What the record says the memory held is what the harness saw it hold.
    num_tasks = record["suite"]["num_tasks"]
    assert len(trial.memory_after_task) == num_tasks
    kept = tuple(row["exemplars"] for row in record["memory"]["after_task"])
    assert kept == trial.memory_after_task
    if STRATEGIES.get(strategy).unbounded_memory:
        assert trial.memory_budget is None
    else:
        assert trial.memory_budget == tiny_suite().exemplar_budget
        assert max(trial.memory_after_task) <= trial.memory_budget


@pytest.mark.parametrize("strategy, framework", COMBINATIONS)
def test_every_adapter_is_deterministic_and_writes_a_valid_record(strategy, framework) -> None:
    first = tiny_record(strategy, framework)
    assert first["status"] == "ok", first["error"]
    second = rerun_record(strategy, framework)  # the one rerun of this trial
    holds(checks.check_deterministic(first, second))
    holds(checks.check_record_valid(first))
    # The served backbone is registered, FLOPs and parameters > 0, a head, every op counted,
    # torch's and ptflops' counts within 2%.
    holds(checks.check_cost_measurable(first))
    holds(checks.check_training_budget_spent(first))  # spent == declared, as the meter checked


@pytest.mark.parametrize("strategy, framework", COMPRESSING)
def test_compressing_frameworks_serve_a_cheaper_model(strategy, framework) -> None:
    holds(checks.check_cheaper(tiny_record(strategy, "none"), tiny_record(strategy, framework)))


def test_some_strategy_shows_whether_the_seed_reaches_training() -> None:
    assert SEED_SENSITIVE, "no strategy's tiny-suite accuracies depend on the seed"


@pytest.mark.parametrize("strategy", SEED_SENSITIVE)
def test_a_seed_changes_the_run(strategy: str) -> None:
    a = tiny_record(strategy, "none", seed=1)
    b = tiny_record(strategy, "none", seed=2)
    holds(checks.check_seed_reaches_training(a, b))  # two run ids, two accuracy matrices


def test_reading_test_data_while_learning_fails_the_trial(monkeypatch) -> None:
    """An adapter that reaches for test data during learning is stopped by the harness."""
    import harness.run.trial as trial_module

    real_stream_for_suite = trial_module.stream_for_suite
    captured = {}

    def spying_stream(*args, **kwargs):
        captured["stream"] = real_stream_for_suite(*args, **kwargs)
        return captured["stream"]

    finetune = STRATEGIES.get("finetune")
    monkeypatch.setattr(trial_module, "stream_for_suite", spying_stream)
    monkeypatch.setattr(
        finetune, "begin_task", lambda self, model, task: captured["stream"].test.read()
    )
    record = run_trial(tiny_spec("finetune", "none"))
    assert record["status"] == "failed"
    assert record["error"]["type"] == TestDataAccessError.__name__
    result = checks.check_learns_without_test_data(record)
    assert result.status == checks.FAIL and "TestDataAccessError" in result.message


@pytest.mark.parametrize("strategy, framework", REFUSED)
def test_refused_compositions_fail_before_anything_trains(strategy, framework, monkeypatch):
    """A refused composition fails when the trial is resolved, with the framework's reason,
    and the learner is never built."""
    import harness.run.trial as trial_module

    def never(*args, **kwargs):
        raise AssertionError("a refused composition built its learner")

    monkeypatch.setattr(trial_module, "build_learner", never)
    record = run_trial(tiny_spec(strategy, framework))
    assert record["status"] == "failed"
    reason = FRAMEWORKS.get(framework).refusal(STRATEGIES.get(strategy))
    assert f"{strategy}+{framework} is refused: {reason}" in record["error"]["message"]


def test_pre_pruning_refuses_exactly_the_strategies_whose_network_grows() -> None:
    growing = {s for s in BUILT_IN_STRATEGIES if STRATEGIES.get(s).network_growth}
    assert {"der", "memo"} <= growing
    assert {s for s, f in REFUSED if f == "prepruning"} == growing
