"""Decode a folder of JPEGs once into memory-mappable uint8 arrays under the data root.

Fine-grained datasets ship as thousands of large JPEGs; decoding them for every trial would
cost minutes each time and keep the CPUs from training. The first load decodes every image
once and writes ``<split>_x.npy`` (N, 3, S, S) uint8 and ``<split>_y.npy`` int64 into

    <root>/cilbench-cache/<dataset>-<S>px-<manifest digest[:12]>-r<RECIPE_VERSION>/

written into a temporary folder first and renamed into place, so a crash or a concurrent
trial never sees half a cache. Later loads ``np.load(..., mmap_mode="r")`` it: trials share
the page cache instead of each holding a copy. The manifest digest and the size in the name
mean different data or sizes never collide; RECIPE_VERSION is bumped whenever the pixels the
recipe produces would change.

Recipe (one per image): open with PIL; ``Image.draft("RGB", ...)`` lets libjpeg decode at
1/2, 1/4 or 1/8 scale when that still leaves at least the target size (much faster, and the
DCT-domain reduction is itself a clean downscale); convert to RGB (Stanford Cars has some
greyscale JPEGs); crop a bottom banner if the dataset has one; squash-resize (no aspect-ratio
preservation, as the reference CIL code does with ``Resize((S, S))``) to S x S with PIL's
BILINEAR filter, which is antialiased (its support widens with the reduction factor) and is
what torchvision's ``Resize`` uses on PIL images.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from harness.data.datasets.base import DatasetUnavailableError, name_files

log = logging.getLogger(__name__)
T = TypeVar("T")

CACHE_DIR = "cilbench-cache"
RECIPE_VERSION = 1
RESAMPLING = "bilinear"
PARALLEL_MIN_IMAGES = 64  # below this, starting worker processes costs more than it saves
_MAX_CHUNK = 128


@dataclass(frozen=True)
class ImageList:
    """One split: absolute image paths and their class ids."""

    paths: tuple[Path, ...]
    labels: np.ndarray


@dataclass(frozen=True)
class DecodeSpec:
    size: int
    crop_bottom_px: int = 0  # e.g. FGVC-Aircraft's 20-pixel copyright banner


def cache_dir(root: Path, dataset: str, size: int, digest: str) -> Path:
    return root / CACHE_DIR / f"{dataset}-{size}px-{digest[:12]}-r{RECIPE_VERSION}"


def cache_entries(root: Path, dataset: str) -> list[Path]:
    """Finished cache folders of ``dataset`` (any size, any data version)."""
    folder = root / CACHE_DIR
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.glob(f"{dataset}-*px-*") if p.is_dir() and ".tmp-" not in p.name
    )


def decode_workers() -> int:
    """Processes for decoding: ``$CILBENCH_DECODE_WORKERS`` or the CPUs this process may use."""
    if env := os.environ.get("CILBENCH_DECODE_WORKERS"):
        return max(1, int(env))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def decode_image(path: Path, spec: DecodeSpec) -> np.ndarray:
    """One JPEG -> (3, S, S) uint8, following the module's recipe."""
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
        kept = height - spec.crop_bottom_px
        if kept <= 0:
            raise ValueError(f"{height} pixels high: nothing left after the banner crop")
        image.draft("RGB", (spec.size, math.ceil(spec.size * height / kept)))
        banner = round(spec.crop_bottom_px * image.size[1] / height)
        rgb = image.convert("RGB")
    if banner:
        rgb = rgb.crop((0, 0, rgb.width, rgb.height - banner))
    resized = rgb.resize((spec.size, spec.size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1)


def _decode_chunk(out: str, start: int, paths: list[str], spec: DecodeSpec) -> list[str]:
    """Decode straight into rows of the .npy being built; returns "path: error" failures."""
    array = np.load(out, mmap_mode="r+")
    failures = []
    for offset, path in enumerate(paths):
        try:
            array[start + offset] = decode_image(Path(path), spec)
        except Exception as error:  # PIL raises OSError, SyntaxError, ValueError variants
            failures.append(f"{path}: {type(error).__name__}: {error}")
    array.flush()
    return failures


def load_or_build(
    root: Path, dataset: str, *, digest: str, spec: DecodeSpec, splits: dict[str, ImageList]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{split: (images, labels)}`` from the cache, decoding every image first if needed."""
    final = cache_dir(root, dataset, spec.size, digest)
    if not _is_complete(final, splits):
        with _build_lock(final):
            if not _is_complete(final, splits):  # another process may have just built it
                _build(final, dataset, spec, splits)
    return {
        split: (np.load(final / f"{split}_x.npy", mmap_mode="r"), np.load(final / f"{split}_y.npy"))
        for split in splits
    }


@contextmanager
def _build_lock(final: Path) -> Iterator[None]:
    """One builder per cache folder: trials that start together on a fresh cache wait here
    for the first one instead of each decoding every image."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f"{final.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_complete(final: Path, splits: dict[str, ImageList]) -> bool:
    try:
        counts = json.loads((final / "meta.json").read_text())["counts"]
    except (OSError, ValueError, KeyError):
        return False
    return counts == {split: len(images.paths) for split, images in splits.items()}


def _build(final: Path, dataset: str, spec: DecodeSpec, splits: dict[str, ImageList]) -> None:
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    total = sum(len(images.paths) for images in splits.values())
    log.info("%s: decoding %d images once to %dpx into %s", dataset, total, spec.size, final)
    try:
        failures = _decode_all(tmp, spec, splits)
        if failures:
            raise DatasetUnavailableError(
                f"dataset {dataset}: {len(failures)} image(s) could not be decoded:\n"
                f"{name_files(failures)}\nCopy these files again from the official source, "
                "then run `cilbench data --verify` to re-hash them."
            )
        meta = {"counts": {s: len(i.paths) for s, i in splits.items()}, "size": spec.size,
                "crop_bottom_px": spec.crop_bottom_px, "resampling": RESAMPLING,
                "recipe_version": RECIPE_VERSION}  # fmt: skip
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, final: Path) -> None:
    """Rename into place; if a concurrent build got there first, keep theirs."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not (final / "meta.json").is_file():
            raise


def _decode_all(tmp: Path, spec: DecodeSpec, splits: dict[str, ImageList]) -> list[str]:
    jobs = []
    for split, images in splits.items():
        out = tmp / f"{split}_x.npy"
        shape = (len(images.paths), 3, spec.size, spec.size)
        # Write the header and a sparse body; the workers fill in the rows.
        np.lib.format.open_memmap(out, mode="w+", dtype=np.uint8, shape=shape).flush()
        np.save(tmp / f"{split}_y.npy", np.asarray(images.labels, dtype=np.int64))
        paths = [str(p) for p in images.paths]
        chunk = max(1, min(_MAX_CHUNK, math.ceil(len(paths) / (4 * decode_workers()))))
        jobs += [(str(out), s, paths[s : s + chunk], spec) for s in range(0, len(paths), chunk)]
    sizes = [len(job[2]) for job in jobs]
    workers = min(decode_workers(), len(jobs))
    if workers <= 1 or sum(sizes) < PARALLEL_MIN_IMAGES:
        return [f for job in _progress(jobs, sizes) for f in _decode_chunk(*job)]
    context = multiprocessing.get_context("forkserver")  # no fork of a threaded torch/Ray parent
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_decode_chunk, *job) for job in jobs]
        return [f for future in _progress(futures, sizes) for f in future.result()]


def _progress(items: list[T], sizes: list[int]) -> Iterator[T]:
    """Yield ``items`` in order with a progress bar on a terminal (tqdm, which timm and Ray
    already install; without it, no bar); silent in logs and under Ray."""
    try:
        from tqdm import tqdm
    except ImportError:
        yield from items
        return
    with tqdm(total=sum(sizes), unit="img", desc="decoding", disable=None, leave=False) as bar:
        for item, size in zip(items, sizes, strict=True):
            yield item
            bar.update(size)
