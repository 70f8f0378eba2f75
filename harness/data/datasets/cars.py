"""Stanford Cars in torchvision's layout: 16,185 photos of 196 car models (8,144 train, 8,041
test, no official validation split).

``<root>/stanford_cars/`` holds ``devkit/cars_meta.mat`` (``class_names``),
``devkit/cars_train_annos.mat`` and ``cars_test_annos_withlabels.mat`` (``annotations``: a
struct array with ``bbox_x1..bbox_y2``, ``class`` (1-based) and ``fname``), and the images in
``cars_train/`` and ``cars_test/``. The .mat files are read with ``scipy.io.loadmat(...,
squeeze_me=True)`` exactly as torchvision reads them. The upstream download has been broken
since 2023, so ``cilbench data --fetch stanford-cars`` explains the manual steps instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.data.datasets.base import DatasetUnavailableError, missing_data_message, register
from harness.data.datasets.file_source import FolderIndex, JpegFolderSource
from harness.data.datasets.image_cache import ImageList

SOURCE_URL = "https://ai.stanford.edu/~jkrause/cars/car_dataset.html (offline since 2023)"
FOLDER = "stanford_cars"
META = f"{FOLDER}/devkit/cars_meta.mat"
ANNOTATIONS = {
    "train": (f"{FOLDER}/devkit/cars_train_annos.mat", f"{FOLDER}/cars_train"),
    "test": (f"{FOLDER}/cars_test_annos_withlabels.mat", f"{FOLDER}/cars_test"),
}
_LAYOUT = f"""\
<root>/{FOLDER}/
    devkit/cars_meta.mat
    devkit/cars_train_annos.mat
    cars_test_annos_withlabels.mat
    cars_train/00001.jpg ... 08144.jpg
    cars_test/00001.jpg ... 08041.jpg"""
MANUAL_STEPS = f"""\
Its official download (ai.stanford.edu) is gone, so it cannot be fetched automatically.
Get it by hand (see https://github.com/pytorch/vision/issues/7545):
  1. Images: the Kaggle dataset "jessicali9530/stanford-cars-dataset"
     (https://www.kaggle.com/datasets/jessicali9530/stanford-cars-dataset). Unpack it and move
     the images up one level: cars_train/cars_train/*.jpg -> <root>/{FOLDER}/cars_train/,
     cars_test/cars_test/*.jpg -> <root>/{FOLDER}/cars_test/.
  2. Devkit (cars_meta.mat, cars_train_annos.mat): car_devkit.tgz, mirrored at
     https://github.com/pytorch/vision/files/11644847/car_devkit.tgz; unpack it so that
     <root>/{FOLDER}/devkit/cars_meta.mat exists.
  3. Test labels: cars_test_annos_withlabels.mat (linked from the issue above,
     https://github.com/pytorch/vision/issues/7545#issuecomment-1631441616) ->
     <root>/{FOLDER}/cars_test_annos_withlabels.mat. The devkit's cars_test_annos.mat has no
     labels and will not do.
  4. Check it: cilbench data --verify stanford-cars --data-root <root>
(`cilbench data --fetch stanford-cars --data-root DIR` prints these steps.)"""


class StanfordCars(JpegFolderSource):
    name = "stanford-cars"
    source_url = SOURCE_URL
    folder = FOLDER

    def index_files(self) -> tuple[str, ...]:
        return (META, *(mat for mat, _ in ANNOTATIONS.values()))

    def read_index(self, root: Path) -> FolderIndex:
        class_names = tuple(str(n) for n in np.atleast_1d(_loadmat(root / META)["class_names"]))
        splits = {s: self._split(root, s, len(class_names)) for s in ANNOTATIONS}
        return FolderIndex(class_names, splits)

    def _split(self, root: Path, split: str, num_classes: int) -> ImageList:
        mat, folder = ANNOTATIONS[split]
        try:
            annotations = np.atleast_1d(_loadmat(root / mat)["annotations"])
            names = [str(n) for n in annotations["fname"]]  # whole fields: 100x faster than
            labels = annotations["class"].astype(np.int64) - 1  # a loop over 8k struct records
        except (KeyError, ValueError, IndexError) as error:
            hint = "Use cars_test_annos_withlabels.mat, not cars_test_annos.mat." * (
                split == "test"
            )
            raise DatasetUnavailableError(
                f"{root / mat} has no usable 'annotations' (fname, class) struct ({error}); "
                f"is it the right file? {hint}"
            ) from error
        if len(labels) and not (labels.min() >= 0 and labels.max() < num_classes):
            raise DatasetUnavailableError(
                f"{root / mat}: class ids outside 1..{num_classes} (cars_meta.mat's classes)"
            )
        return ImageList(tuple(root / folder / n for n in names), labels)

    def fetch(self, root: Path) -> None:
        steps = MANUAL_STEPS.replace("<root>", str(root))
        raise DatasetUnavailableError(f"stanford-cars cannot be downloaded automatically.\n{steps}")

    def missing_message(self, root: Path) -> str:
        return missing_data_message(dataset=self.name, root=root, source_url=SOURCE_URL,
                                    layout=_LAYOUT, how_to_get=MANUAL_STEPS)  # fmt: skip


def _loadmat(path: Path) -> dict:
    from scipy.io import loadmat

    try:
        return loadmat(str(path), squeeze_me=True)
    except (OSError, ValueError, TypeError) as error:
        raise DatasetUnavailableError(f"{path} is not a readable .mat file ({error})") from error


register(StanfordCars())
