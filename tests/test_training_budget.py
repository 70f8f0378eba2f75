"""Fairness enforced: the training budget is metered, and the served model is the costed one."""

from __future__ import annotations

import copy

import pytest

from harness.api.adapters import FRAMEWORKS, STRATEGIES, load_adapters
from harness.api.conformance import built_in_names
from harness.run.trial import run_trial
from harness.training.budget import BudgetMismatchError, TrainingMeter
from tests.contract_trials import tiny_record, tiny_spec

load_adapters()
TINY_EPOCHS = 5  # tiny_suite's training.epochs
TINY_TASKS = 3


# What each framework spends on the tiny suite, by hand from its documented procedure.
EXPECTED_EPOCHS = {
    "none": [{"model": 5}] * 3,
    "kd": [{"teacher": 5, "student": 5}] * 3,
    # task 1: sparsity stage + fine-tune of the pruned model (each the suite's budget)
    "prepruning": [{"model": 10}, {"model": 5}, {"model": 5}],
    # every task: the full model, then the pruned copy's fine-tune (epochs // 3 = 1)
    "postpruning": [{"model": 5, "pruned_copy": 1}] * 3,
}


@pytest.mark.parametrize("framework", sorted(EXPECTED_EPOCHS))
def test_each_model_trains_exactly_its_declared_budget(framework: str) -> None:
    record = tiny_record("lwf", framework)
    assert record["status"] == "ok", record["error"]
    budget = record["training_budget"]
    assert budget["declared_epochs"] == EXPECTED_EPOCHS[framework]
    spent = {(row["task"], row["role"]): row["epochs"] for row in budget["spent"]}
    expected = {(t + 1, role): epochs for t, row in enumerate(EXPECTED_EPOCHS[framework])
                for role, epochs in row.items()}  # fmt: skip
    assert spent == expected
    assert budget["total_samples"] == sum(row["samples"] for row in budget["spent"]) > 0
    assert budget["total_optimizer_steps"] > 0


def test_every_registered_framework_declares_its_budget() -> None:
    assert set(built_in_names(FRAMEWORKS)) <= set(EXPECTED_EPOCHS), "add the new framework above"


def test_training_more_than_declared_fails_the_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    framework = FRAMEWORKS.get("none")
    monkeypatch.setattr(framework, "declared_epochs", lambda self, task_index: {"model": 4})
    record = run_trial(tiny_spec("finetune", "none"))
    assert record["status"] == "failed"
    assert record["error"]["type"] == "BudgetMismatchError"
    assert "declared epochs {'model': 4} but trained {'model': 5}" in record["error"]["message"]


def test_the_meter_names_the_task_and_the_roles() -> None:
    meter = TrainingMeter()
    meter.add_epoch("teacher")
    meter.add_step("teacher", 16)
    meter.task = 1
    meter.add_epoch("model")
    with pytest.raises(BudgetMismatchError, match="task 2"):
        meter.check([{"teacher": 1}, {"model": 2}])
    meter.check([{"teacher": 1, "student": 0}, {"model": 1}])  # 0-epoch roles may be absent
    assert meter.to_record([{}, {}]).total_samples == 16


def test_a_framework_serving_a_new_object_on_each_call_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    framework = FRAMEWORKS.get("none")
    # a copy per call: evaluated one object, would be costed another
    monkeypatch.setattr(framework, "inference_model", lambda self: copy.deepcopy(self.model))
    record = run_trial(tiny_spec("finetune", "none"))
    assert record["status"] == "failed"
    assert record["error"]["type"] == "ContractViolation"
    assert "different module on a second call" in record["error"]["message"]


def test_the_record_names_the_backbone_of_the_served_module() -> None:
    assert STRATEGIES.get("lwf")
    record = tiny_record("lwf", "kd")
    assert record["method"]["backbone"] == "compact_cnn"
    assert record["method"]["inference_backbone"] == "compact_cnn_small"  # the student serves


# A strategy's extra stage (BiC's bias correction) under each framework: every model that
# runs the strategy runs the stage from task 2 on, metered as <role>/bias.
EXPECTED_BIC_STAGES = {
    "none": ["model/bias"],
    "kd": ["student/bias", "teacher/bias"],
    "prepruning": ["model/bias"],
    "postpruning": ["model/bias"],
}


@pytest.mark.parametrize("framework", sorted(EXPECTED_BIC_STAGES))
def test_a_strategys_extra_stage_is_declared_and_metered_under_every_framework(framework):
    record = tiny_record("bic", framework)
    assert record["status"] == "ok", record["error"]
    declared = record["training_budget"]["declared_epochs"]
    for task, row in enumerate(declared):
        stages = sorted(role for role in row if "/" in role)
        assert stages == ([] if task == 0 else EXPECTED_BIC_STAGES[framework]), (task, row)
        assert all(row[role] == TINY_EPOCHS for role in stages)


def test_a_stage_spent_otherwise_than_declared_fails_the_trial(monkeypatch) -> None:
    bic = STRATEGIES.get("bic")
    monkeypatch.setattr(bic, "extra_stages", lambda self, task_index, epochs: (
        {"bias": epochs + 1} if task_index else {}))  # fmt: skip
    original = bic.run_extra_stages

    def one_epoch_short(self, model, task, stage):
        return original(self, model, task, lambda *a, **k: stage(*a, **{**k, "epochs": 5}))

    monkeypatch.setattr(bic, "run_extra_stages", one_epoch_short)
    record = run_trial(tiny_spec("bic", "none"))
    assert record["status"] == "failed"
    assert "declared epochs" in record["error"]["message"]


def test_a_stage_that_was_never_declared_fails_the_trial(monkeypatch) -> None:
    bic = STRATEGIES.get("bic")
    original = bic.run_extra_stages

    def renamed(self, model, task, stage):
        return original(self, model, task, lambda name, *a, **k: stage("calibration", *a, **k))

    monkeypatch.setattr(bic, "run_extra_stages", renamed)
    record = run_trial(tiny_spec("bic", "none"))
    assert record["status"] == "failed"
    assert "ran stage 'calibration' on task 2" in record["error"]["message"]
