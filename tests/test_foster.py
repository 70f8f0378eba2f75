"""FOSTER: boosting with a second branch, compression back into one backbone, and its trials."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.api.config import ConfigError, resolve_config
from harness.data.pixels import with_pixel_normalization
from harness.data.stream import Split, TaskData, TaskInfo
from harness.models.expanding import ExpandingBackbone
from harness.models.incremental_net import IncrementalNet
from harness.run.trial import run_trial
from harness.training.distillation import soft_cross_entropy
from harness.training.exemplars import ExemplarMemory
from methods.strategies.foster import (
    COMPRESSION,
    FOSTER,
    FOSTERConfig,
    balanced_distillation,
    class_balance_weights,
)
from tests.contract_trials import tiny_record, tiny_spec

TINY_EPOCHS = 5  # the tiny suite's training.epochs (harness.api.testing)


def _model(classes: int) -> IncrementalNet:
    """A harness-shaped model (pixels, then net) small enough to check losses by hand."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.BatchNorm1d(3))
    model = IncrementalNet(with_pixel_normalization(net, [0.0], [1.0]), 3, backbone_name="tiny")
    model.add_classes(classes)
    return model


def _task(index: int, classes: tuple[int, ...], seen: int) -> TaskData:
    y = torch.tensor([c for c in classes for _ in range(6)])
    x = torch.randn(len(y), 1, 2, 2) + y[:, None, None, None].float()
    info = TaskInfo(index=index, num_tasks=3, classes=classes, num_seen_classes=seen)
    return TaskData(info=info, train=Split(x, y), val=Split(x[:0], y[:0]))


def _after_first_task() -> tuple[FOSTER, IncrementalNet, TaskData]:
    """A strategy and model that have learned task 1 (untrained weights: the mechanics only),
    with the head grown for task 2 and ``begin_task`` run on it."""
    memory = ExemplarMemory(8)
    strategy = FOSTER(FOSTERConfig(), memory=memory)
    model = _model(2)
    strategy.end_task(model, _task(0, (0, 1), 2))
    second = _task(1, (2, 3), 4)
    model.add_classes(2)
    strategy.begin_task(model, second)
    return strategy, model, second


def test_class_balance_weights_are_the_normalised_inverse_effective_numbers() -> None:
    counts = torch.tensor([20, 20, 500, 500])
    raw = [(1 - 0.96) / (1 - 0.96**n) for n in (20, 20, 500, 500)]
    expected = [w / sum(raw) * 4 for w in raw]
    assert class_balance_weights(counts, 0.96).tolist() == pytest.approx(expected, rel=1e-6)
    # Few exemplars weigh more; beta = 0 weighs all classes alike.
    assert class_balance_weights(torch.tensor([3, 50]), 0.0).tolist() == [1.0, 1.0]


def test_balanced_distillation_reweights_the_teachers_probabilities() -> None:
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 3), torch.randn(5, 3)
    uniform = torch.ones(3)
    assert float(balanced_distillation(student, teacher, uniform, 2.0)) == pytest.approx(
        float(soft_cross_entropy(student, teacher, 2.0))
    )
    weights = torch.tensor([2.0, 1.0, 1.0])
    targets = F.softmax(teacher / 2.0, dim=1) * weights
    targets = targets / targets.sum(1, keepdim=True)
    expected = -(targets * F.log_softmax(student / 2.0, dim=1)).sum(1).mean()
    assert float(balanced_distillation(student, teacher, weights, 2.0)) == pytest.approx(
        float(expected)
    )


def test_the_boosting_loss_adds_the_enhancement_head_and_old_model_distillation() -> None:
    memory = ExemplarMemory(8)
    strategy = FOSTER(FOSTERConfig(), memory=memory)
    model = _model(2)
    strategy.end_task(model, _task(0, (0, 1), 2))
    model.add_classes(2)
    old_model = model.frozen_copy()  # the network as task 1 left it
    second = _task(1, (2, 3), 4)
    strategy.begin_task(model, second)
    data = strategy.training_data(second)
    assert strategy.class_counts.tolist() == [4, 4, 6, 6]  # exemplars, then the new task
    model.eval()
    x, y = data.x, data.y
    loss = strategy.loss(model, x, y, second)
    features = model.features(x)
    old_features, new_features = features[:, :3], features[:, 3:]
    old_logits = strategy.old_head(old_features)
    assert torch.allclose(old_logits, old_model(x)[:, :2])  # PyCIL's oldfc: the old model
    logits = model.head(features)
    weights = class_balance_weights(strategy.class_counts, 0.96)
    expected = (
        F.cross_entropy(logits / weights, y)
        + F.cross_entropy(strategy.fe_head(new_features), y)
        + 1.0 * soft_cross_entropy(logits[:, :2], old_logits, 2.0)
    )
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert strategy.training_modules() == [strategy.fe_head]  # trained, never served


def test_compression_distils_into_a_student_that_replaces_the_model_in_place() -> None:
    strategy, model, second = _after_first_task()
    old_branch = model.backbone.branches[0]
    old_head = strategy.old_head
    calls: list[tuple[str, nn.Module, int | None]] = []

    def stage(name: str, student: nn.Module, data: Split, loss_fn: Any, *,
              parameters: Any = None, epochs: int | None = None) -> None:  # fmt: skip
        loss = loss_fn(student, data.x[:4], data.y[:4])
        assert torch.isfinite(loss) and loss.requires_grad
        calls.append((name, student, epochs))

    strategy.run_extra_stages(model, second, stage)
    (name, student, epochs), = calls  # fmt: skip
    assert name == COMPRESSION and epochs is None  # the declared epochs
    assert model.backbone is student.backbone and model.head is student.head
    branches = model.backbone.branches
    assert len(branches) == 1 and model.head.fc.weight.shape == (4, 3)
    # Initialised from the old branch and the old head (PyCIL's convnets[0] and oldfc).
    for mine, old in zip(branches[0].parameters(), old_branch.parameters(), strict=True):
        assert torch.equal(mine, old) and mine.requires_grad and not old.requires_grad
    assert torch.equal(model.head.fc.weight[:2], old_head.weight)
    assert strategy.predictor(model) is model
    strategy.end_task(model, second)
    assert strategy.old_head is None and strategy.fe_head is None  # nothing kept
    assert sorted(strategy.memory.classes) == [0, 1, 2, 3]
    model.add_classes(2)  # the next task grows from the student
    strategy.begin_task(model, _task(2, (4, 5), 6))
    assert len(model.backbone.branches) == 2


def test_the_predictor_refuses_an_uncompressed_network() -> None:
    strategy, model, _ = _after_first_task()
    with pytest.raises(RuntimeError, match="model still has 2 branches"):
        strategy.predictor(model)


def test_the_served_network_stays_one_backbone_while_ders_grows() -> None:
    foster, finetune, der = (tiny_record(s, "none") for s in ("foster", "finetune", "der"))
    for record in (foster, finetune, der):
        assert record["status"] == "ok", record["error"]

    def curve(record: dict, key: str) -> list[float]:
        return [point[key] for point in record["inference_cost"]["after_task"]]

    # The same single backbone as plain fine-tuning, whose head grows alike: equal curves.
    for key in ("params_millions", "gflops_per_image"):
        assert curve(foster, key) == pytest.approx(curve(finetune, key), rel=1e-9)
    plain, grown = curve(finetune, "params_millions"), curve(der, "params_millions")
    backbone = plain[0]  # nearly all of task 1's parameters
    assert grown[0] == pytest.approx(plain[0])
    for task in range(1, len(plain)):  # DER adds a backbone per task
        assert grown[task] - plain[task] > 0.9 * task * backbone
    assert foster["method"]["inference_backbone"] == "compact_cnn"


