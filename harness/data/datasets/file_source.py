"""Sources whose data is a set of files under the data root, checked against a manifest;
folder-of-JPEG sources on top of them, decoded once through the image cache."""

from __future__ import annotations

import os
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path

from harness.data.datasets.base import (
    DatasetSource,
    DatasetStatus,
    DatasetUnavailableError,
    RawDataset,
    name_files,
)
from harness.data.datasets.image_cache import DecodeSpec, ImageList, cache_entries, load_or_build
from harness.data.datasets.manifest import (
    ExpectedFiles,
    FileCheck,
    Manifest,
    check_files,
    manifest_path,
)


class FileDatasetSource(DatasetSource):
    """Subclasses say which files the format has and how to get them; this class checks them."""

    source_url: str
    folder: str  # top folder under the data root, e.g. "cifar-100-python"

    @abstractmethod
    def expected_files(self, root: Path) -> ExpectedFiles:
        """From the format: index files first; when they are missing, just those."""

    @abstractmethod
    def missing_message(self, root: Path) -> str:
        """Where the data comes from, the layout, how to fetch it (``missing_data_message``)."""

    def check(self, root: Path, *, full: bool = False) -> None:
        self.verified_manifest(root, full=full)

    def verified_manifest(self, root: Path, *, full: bool = False) -> Manifest:
        """The manifest of data that passed the check; raises naming every bad file."""
        if not (root / self.folder).exists():
            raise DatasetUnavailableError(self.missing_message(root))
        expected = self.expected_files(root)
        result = check_files(root, self.name, expected, full=full)
        if result.missing:
            raise DatasetUnavailableError(self._incomplete(root, result, len(expected.paths)))
        if result.corrupt:
            raise DatasetUnavailableError(self._corrupt(root, result))
        assert result.manifest is not None
        return result.manifest

    def status(self, root: Path) -> DatasetStatus:
        location, caches = str(root / self.folder), len(cache_entries(root, self.name))
        if not (root / self.folder).exists():
            return DatasetStatus(self.name, "missing", location, 0, caches)
        try:
            expected = self.expected_files(root)
        except DatasetUnavailableError as error:
            return DatasetStatus(self.name, "corrupt", location, 0, caches, str(error))
        count = len(expected.paths)
        result = check_files(root, self.name, expected, build=False)
        if result.missing:
            detail = f"{len(result.missing)} of {count} files missing"
            state = "missing" if len(result.missing) == count else "corrupt"
            return DatasetStatus(self.name, state, location, count, caches, detail)
        if result.corrupt:
            detail = f"{len(result.corrupt)} corrupt file(s), e.g. {result.corrupt[0]}"
            return DatasetStatus(self.name, "corrupt", location, count, caches, detail)
        state = "ok" if result.manifest else "not verified"
        return DatasetStatus(self.name, state, location, count, caches)

    def _incomplete(self, root: Path, result: FileCheck, total: int) -> str:
        return (
            f"dataset {self.name} under {root} is incomplete: {len(result.missing)} of {total} "
            f"expected files are missing:\n{name_files(result.missing)}\n"
            f"Copy the missing files from the official source, or fetch it again.\n\n"
            + self.missing_message(root)
        )

    def _corrupt(self, root: Path, result: FileCheck) -> str:
        return (
            f"dataset {self.name} under {root} has {len(result.corrupt)} corrupt file(s):\n"
            f"{name_files(result.corrupt)}\n"
            f"Fetch it again (cilbench data --fetch {self.name} --data-root {root}) or copy "
            f"the named files again from {self.source_url}. If you changed the data on purpose, "
            f"delete {manifest_path(root, self.name)} and run "
            f"`cilbench data --verify {self.name} --data-root {root}` to record the new files."
        )


@dataclass(frozen=True)
class FolderIndex:
    """What a folder dataset's annotation files say: class names and each split's images."""

    class_names: tuple[str, ...]
    splits: dict[str, ImageList]  # "train", "test" and, where official, "val"


class JpegFolderSource(FileDatasetSource):
    """A folder of JPEGs plus annotation files: decoded once into the image cache."""

    crop_bottom_px = 0

    def __init__(self) -> None:
        self._index_memo: dict[tuple, FolderIndex] = {}

    @abstractmethod
    def index_files(self) -> tuple[str, ...]:
        """Annotation/split files, relative to the data root."""

    @abstractmethod
    def read_index(self, root: Path) -> FolderIndex:
        """Parse the annotation files (they exist); raise naming the file if malformed."""

    def expected_files(self, root: Path) -> ExpectedFiles:
        index = self.index_files()
        if not all((root / rel).is_file() for rel in index):
            return ExpectedFiles(index)  # the check names the missing ones
        prefix = f"{root}{os.sep}"  # read_index builds every path as root / ...
        images = {
            str(p).removeprefix(prefix).replace(os.sep, "/")
            for split in self.indexed(root).splits.values()
            for p in split.paths
        }
        return ExpectedFiles(index + tuple(sorted(images)), always_hash=frozenset(index))

    def indexed(self, root: Path) -> FolderIndex:
        """``read_index``, memoised per process while the annotation files are unchanged (a
        load parses them for its check and again for its splits)."""
        signature = tuple(_signature(root / rel) for rel in self.index_files())
        key = (str(root), signature)
        if key not in self._index_memo:
            self._index_memo.clear()
            self._index_memo[key] = self.read_index(root)
        return self._index_memo[key]

    def load(self, root: Path, *, image_size: int | None) -> RawDataset:
        if not image_size or image_size <= 0:
            raise DatasetUnavailableError(
                f"dataset {self.name} is a folder of JPEGs of many sizes: pass the square size "
                "to decode them to (load_dataset(..., image_size=224); in a suite, the dataset's "
                "image size)."
            )
        manifest = self.verified_manifest(root)
        index = self.indexed(root)
        spec = DecodeSpec(image_size, crop_bottom_px=self.crop_bottom_px)
        arrays = load_or_build(root, self.name, digest=manifest.digest, spec=spec,
                               splits=index.splits)  # fmt: skip
        val_x, val_y = arrays.get("val", (None, None))
        return RawDataset(*arrays["train"], *arrays["test"], index.class_names,
                          val_x=val_x, val_y=val_y)  # fmt: skip


def _signature(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns
