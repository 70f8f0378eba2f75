"""DER and MEMO: networks that grow a branch per task (harness/models/expanding.py), their known
parameter counts after every task, the frozen branches, and the auxiliary loss."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from harness.api.config import resolve_config
from harness.api.testing import tiny_suite
from harness.data.pixels import with_pixel_normalization
from harness.data.stream import TaskInfo
from harness.models.backbones import create_backbone
from harness.models.expanding import (
    ExpandingBackbone,
    add_branch,
    backbone_blocks,
    default_shared_blocks,
)
from harness.models.incremental_net import IncrementalNet
from harness.training.exemplars import ExemplarMemory
from methods.strategies.der import DER, DERConfig
from methods.strategies.memo import MEMOConfig
from tests.contract_trials import tiny_record


def _net(name: str = "compact_cnn") -> IncrementalNet:
    torch.manual_seed(0)
    built = create_backbone(name, in_channels=1, input_size=8, weights=None)
    backbone = with_pixel_normalization(built.module, [0.5], [0.25])
    return IncrementalNet(backbone, built.feature_dim, backbone_name=name)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _head(features: int, classes: int) -> int:
    return features * classes + classes


@pytest.mark.parametrize("strategy", ["der", "memo"])
def test_served_parameters_after_every_task_are_the_known_answer(strategy: str) -> None:
    """DER: t whole backbones plus the head over t x 64 features; MEMO: the shared stem plus t
    deep branches and the same head (the tiny suite: compact_cnn, 2 classes per task)."""
    net = _net()
    blocks = backbone_blocks(net.backbone.net)
    split = 0 if strategy == "der" else default_shared_blocks(net.backbone.net)
    shared = sum(_count(b) for b in blocks[:split])
    branch = sum(_count(b) for b in blocks[split:])
    record = tiny_record(strategy, "none")
    assert record["status"] == "ok", record["error"]
    curve = record["inference_cost"]["after_task"]
    for point in curve:
        t = point["task"]
        expected = shared + t * branch + _head(t * 64, 2 * t)
        assert point["params_millions"] * 1e6 == pytest.approx(expected, abs=0.5), t
    flops = [point["gflops_per_image"] for point in curve]
    assert flops == sorted(flops) and flops[-1] > 2 * flops[0]  # the cost grows with tasks
    assert record["method"]["inference_backbone"] == "compact_cnn"


def test_memo_shares_the_stem_and_grows_only_the_deep_blocks() -> None:
    net = _net()
    net.add_classes(2)
    add_branch(net, shared_blocks=None)
    backbone = net.backbone
    assert isinstance(backbone, ExpandingBackbone) and len(backbone.branches) == 2
    convs = [m for m in backbone.shared.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32]  # compact_cnn's first stage
    assert net(torch.zeros(3, 1, 8, 8)).shape == (3, 2)
    assert net.head.in_features == 128


def test_a_new_branch_copies_the_newest_and_the_older_ones_stay_frozen_in_training() -> None:
    net = _net()
    net.add_classes(2)
    x = torch.rand(4, 1, 8, 8)
    before = net.eval().features(x).detach()
    backbone = add_branch(net, shared_blocks=0)
    old, new = backbone.branches
    assert not any(p.requires_grad for p in old.parameters())
    assert all(p.requires_grad for p in new.parameters())
    net.train()  # what the harness's training loop does every stage
    assert not any(m.training for m in old.modules()) and new.training
    features = net.eval().features(x)
    assert torch.allclose(features[:, :64], before) and torch.allclose(features[:, 64:], before)
    # Old classes' rows keep their weights over the old features.
    assert net.head.in_features == 128


def test_old_branches_keep_their_batchnorm_statistics_while_the_new_one_trains() -> None:
    net = _net()
    net.add_classes(2)
    backbone = add_branch(net, shared_blocks=0)
    old_stats = [b.running_mean.clone() for b in backbone.branches[0].modules()
                 if isinstance(b, nn.BatchNorm2d)]  # fmt: skip
    net.train()
    net(torch.rand(8, 1, 8, 8) * 255)
    norms = [m for m in backbone.branches[0].modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.equal(a, b.running_mean) for a, b in zip(old_stats, norms, strict=True))


@pytest.mark.parametrize("name", ["resnet34", "mobilenet_v2"])
def test_torchvision_backbones_split_into_blocks_that_compute_the_same_features(name) -> None:
    """MEMO's split of the paper's backbones reproduces their forward pass exactly."""
    torch.manual_seed(0)
    net = getattr(torchvision.models, name)(weights=None).eval()
    if name == "resnet34":
        net.fc = nn.Identity()
    else:
        net.classifier = nn.Identity()
    x = torch.rand(2, 3, 32, 32)
    blocks = backbone_blocks(net)
    with torch.no_grad():
        assert torch.allclose(nn.Sequential(*blocks)(x), net(x), atol=1e-6)
    split = default_shared_blocks(net)
    assert 0 < split < len(blocks)
    if name == "resnet34":
        assert blocks[split] is net.layer4


def test_a_backbone_that_cannot_be_split_is_refused_with_what_can() -> None:
    with pytest.raises(TypeError, match="nn.Sequential, a torchvision ResNet"):
        backbone_blocks(nn.Conv2d(1, 1, 1))


def test_the_auxiliary_loss_maps_every_old_class_to_one_class() -> None:
    net = _net()
    net.add_classes(2)
    strategy = DER(DERConfig(), memory=ExemplarMemory(10))
    task = TaskInfo(index=1, num_tasks=3, classes=(2, 3), num_seen_classes=4)
    net.add_classes(2)
    strategy.begin_task(net, task)
    assert strategy.aux_head is not None and strategy.aux_head.out_features == 3
    assert strategy.training_modules() == [strategy.aux_head]
    seen: list[torch.Tensor] = []
    strategy.aux_head.register_forward_hook(lambda m, a, out: seen.append(out))
    y = torch.tensor([0, 1, 2, 3])
    loss = strategy.loss(net.train(), torch.rand(4, 1, 8, 8), y, task)
    assert loss.requires_grad and seen[0].shape == (4, 3)


@pytest.mark.parametrize("bad", [{"aux_weight": float("nan")}, {"aux_weight": -1.0}])
def test_bad_configs_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match="aux_weight"):
        resolve_config(DERConfig, bad, scope="strategy")
    with pytest.raises(ValueError, match="aux_weight"):  # MEMO inherits DER's ranges
        resolve_config(MEMOConfig, bad, scope="strategy")
    with pytest.raises(ValueError, match="shared_blocks"):
        resolve_config(MEMOConfig, {"shared_blocks": -1}, scope="strategy")


def test_tiny_suite_is_what_the_known_answers_assume() -> None:
    suite = tiny_suite()
    assert list(suite.backbones) == ["compact_cnn"] and set(suite.classes_per_task) == {2}
