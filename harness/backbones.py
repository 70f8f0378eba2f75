"""Feature extractors ("backbones") by name, with one way to load weights for all of them.

A backbone maps ``(N, C, H, W)`` images to ``(N, feature_dim)`` features: global pooling and
flattening are included, the classifier is not (the harness adds an incremental head). Every
backbone is registered in ``BACKBONES`` and built through ``create_backbone``, so suites name
backbones as data and the contract tests can run over everything registered.

Weights are given as one string so that suites and command lines can carry them:
``None`` (random init), ``"torchvision:<ENUM>"`` (torchvision's pre-trained weights, e.g.
``torchvision:IMAGENET1K_V1``; needs the network or torch's hub cache) or a path to a local
state dict (the offline way).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from harness.registry import Registry

logger = logging.getLogger(__name__)

TORCHVISION_PREFIX = "torchvision:"
# Keys of a classifier head in checkpoints of whole classifiers; backbones have no head.
HEAD_KEY_PREFIXES = ("fc.", "classifier.")


@dataclass(frozen=True)
class Backbone:
    """A feature extractor and the size of the feature vector it returns."""

    module: nn.Module
    feature_dim: int


# A registered factory builds the architecture and, where it has any, loads torchvision's
# pre-trained weights by enum name; local checkpoints are loaded by ``create_backbone``.
BackboneFactory = Callable[..., Backbone]
BACKBONES: Registry[BackboneFactory] = Registry("backbone")


def create_backbone(
    name: str, *, in_channels: int, input_size: int, weights: str | None = None
) -> Backbone:
    """Build the registered backbone ``name`` for ``in_channels`` x ``input_size``^2 images."""
    factory = BACKBONES.get(name)
    if in_channels < 1 or input_size < 1:
        raise ValueError(
            f"in_channels and input_size must be positive, got {in_channels}, {input_size}"
        )
    if weights is not None and weights.startswith(TORCHVISION_PREFIX):
        enum_name = weights.removeprefix(TORCHVISION_PREFIX)
        return factory(
            in_channels=in_channels, input_size=input_size, torchvision_weights=enum_name
        )
    backbone = factory(in_channels=in_channels, input_size=input_size, torchvision_weights=None)
    if weights is not None:
        load_local_weights(backbone.module, Path(weights), backbone_name=name)
    return backbone


def load_local_weights(module: nn.Module, path: Path, *, backbone_name: str) -> None:
    """Load a local state dict (bare or under ``"state_dict"``), ignoring classifier-head keys."""
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint file not found: {path}. Pass an existing state-dict file (.pt) or "
            f"'{TORCHVISION_PREFIX}<ENUM>' as weights."
        )
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise ValueError(f"{path} holds a {type(loaded).__name__}, not a state dict")
    state = {k: v for k, v in loaded.items() if not k.startswith(HEAD_KEY_PREFIXES)}
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatches raise even when not strict
        raise RuntimeError(f"{path} does not fit backbone {backbone_name!r}: {error}") from error
    if result.missing_keys or result.unexpected_keys:
        raise RuntimeError(
            f"{path} does not fit backbone {backbone_name!r}: "
            f"missing keys {_preview(result.missing_keys)}, "
            f"unexpected keys {_preview(result.unexpected_keys)}"
        )


def _preview(keys: list[str], limit: int = 10) -> str:
    shown = ", ".join(keys[:limit])
    return f"[{shown}{f', ... ({len(keys)} in all)' if len(keys) > limit else ''}]"


def _resolve_torchvision_weights(enum_cls: type[WeightsEnum], enum_name: str) -> WeightsEnum:
    valid = [w.name for w in enum_cls] + ["DEFAULT"]
    if enum_name not in valid:
        raise ValueError(f"unknown {enum_cls.__name__} {enum_name!r}; valid: {', '.join(valid)}")
    return enum_cls[enum_name]


def _download_torchvision_state(weights: WeightsEnum) -> Mapping[str, torch.Tensor]:
    """Fetch a torchvision state dict, turning a network failure into an actionable error."""
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except OSError as error:  # urllib's URLError, socket timeouts and SSL errors are OSErrors
        raise RuntimeError(
            f"could not download torchvision weights {weights} from {weights.url} ({error}). "
            "Without network access, download the file elsewhere and pass the local checkpoint "
            "path instead, e.g. weights='/path/to/checkpoint.pt'."
        ) from error


def _torchvision_model(
    build: Callable[..., nn.Module], enum_cls: type[WeightsEnum], enum_name: str | None
) -> tuple[nn.Module, WeightsEnum | None]:
    """A torchvision architecture, with its pre-trained weights ``enum_name`` loaded if given."""
    model = build(weights=None)
    if enum_name is None:
        return model, None
    weights = _resolve_torchvision_weights(enum_cls, enum_name)
    model.load_state_dict(_download_torchvision_state(weights))
    return model, weights


def _reject_torchvision_weights(name: str, torchvision_weights: str | None) -> None:
    if torchvision_weights is not None:
        raise ValueError(
            f"backbone {name!r} has no torchvision weights; pass a local checkpoint path instead"
        )


def _adapted_input_conv_weight(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """RGB kernels for other channel counts: summed for grey input, else tiled and rescaled.

    Same rule as timm's ``adapt_input_conv``: it keeps the response to a constant image.
    """
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = math.ceil(in_channels / weight.shape[1])
    return weight.repeat(1, repeats, 1, 1)[:, :in_channels] * (weight.shape[1] / in_channels)


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
def compact_cnn(*, in_channels: int, input_size: int, torchvision_weights: str | None) -> Backbone:
    """The teacher for tiny offline data (8x8 sklearn digits, 28x28 Fashion-MNIST).

    Architecture: this harness's own small VGG-style network (Simonyan & Zisserman, 2015,
    blocks of 3x3 convs) with BatchNorm (Ioffe & Szegedy, 2015) after every conv, as Network
    Slimming (Liu et al., 2017) prunes channels by BN scale. Not taken from the paper, whose
    backbones (ResNet-34, MobileNetV2) cannot train on CPU in test time.
    """
    _reject_torchvision_weights("compact_cnn", torchvision_weights)
    _require_min_size("compact_cnn", input_size, minimum=2)
    return build_compact_cnn(in_channels=in_channels, width_multiplier=1.0)


@BACKBONES.register("compact_cnn_small")
def compact_cnn_small(
    *, in_channels: int, input_size: int, torchvision_weights: str | None
) -> Backbone:
    """The student: ``compact_cnn`` at quarter width (8, 8, 16, 16), about 1/16 of its FLOPs.

    Architecture: as ``compact_cnn`` (this harness's own), a thinner copy of the teacher, the
    usual knowledge-distillation student shape. Quarter width puts it below a tenth of the
    teacher's FLOPs, in the spirit of the paper's student (MobileNetV2 at 0.0125 GFLOPs vs.
    ResNet-34 at 2.32 at 32x32).
    """
    _reject_torchvision_weights("compact_cnn_small", torchvision_weights)
    _require_min_size("compact_cnn_small", input_size, minimum=2)
    return build_compact_cnn(in_channels=in_channels, width_multiplier=0.25)


def _require_min_size(name: str, input_size: int, *, minimum: int) -> None:
    if input_size < minimum:
        raise ValueError(f"backbone {name!r} needs inputs of at least {minimum}x{minimum}")


@BACKBONES.register("resnet34_cifar")
def resnet34_cifar(
    *, in_channels: int, input_size: int, torchvision_weights: str | None
) -> Backbone:
    """ResNet-34 (He et al., 2016) from torchvision with the CIFAR stem, fc removed; 512 features.

    The CIFAR stem (3x3 conv, stride 1, padding 1, no max-pool) is the one of He et al.'s CIFAR
    experiments and of CIL codebases such as PyCIL; it gives the paper's 2.32 GFLOPs at 32x32.
    Built from torchvision so its state-dict keys match torchvision's: ImageNet weights load
    into every layer except the stem conv, whose 7x7 kernel has no 3x3 counterpart and is
    re-initialised.
    """
    model, weights = _torchvision_model(
        torchvision.models.resnet34, torchvision.models.ResNet34_Weights, torchvision_weights
    )
    if weights is not None:
        logger.info(
            "resnet34_cifar: %s loaded; the 3x3 CIFAR stem is randomly initialised", weights
        )
    model.conv1 = _torchvision_init(
        nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    )
    model.maxpool = nn.Identity()
    model.fc = nn.Identity()
    return Backbone(module=model, feature_dim=512)


@BACKBONES.register("mobilenet_v2")
def mobilenet_v2(*, in_channels: int, input_size: int, torchvision_weights: str | None) -> Backbone:
    """MobileNetV2 (Sandler et al., 2018) from torchvision unchanged, classifier removed; 1280.

    For ``in_channels != 3`` the first conv takes the new channel count; with pre-trained
    weights its kernels are adapted (summed for grey input) rather than discarded.
    """
    models = torchvision.models
    model, weights = _torchvision_model(
        models.mobilenet_v2, models.MobileNet_V2_Weights, torchvision_weights
    )
    if in_channels != 3:
        _replace_mobilenet_input_conv(model, in_channels, keep_weights=weights is not None)
    model.classifier = nn.Identity()
    return Backbone(module=model, feature_dim=model.last_channel)


def _replace_mobilenet_input_conv(
    model: torchvision.models.MobileNetV2, in_channels: int, *, keep_weights: bool
) -> None:
    old: nn.Conv2d = model.features[0][0]
    new = nn.Conv2d(
        in_channels,
        old.out_channels,
        kernel_size=old.kernel_size,
        stride=old.stride,
        padding=old.padding,
        bias=False,
    )
    if keep_weights:
        with torch.no_grad():
            new.weight.copy_(_adapted_input_conv_weight(old.weight, in_channels))
    else:
        _torchvision_init(new)
    model.features[0][0] = new


def _torchvision_init(conv: nn.Conv2d) -> nn.Conv2d:
    """Initialise a replaced conv as torchvision initialises the rest of the network."""
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv
