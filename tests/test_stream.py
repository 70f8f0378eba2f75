"""The data stream: fixed disjoint stratified splits, class-order relabelling, sealed test data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.api.testing import TINY_CLASS_ORDER, tiny_suite
from harness.data.datasets import RawDataset
from harness.data.stream import SealedSplit, Split, TestDataAccessError, relabel
from harness.data.suite import load_suite
from harness.data.suite_stream import stream_for_suite, stream_from_raw
from harness.training.exemplars import ExemplarBudgetError, ExemplarMemory


@pytest.fixture(scope="module")
def digits_stream():
    return stream_for_suite(load_suite("digits-5split"))


def test_digits_split_sizes_and_tasks(digits_stream) -> None:
    stream = digits_stream
    test = stream.test.read()
    train = sum(len(t.train) for t in stream.tasks)
    val = sum(len(t.val) for t in stream.tasks)
    assert train + val + len(test) == 1797
    assert len(test) == pytest.approx(0.3 * 1797, abs=10)
    assert stream.num_tasks == 5
    for index, task in enumerate(stream.tasks):
        classes = {2 * index, 2 * index + 1}
        assert set(task.train.y.tolist()) == classes and set(task.val.y.tolist()) == classes
        assert task.info.num_seen_classes == 2 * index + 2


def test_splits_are_disjoint(digits_stream) -> None:
    rows = lambda split: {tuple(x.flatten().tolist()) for x in split.x}  # noqa: E731
    train = set().union(*(rows(t.train) for t in digits_stream.tasks))
    test = rows(digits_stream.test.read())
    # Digits has a few exact duplicate images across the dataset; overlap must stay that small.
    assert len(train & test) <= 5


def test_the_stream_is_a_fixed_property_of_the_suite(digits_stream) -> None:
    again = stream_for_suite(load_suite("digits-5split"))
    assert again.split_sha256 == digits_stream.split_sha256
    assert torch.equal(again.tasks[2].train.x, digits_stream.tasks[2].train.x)


def test_relabel_maps_dataset_labels_to_class_order_positions() -> None:
    labels = np.array([3, 0, 5, 1, 4, 2])
    assert relabel(labels, TINY_CLASS_ORDER).tolist() == [0, 1, 2, 3, 4, 5]


def test_images_stay_stored_pixels_and_models_normalise_them() -> None:
    stream = stream_for_suite(tiny_suite())
    x = torch.cat([t.train.x for t in stream.tasks])
    assert x.dtype == torch.float32 and x.min() >= 0.0 and x.max() <= 1.0


def _uint8_raw(*, val: bool) -> RawDataset:
    """Six classes of 1x8x8 uint8 images: 10 train, 4 val and 5 test per class."""
    rng = np.random.RandomState(0)

    def part(per_class: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat(np.arange(6), per_class)
        return rng.randint(0, 256, (len(y), 1, 8, 8)).astype(np.uint8), y.astype(np.int64)

    (tx, ty), (vx, vy), (sx, sy) = part(10), part(4), part(5)
    names = tuple(str(i) for i in range(6))
    return RawDataset(tx, ty, sx, sy, names, val_x=vx if val else None, val_y=vy if val else None)


def test_uint8_pixels_and_an_official_validation_split_are_kept() -> None:
    stream = stream_from_raw(tiny_suite(), _uint8_raw(val=True), order_index=0)
    assert all(t.train.x.dtype == torch.uint8 for t in stream.tasks)
    assert sum(len(t.train) for t in stream.tasks) == 60  # all of train: val is official
    assert sum(len(t.val) for t in stream.tasks) == 24
    assert len(stream.test.read()) == 30


def test_debug_limit_caps_every_split_per_class() -> None:
    stream = stream_from_raw(tiny_suite(), _uint8_raw(val=False), order_index=0,
                             limit_per_class=2)  # fmt: skip
    for task in stream.tasks:
        assert torch.bincount(task.train.y).max() == 2 and len(task.train) == 4
    assert torch.bincount(stream.test.read().y).tolist() == [2] * 6


def test_sealed_split_refuses_reads_while_learning() -> None:
    sealed = SealedSplit(Split(torch.zeros(2, 1, 2, 2), torch.zeros(2, dtype=torch.int64)))
    assert len(sealed.read()) == 2
    with sealed.sealed(), pytest.raises(TestDataAccessError):
        sealed.read()
    assert len(sealed.read()) == 2


def test_exemplar_memory_enforces_the_budget() -> None:
    memory = ExemplarMemory(budget=5)
    memory.store(0, torch.zeros(3, 1, 2, 2))
    memory.store(1, torch.zeros(2, 1, 2, 2))
    with pytest.raises(ExemplarBudgetError, match="budget of 5"):
        memory.store(2, torch.zeros(1, 1, 2, 2))
    memory.store(0, torch.zeros(1, 1, 2, 2))  # replacing a class frees its slots
    memory.store(2, torch.zeros(2, 1, 2, 2))
    split = memory.as_split()
    assert len(memory) == 5 and split.y.tolist() == [0, 1, 1, 2, 2]
    assert memory.quota_per_class(5) == 1
