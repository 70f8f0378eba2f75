"""The contract, checked automatically for every registered strategy x framework (timm-style).

A new adapter gets these tests for free: it runs on the tiny suite in about a second. Each
trial runs once per session (``tests/contract_trials.py``, shared with the other test files)
and once more for the determinism check.
"""

from __future__ import annotations

import itertools

import pytest

from harness.api.adapters import FRAMEWORKS, STRATEGIES, load_adapters
from harness.api.testing import tiny_suite
from harness.cost.inference import why_not_cheaper
from harness.data.stream import TestDataAccessError
from harness.models.backbones import BACKBONES
from harness.records.validation import validate_record
from harness.run.trial import run_trial
from tests.contract_trials import contract_trial, tiny_record, tiny_spec

load_adapters()
PAIRS = list(itertools.product(STRATEGIES.names(), FRAMEWORKS.names()))
# Compositions a framework refuses (Framework.refusal, e.g. pre-pruning a growing network)
# are checked to fail before training; every other one keeps the whole contract.
REFUSED = [(s, f) for s, f in PAIRS if FRAMEWORKS.get(f).refusal(STRATEGIES.get(s))]
COMBINATIONS = [pair for pair in PAIRS if pair not in REFUSED]
COMPRESSING = [(s, f) for s, f in COMBINATIONS if FRAMEWORKS.get(f).compresses]
# Strategies whose tiny-suite accuracies move with the seed (each says so:
# Strategy.seed_sensitive_on_tiny_suite); at least one must, or nothing checks the seed.
SEED_SENSITIVE = [s for s in STRATEGIES.names() if STRATEGIES.get(s).seed_sensitive_on_tiny_suite]


@pytest.mark.parametrize("strategy, framework", COMBINATIONS)
def test_every_adapter_keeps_the_contract(strategy: str, framework: str) -> None:
    """Through the harness's own path (test data sealed while learning: a read fails the
    trial): a prediction for every seen task after every task, memory within budget."""
    trial = contract_trial(strategy, framework)
    record = trial.record
    assert record["status"] == "ok", record["error"]
    num_tasks = record["suite"]["num_tasks"]
    for matrix in ("acc_matrix_pct", "task_aware_acc_matrix_pct"):
        rows = record["results"][matrix]
        assert len(rows) == num_tasks
        for i, row in enumerate(rows):
            seen, unseen = row[: i + 1], row[i + 1 :]
            assert all(a is not None and 0.0 <= a <= 100.0 for a in seen), (matrix, i, row)
            assert unseen == [None] * (num_tasks - i - 1), (matrix, i, row)
    assert len(trial.memory_after_task) == num_tasks
    if STRATEGIES.get(strategy).unbounded_memory:
        assert trial.memory_budget is None
    else:
        assert trial.memory_budget == tiny_suite().exemplar_budget
        assert max(trial.memory_after_task) <= trial.memory_budget


@pytest.mark.parametrize("strategy, framework", COMBINATIONS)
def test_every_adapter_is_deterministic_and_writes_a_valid_record(strategy, framework) -> None:
    first = tiny_record(strategy, framework)
    assert first["status"] == "ok", first["error"]
    second = run_trial(tiny_spec(strategy, framework))  # the one rerun of this trial
    assert validate_record(first) == []
    assert first["results"]["acc_matrix_pct"] == second["results"]["acc_matrix_pct"]
    served = first["method"]["inference_backbone"]  # read from the module that served
    assert served in BACKBONES, f"{strategy}+{framework} names {served!r} as what served"
    cost = first["inference_cost"]
    assert cost["gflops_per_image"] > 0 and cost["params_millions"] > 0
    assert cost["params_millions_without_head"] < cost["params_millions"]
    assert cost["gflops_per_image_ptflops"] == pytest.approx(cost["gflops_per_image"], rel=0.02)
    assert cost["uncounted_ops"] == []  # every op of every served model has a formula
    budget = first["training_budget"]  # spent == declared, or the trial would have failed
    declared = {(t + 1, role): epochs for t, row in enumerate(budget["declared_epochs"])
                for role, epochs in row.items() if epochs}  # fmt: skip
    assert {(row["task"], row["role"]): row["epochs"] for row in budget["spent"]} == declared


@pytest.mark.parametrize("strategy, framework", COMPRESSING)
def test_compressing_frameworks_serve_a_cheaper_model(strategy, framework) -> None:
    plain = tiny_record(strategy, "none")["inference_cost"]
    compressed = tiny_record(strategy, framework)["inference_cost"]
    problem = why_not_cheaper(plain, compressed)
    assert problem is None, problem


def test_some_strategy_shows_whether_the_seed_reaches_training() -> None:
    assert SEED_SENSITIVE, "no strategy's tiny-suite accuracies depend on the seed"


@pytest.mark.parametrize("strategy", SEED_SENSITIVE)
def test_a_seed_changes_the_run(strategy: str) -> None:
    a = tiny_record(strategy, "none", seed=1)
    b = tiny_record(strategy, "none", seed=2)
    assert a["run_id"] != b["run_id"]
    assert a["results"]["acc_matrix_pct"] != b["results"]["acc_matrix_pct"]


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
    growing = {s for s in STRATEGIES.names() if STRATEGIES.get(s).network_growth}
    assert {"der", "memo"} <= growing
    assert {s for s, f in REFUSED if f == "prepruning"} == growing
