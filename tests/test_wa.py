"""WA (weight aligning): the aligned head, the adaptive loss, and the trial on the tiny suite."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.data.stream import TaskInfo
from harness.models.incremental_net import IncrementalNet
from harness.training.distillation import soft_cross_entropy
from harness.training.exemplars import ExemplarMemory
from methods.strategies.wa import WA, WAConfig, align_weights
from tests.contract_trials import tiny_record


def _net(old: int, new: int, *, new_scale: float) -> IncrementalNet:
    torch.manual_seed(0)
    net = IncrementalNet(nn.Flatten(), 6)
    net.add_classes(old)
    net.add_classes(new)
    with torch.no_grad():
        net.head.fc.weight[old:] *= new_scale  # new classes' rows: bigger norms, as after training
    return net


def test_aligned_old_and_new_classes_have_equal_mean_weight_norms() -> None:
    net = _net(4, 2, new_scale=5.0)
    old_rows = net.head.fc.weight[:4].clone()
    norms = net.head.fc.weight.detach().norm(dim=1)
    expected_gamma = float(norms[:4].mean() / norms[4:].mean())
    gamma = align_weights(net, new_classes=2)
    aligned = net.head.fc.weight.detach().norm(dim=1)
    assert gamma == pytest.approx(expected_gamma) and gamma < 1
    assert float(aligned[:4].mean()) == pytest.approx(float(aligned[4:].mean()))
    assert torch.equal(net.head.fc.weight[:4], old_rows)  # old classes untouched


def test_aligning_needs_old_and_new_classes() -> None:
    with pytest.raises(ValueError, match="cannot align 6 new of 6 classes"):
        align_weights(_net(4, 2, new_scale=1.0), new_classes=6)


def test_the_loss_weighs_distillation_by_the_share_of_old_classes() -> None:
    strategy = WA(WAConfig(), memory=ExemplarMemory(10))
    model = _net(4, 2, new_scale=1.0)
    x, y = torch.randn(8, 6), torch.tensor([0, 1, 2, 3, 4, 5, 4, 5])
    first = TaskInfo(index=0, num_tasks=2, classes=(0, 1, 2, 3), num_seen_classes=4)
    # No old model yet: cross-entropy alone.
    assert float(strategy.loss(model, x, y, first).detach()) == pytest.approx(
        float(F.cross_entropy(model(x), y).detach())
    )
    strategy.old_model = _net(4, 2, new_scale=3.0)
    second = TaskInfo(index=1, num_tasks=2, classes=(4, 5), num_seen_classes=6)
    logits = model(x)
    distill = soft_cross_entropy(logits[:, :4], strategy.old_model(x)[:, :4], 2.0)
    expected = (1 - 4 / 6) * F.cross_entropy(logits, y) + 4 / 6 * distill
    assert float(strategy.loss(model, x, y, second).detach()) == pytest.approx(
        float(expected.detach())
    )


def test_a_wa_trial_aligns_after_every_task_but_the_first_and_keeps_herded_exemplars() -> None:
    record = tiny_record("wa", "none")
    assert record["status"] == "ok", record["error"]
    memory = record["memory"]["after_task"]
    assert all(point["exemplars"] > 0 for point in memory)
    # WA keeps the model and its previous snapshot: more than one model's bytes.
    assert memory[-1]["model_bytes"] > record["inference_cost"]["param_bytes"]
