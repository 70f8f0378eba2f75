"""The data stream: fixed disjoint stratified splits, class-order relabelling, sealed test data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.exemplars import ExemplarBudgetError, ExemplarMemory
from harness.stream import SealedSplit, Split, TestDataAccessError, relabel
from harness.suite import load_suite
from harness.suite_stream import stream_for_suite
from harness.testing import TINY_CLASS_ORDER, tiny_suite


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


def test_normalisation_follows_the_suite() -> None:
    stream = stream_for_suite(tiny_suite())
    x = torch.cat([t.train.x for t in stream.tasks])
    assert x.min() >= 0.0 and x.max() <= 1.0  # the tiny suite declares no normalisation


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
