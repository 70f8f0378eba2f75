"""Feature extractors ("backbones") by name, with one way to load weights for all of them.

A backbone maps ``(N, C, H, W)`` images to ``(N, feature_dim)`` features: global pooling and
flattening are included, the classifier is not (the harness adds an incremental head). Every
backbone is registered in ``BACKBONES`` and built through ``create_backbone``, so suites name
backbones as data and the contract tests can run over everything registered.

Weights are given as one string so that suites and command lines can carry them:
``None`` (random init), ``"torchvision:<ENUM>"`` (torchvision's pre-trained weights, e.g.
``torchvision:IMAGENET1K_V1``, read from torch's hub cache) or a path to a local state dict.
``harness.models.weights`` resolves either to a file on this machine and its sha256, and never
downloads; each backbone then maps the state dict onto its own layout (e.g. the CIFAR stem of
``resnet34_cifar`` from ImageNet's 7x7 stem) and loads it strictly.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from harness.api.registry import Registry, UnknownNameError
from harness.models.timm_backbones import (
    TIMM_PREFIX,
    build_timm_model,
    is_timm_backbone,
    timm_model_name,
)
from harness.models.weights import ResolvedWeights, load_state_dict_file, resolve_weights

logger = logging.getLogger(__name__)

# Keys of a classifier head in checkpoints of whole classifiers; backbones have no head.
HEAD_KEY_PREFIXES = ("fc.", "classifier.")
StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Backbone:
    """A feature extractor, the size of the feature vector it returns, and its weights' file."""

    module: nn.Module
    feature_dim: int
    weights: ResolvedWeights | None = None  # what was loaded, for the trial record


# A registered factory builds the architecture for ``in_channels`` x ``input_size``^2 images
# and, given resolved weights, maps their state dict onto it and loads it.
BackboneFactory = Callable[..., Backbone]


class BackboneRegistry(Registry[BackboneFactory]):
    """The registered backbones, and every timm model as ``timm:<model name>``.

    ``names()`` lists the registered ones only (the contract tests run over them); timm's
    thousand-odd models are found by name on demand.
    """

    def get(self, name: str) -> BackboneFactory:
        if is_timm_backbone(name):
            timm_model_name(name)  # unknown timm names fail here, with timm's near matches
            return functools.partial(_timm_backbone, name)
        try:
            return super().get(name)
        except UnknownNameError as error:
            raise UnknownNameError(f"{error} Or any timm model as {TIMM_PREFIX}<name>.") from None

    def __contains__(self, name: object) -> bool:
        if is_timm_backbone(name):
            try:
                timm_model_name(str(name))
            except UnknownNameError:
                return False
            return True
        return super().__contains__(name)


BACKBONES = BackboneRegistry("backbone")


def create_backbone(
    name: str, *, in_channels: int, input_size: int, weights: str | None = None
) -> Backbone:
    """Build the registered backbone ``name`` for ``in_channels`` x ``input_size``^2 images.

    ``weights`` (None, ``"torchvision:<ENUM>"`` or a path) is resolved offline first, so a
    missing file fails (``MissingWeightsError``) before anything is built.
    """
    factory = BACKBONES.get(name)
    if in_channels < 1 or input_size < 1:
        raise ValueError(
            f"in_channels and input_size must be positive, got {in_channels}, {input_size}"
        )
    resolved = resolve_weights(name, weights) if weights is not None else None
    return factory(in_channels=in_channels, input_size=input_size, weights=resolved)


def load_local_weights(module: nn.Module, path: Path, *, backbone_name: str) -> None:
    """Load a local state dict (bare or nested), ignoring classifier-head keys."""
    load_backbone_state(
        module, load_state_dict_file(path), origin=str(path), backbone_name=backbone_name
    )


def load_backbone_state(
    module: nn.Module, state: StateDict, *, origin: str, backbone_name: str
) -> None:
    """Load ``state`` strictly except for classifier-head keys; mismatches name ``origin``."""
    state = {k: v for k, v in state.items() if not k.startswith(HEAD_KEY_PREFIXES)}
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatches raise even when not strict
        raise RuntimeError(f"{origin} does not fit backbone {backbone_name!r}: {error}") from error
    if result.missing_keys or result.unexpected_keys:
        raise RuntimeError(
            f"{origin} does not fit backbone {backbone_name!r}: "
            f"missing keys {_preview(result.missing_keys)}, "
            f"unexpected keys {_preview(result.unexpected_keys)}"
        )


def _preview(keys: list[str], limit: int = 10) -> str:
    shown = ", ".join(keys[:limit])
    return f"[{shown}{f', ... ({len(keys)} in all)' if len(keys) > limit else ''}]"


