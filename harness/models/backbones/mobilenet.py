"""MobileNetV2 from torchvision (the paper's student), its input conv adapted to the
suite's channels."""

from __future__ import annotations

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


@BACKBONES.register("mobilenet_v2")
def mobilenet_v2(
    *, in_channels: int, input_size: int, weights: ResolvedWeights | None = None
) -> Backbone:
    """MobileNetV2 (Sandler et al., 2018) from torchvision unchanged, classifier removed; 1280.

    The paper's student (0.0125 GFLOPs at 32x32, torchvision's strides as they are), random or
    pre-trained. For ``in_channels != 3`` the first conv takes the new channel count; with
    pre-trained weights its kernels are adapted (summed for grey input) rather than discarded.
    """
    import torchvision  # here: over a second of imports a trial without it does not pay

    model = torchvision.models.mobilenet_v2(weights=None)
    if in_channels != 3:
        _replace_mobilenet_input_conv(model, in_channels)
    model.classifier = nn.Identity()

    def adapt(state: StateDict) -> StateDict:
        return adapt_input_conv(state, "features.0.0.weight", in_channels)

    return finish_backbone("mobilenet_v2", model, model.last_channel, weights, adapt)


def _replace_mobilenet_input_conv(model: nn.Module, in_channels: int) -> None:
    old: nn.Conv2d = model.features[0][0]
    model.features[0][0] = torchvision_init(
        nn.Conv2d(
            in_channels,
            old.out_channels,
            kernel_size=old.kernel_size,
            stride=old.stride,
            padding=old.padding,
            bias=False,
        )
    )
