"""BiC (bias correction): the bias layers, the validation slice, stage 2, and a tiny trial."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.api.config import ConfigError, resolve_config
from harness.api.testing import tiny_suite
from harness.data.stream import Split, TaskData, TaskInfo
from harness.models.incremental_net import IncrementalNet
from harness.training.distillation import soft_cross_entropy
from harness.training.exemplars import ExemplarMemory
from harness.training.trainer import Trainer, TrainingConfig
from methods.strategies.bic import BIAS_STAGE, BiasLayers, BiC, BiCConfig
from tests.contract_trials import tiny_record

FEATURES = 4


def _task(index: int, classes: tuple[int, ...], *, per_class: int = 10) -> TaskData:
    """Separable blobs; pixel [0, 0, 0] holds a unique sample id (to follow samples)."""
    y = torch.tensor([c for c in classes for _ in range(per_class)])
    x = torch.randn(len(y), 1, 2, 2) + 3 * y[:, None, None, None].float()
    x[:, 0, 0, 0] = torch.arange(len(y)) + 1000.0 * (index + 1)
    info = TaskInfo(index=index, num_tasks=3, classes=classes, num_seen_classes=max(classes) + 1)
    return TaskData(info=info, train=Split(x, y), val=Split(x[:2] + 0.5, y[:2]))


def _model() -> IncrementalNet:
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(4, FEATURES), nn.BatchNorm1d(FEATURES))
    return IncrementalNet(backbone, FEATURES)


def _after_first_task(budget: int = 8, config: BiCConfig | None = None):
    torch.manual_seed(0)
    strategy, model = BiC(config or BiCConfig(), memory=ExemplarMemory(budget)), _model()
    first = _task(0, (0, 1))
    model.add_classes(2)
    strategy.begin_task(model, first)
    strategy.end_task(model, first)
    return strategy, model


def _next_task(strategy: BiC, model: IncrementalNet, task: TaskData) -> None:
    model.add_classes(len(task.info.classes))
    strategy.begin_task(model, task)


def _stage_with_the_harness_loop(calls: list[dict]):
    """A ``StageFit`` that records its call and trains with the harness's own loop."""
    trainer = Trainer(TrainingConfig(epochs=3, batch_size=4, lr=0.1), seed=0)

    def stage(name, model, data, loss_fn, *, parameters=None, epochs=None):
        calls.append({"stage": name, "data": data, "parameters": parameters})
        trainer.fit(model, data, loss_fn, epochs=epochs, parameters=parameters)

    return stage


def test_the_bias_correction_changes_only_the_newest_tasks_logits() -> None:
    strategy, model = _after_first_task()
    second = _task(1, (2, 3))
    _next_task(strategy, model, second)
    before = copy.deepcopy(model.state_dict())
    calls: list[dict] = []
    strategy.run_extra_stages(model, second, _stage_with_the_harness_loop(calls))
    newest = strategy.bias.layers[-1]
    (call,) = calls
    assert call["stage"] == BIAS_STAGE
    assert call["parameters"] == [newest.alpha, newest.beta]  # nothing else trains
    assert torch.equal(call["data"].x, strategy.carve(second)[1].x)  # on the slice
    assert (float(newest.alpha), float(newest.beta)) != (1.0, 0.0)
    after = model.state_dict()  # weights and BatchNorm statistics untouched
    assert all(torch.equal(before[key], after[key]) for key in before)
    x = torch.randn(5, 1, 2, 2)
    raw, corrected = model.eval()(x), strategy.predictor(model).eval()(x)
    assert torch.equal(corrected[:, :2], raw[:, :2])  # old classes: identical
    assert torch.allclose(corrected[:, 2:], newest.alpha * raw[:, 2:] + newest.beta)
    # Task 3: its own layer trains; task 2's stays as it was and still applies.
    alpha_2, beta_2 = newest.alpha.detach().clone(), newest.beta.detach().clone()
    third = _task(2, (4, 5))
    _next_task(strategy, model, third)
    strategy.run_extra_stages(model, third, _stage_with_the_harness_loop([]))
    assert torch.equal(strategy.bias.layers[0].alpha, alpha_2)
    assert torch.equal(strategy.bias.layers[0].beta, beta_2)
    raw, corrected = model.eval()(x), strategy.predictor(model).eval()(x)
    assert torch.equal(corrected[:, :2], raw[:, :2])
    assert torch.allclose(corrected[:, 2:4], alpha_2 * raw[:, 2:4] + beta_2)


def test_bias_layers_touch_only_their_own_columns() -> None:
    layers = BiasLayers()
    layers.add_task(2, 4)
    layers.add_task(4, 6)
    with torch.no_grad():
        layers.layers[1].alpha.fill_(2.0)
        layers.layers[1].beta.fill_(0.5)
    logits = torch.randn(3, 6)
    out = layers(logits)
    assert torch.equal(out[:, :4], logits[:, :4])
    assert torch.allclose(out[:, 4:], 2.0 * logits[:, 4:] + 0.5)
    with pytest.raises(ValueError, match="overlap"):
        layers.add_task(5, 7)


def test_with_alpha_one_and_beta_zero_the_correction_is_the_identity() -> None:
    strategy, model = _after_first_task()
    _next_task(strategy, model, _task(1, (2, 3)))
    assert (float(strategy.bias.layers[-1].alpha), float(strategy.bias.layers[-1].beta)) == (1, 0)
    x = torch.randn(5, 1, 2, 2)
    model.eval()
    assert torch.equal(strategy.predictor(model)(x), model(x))


