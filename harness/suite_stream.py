"""Turn a suite and one of its class orders into the fixed class-incremental stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from harness.datasets import RawDataset, load_dataset
from harness.stream import (
    ClassIncrementalStream,
    Split,
    build_stream,
    cap_per_class,
    hash_indices,
    relabel,
    stratified_split_indices,
)
from harness.suite import Suite


def stream_for_suite(
    suite: Suite, *, order_index: int = 0, data_root: Path | None = None
) -> ClassIncrementalStream:
    raw = load_dataset(suite.dataset.name, data_root)
    return stream_from_raw(suite, raw, order_index=order_index)


def stream_from_raw(suite: Suite, raw: RawDataset, *, order_index: int) -> ClassIncrementalStream:
    """Split, subsample, normalise and relabel ``raw`` exactly as the suite file says."""
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
        test_x, test_y = raw.train_x[test_idx], raw.train_y[test_idx]
    else:
        pool, test_idx = np.arange(len(raw.train_y)), np.arange(len(raw.test_y))
        test_x, test_y = raw.test_x, raw.test_y
    train_rel, val_rel = stratified_split_indices(
        raw.train_y[pool], spec.val_fraction, spec.split_seed + 1
    )
    train_idx, val_idx = pool[train_rel], pool[val_rel]
    if spec.max_train_per_class is not None:
        train_idx = cap_per_class(raw.train_y, train_idx, spec.max_train_per_class,
                                  spec.split_seed + 2)  # fmt: skip

    order = suite.class_orders[order_index]
    mean = torch.tensor(spec.normalize_mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.normalize_std).view(1, -1, 1, 1)

    def to_split(x: np.ndarray, y: np.ndarray) -> Split:
        images = (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) - mean) / std
        return Split(images, torch.from_numpy(relabel(y, order)))

    return build_stream(
        train=to_split(raw.train_x[train_idx], raw.train_y[train_idx]),
        val=to_split(raw.train_x[val_idx], raw.train_y[val_idx]),
        test=to_split(test_x, test_y),
        classes_per_task=suite.classes_per_task,
        split_sha256=hash_indices(train_idx, val_idx, test_idx),
    )
