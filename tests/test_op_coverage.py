"""Every op that computes is counted, or named: the coverage check and its allow-list."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import flop_registry

from harness.cost.flop_formulas import MACS_FORMULAS
from harness.cost.inference import count_flops, measure_inference_cost
from harness.cost.op_coverage import DATA_MOVEMENT_OPS, NEGLIGIBLE_OPS
from harness.models.backbones import BACKBONES, create_backbone
from harness.models.incremental_net import IncrementalNet
from tests.test_backbones import BACKBONE_INPUTS


@pytest.mark.parametrize(("name", "channels", "size"), BACKBONE_INPUTS)
def test_built_in_backbones_leave_nothing_uncounted(name: str, channels: int, size: int) -> None:
    torch.manual_seed(0)
    built = create_backbone(name, in_channels=channels, input_size=size)
    net = IncrementalNet(built.module, built.feature_dim)
    net.add_classes(10)
    assert count_flops(net, torch.randn(1, channels, size, size)).uncounted_ops == ()


class _SpectralMixer(nn.Module):
    """An FNet-style token mixer: an FFT, which has no FLOP formula in either counter."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.fft.rfft(x, dim=-1).abs().flatten(1)[:, :16])


def test_an_op_without_a_formula_is_listed_not_silently_free() -> None:
    counted = count_flops(_SpectralMixer(), torch.randn(1, 2, 16))
    assert counted.uncounted_ops == ("aten._fft_r2c.default",)
    assert counted.flops == 2 * 16 * 4  # the linear layer alone
    cost = measure_inference_cost(_SpectralMixer(), (1, 2, 16), latency_repeats=1)
    assert cost.to_json()["uncounted_ops"] == ["aten._fft_r2c.default"]


def test_every_allow_listed_op_has_a_reason_and_no_formula() -> None:
    assert all(isinstance(reason, str) and len(reason) > 20 for reason in NEGLIGIBLE_OPS.values())
    assert not set(NEGLIGIBLE_OPS) & DATA_MOVEMENT_OPS
    with_formula = {op._qualified_op_name for op in [*flop_registry, *MACS_FORMULAS]
                    if hasattr(op, "_qualified_op_name")}  # fmt: skip
    assert not (set(NEGLIGIBLE_OPS) | DATA_MOVEMENT_OPS) & with_formula


def test_matmuls_and_convolutions_can_never_be_allow_listed() -> None:
    for name in ["aten::mm", "aten::addmm", "aten::bmm", "aten::convolution", "aten::_fft_r2c"]:
        assert name not in NEGLIGIBLE_OPS and name not in DATA_MOVEMENT_OPS


def test_timm_backbones_leave_nothing_uncounted() -> None:
    for name in ["timm:test_vit", "timm:test_resnet", "timm:test_efficientnet"]:
        assert name in BACKBONES
        built = create_backbone(name, in_channels=3, input_size=32)
        assert count_flops(built.module.eval(), torch.randn(1, 3, 32, 32)).uncounted_ops == ()
