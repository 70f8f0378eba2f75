"""Generate fake datasets in their REAL on-disk formats: for tests and benchmarks only.

Each writer produces exactly the files the real dataset has, in the layout the loaders (and
torchvision) read: CIFAR-100's python pickles, FGVC-Aircraft's folder of JPEGs with its txt
split files, Stanford Cars' JPEGs with its ``.mat`` struct annotations. The pixels are random
(a per-class colour plus smooth texture and noise, so a model can learn something), never
real data: nothing generated here may ever feed a reported number.

Generated CIFAR-100 pickles cannot match the official md5 checksums, so ``check_dataset``
refuses them; ``trust_generated_cifar100(root)`` records their manifest under their own md5s,
after which ``check_dataset("cifar100", root)`` passes in any process (``cilbench data
--verify``, which compares against the official checksums again, still refuses them).
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from harness.data.datasets import aircraft, cars, check_dataset, cifar100
from harness.data.datasets.manifest import manifest_path


def write_fake_cifar100(
    root: Path, *, train_per_class: int, test_per_class: int, num_classes: int = 100, seed: int = 0
) -> Path:
    """``<root>/cifar-100-python/{train,test,meta}`` as the official pickles; returns the folder."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / cifar100.FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    prototypes = rng.integers(0, 256, size=(num_classes, 3, 32, 32))
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = rng.permutation(np.repeat(np.arange(num_classes), per_class))
        noise = rng.integers(-40, 41, size=(len(labels), 3, 32, 32))
        data = np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8).reshape(-1, 3072)
        entry = {
            "filenames": [f"fake_{split}_{i}.png" for i in range(len(labels))],
            "batch_label": f"fake {split} batch",
            "fine_labels": labels.tolist(),
            "coarse_labels": (labels % 20).tolist(),
            "data": data,
        }
        _pickle(folder / split, entry)
    names = {"fine_label_names": [f"fine_class_{i:03d}" for i in range(num_classes)],
             "coarse_label_names": [f"coarse_class_{i:02d}" for i in range(20)]}  # fmt: skip
    _pickle(folder / "meta", names)
    return folder


def _pickle(path: Path, obj: object) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)  # the official files are protocol-2 pickles


@contextmanager
def generated_cifar100_checksums(root: Path) -> Iterator[None]:
    """Within the block, the generated files' md5s stand in for the official ones."""
    table = {
        f"{cifar100.FOLDER}/{name}": hashlib.md5((Path(root) / cifar100.FOLDER / name)
                                                 .read_bytes()).hexdigest()
        for name in cifar100.FILES
    }  # fmt: skip
    previous, cifar100.OFFICIAL_MD5 = cifar100.OFFICIAL_MD5, table
    try:
        yield
    finally:
        cifar100.OFFICIAL_MD5 = previous


def trust_generated_cifar100(root: Path) -> None:
    """Record the manifest of generated CIFAR-100 files so ``check_dataset`` accepts them."""
    manifest_path(Path(root), "cifar100").unlink(missing_ok=True)
    with generated_cifar100_checksums(root):
        check_dataset("cifar100", root)


def write_fake_aircraft(
    root: Path,
    *,
    per_class_per_split: int,
    num_classes: int = 100,
    image_size: tuple[int, int] = (96, 64),
    size_jitter: float = 0.0,
    seed: int = 0,
    workers: int = 1,
) -> Path:
    """FGVC-Aircraft 2013b's layout: ``data/images/<id>.jpg`` with a white 20-pixel banner at the
    bottom (where the real copyright banner is), ``variants.txt`` and
    ``images_variant_{train,val,test,trainval}.txt``. Returns ``<root>/fgvc-aircraft-2013b``."""
    data = Path(root) / aircraft.DATA
    (data / "images").mkdir(parents=True, exist_ok=True)
    variants = [f"Maker{i % 7} Model {i:03d}-{100 + i}" for i in range(num_classes)]  # spaces
    (data / "variants.txt").write_text("".join(f"{v}\n" for v in variants))
    jobs, lines = [], {}
    next_id = 1000000
    for split in aircraft.SPLITS:
        labels = np.random.default_rng([seed, len(split)]).permutation(
            np.repeat(np.arange(num_classes), per_class_per_split)
        )
        ids = [f"{next_id + i:07d}" for i in range(len(labels))]
        next_id += len(labels)
        lines[split] = [f"{i} {variants[c]}\n" for i, c in zip(ids, labels, strict=True)]
        jobs += [(data / "images" / f"{i}.jpg", int(c)) for i, c in zip(ids, labels, strict=True)]
    for split in aircraft.SPLITS:
        (data / f"images_variant_{split}.txt").write_text("".join(lines[split]))
    (data / "images_variant_trainval.txt").write_text("".join(lines["train"] + lines["val"]))
    _write_jpegs(jobs, image_size=image_size, jitter=size_jitter, seed=seed, workers=workers,
                 banner_px=aircraft.BANNER_PX)  # fmt: skip
    return data.parent


