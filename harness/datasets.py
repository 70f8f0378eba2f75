"""Dataset loaders: each returns raw images and labels; splitting belongs to the suite.

A loader that cannot find its data raises ``DatasetUnavailableError`` saying how to get it;
it never hangs on a network that is not there.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.registry import Registry


class DatasetUnavailableError(RuntimeError):
    """The dataset's files are not on this machine and could not be downloaded."""


@dataclass(frozen=True)
class RawDataset:
    """Images as float32 (N, C, H, W) in [0, 1] and integer labels; ``test`` is None when the
    dataset has no official test split (the suite then holds one out)."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray | None
    test_y: np.ndarray | None
    class_names: tuple[str, ...]


DatasetLoader = Callable[[Path], RawDataset]
DATASETS: Registry[DatasetLoader] = Registry("dataset")

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def default_data_root() -> Path:
    """``$CILBENCH_DATA`` or ``~/.cache/cilbench/data``; ``--data-root`` overrides both."""
    return Path(os.environ.get("CILBENCH_DATA", Path.home() / ".cache" / "cilbench" / "data"))


def load_dataset(name: str, data_root: Path | None = None) -> RawDataset:
    return DATASETS.get(name)(Path(data_root) if data_root else default_data_root())


@DATASETS.register("sklearn-digits")
def load_sklearn_digits(data_root: Path) -> RawDataset:
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes): no download at all."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # pixel values are 0..16
    names = tuple(str(n) for n in digits.target_names)
    return RawDataset(images, digits.target.astype(np.int64), None, None, names)


@DATASETS.register("synthetic-blobs")
def load_synthetic_blobs(data_root: Path) -> RawDataset:
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


FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@DATASETS.register("fashion-mnist")
def load_fashion_mnist(data_root: Path) -> RawDataset:
    """Fashion-MNIST from Debian's ``dataset-fashion-mnist``, a data root, or a download."""
    candidates = [DEBIAN_FASHION_MNIST, data_root / "FashionMNIST" / "raw"]
    folder = next((c for c in candidates if _has_idx_files(c)), None)
    if folder is None:
        folder = _download_fashion_mnist(data_root)
    train_x, train_y = (_read_idx(folder, name) for name in _FMNIST_FILES["train"])
    test_x, test_y = (_read_idx(folder, name) for name in _FMNIST_FILES["test"])
    as_images = lambda a: (a.astype(np.float32) / 255.0)[:, None]  # noqa: E731
    return RawDataset(
        as_images(train_x), train_y.astype(np.int64),
        as_images(test_x), test_y.astype(np.int64), FASHION_MNIST_CLASSES,
    )  # fmt: skip


def _has_idx_files(folder: Path) -> bool:
    names = [n for pair in _FMNIST_FILES.values() for n in pair]
    return all(_idx_path(folder, n) is not None for n in names)


def _idx_path(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_idx(folder: Path, name: str) -> np.ndarray:
    """Parse an IDX file (optionally gzipped): magic, dims as big-endian int32, then uint8 data."""
    path = _idx_path(folder, name)
    assert path is not None
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:  # 0x08: unsigned byte
        raise DatasetUnavailableError(f"{path} is not a uint8 IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(dims)):
        raise DatasetUnavailableError(f"{path} is truncated: expected dims {dims}")
    return array.reshape(dims)


def _download_fashion_mnist(data_root: Path) -> Path:
    """torchvision's download into ``data_root``; offline this fails at once, and we say why."""
    from torchvision.datasets import FashionMNIST

    try:
        for train in (True, False):
            FashionMNIST(str(data_root), train=train, download=True)
    except Exception as error:  # torchvision raises URLError/RuntimeError variants offline
        raise DatasetUnavailableError(
            "Fashion-MNIST is not on this machine and could not be downloaded "
            f"({type(error).__name__}: {error}). Get it in one of these ways:\n"
            "  - Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist "
            f"(files land in {DEBIAN_FASHION_MNIST}/)\n"
            f"  - on a machine with internet: cilbench run --suite fmnist-5split "
            f"--data-root {data_root} (torchvision downloads it)\n"
            f"  - or copy the four IDX files (train-images-idx3-ubyte.gz, ...) into "
            f"{data_root / 'FashionMNIST' / 'raw'}/"
        ) from error
    return data_root / "FashionMNIST" / "raw"
