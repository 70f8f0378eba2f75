"""Dataset loaders: each returns raw images and labels; splitting belongs to the suite.

One module per dataset format registers a source in ``DATASETS``. A source that cannot find
its files raises ``DatasetUnavailableError`` saying where the data comes from, the layout it
expects under the data root and the command that fetches it; it never touches the network
(only ``cilbench data --fetch`` downloads). ``check_dataset`` is the fast preflight a run does
before any trial starts (see ``harness.data.datasets.manifest`` for exactly what it checks).
"""

from __future__ import annotations

from pathlib import Path

from harness.data.datasets import aircraft, cars, cifar100, fashion_mnist, offline  # noqa: F401
from harness.data.datasets.base import (
    DATASETS,
    DatasetSource,
    DatasetStatus,
    DatasetUnavailableError,
    RawDataset,
    default_data_root,
)
from harness.data.datasets.fashion_mnist import DEBIAN_FASHION_MNIST, FASHION_MNIST_CLASSES

__all__ = [
    "DATASETS",
    "DEBIAN_FASHION_MNIST",
    "FASHION_MNIST_CLASSES",
    "DatasetSource",
    "DatasetStatus",
    "DatasetUnavailableError",
    "RawDataset",
    "check_dataset",
    "dataset_status",
    "default_data_root",
    "fetch_dataset",
    "load_dataset",
]


def _root(data_root: Path | None) -> Path:
    return Path(data_root).expanduser() if data_root else default_data_root()


def load_dataset(
    name: str, data_root: Path | None = None, *, image_size: int | None = None
) -> RawDataset:
    """The dataset's images and labels. ``image_size`` is the square size folder (JPEG)
    datasets are decoded to (required for them); fixed-size datasets ignore it."""
    return DATASETS.get(name).load(_root(data_root), image_size=image_size)


def check_dataset(
    name: str, data_root: Path | None = None, *, image_size: int | None = None, full: bool = False
) -> None:
    """Raise ``DatasetUnavailableError`` naming every missing or corrupt file, else return.

    Fast when the data is fine (seconds); the first call on new data hashes it once to build
    its manifest. ``full`` re-hashes every file (``cilbench data --verify``). ``image_size``
    is accepted for symmetry with ``load_dataset``; the files do not depend on it.
    """
    if image_size is not None and image_size <= 0:
        raise DatasetUnavailableError(f"image_size must be a positive number of pixels, not "
                                      f"{image_size}")  # fmt: skip
    DATASETS.get(name).check(_root(data_root), full=full)


def dataset_status(name: str, data_root: Path | None = None) -> DatasetStatus:
    """One row of ``cilbench data``: ok, missing, corrupt or not verified (no manifest yet)."""
    return DATASETS.get(name).status(_root(data_root))


def fetch_dataset(name: str, data_root: Path | None = None) -> None:
    """Download with torchvision into the root, then build the manifest (needs internet)."""
    root = _root(data_root)
    DATASETS.get(name).fetch(root)
    DATASETS.get(name).check(root)
