"""Datasets that need no files: scikit-learn's digits and the synthetic blobs for tests."""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.data.datasets.base import DatasetSource, DatasetStatus, RawDataset, register


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


# The file sklearn.datasets.load_digits reads, inside scikit-learn's package folder.
SKLEARN_DIGITS_FILE = ("datasets", "data", "digits.csv.gz")


def load_sklearn_digits() -> RawDataset:
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes): no download at all.

    Read straight from the file scikit-learn ships, the way ``load_digits`` reads it (the
    same numbers, bit for bit), without importing scikit-learn: that import (scipy and all)
    cost each Ray worker about 1.5 CPU-seconds before its first digits trial. If a future
    scikit-learn moves the file, ``load_digits`` itself is used.
    """
    path = _sklearn_digits_file()
    if path is None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        table = np.concatenate([digits.data, digits.target[:, None]], axis=1)
    else:
        with gzip.open(path, mode="rt", encoding="utf-8") as rows:
            table = np.loadtxt(rows, delimiter=",")  # 64 pixels, then the class, per row
    pixels = table[:, :-1].reshape(-1, 8, 8)
    images = (pixels / 16.0).astype(np.float32)[:, None]  # pixel values are 0..16
    names = tuple(str(n) for n in range(10))
    return RawDataset(images, table[:, -1].astype(np.int64), None, None, names)


def _sklearn_digits_file() -> Path | None:
    """Where scikit-learn's digits file lies, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")  # a top-level name: nothing is imported
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder).joinpath(*SKLEARN_DIGITS_FILE)
        if path.is_file():
            return path
    return None


def load_synthetic_blobs() -> RawDataset:
    """Six classes of noisy 1x8x8 prototypes, 80 images each: tiny and learnable in one epoch.

    For tests and contributors' adapter checks (see ``harness.api.testing``); never a benchmark.
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