def write_fake_cars(
    root: Path,
    *,
    train_per_class: int,
    test_per_class: int,
    num_classes: int = 196,
    image_size: tuple[int, int] = (80, 56),
    size_jitter: float = 0.0,
    greyscale_every: int = 0,
    seed: int = 0,
    workers: int = 1,
) -> Path:
    """Stanford Cars in torchvision's layout with ``.mat`` files in the real struct layout
    (``annotations``: bbox_x1, bbox_y1, bbox_x2, bbox_y2, class (1-based), fname;
    ``class_names`` a cell array). Every ``greyscale_every``-th image is a greyscale JPEG, as
    some real ones are. Returns ``<root>/stanford_cars``."""
    from scipy.io import savemat

    base = Path(root) / cars.FOLDER
    (base / "devkit").mkdir(parents=True, exist_ok=True)
    names = np.empty((1, num_classes), dtype=object)
    names[0, :] = [f"Maker{i % 9} Model {i:03d} {2000 + i % 13}" for i in range(num_classes)]
    savemat(base / "devkit" / "cars_meta.mat", {"class_names": names})
    jobs = []
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        mat, folder = (Path(root) / p for p in cars.ANNOTATIONS[split])
        folder.mkdir(parents=True, exist_ok=True)
        labels = np.random.default_rng([seed, len(split)]).permutation(
            np.repeat(np.arange(num_classes), per_class)
        )
        fnames = [f"{i + 1:05d}.jpg" for i in range(len(labels))]
        savemat(mat, {"annotations": _annotations(fnames, labels, image_size)})
        jobs += [(folder / f, int(c)) for f, c in zip(fnames, labels, strict=True)]
    _write_jpegs(jobs, image_size=image_size, jitter=size_jitter, seed=seed, workers=workers,
                 greyscale_every=greyscale_every)  # fmt: skip
    return base


def _annotations(fnames: list[str], labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The 1 x N MATLAB struct array of the real annotation files."""
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    structs = np.empty((1, len(fnames)), dtype=[(f, object) for f in fields])
    width, height = size
    for i, (fname, label) in enumerate(zip(fnames, labels, strict=True)):
        structs[0, i] = (np.uint16(1 + i % 9), np.uint16(1 + i % 7), np.uint16(width - 1),
                         np.uint16(height - 1), np.uint8(label + 1), fname)  # fmt: skip
    return structs


def _write_jpegs(
    jobs: list[tuple[Path, int]],
    *,
    image_size: tuple[int, int],
    jitter: float,
    seed: int,
    workers: int,
    banner_px: int = 0,
    greyscale_every: int = 0,
) -> None:
    tasks = [(str(path), label, i, image_size, jitter, seed, banner_px,
              bool(greyscale_every and i % greyscale_every == greyscale_every - 1))
             for i, (path, label) in enumerate(jobs)]  # fmt: skip
    if workers <= 1:
        for task in tasks:
            _write_jpeg(*task)
        return
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_jpeg_star, tasks, chunksize=64))


def _write_jpeg_star(task: tuple) -> None:
    _write_jpeg(*task)


def _write_jpeg(
    path: str,
    label: int,
    index: int,
    size: tuple[int, int],
    jitter: float,
    seed: int,
    banner_px: int,
    greyscale: bool,
) -> None:
    """A class-coloured image with smooth texture and noise (photo-like JPEG sizes)."""
    from PIL import Image

    rng = np.random.default_rng([seed, index])
    width, height = (max(8, round(s * (1 + rng.uniform(-jitter, jitter)))) for s in size)
    colour = np.random.default_rng([seed, 7, label]).integers(30, 200, size=3)
    coarse = rng.integers(-50, 51, size=(max(2, height // 24), max(2, width // 24), 3))
    texture = Image.fromarray(np.clip(colour + coarse, 0, 255).astype(np.uint8))
    pixels = np.asarray(texture.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    pixels = pixels + rng.integers(-12, 13, size=(height, width, 1), dtype=np.int16)
    if banner_px:
        pixels[-banner_px:] = 255
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    (image.convert("L") if greyscale else image).save(path, quality=90)
