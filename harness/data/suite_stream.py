"""Turn a suite and one of its class orders into the fixed class-incremental stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from harness.data.datasets import RawDataset, load_dataset
from harness.data.stream import (
    ClassIncrementalStream,
    Split,
    build_stream,
    cap_per_class,
    hash_indices,
    relabel,
    stratified_split_indices,
)
from harness.data.suite import Suite


def stream_for_suite(
    suite: Suite,
    *,
    order_index: int = 0,
    data_root: Path | None = None,
    limit_per_class: int | None = None,
) -> ClassIncrementalStream:
    raw = load_dataset(suite.dataset.name, data_root, image_size=suite.dataset.image_size)
    return stream_from_raw(suite, raw, order_index=order_index, limit_per_class=limit_per_class)


def stream_from_raw(
    suite: Suite, raw: RawDataset, *, order_index: int, limit_per_class: int | None = None
) -> ClassIncrementalStream:
    """Split, subsample and relabel ``raw`` exactly as the suite file says.

    Images stay stored pixels (uint8, or float32 in [0, 1]): the model normalises them
    (``harness.data.pixels``) and the trainer augments them per batch (``harness.data.augment``).
    ``limit_per_class`` keeps at most that many train, validation and test images of every
    class: a debug shortcut for tests, whose records the leaderboard refuses.
    """
    spec = suite.dataset
    if tuple(raw.train_x.shape[1:]) != suite.input_shape:
        raise ValueError(
            f"dataset {spec.name} has images of shape {raw.train_x.shape[1:]}, "
            f"but suite {suite.name} declares input_shape {list(suite.input_shape)}"
        )
    if raw.test_x is None:  # no official test split: hold one out, stratified
        if spec.test_fraction is None:
            raise ValueError(f"suite {suite.name}: dataset {spec.name} needs dataset.test_fraction")
        pool, test_idx = stratified_split_indices(raw.train_y, spec.test_fraction, spec.split_seed)
        test_x, test_y = raw.train_x, raw.train_y
    else:
        pool, test_idx = np.arange(len(raw.train_y)), np.arange(len(raw.test_y))
        test_x, test_y = raw.test_x, raw.test_y
    if raw.val_x is not None:  # an official validation split (e.g. FGVC-Aircraft's val)
        train_idx, val_idx = pool, np.arange(len(raw.val_y))
        val_x, val_y = raw.val_x, raw.val_y
    else:
        train_rel, val_rel = stratified_split_indices(
            raw.train_y[pool], spec.val_fraction, spec.split_seed + 1
        )
        train_idx, val_idx = pool[train_rel], pool[val_rel]
        val_x, val_y = raw.train_x, raw.train_y
    if spec.max_train_per_class is not None:
        train_idx = cap_per_class(raw.train_y, train_idx, spec.max_train_per_class,
                                  spec.split_seed + 2)  # fmt: skip
    if limit_per_class is not None:
        train_idx, val_idx, test_idx = (
            cap_per_class(labels, idx, limit_per_class, spec.split_seed + 3)
            for labels, idx in ((raw.train_y, train_idx), (val_y, val_idx), (test_y, test_idx))
        )

    order = suite.class_orders[order_index]

    def to_split(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> Split:
        return Split(_as_pixels(x[idx], spec.name), torch.from_numpy(relabel(y[idx], order)))

    return build_stream(
        train=to_split(raw.train_x, raw.train_y, train_idx),
        val=to_split(val_x, val_y, val_idx),
        test=to_split(test_x, test_y, test_idx),
        classes_per_task=suite.classes_per_task,
        split_sha256=hash_indices(train_idx, val_idx, test_idx),
    )


def _as_pixels(images: np.ndarray, dataset: str) -> torch.Tensor:
    """uint8 stays uint8 (a quarter of float32's memory); floats must be float32 in [0, 1]."""
    if images.dtype not in (np.uint8, np.float32):
        raise ValueError(
            f"dataset {dataset} gives images of dtype {images.dtype}; loaders return uint8 "
            "pixels or float32 in [0, 1]"
        )
    return torch.from_numpy(np.ascontiguousarray(images))
