"""The compact CNNs of the offline suites: ``compact_cnn`` (the teacher) and
``compact_cnn_small`` (the student), conv-BN-ReLU blocks whose BatchNorm scales pruning reads."""

from __future__ import annotations

from torch import nn

from harness.models.backbones.registry import (
    BACKBONES,
    Backbone,
    finish_backbone,
    require_min_size,
)
from harness.models.weights import ResolvedWeights


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    # No conv bias: BatchNorm's shift replaces it, and BN scales drive channel pruning.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def build_compact_cnn(*, in_channels: int, width_multiplier: float = 1.0) -> Backbone:
    """Four 3x3 conv+BN+ReLU blocks (32, 32, 64, 64 x multiplier), a 2x2 max-pool after the 2nd.

    Padding keeps the spatial size, so one pool works from 8x8 inputs up; adaptive average
    pooling makes the feature size independent of the input size.
    """
    w1, w2 = (max(1, round(base * width_multiplier)) for base in (32, 64))
    module = nn.Sequential(
        _conv_bn_relu(in_channels, w1),
        _conv_bn_relu(w1, w1),
        nn.MaxPool2d(kernel_size=2),
        _conv_bn_relu(w1, w2),
        _conv_bn_relu(w2, w2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return Backbone(module=module, feature_dim=w2)


@BACKBONES.register("compact_cnn")
def compact_cnn(
    *, in_channels: int, input_size: int, weights: ResolvedWeights | None = None
) -> Backbone:
    """The teacher for tiny offline data (8x8 sklearn digits, 28x28 Fashion-MNIST).

    Architecture: this harness's own small VGG-style network (Simonyan & Zisserman, 2015,
    blocks of 3x3 convs) with BatchNorm (Ioffe & Szegedy, 2015) after every conv, as Network
    Slimming (Liu et al., 2017) prunes channels by BN scale. Not taken from the paper, whose
    backbones (ResNet-34, MobileNetV2) cannot train on CPU in test time.
    """
    require_min_size("compact_cnn", input_size, minimum=2)
    built = build_compact_cnn(in_channels=in_channels, width_multiplier=1.0)
    return finish_backbone("compact_cnn", built.module, built.feature_dim, weights)


@BACKBONES.register("compact_cnn_small")
def compact_cnn_small(
    *, in_channels: int, input_size: int, weights: ResolvedWeights | None = None
) -> Backbone:
    """The student: ``compact_cnn`` at quarter width (8, 8, 16, 16), about 1/16 of its FLOPs.

    Architecture: as ``compact_cnn`` (this harness's own), a thinner copy of the teacher, the
    usual knowledge-distillation student shape. Quarter width puts it below a tenth of the
    teacher's FLOPs, in the spirit of the paper's student (MobileNetV2 at 0.0125 GFLOPs vs.
    ResNet-34 at 2.32 at 32x32).
    """
    require_min_size("compact_cnn_small", input_size, minimum=2)
    built = build_compact_cnn(in_channels=in_channels, width_multiplier=0.25)
    return finish_backbone("compact_cnn_small", built.module, built.feature_dim, weights)
