"""FGVC-Aircraft 2013b in torchvision's layout: 10,000 photos of 100 aircraft variants.

``<root>/fgvc-aircraft-2013b/data/`` holds ``images/<id>.jpg``, ``variants.txt`` (one variant
name per line; its line number is the class id) and ``images_variant_{train,val,test}.txt``
(lines ``<id> <variant name with spaces>``). The official train (3,334), val (3,333) and test
(3,333) splits are kept as they are. Every image carries a 20-pixel copyright banner at the
bottom, which the dataset's README says to remove; it is cropped before resizing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.data.datasets.base import (
    DatasetUnavailableError,
    download_failure_explained,
    missing_data_message,
    register,
)
from harness.data.datasets.file_source import FolderIndex, JpegFolderSource
from harness.data.datasets.image_cache import ImageList

SOURCE_URL = "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/"
FOLDER = "fgvc-aircraft-2013b"
DATA = f"{FOLDER}/data"
SPLITS = ("train", "val", "test")
BANNER_PX = 20
_LAYOUT = f"""\
<root>/{DATA}/
    variants.txt                  (100 variant names, one a line)
    images_variant_train.txt      (lines "<image id> <variant name>")
    images_variant_val.txt
    images_variant_test.txt
    images/<image id>.jpg         (10,000 JPEGs)"""


class FgvcAircraft(JpegFolderSource):
    name = "fgvc-aircraft"
    source_url = SOURCE_URL
    folder = FOLDER
    crop_bottom_px = BANNER_PX

    def index_files(self) -> tuple[str, ...]:
        return (f"{DATA}/variants.txt", *(f"{DATA}/images_variant_{s}.txt" for s in SPLITS))

    def read_index(self, root: Path) -> FolderIndex:
        variants_file = root / DATA / "variants.txt"
        variants = tuple(n for n in (line.strip() for line in _lines(variants_file)) if n)
        class_id = {name: i for i, name in enumerate(variants)}
        splits = {s: self._split(root, s, class_id) for s in SPLITS}
        return FolderIndex(variants, splits)

    def _split(self, root: Path, split: str, class_id: dict[str, int]) -> ImageList:
        path = root / DATA / f"images_variant_{split}.txt"
        paths, labels = [], []
        for number, line in enumerate(_lines(path), start=1):
            if not line.strip():
                continue
            image_id, _, variant = line.strip().partition(" ")
            if variant not in class_id:
                raise DatasetUnavailableError(
                    f"{path}, line {number}: variant {variant!r} is not in variants.txt; the "
                    "annotation files do not belong together. Fetch the dataset again."
                )
            paths.append(root / DATA / "images" / f"{image_id}.jpg")
            labels.append(class_id[variant])
        return ImageList(tuple(paths), np.asarray(labels, dtype=np.int64))

    def fetch(self, root: Path) -> None:
        from torchvision.datasets import FGVCAircraft

        with download_failure_explained("FGVC-Aircraft", self.missing_message(root)):
            # One archive holds every split.
            FGVCAircraft(str(root), split="trainval", annotation_level="variant", download=True)

    def missing_message(self, root: Path) -> str:
        return missing_data_message(
            dataset=self.name, root=root, source_url=SOURCE_URL, layout=_LAYOUT
        )


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetUnavailableError(f"{path} cannot be read ({error}); copy it again") from error


register(FgvcAircraft())
