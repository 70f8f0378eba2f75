"""Datasets that need no files: scikit-learn's digits and the synthetic blobs for tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.datasets.base import DatasetSource, DatasetStatus, RawDataset, register


class BuiltInSource(DatasetSource):
    """A dataset produced by a function: nothing to check, fetch or cache."""

    def __init__(
        self, name: str, make: Callable[[], RawDataset], *, image_size: int, where: str
    ) -> None:
        self.name, self._make, self.fixed_image_size, self._where = name, make, image_size, where

    def load(self, root: Path, *, image_size: int | None) -> RawDataset:
        return self._make()

    def status(self, root: Path) -> DatasetStatus:
        return DatasetStatus(self.name, "ok", self._where, 0, 0)


def load_sklearn_digits() -> RawDataset:
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes): no download at all."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # pixel values are 0..16
    names = tuple(str(n) for n in digits.target_names)
    return RawDataset(images, digits.target.astype(np.int64), None, None, names)


def load_synthetic_blobs() -> RawDataset:
    """Six classes of noisy 1x8x8 prototypes, 80 images each: tiny and learnable in one epoch.

    For tests and contributors' adapter checks (see ``harness.testing``); never a benchmark.
    """
    rng = np.random.RandomState(0)
    prototypes = rng.uniform(0.0, 1.0, size=(6, 1, 8, 8))
    labels = np.repeat(np.arange(6), 80)
    noise = rng.normal(0.0, 0.15, size=(len(labels), 1, 8, 8))
    images = np.clip(prototypes[labels] + noise, 0.0, 1.0).astype(np.float32)
    return RawDataset(
        images, labels.astype(np.int64), None, None, tuple(f"blob{i}" for i in range(6))
    )


register(BuiltInSource("sklearn-digits", load_sklearn_digits, image_size=8,
                       where="(bundled with scikit-learn)"))  # fmt: skip
register(BuiltInSource("synthetic-blobs", load_synthetic_blobs, image_size=8,
                       where="(generated in memory)"))  # fmt: skip
