"""The contract, checked automatically for every registered strategy x framework (timm-style).

A new adapter gets these tests for free: it runs on the tiny suite in about a second.
"""

from __future__ import annotations

import itertools

import pytest

from harness.adapters import FRAMEWORKS, STRATEGIES, load_adapters
from harness.cost import why_not_cheaper
from harness.protocol import evaluate
from harness.record import validate_record
from harness.stream import TestDataAccessError
from harness.suite_stream import stream_for_suite
from harness.testing import tiny_suite
from harness.trial import TrialSpec, build_learner, resolve_trial, run_trial

load_adapters()
COMBINATIONS = list(itertools.product(STRATEGIES.names(), FRAMEWORKS.names()))


def _spec(strategy: str, framework: str, seed: int = 1) -> TrialSpec:
    suite = tiny_suite()
    return TrialSpec(
        suite_text=suite.text,
        strategy=strategy,
        framework=framework,
        backbone=suite.backbones[0],
        seed=seed,
        label=f"{strategy}+{framework}",
        debug=True,
    )


@pytest.mark.parametrize("strategy, framework", COMBINATIONS)
def test_every_adapter_keeps_the_contract(strategy: str, framework: str) -> None:
    """Right prediction shape after every task, memory within budget, test data untouched."""
    resolved = resolve_trial(_spec(strategy, framework))
    stream = stream_for_suite(resolved.suite)
    learner, memory = build_learner(resolved)  # on the CPU
    strategy_cls = STRATEGIES.get(strategy)
    for task in stream.tasks:
        with stream.test.sealed():  # any read of test data while learning raises
            learner.learn(task)
        model = learner.inference_model()
        seen = stream.task_classes()[: task.info.index + 1]
        acc, task_aware = evaluate(model, stream.test.read(), seen, batch_size=64)
        assert len(acc) == len(task_aware) == task.info.index + 1
        assert all(0.0 <= a <= 100.0 for a in acc + task_aware)
        if not strategy_cls.unbounded_memory:
            assert len(memory) <= resolved.suite.exemplar_budget


@pytest.mark.parametrize("strategy, framework", COMBINATIONS)
def test_every_adapter_is_deterministic_and_writes_a_valid_record(strategy, framework) -> None:
    first = run_trial(_spec(strategy, framework))
    second = run_trial(_spec(strategy, framework))
    assert first["status"] == "ok", first["error"]
    assert validate_record(first) == []
    assert first["results"]["acc_matrix_pct"] == second["results"]["acc_matrix_pct"]
    cost = first["inference_cost"]
    assert cost["gflops_per_image"] > 0 and cost["params_millions"] > 0
    assert cost["params_millions_without_head"] < cost["params_millions"]
    assert cost["gflops_per_image_ptflops"] == pytest.approx(cost["gflops_per_image"], rel=0.02)
    assert cost["uncounted_ops"] == []  # every op of every served model has a formula
    budget = first["training_budget"]  # spent == declared, or the trial would have failed
    declared = {(t + 1, role): epochs for t, row in enumerate(budget["declared_epochs"])
                for role, epochs in row.items() if epochs}  # fmt: skip
    assert {(row["task"], row["role"]): row["epochs"] for row in budget["spent"]} == declared


@pytest.mark.parametrize("strategy, framework", COMBINATIONS)
def test_compressing_frameworks_serve_a_cheaper_model(strategy, framework) -> None:
    if not FRAMEWORKS.get(framework).compresses:
        pytest.skip(f"framework {framework!r} does not compress")
    plain = run_trial(_spec(strategy, "none"))["inference_cost"]
    compressed = run_trial(_spec(strategy, framework))["inference_cost"]
    problem = why_not_cheaper(plain, compressed)
    assert problem is None, problem


def test_a_seed_changes_the_run() -> None:
    a = run_trial(_spec("finetune", "none", seed=1))
    b = run_trial(_spec("finetune", "none", seed=2))
    assert a["run_id"] != b["run_id"]
    assert a["timing"] != b["timing"]


def test_reading_test_data_while_learning_fails_the_trial(monkeypatch) -> None:
    """An adapter that reaches for test data during learning is stopped by the harness."""
    import harness.trial as trial_module

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
    record = run_trial(_spec("finetune", "none"))
    assert record["status"] == "failed"
    assert record["error"]["type"] == TestDataAccessError.__name__
