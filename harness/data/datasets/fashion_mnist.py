"""Fashion-MNIST: 70,000 28x28 greyscale images of 10 clothing classes, as uint8.

Read from Debian's ``dataset-fashion-mnist`` package or ``<root>/FashionMNIST/raw/`` (where
torchvision puts it). The four IDX files carry their own shape in their headers, so the check
parses them (under a second) instead of keeping a manifest: truncation is caught by the header.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from harness.data.datasets.base import (
    DatasetSource,
    DatasetStatus,
    DatasetUnavailableError,
    RawDataset,
    download_failure_explained,
    missing_data_message,
    register,
)

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
SOURCE_URL = "https://github.com/zalandoresearch/fashion-mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_LAYOUT = """\
<root>/FashionMNIST/raw/
    train-images-idx3-ubyte[.gz]   train-labels-idx1-ubyte[.gz]
    t10k-images-idx3-ubyte[.gz]    t10k-labels-idx1-ubyte[.gz]"""


def _debian_folder() -> Path:
    """Read through the package, so tests can monkeypatch ``harness.data.datasets.DEBIAN_...``."""
    import harness.data.datasets as package

    return package.DEBIAN_FASHION_MNIST


class FashionMNIST(DatasetSource):
    name = "fashion-mnist"
    fixed_image_size = 28

    def folder(self, root: Path) -> Path | None:
        candidates = [_debian_folder(), root / "FashionMNIST" / "raw"]
        return next((c for c in candidates if _has_idx_files(c)), None)

    def load(self, root: Path, *, image_size: int | None) -> RawDataset:
        folder = self._found(root)
        train_x, train_y = (_read_idx(folder, name) for name in _FMNIST_FILES["train"])
        test_x, test_y = (_read_idx(folder, name) for name in _FMNIST_FILES["test"])
        return RawDataset(
            train_x[:, None], train_y.astype(np.int64),
            test_x[:, None], test_y.astype(np.int64), FASHION_MNIST_CLASSES,
        )  # fmt: skip

    def check(self, root: Path, *, full: bool = False) -> None:
        self.load(root, image_size=None)  # parsing the headers is the check

    def status(self, root: Path) -> DatasetStatus:
        folder = self.folder(root)
        if folder is None:
            return DatasetStatus(self.name, "missing", str(root / "FashionMNIST" / "raw"), 0, 0)
        try:
            self.check(root)
        except DatasetUnavailableError as error:
            return DatasetStatus(self.name, "corrupt", str(folder), 4, 0, str(error))
        return DatasetStatus(self.name, "ok", str(folder), 4, 0)

    def fetch(self, root: Path) -> None:
        from torchvision.datasets import FashionMNIST as TorchvisionFashionMNIST

        with download_failure_explained("Fashion-MNIST", self.missing_message(root)):
            for train in (True, False):
                TorchvisionFashionMNIST(str(root), train=train, download=True)

    def missing_message(self, root: Path) -> str:
        how = (
            "Get it in one of these ways:\n"
            "  - Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist "
            f"(files land in {_debian_folder()}/)\n"
            f"  - on a machine with internet: cilbench data --fetch {self.name} "
            "--data-root DIR, then copy DIR here\n"
            f"  - or copy the four IDX files (train-images-idx3-ubyte.gz, ...) into "
            f"{root / 'FashionMNIST' / 'raw'}/"
        )
        return missing_data_message(
            dataset=self.name, root=root, source_url=SOURCE_URL, layout=_LAYOUT, how_to_get=how
        )

    def _found(self, root: Path) -> Path:
        folder = self.folder(root)
        if folder is None:
            raise DatasetUnavailableError(self.missing_message(root))
        return folder


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
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as error:  # a truncated .gz fails here
        raise DatasetUnavailableError(f"{path} is corrupt ({error}); copy it again") from error
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:  # 0x08: unsigned byte
        raise DatasetUnavailableError(f"{path} is not a uint8 IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(dims)):
        raise DatasetUnavailableError(f"{path} is truncated: expected dims {dims}; copy it again")
    return array.reshape(dims)


register(FashionMNIST())
