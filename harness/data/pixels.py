"""Pixels in, normalised tensors out: the first stage of every model the harness builds.

Suites keep images as stored pixels (uint8 0..255, or float32 in [0, 1] for the few datasets
that come as floats): a quarter of the memory of float32 and the form a deployed model
receives. The suite's normalisation is therefore part of the model, not of the data: every
forward pass (training batches, evaluation, a strategy's feature extraction, a teacher's
distillation targets) sees the same normalised input, and no adapter can skip or change it.
It adds no multiply-adds to the inference cost (an element-wise shift and scale).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn


def unit_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels as floats in [0, 1]; anything else is taken to be in [0, 1] already."""
    return pixels.float().div(255.0) if pixels.dtype == torch.uint8 else pixels


class PixelNormalization(nn.Module):
    """``(pixels / 255 - mean) / std`` for uint8 input; ``(pixels - mean) / std`` for floats.

    Float input is taken to be in [0, 1] already (e.g. after a resampling augmentation), the
    same convention as torchvision's ``ToDtype(scale=True)``. The statistics are buffers that
    are not saved in state dicts: they belong to the suite, not to learned weights.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std) or not mean:
            raise ValueError("PixelNormalization needs one mean and one std per channel")
        if any(s <= 0 for s in std):
            raise ValueError(f"normalisation std must be > 0, got {list(std)}")
        shape = (1, len(mean), 1, 1)
        self.register_buffer("mean", torch.tensor(mean).view(shape), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(shape), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return (unit_range(pixels) - self.mean) / self.std


def with_pixel_normalization(
    backbone: nn.Module, mean: Sequence[float], std: Sequence[float]
) -> nn.Sequential:
    """``backbone`` preceded by the suite's normalisation, as one module (``pixels``, ``net``).

    Inside the backbone rather than around the whole classifier, so that every path that
    calls the backbone alone (e.g. iCaRL's nearest-mean-of-exemplars) normalises too.
    """
    return nn.Sequential(OrderedDict(pixels=PixelNormalization(mean, std), net=backbone))