def test_compression_is_a_declared_stage_on_every_task_but_the_first() -> None:
    strategy = FOSTER(FOSTERConfig(), memory=ExemplarMemory(8))
    assert strategy.extra_stages(0, 7) == {}
    assert strategy.extra_stages(1, 7) == strategy.extra_stages(4, 7) == {COMPRESSION: 7}
    record = tiny_record("foster", "none")
    assert record["status"] == "ok", record["error"]
    budget = record["training_budget"]
    spent = {(row["task"], row["role"]): row["epochs"] for row in budget["spent"]}
    assert spent == {
        (1, "model"): TINY_EPOCHS,
        (2, "model"): TINY_EPOCHS,
        (2, "model/compression"): TINY_EPOCHS,
        (3, "model"): TINY_EPOCHS,
        (3, "model/compression"): TINY_EPOCHS,
    }
    assert [row.get("model/compression") for row in budget["declared_epochs"]] == [
        None,
        TINY_EPOCHS,
        TINY_EPOCHS,
    ]


def test_boosting_trains_the_new_branch_with_the_old_one_frozen(monkeypatch) -> None:
    seen: list[dict[str, Any]] = []
    real_loss = FOSTER.loss

    def watching_loss(self: FOSTER, model: nn.Module, x, y, task: TaskInfo) -> torch.Tensor:
        backbone = model.backbone
        state: dict[str, Any] = {"task": task.index + 1, "training": model.training}
        if isinstance(backbone, ExpandingBackbone):
            old, new = backbone.branches[0], backbone.branches[-1]
            state.update(
                branches=len(backbone.branches),
                old_frozen=not any(p.requires_grad for p in old.parameters()),
                old_in_eval=not any(m.training for m in old.modules()),
                new_trains=all(p.requires_grad for p in new.parameters()) and new.training,
                fe_head_trained=self.training_modules() == [self.fe_head],
            )
        seen.append(state)
        return real_loss(self, model, x, y, task)

    monkeypatch.setattr(FOSTER, "loss", watching_loss)
    record = run_trial(tiny_spec("foster", "none"))
    assert record["status"] == "ok", record["error"]
    assert {s["task"] for s in seen} == {1, 2, 3} and all(s["training"] for s in seen)
    assert all("branches" not in s for s in seen if s["task"] == 1)  # one plain backbone
    boosting = [s for s in seen if s["task"] > 1]
    assert boosting and all(
        s["branches"] == 2 and s["old_frozen"] and s["old_in_eval"] and s["new_trains"]
        and s["fe_head_trained"]
        for s in boosting
    )  # fmt: skip


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("beta1", float("nan"), "strategy.beta1=nan is not allowed"),
        ("beta2", 1.0, r"strategy.beta2=1.0 is out of range: it must be a finite number in \[0"),
        ("lambda_okd", -1.0, "strategy.lambda_okd=-1.0 is out of range"),
        ("temperature", 0.0, "strategy.temperature=0.0 is out of range"),
        ("temperature", float("inf"), "strategy.temperature=inf is not allowed"),
        ("feature_batch_size", 0, "strategy.feature_batch_size=0 is out of range"),
    ],
)
def test_a_bad_config_value_is_refused(field: str, value: Any, message: str) -> None:
    # The declared ranges are checked where the harness builds configs: resolve_config.
    with pytest.raises(ConfigError, match=message):
        resolve_config(FOSTERConfig, {field: value}, scope="strategy")


def test_a_wa_switch_that_is_not_a_boolean_is_refused() -> None:
    # FOSTERConfig's own check, for a config built directly (resolve_config refuses a
    # non-boolean before it gets there).
    with pytest.raises(ConfigError, match="strategy.teacher_wa='yes' is not allowed: use true"):
        FOSTERConfig(teacher_wa="yes")
    with pytest.raises(ConfigError, match="strategy.student_wa"):
        resolve_config(FOSTERConfig, {"student_wa": "yes"}, scope="strategy")