def _finish(
    name: str,
    module: nn.Module,
    feature_dim: int,
    weights: ResolvedWeights | None,
    adapt: Callable[[StateDict], StateDict] = lambda state: state,
) -> Backbone:
    """The backbone, with ``weights`` (if any) mapped by ``adapt`` onto it and loaded."""
    if weights is not None:
        state = adapt(load_state_dict_file(weights.path))
        load_backbone_state(module, state, origin=str(weights.path), backbone_name=name)
        logger.info("%s: loaded %s (sha256 %s)", name, weights.source, weights.sha256[:12])
    return Backbone(module=module, feature_dim=feature_dim, weights=weights)


def _adapt_input_conv(state: StateDict, key: str, in_channels: int) -> StateDict:
    """``state`` with the input conv ``key`` adapted to ``in_channels`` where they differ."""
    weight = state.get(key)
    if weight is None or weight.ndim != 4 or weight.shape[1] == in_channels:
        return state  # absent or already fitting: the strict load reports real mismatches
    return {**state, key: _adapted_input_conv_weight(weight, in_channels)}


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
def compact_cnn(
    *, in_channels: int, input_size: int, weights: ResolvedWeights | None = None
) -> Backbone:
    """The teacher for tiny offline data (8x8 sklearn digits, 28x28 Fashion-MNIST).

    Architecture: this harness's own small VGG-style network (Simonyan & Zisserman, 2015,
    blocks of 3x3 convs) with BatchNorm (Ioffe & Szegedy, 2015) after every conv, as Network
    Slimming (Liu et al., 2017) prunes channels by BN scale. Not taken from the paper, whose
    backbones (ResNet-34, MobileNetV2) cannot train on CPU in test time.
    """
    _require_min_size("compact_cnn", input_size, minimum=2)
    built = build_compact_cnn(in_channels=in_channels, width_multiplier=1.0)
    return _finish("compact_cnn", built.module, built.feature_dim, weights)


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
    _require_min_size("compact_cnn_small", input_size, minimum=2)
    built = build_compact_cnn(in_channels=in_channels, width_multiplier=0.25)
    return _finish("compact_cnn_small", built.module, built.feature_dim, weights)


def _require_min_size(name: str, input_size: int, *, minimum: int) -> None:
    if input_size < minimum:
        raise ValueError(f"backbone {name!r} needs inputs of at least {minimum}x{minimum}")


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
    model.conv1 = _torchvision_init(
        nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    )
    model.maxpool = nn.Identity()
    model.fc = nn.Identity()

    def adapt(state: StateDict) -> StateDict:
        stem = state.get("conv1.weight")
        if stem is not None and stem.ndim == 4 and stem.shape[-2:] != (3, 3):
            state = {**state, "conv1.weight": cifar_stem_weight(stem)}
        return _adapt_input_conv(state, "conv1.weight", in_channels)

    return _finish("resnet34_cifar", model, 512, weights, adapt)


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
        model.conv1 = _torchvision_init(
            nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        )
    model.fc = nn.Identity()

    def adapt(state: StateDict) -> StateDict:
        return _adapt_input_conv(state, "conv1.weight", in_channels)

    return _finish("resnet34", model, 512, weights, adapt)


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
        return _adapt_input_conv(state, "features.0.0.weight", in_channels)

    return _finish("mobilenet_v2", model, model.last_channel, weights, adapt)


def _replace_mobilenet_input_conv(model: nn.Module, in_channels: int) -> None:
    old: nn.Conv2d = model.features[0][0]
    model.features[0][0] = _torchvision_init(
        nn.Conv2d(
            in_channels,
            old.out_channels,
            kernel_size=old.kernel_size,
            stride=old.stride,
            padding=old.padding,
            bias=False,
        )
    )


def _torchvision_init(conv: nn.Conv2d) -> nn.Conv2d:
    """Initialise a replaced conv as torchvision initialises the rest of the network."""
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


def _timm_backbone(
    name: str, *, in_channels: int, input_size: int, weights: ResolvedWeights | None = None
) -> Backbone:
    """A timm model (``models/timm_backbones.py``) as a backbone of ``num_features`` features."""
    model = build_timm_model(
        name,
        in_channels=in_channels,
        input_size=input_size,
        state_dict=None if weights is None else load_state_dict_file(weights.path),
        origin="random weights" if weights is None else str(weights.path),
    )
    if weights is not None:
        logger.info("%s: loaded %s (sha256 %s)", name, weights.source, weights.sha256[:12])
    return Backbone(module=model, feature_dim=model.num_features, weights=weights)
