"""The backbone registry, ``create_backbone`` and the one way weights are loaded into any
backbone (mapped by the family's ``adapt``, then loaded strictly, head keys ignored); also the
registry's fallback that builds any timm model named ``timm:<model>``."""

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


def finish_backbone(
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


def adapt_input_conv(state: StateDict, key: str, in_channels: int) -> StateDict:
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


def require_min_size(name: str, input_size: int, *, minimum: int) -> None:
    if input_size < minimum:
        raise ValueError(f"backbone {name!r} needs inputs of at least {minimum}x{minimum}")


def torchvision_init(conv: nn.Conv2d) -> nn.Conv2d:
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
