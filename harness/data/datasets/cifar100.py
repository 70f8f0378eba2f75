"""CIFAR-100 in torchvision's on-disk format: ``<root>/cifar-100-python/{train,test,meta}``.

The three files are Python pickles (latin1): ``data`` (N, 3072) uint8 in channel-major order
and ``fine_labels``; ``meta`` holds ``fine_label_names``. We read them directly (no torchvision
dataset object, no per-image PIL conversion) into uint8 (N, 3, 32, 32).

The official md5 of each file is the one torchvision publishes (``CIFAR100.train_list``,
``test_list``, ``meta``); the manifest is only built from files that match it, and
``cilbench data --verify`` checks it again. ``OFFICIAL_MD5`` is the one place that table
lives: tests that generate their own pickles set it (see ``harness.data.fake_datasets``).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

import numpy as np

from harness.data.datasets.base import (
    DatasetUnavailableError,
    RawDataset,
    download_failure_explained,
    missing_data_message,
    register,
)
from harness.data.datasets.file_source import FileDatasetSource
from harness.data.datasets.manifest import ExpectedFiles

SOURCE_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
FOLDER = "cifar-100-python"
FILES = ("train", "test", "meta")
#: {path relative to the data root: md5}; None means "torchvision's table" (read lazily,
#: since importing torchvision costs seconds and only hashing needs it).
OFFICIAL_MD5: dict[str, str] | None = None
_LAYOUT = f"""\
<root>/{FOLDER}/
    train    (python pickle, 50,000 images)
    test     (python pickle, 10,000 images)
    meta     (python pickle, class names)"""


@cache
def _torchvision_md5() -> dict[str, str]:
    from torchvision.datasets import CIFAR100

    table = [*CIFAR100.train_list, *CIFAR100.test_list, [CIFAR100.meta["filename"],
             CIFAR100.meta["md5"]]]  # fmt: skip
    return {f"{CIFAR100.base_folder}/{name}": md5 for name, md5 in table}


class _OfficialMd5(Mapping[str, str]):
    """The official table, looked up only when a file is actually hashed."""

    def _table(self) -> dict[str, str]:
        return OFFICIAL_MD5 if OFFICIAL_MD5 is not None else _torchvision_md5()

    def __getitem__(self, key: str) -> str:
        return self._table()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


class Cifar100(FileDatasetSource):
    name = "cifar100"
    fixed_image_size = 32
    source_url = SOURCE_URL
    folder = FOLDER

    def expected_files(self, root: Path) -> ExpectedFiles:
        paths = tuple(f"{FOLDER}/{name}" for name in FILES)
        return ExpectedFiles(paths, always_hash=frozenset(paths), official_md5=_OfficialMd5())

    def load(self, root: Path, *, image_size: int | None) -> RawDataset:
        if not all((root / FOLDER / name).is_file() for name in FILES):
            self.check(root)  # names exactly what is missing
        train_x, train_y = _read_split(root / FOLDER / "train")
        test_x, test_y = _read_split(root / FOLDER / "test")
        names = tuple(_unpickle(root / FOLDER / "meta")["fine_label_names"])
        return RawDataset(train_x, train_y, test_x, test_y, names)

    def fetch(self, root: Path) -> None:
        from torchvision.datasets import CIFAR100

        with download_failure_explained("CIFAR-100", self.missing_message(root)):
            for train in (True, False):
                CIFAR100(str(root), train=train, download=True)

    def missing_message(self, root: Path) -> str:
        return missing_data_message(
            dataset=self.name, root=root, source_url=SOURCE_URL, layout=_LAYOUT
        )


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise DatasetUnavailableError(
            f"{path} is corrupt ({type(error).__name__}: {error}). Run `cilbench data --verify "
            "cifar100` to check every file, and fetch it again."
        ) from error


def _read_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    entry = _unpickle(path)
    try:
        data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(entry["fine_labels"], dtype=np.int64)
    except (KeyError, ValueError) as error:
        raise DatasetUnavailableError(f"{path} is not a CIFAR-100 pickle ({error})") from error
    if len(data) != len(labels):
        raise DatasetUnavailableError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data, labels


register(Cifar100())
