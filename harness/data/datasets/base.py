"""What every dataset source shares: the raw-data record, the error, the data root, the contract.

A *source* knows one dataset's on-disk format. It can say which files it expects (its
manifest), check them, load them into a ``RawDataset`` and fetch them on a connected machine.
Splitting into tasks belongs to the suite, not here.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.api.registry import Registry

MAX_NAMED_FILES = 20  # an error names this many files, then gives a count


class DatasetUnavailableError(RuntimeError):
    """The dataset's files are missing, partial or corrupt; the message says how to fix it."""


@dataclass(frozen=True)
class RawDataset:
    """Images as (N, C, H, W) arrays and int64 class ids 0..K-1 (the dataset's own ids).

    Image datasets give uint8 (0..255); the tiny built-in ones (digits, blobs) give float32 in
    [0, 1]. Arrays may be read-only memory maps. ``test`` is None when the dataset has no
    official test split (the suite holds one out); ``val`` is the official validation split
    when there is one (the suite then uses it instead of carving one out of train).
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray | None
    test_y: np.ndarray | None
    class_names: tuple[str, ...]
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None


@dataclass(frozen=True)
class DatasetStatus:
    """One row of ``cilbench data``: ``state`` is ok, missing, corrupt or not verified."""

    name: str
    state: str
    location: str
    file_count: int
    cache_entries: int
    detail: str = ""


def default_data_root() -> Path:
    """``$CILBENCH_DATA`` or ``~/.cache/cilbench/data``; ``--data-root`` overrides both."""
    return Path(os.environ.get("CILBENCH_DATA", Path.home() / ".cache" / "cilbench" / "data"))


def name_files(paths: list[str], *, limit: int = MAX_NAMED_FILES) -> str:
    """Indented lines naming up to ``limit`` files, then how many more there are."""
    lines = [f"  {p}" for p in paths[:limit]]
    if len(paths) > limit:
        lines.append(f"  ... and {len(paths) - limit} more")
    return "\n".join(lines)


def missing_data_message(
    *, dataset: str, root: Path, source_url: str, layout: str, how_to_get: str | None = None
) -> str:
    """The one shape of every "data is missing" error: source, layout, root, fetch command."""
    get = how_to_get or (
        f"On a machine with internet run\n  cilbench data --fetch {dataset} --data-root DIR\n"
        "then copy DIR to this machine (or fetch straight into this data root)."
    )
    return (
        f"dataset {dataset} is not under the data root {root}.\n"
        f"Official source: {source_url}\n"
        f"Expected layout under the data root:\n{layout.rstrip()}\n"
        f"{get.rstrip()}\n"
        "Point cilbench at the root that holds it with --data-root DIR or $CILBENCH_DATA "
        "(default ~/.cache/cilbench/data)."
    )


@contextlib.contextmanager
def download_failure_explained(title: str, missing_message: str) -> Iterator[None]:
    """A torchvision download that fails (offline: URLError/RuntimeError variants) becomes a
    ``DatasetUnavailableError`` that says how else to get the data."""
    try:
        yield
    except Exception as error:
        raise DatasetUnavailableError(
            f"downloading {title} failed ({type(error).__name__}: {error}).\n\n" + missing_message
        ) from error


class DatasetSource(ABC):
    """One dataset's format: load it, check it, report its state, fetch it."""

    name: str
    #: Square size every image already has; None for folder datasets (the caller picks one).
    fixed_image_size: int | None = None

    @abstractmethod
    def load(self, root: Path, *, image_size: int | None) -> RawDataset: ...

    def check(self, root: Path, *, full: bool = False) -> None:
        """Raise ``DatasetUnavailableError`` when files are missing or corrupt; ``full``
        re-hashes everything (``cilbench data --verify``). Built-in data has nothing to check."""
        return None

    def status(self, root: Path) -> DatasetStatus:
        return DatasetStatus(self.name, "ok", "(built in)", 0, 0)

    def fetch(self, root: Path) -> None:
        """Download into ``root``; built-in data needs nothing."""
        return None


DATASETS: Registry[DatasetSource] = Registry("dataset")


def register(source: DatasetSource) -> DatasetSource:
    """Register a source instance under its ``name``."""
    return DATASETS.register(source.name)(source)