def test_the_predictor_applies_the_bias_to_any_model_and_is_a_snapshot() -> None:
    """Post-pruning hands ``predictor`` a pruned deep copy: the bias layers apply to it."""
    strategy, model = _after_first_task()
    _next_task(strategy, model, _task(1, (2, 3)))
    with torch.no_grad():
        strategy.bias.layers[-1].alpha.fill_(0.5)
    other = copy.deepcopy(model).eval()
    with torch.no_grad():
        other.head.fc.weight.mul_(3.0)  # a different model: its own logits, the same bias
    served = strategy.predictor(other).eval()
    x = torch.randn(5, 1, 2, 2)
    assert torch.allclose(served(x)[:, 2:], 0.5 * other(x)[:, 2:])
    assert served.net is other  # the served module holds the model it was given
    strategy.bias.add_task(4, 6)  # a later task's layer does not reach a served predictor
    assert len(served.bias.layers) == 1


def test_the_validation_slice_is_carved_from_the_tasks_data_and_old_exemplars() -> None:
    strategy, model = _after_first_task(budget=40, config=BiCConfig(val_ratio=0.2))
    second = _task(1, (2, 3))
    _next_task(strategy, model, second)
    stage_one, val = strategy.carve(second)
    everything = strategy.learned_data(second)

    def ids(split: Split) -> list[float]:
        return split.x[:, 0, 0, 0].tolist()

    assert set(ids(stage_one)).isdisjoint(ids(val))
    assert sorted(ids(stage_one) + ids(val)) == sorted(ids(everything))
    expected = torch.cat([second.train.x, strategy.memory.get(0), strategy.memory.get(1)])
    assert sorted(ids(everything)) == sorted(expected[:, 0, 0, 0].tolist())
    assert set(ids(everything)).isdisjoint(ids(second.val))  # never task.val
    # Balanced: int(0.2 * (40 // 2 old classes)) = 4 of every class, old and new.
    assert torch.bincount(val.y).tolist() == [4, 4, 4, 4]
    assert strategy.training_data(second) is stage_one  # carved once per task
    torch.manual_seed(123)  # the slice depends on the trial's seed only, not on later draws
    torch.rand(7)
    again = BiC(BiCConfig(val_ratio=0.2), memory=strategy.memory).carve(second)[1]
    assert ids(again) != ids(val)
    torch.manual_seed(0)
    torch.rand(7)
    assert ids(BiC(BiCConfig(val_ratio=0.2), memory=strategy.memory).carve(second)[1]) == ids(val)


def test_task_one_holds_nothing_out_and_declares_no_bias_stage() -> None:
    strategy = BiC(BiCConfig(), memory=ExemplarMemory(8))
    first = _task(0, (0, 1))
    stage_one, val = strategy.carve(first)
    assert len(stage_one) == len(first.train) and len(val) == 0
    assert strategy.extra_stages(0, 7) == {}
    assert strategy.extra_stages(1, 7) == {BIAS_STAGE: 7}


def test_the_stage_one_loss_weighs_distillation_by_the_share_of_old_classes() -> None:
    strategy, model = _after_first_task()
    old_model = strategy.old_model
    second = _task(1, (2, 3))
    _next_task(strategy, model, second)
    x, y = second.train.x[:6], second.train.y[:6]
    with torch.no_grad():
        model.head.fc.weight.add_(0.3)
    logits = model(x)  # the task-2 layer is still the identity
    distill = soft_cross_entropy(logits[:, :2], old_model(x)[:, :2], 2.0)
    expected = 0.5 * F.cross_entropy(logits, y) + 0.5 * distill
    loss = strategy.loss(model, x, y, second).detach()
    assert float(loss) == pytest.approx(float(expected.detach()))


def test_a_bic_trial_meters_the_bias_stage_from_task_two_on() -> None:
    record = tiny_record("bic", "none")
    assert record["status"] == "ok", record["error"]
    epochs = tiny_suite().training["epochs"]  # the suite's, as for the main stage
    spent = {(row["task"], row["role"]): row for row in record["training_budget"]["spent"]}
    bias_tasks = sorted(task for task, role in spent if role == "model/bias")
    assert bias_tasks == list(range(2, record["suite"]["num_tasks"] + 1))
    assert all(spent[(task, "model/bias")]["epochs"] == epochs for task in bias_tasks)
    declared = record["training_budget"]["declared_epochs"]
    assert "model/bias" not in declared[0]
    assert all(row["model/bias"] == epochs for row in declared[1:])
    assert record["inference_cost"]["uncounted_ops"] == []
    assert record["method"]["inference_backbone"] == "compact_cnn"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"val_ratio": float("nan")}, "strategy.val_ratio=nan is not allowed"),
        ({"val_ratio": -0.1}, "strategy.val_ratio=-0.1 is out of range"),
        ({"val_ratio": 1.0}, "strategy.val_ratio=1.0 is out of range"),
        ({"temperature": float("nan")}, "strategy.temperature=nan is not allowed"),
        ({"temperature": -2.0}, "strategy.temperature=-2.0 is out of range"),
        ({"feature_batch_size": 0}, "strategy.feature_batch_size=0 is out of range"),
    ],
)
def test_a_bad_config_value_is_refused(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_config(BiCConfig, overrides, scope="strategy")
