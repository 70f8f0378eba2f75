"""Training-time augmentation, applied by the harness to whole batches on the trial's device.

Augmentation belongs to the suite (the same for every method: it changes what a method can
learn from the same images), so suites name it as data::

    augmentation:
      train:
        - random_crop: {padding: 4}
        - horizontal_flip: {p: 0.5}

Test images are never augmented. Each op works on a batch at once, where the batch already
lies (no per-image PIL transforms, which are what leave GPUs idle in typical CIL code), and
draws its random numbers from the trial's CPU generator: augmentation, like batch order, is a
function of the seed alone, and the same on every device. Ops map a stored image to an image
of the same size, so the model's input size is the stored size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F

from harness.api.registry import Registry, did_you_mean
from harness.data.pixels import unit_range


class AugmentationError(ValueError):
    """A malformed ``augmentation:`` block; the message says what to fix."""


AugmentOp = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
AUGMENTATIONS: Registry[type] = Registry("augmentation")


def _uniform(count: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(count, generator=generator, dtype=torch.float64)


@AUGMENTATIONS.register("random_crop")
@dataclass(frozen=True)
class RandomCrop:
    """Zero-pad by ``padding`` pixels, then cut a random window of the original size.

    torchvision's ``RandomCrop(size, padding=p)`` (fill 0), the CIFAR recipe of He et al.
    (2016) used by every CIL codebase; exact on uint8 (no resampling).
    """

    padding: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.padding, int) or self.padding < 0:
            raise AugmentationError(
                f"random_crop.padding must be an integer >= 0, got {self.padding!r}"
            )

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.padding == 0:
            return x
        n, _, h, w = x.shape
        p = self.padding
        padded = F.pad(x, (p, p, p, p))
        offsets = torch.randint(0, 2 * p + 1, (2, n), generator=generator).to(x.device)
        rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # (N, H)
        cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # (N, W)
        batch = torch.arange(n, device=x.device)[:, None, None]
        # Advanced indexing on (N, H, W, C) gathers every sample's window in one op.
        windows = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
        return windows.permute(0, 3, 1, 2).contiguous()


@AUGMENTATIONS.register("horizontal_flip")
@dataclass(frozen=True)
class HorizontalFlip:
    """Mirror each image left-right with probability ``p`` (torchvision's default 0.5)."""

    p: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.p) <= 1.0:
            raise AugmentationError(f"horizontal_flip.p must lie in [0, 1], got {self.p!r}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        flip = (torch.rand(len(x), generator=generator) < self.p).to(x.device)
        return torch.where(flip[:, None, None, None], x.flip(3), x)


@AUGMENTATIONS.register("random_resized_crop")
@dataclass(frozen=True)
class RandomResizedCrop:
    """A random box of ``scale`` x the image area and aspect ratio in ``ratio``, resized back
    to the image size (bilinear); the ImageNet recipe of Szegedy et al. (2015) as torchvision's
    ``RandomResizedCrop``. Output is float in [0, 1].

    Deviation from torchvision, for a batched op: a box that does not fit is clamped to the
    image instead of re-drawn up to 10 times; the log-uniform ratio and uniform area are the
    same.
    """

    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def __post_init__(self) -> None:
        lo, hi = (float(v) for v in self.scale)
        if not 0.0 < lo <= hi <= 1.0:
            raise AugmentationError(
                f"random_resized_crop.scale must be [low, high] with 0 < low <= high <= 1, "
                f"got {list(self.scale)}"
            )
        rlo, rhi = (float(v) for v in self.ratio)
        if not 0.0 < rlo <= rhi:
            raise AugmentationError(
                f"random_resized_crop.ratio must be [low, high] with 0 < low <= high, "
                f"got {list(self.ratio)}"
            )

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        area = _uniform(n, *self.scale, generator) * h * w
        log_ratio = _uniform(n, math.log(self.ratio[0]), math.log(self.ratio[1]), generator)
        aspect = torch.exp(log_ratio)
        box_w = torch.sqrt(area * aspect).clamp(1.0, w)
        box_h = torch.sqrt(area / aspect).clamp(1.0, h)
        left = torch.rand(n, generator=generator, dtype=torch.float64) * (w - box_w)
        top = torch.rand(n, generator=generator, dtype=torch.float64) * (h - box_h)
        # Affine map from output coordinates to the box, in grid_sample's [-1, 1] units.
        theta = torch.zeros(n, 2, 3, dtype=torch.float64)
        theta[:, 0, 0] = box_w / w
        theta[:, 0, 2] = (2 * left + box_w) / w - 1
        theta[:, 1, 1] = box_h / h
        theta[:, 1, 2] = (2 * top + box_h) / h - 1
        pixels = unit_range(x).float()
        grid = F.affine_grid(theta.to(pixels), [n, x.shape[1], h, w], align_corners=False)
        return F.grid_sample(
            pixels, grid, mode="bilinear", padding_mode="border", align_corners=False
        ).clamp_(0.0, 1.0)


@dataclass(frozen=True)
class Augmentation:
    """The suite's training augmentation: ops applied in order to each training batch."""

    ops: tuple[Any, ...] = ()

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for op in self.ops:
            x = op(x, generator)
        return x

    def __bool__(self) -> bool:
        return bool(self.ops)

    def describe(self) -> list[dict[str, Any]]:
        """The ops as data (for records): ``[{"random_crop": {"padding": 4}}, ...]``."""
        names = {AUGMENTATIONS.get(name): name for name in AUGMENTATIONS.names()}
        return [{names[type(op)]: _jsonable(asdict(op))} for op in self.ops]


NO_AUGMENTATION = Augmentation()


def parse_augmentation(raw: Any, *, where: str = "augmentation") -> Augmentation:
    """``{train: [{op: {params}}, ...]}`` (or None) -> ``Augmentation``; clear errors."""
    if raw is None:
        return NO_AUGMENTATION
    if not isinstance(raw, Mapping) or set(raw) - {"train"}:
        raise AugmentationError(
            f"{where}: expected a mapping with one key, train (a list of ops); test images "
            "are never augmented"
        )
    steps = raw.get("train") or []
    if not isinstance(steps, Sequence) or isinstance(steps, str):
        raise AugmentationError(f"{where}.train must be a list of ops")
    return Augmentation(tuple(_parse_op(step, f"{where}.train") for step in steps))


def _parse_op(step: Any, where: str) -> Any:
    if isinstance(step, str):
        step = {step: {}}
    if not isinstance(step, Mapping) or len(step) != 1:
        raise AugmentationError(f"{where}: each op is one name with its parameters, e.g. "
                                "{random_crop: {padding: 4}}")  # fmt: skip
    ((name, params),) = step.items()
    valid = AUGMENTATIONS.names()
    if name not in valid:
        raise AugmentationError(
            f"{where}: unknown augmentation {name!r}.{did_you_mean(str(name), valid)} "
            f"Valid: {', '.join(valid)}."
        )
    cls = AUGMENTATIONS.get(name)
    params = dict(params or {})
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise AugmentationError(
            f"{where}.{name}: unknown parameter(s) {unknown}; valid: {sorted(allowed)}"
        )
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    try:
        return cls(**params)
    except (TypeError, ValueError) as error:
        raise AugmentationError(f"{where}.{name}: {error}") from error


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value
