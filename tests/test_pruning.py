"""BN-scale channel pruning (harness.training.pruning) and the pre-/post-pruning frameworks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.models.backbones import create_backbone
from harness.models.incremental_net import IncrementalNet
from harness.training.pruning import bn_scale_l1, conv_channels, prune_channels
from tests.contract_trials import tiny_record

RATIO = 0.4
# A conv loses a fraction r of its inputs and outputs, so keeps (1 - r)^2 of its weights.
EXPECTED_REDUCTION_PCT = 100 * (1 - (1 - RATIO) ** 2)
# Margin below that: the first conv's image inputs and the head's outputs cannot be pruned.
REDUCTION_MARGIN_PCT = 3.0


def _net(name: str = "compact_cnn", *, channels: int = 1, size: int = 8) -> IncrementalNet:
    torch.manual_seed(0)
    backbone = create_backbone(name, in_channels=channels, input_size=size)
    net = IncrementalNet(backbone.module, backbone.feature_dim)
    net.add_classes(4)
    return net


def _batchnorms(net: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]


def _silence_weakest_channels(net: nn.Module, fraction: float) -> None:
    """gamma = beta = 0 on ``fraction`` of each layer's channels: they output exactly zero."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for bn in _batchnorms(net):
            n = bn.num_features
            bn.weight.copy_(0.5 + 0.5 * torch.rand(n, generator=generator))
            bn.running_mean.copy_(torch.randn(n, generator=generator))
            silent = torch.randperm(n, generator=generator)[: round(fraction * n)]
            bn.weight[silent] = 0.0
            bn.bias[silent] = 0.0


def test_pruning_removes_the_weakest_channels_and_the_predictions_survive() -> None:
    net = _net()
    _silence_weakest_channels(net, RATIO)
    x = torch.randn(5, 1, 8, 8)
    net.eval()
    with torch.no_grad():
        before = net(x)
    widths = [bn.num_features for bn in _batchnorms(net)]
    net.train()
    summary = prune_channels(net, ratio=RATIO, example_inputs=torch.zeros(1, 1, 8, 8))
    assert net.training and all(m.training for m in net.modules())  # train flags restored
    # Global ranking by |gamma| took the silent channels, about 40% of each layer.
    pruned_widths = [bn.num_features for bn in _batchnorms(net)]
    for pruned, width in zip(pruned_widths, widths, strict=True):
        assert abs(pruned - round((1 - RATIO) * width)) <= 1
    assert conv_channels(net) == summary.conv_channels_after < summary.conv_channels_before
    # At least the ratio goes (ties at the threshold go together: here 78 silent of 192).
    assert summary.conv_channels_after <= int(summary.conv_channels_before * (1 - RATIO))
    net.eval()
    with torch.no_grad():
        after = net(x)
    assert after.shape == (5, 4)
    # Only zero-output channels went, so the function is unchanged.
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    assert summary.params_reduction_pct >= EXPECTED_REDUCTION_PCT - REDUCTION_MARGIN_PCT
    assert summary.gflops_reduction_pct >= EXPECTED_REDUCTION_PCT - REDUCTION_MARGIN_PCT
    assert summary.params_after == sum(p.numel() for p in net.parameters())


def test_global_ranking_never_empties_a_layer() -> None:
    net = _net()
    with torch.no_grad():
        for i, bn in enumerate(_batchnorms(net)):
            bn.weight.copy_(torch.rand(bn.num_features) * (1e-3 if i == 1 else 1.0))
    prune_channels(net, ratio=RATIO, example_inputs=torch.zeros(1, 1, 8, 8))
    second = _batchnorms(net)[1]
    assert 0 < second.num_features < 32  # pruned hardest (global), kept by the guard
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 4)


def test_the_head_keeps_growing_after_pruning() -> None:
    net = _net()
    prune_channels(net, ratio=RATIO, example_inputs=torch.zeros(1, 1, 8, 8))
    old_weight = net.head.fc.weight.detach().clone()
    features = net.backbone[-3][0].out_channels  # the last conv feeds the head
    assert net.head.in_features == features < 64
    net.add_classes(2)
    assert net.head.fc.weight.shape == (6, features)
    torch.testing.assert_close(net.head.fc.weight[:4], old_weight)
    assert net(torch.randn(3, 1, 8, 8)).shape == (3, 6)


def test_bn_sparsity_adds_sign_gamma_times_lambda_to_the_gradient() -> None:
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, -2.0, 1.0]))
    bn.weight.grad = torch.tensor([0.1, 0.1, 0.0])
    bn.bias.grad = torch.zeros(3)
    model = nn.Sequential(nn.Conv2d(1, 3, 1), bn)
    bn_scale_l1(1e-4)(model)
    torch.testing.assert_close(bn.weight.grad, torch.tensor([0.1 + 1e-4, 0.1 - 1e-4, 1e-4]))
    torch.testing.assert_close(bn.bias.grad, torch.zeros(3))  # only the scales


def test_resnet34_prunes_through_residual_connections() -> None:
    net = _net("resnet34_cifar", channels=3, size=32)
    widths = conv_channels(net)
    summary = prune_channels(net, ratio=RATIO, example_inputs=torch.zeros(1, 3, 32, 32))
    assert conv_channels(net) < widths
    assert summary.gflops_after < summary.gflops_before
    with torch.no_grad():
        assert net.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 4)


@pytest.fixture(scope="module")
def tiny_records() -> dict[str, dict]:
    return {framework: tiny_record("lwf", framework)
            for framework in ("none", "prepruning", "postpruning")}  # fmt: skip


@pytest.mark.parametrize("framework", ["prepruning", "postpruning"])
def test_pruning_frameworks_serve_a_smaller_model(tiny_records, framework) -> None:
    record, plain = tiny_records[framework], tiny_records["none"]
    assert record["status"] == "ok", record["error"]
    cost, plain_cost = record["inference_cost"], plain["inference_cost"]
    assert cost["gflops_per_image"] < plain_cost["gflops_per_image"]
    assert cost["params_millions"] < plain_cost["params_millions"]
    pruning = record["framework_report"]["pruning"]
    assert pruning["ratio"] == RATIO
    assert pruning["params_reduction_pct"] > 0 and pruning["gflops_reduction_pct"] > 0
    assert pruning["gflops_per_image_after"] < pruning["gflops_per_image_before"]
    if framework == "postpruning":  # the served copy is the last task's, and it was costed
        assert len(record["framework_report"]["pruning_per_task"]) == 3
        assert cost["params_millions"] == pytest.approx(pruning["params_millions_after"])
