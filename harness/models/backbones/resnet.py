"""ResNet-34 from torchvision: ``resnet34`` as published and ``resnet34_cifar`` with the
3x3 CIFAR stem (the paper's teacher), ImageNet weights mapped onto either."""

from __future__ import annotations

import torch
from torch import nn

from harness.models.backbones.registry import (
    BACKBONES,
    Backbone,
    StateDict,
    adapt_input_conv,
    finish_backbone,
    torchvision_init,
)
from harness.models.weights import ResolvedWeights


@BACKBONES.register("resnet34_cifar")
def resnet34_cifar(
    *, in_channels: int, input_size: int, weights: ResolvedWeights | None = None
) -> Backbone:
    """ResNet-34 (He et al., 2016) from torchvision with the CIFAR stem, fc removed; 512 features.

    The CIFAR stem (3x3 conv, stride 1, padding 1, no max-pool) is the one of He et al.'s CIFAR
    experiments and of CIL codebases such as PyCIL; it gives the paper's 2.32 GFLOPs at 32x32.
    Built from torchvision so its state-dict keys match torchvision's: ImageNet weights
    (``torchvision:IMAGENET1K_V1``) load bit for bit into every layer but the stem conv, which
    is initialised from the pre-trained 7x7 kernel resampled to 3x3 (``cifar_stem_weight``)
    rather than drawn at random: that keeps ImageNet's learned colour and edge filters, at the
    coarser scale, for the layers after them, which were trained on their responses. A state
    dict that already has a 3x3 stem (a saved ``resnet34_cifar``) loads unchanged.
    """
    import torchvision  # here: over a second of imports a trial without it does not pay

    model = torchvision.models.resnet34(weights=None)
    model.conv1 = torchvision_init(
        nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    )
    model.maxpool = nn.Identity()
    model.fc = nn.Identity()

    def adapt(state: StateDict) -> StateDict:
        stem = state.get("conv1.weight")
        if stem is not None and stem.ndim == 4 and stem.shape[-2:] != (3, 3):
            state = {**state, "conv1.weight": cifar_stem_weight(stem)}
        return adapt_input_conv(state, "conv1.weight", in_channels)

    return finish_backbone("resnet34_cifar", model, 512, weights, adapt)


def cifar_stem_weight(weight: torch.Tensor, size: int = 3) -> torch.Tensor:
    """An ImageNet stem kernel ``(out, in, k, k)`` area-resampled to ``size`` x ``size``.

    Each output tap is the area average of the ``k/size`` x ``k/size`` patch of input taps it
    covers (fractional taps weighted by their overlap), times ``(k/size)^2`` (49/9 for 7 -> 3),
    so every filter keeps its sum: its response to a constant image, hence the statistics
    the first BatchNorm was trained on, is unchanged. ``F.adaptive_avg_pool2d`` (and
    ``F.interpolate(mode="area")``) would use the overlapping windows 0-2, 2-4, 4-6 for
    7 -> 3, counting taps 2 and 4 twice, and the sums would drift.
    """
    resample = _area_resample_matrix(weight.shape[-1], size)
    return torch.einsum("ik,ockl,jl->ocij", resample, weight.double(), resample).to(weight.dtype)


def _area_resample_matrix(source: int, target: int) -> torch.Tensor:
    """``(target, source)`` overlaps of ``target`` equal bins with ``source`` unit taps.

    Each column sums to 1 (every input tap is shared out whole), which preserves sums.
    """
    edges = torch.linspace(0, source, target + 1, dtype=torch.float64)
    taps = torch.arange(source, dtype=torch.float64)
    low = torch.maximum(edges[:-1, None], taps[None, :])
    high = torch.minimum(edges[1:, None], taps[None, :] + 1)
    return (high - low).clamp(min=0)


@BACKBONES.register("resnet34")
def resnet34(
    *, in_channels: int, input_size: int, weights: ResolvedWeights | None = None
) -> Backbone:
    """ResNet-34 (He et al., 2016) from torchvision unchanged (7x7 stride-2 stem and max-pool),
    fc removed; 512 features.

    For ImageNet-sized inputs, such as the fine-grained suites at 224x224 (about 7.3 GFLOPs,
    i.e. 3.67 GMACs, the figure torchvision lists): every pre-trained layer loads as is. For
    ``in_channels != 3`` the stem's kernels are adapted as timm's ``adapt_input_conv`` does.
    """
    import torchvision  # here: over a second of imports a trial without it does not pay

    model = torchvision.models.resnet34(weights=None)
    if in_channels != 3:
        model.conv1 = torchvision_init(
            nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        )
    model.fc = nn.Identity()

    def adapt(state: StateDict) -> StateDict:
        return adapt_input_conv(state, "conv1.weight", in_channels)

    return finish_backbone("resnet34", model, 512, weights, adapt)
