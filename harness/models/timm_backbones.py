"""Any timm model as a backbone: ``timm:<model name>`` wherever a registered name works.

timm (Wightman, pytorch-image-models) builds the feature extractor with its classifier removed
(``num_classes=0``: pooled features of size ``num_features``), and the harness puts its own
incremental head on top, as for every backbone. Weights go through timm's own loader, which
knows each family's quirks (position-embedding resampling for another image size, the input
conv adapted to grey images, the classifier dropped), from a file on this machine only: an
explicit path, or the Hugging Face cache that ``harness.models.weights`` resolves offline.

Models with a fixed input size (ViTs and their position embeddings) are built for the suite's
image size; images smaller than, or not a multiple of, the patch are zero-padded up to whole
patches (timm's ``dynamic_img_pad``), so e.g. an 8x8 digit is one 16x16 patch. The padded
patch is computed, and costed, like any other.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

from harness.api.registry import UnknownNameError, did_you_mean

TIMM_PREFIX = "timm:"


def is_timm_backbone(name: object) -> bool:
    return isinstance(name, str) and name.startswith(TIMM_PREFIX)


def timm_model_name(backbone: str) -> str:
    """``vit_small_patch16_224`` for ``timm:vit_small_patch16_224``; unknown names fail here."""
    import timm

    name = backbone.removeprefix(TIMM_PREFIX)
    if not timm.is_model(name):
        hint = did_you_mean(name, timm.list_models())
        raise UnknownNameError(
            f"unknown timm model {name!r} (backbone {backbone!r}).{hint}"
            f" List them with: python -c \"import timm; print(timm.list_models('*vit*'))\""
        )
    return name


def build_timm_model(
    backbone: str,
    *,
    in_channels: int,
    input_size: int,
    state_dict: Mapping[str, Any] | None = None,
    origin: str = "random weights",
) -> Any:
    """The timm model of ``backbone`` without classifier, for ``in_channels`` x ``input_size``^2
    images, with ``state_dict`` (read from ``origin``) mapped by timm's loader and loaded
    strictly, or random weights."""
    import timm

    name = timm_model_name(backbone)
    kwargs: dict[str, Any] = {"num_classes": 0, "in_chans": in_channels}
    kwargs.update(_size_arguments(name, input_size))
    head_rows = None
    if state_dict is not None:
        # timm loads leniently (missing and unexpected keys only logged) whenever it drops a
        # classifier of another size; built with the state dict's own classifier size, it
        # loads strictly, and the classifier is removed afterwards.
        overlay: dict[str, Any] = {"state_dict": dict(state_dict)}
        head_rows = _classifier_rows(name, state_dict)
        if head_rows is None:
            overlay["classifier"] = None  # no classifier stored: nothing to drop
        else:
            overlay["num_classes"] = kwargs["num_classes"] = head_rows
        kwargs.update(pretrained=True, pretrained_cfg_overlay=overlay)
    try:
        model = timm.create_model(name, **kwargs)
        if head_rows is not None:
            model.reset_classifier(0)
    except (RuntimeError, ValueError, KeyError) as error:
        raise RuntimeError(
            f"timm could not build backbone {backbone!r} for {in_channels}x{input_size}x"
            f"{input_size} images with {origin}: {error}"
        ) from error
    _check_takes(model, backbone, in_channels=in_channels, input_size=input_size)
    return model


def _check_takes(model: Any, backbone: str, *, in_channels: int, input_size: int) -> None:
    """One forward pass now, so an image too small for the model's strides fails at build time
    with the reason, not in the middle of a trial."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_channels, input_size, input_size))
    except RuntimeError as error:
        raise ValueError(
            f"backbone {backbone!r} cannot take {in_channels}x{input_size}x{input_size} images "
            f"({error}); use it on a suite with larger images"
        ) from error
    finally:
        model.train(was_training)


def _classifier_rows(name: str, state_dict: Mapping[str, Any]) -> int | None:
    """Output size of the classifier stored in ``state_dict``, None when it stores none."""
    import timm

    classifiers = timm.get_pretrained_cfg_value(name, "classifier") or ()
    for classifier in (classifiers,) if isinstance(classifiers, str) else classifiers:
        weight = state_dict.get(f"{classifier}.weight")
        if weight is not None:
            return int(weight.shape[0])
    return None


def _size_arguments(name: str, input_size: int) -> dict[str, Any]:
    """``img_size`` (whole patches, padded) for models whose position embeddings fix it."""
    patch = _patch_size(name)
    if patch is None:
        return {}
    padded = max(1, math.ceil(input_size / patch)) * patch
    return {"img_size": padded, **({"dynamic_img_pad": True} if padded != input_size else {})}


@functools.cache
def _patch_size(name: str) -> int | None:
    """The patch size of a fixed-input-size (patch-embedding) model, else None.

    Read from a model built once per process with timm's defaults: timm's configs do not
    carry it.
    """
    import timm

    if not timm.get_pretrained_cfg_value(name, "fixed_input_size"):
        return None
    embed = getattr(timm.create_model(name, num_classes=0), "patch_embed", None)
    size = getattr(embed, "patch_size", None)
    return int(size[0]) if isinstance(size, (tuple, list)) else size
