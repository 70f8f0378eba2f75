"""The class-incremental data stream: fixed splits, class-order relabelling, per-task views.

Labels inside the harness are positions in the suite's class order, so task t owns the
contiguous label block ``[t*k, (t+1)*k)``. Test data lives in a ``SealedSplit`` that refuses
to be read while an adapter is learning: the protocol, not trust, keeps test data out.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Split:
    """Stored images ``x`` (N, C, H, W), uint8 pixels or float32 in [0, 1], and harness
    labels ``y`` (N,) int64. Models normalise pixels themselves (``harness.data.pixels``)."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} rows but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.y)

    def where(self, mask: torch.Tensor) -> Split:
        return Split(self.x[mask], self.y[mask])

    def to(self, device: torch.device) -> Split:
        return Split(self.x.to(device), self.y.to(device))

    @staticmethod
    def concat(splits: Sequence[Split]) -> Split:
        return Split(torch.cat([s.x for s in splits]), torch.cat([s.y for s in splits]))


@dataclass(frozen=True)
class TaskInfo:
    """What an adapter may know about a task while learning it (never at test time)."""

    index: int
    num_tasks: int
    classes: tuple[int, ...]  # harness labels of this task's classes
    num_seen_classes: int  # after this task

    @property
    def num_old_classes(self) -> int:
        return self.num_seen_classes - len(self.classes)


@dataclass(frozen=True)
class TaskData:
    """One task as an adapter sees it: what it is (``info``), its training data and its
    validation data. Every hook of a strategy receives this one type; the task's facts read
    the same from it as from ``info`` (``task.index``, ``task.num_old_classes``, ...)."""

    info: TaskInfo
    train: Split
    val: Split

    @property
    def index(self) -> int:
        return self.info.index

    @property
    def num_tasks(self) -> int:
        return self.info.num_tasks

    @property
    def classes(self) -> tuple[int, ...]:
        return self.info.classes

    @property
    def num_seen_classes(self) -> int:
        return self.info.num_seen_classes

    @property
    def num_old_classes(self) -> int:
        return self.info.num_old_classes


class TestDataAccessError(RuntimeError):
    """Raised when test data is read while an adapter is learning."""

    __test__ = False  # not a pytest test class, despite the name


class SealedSplit:
    """Holds the test split; reading it inside ``sealed()`` raises ``TestDataAccessError``."""

    def __init__(self, split: Split) -> None:
        self._split = split
        self._sealed = False

    @contextlib.contextmanager
    def sealed(self) -> Iterator[None]:
        self._sealed = True
        try:
            yield
        finally:
            self._sealed = False

    def read(self) -> Split:
        if self._sealed:
            raise TestDataAccessError("test data was read while an adapter was learning")
        return self._split


@dataclass(frozen=True)
class ClassIncrementalStream:
    """The fixed stream of one suite and class order: per-task train/val and sealed test data."""

    tasks: tuple[TaskData, ...]
    test: SealedSplit
    split_sha256: str  # identifies the exact train/val/test sample indices

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    def task_classes(self) -> list[tuple[int, ...]]:
        return [task.info.classes for task in self.tasks]

    def to(self, device: torch.device) -> ClassIncrementalStream:
        """The same stream with every split on ``device`` (uint8 CIFAR-100 is 176 MB): the
        trainer then indexes batches where they lie instead of copying each one over."""
        if device.type == "cpu":
            return self
        tasks = tuple(TaskData(t.info, t.train.to(device), t.val.to(device)) for t in self.tasks)
        return ClassIncrementalStream(tasks, SealedSplit(self.test.read().to(device)),
                                      self.split_sha256)  # fmt: skip


def stratified_split_indices(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices per class into (rest, held_out) with ``round(fraction * n_class)`` held out.

    Uses numpy's legacy ``RandomState``, whose stream is stable across numpy versions, so the
    split is a fixed property of the suite file.
    """
    rng = np.random.RandomState(seed)
    rest, held_out = [], []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        n_held = int(round(fraction * len(idx)))
        held_out.append(idx[:n_held])
        rest.append(idx[n_held:])
    return np.sort(np.concatenate(rest)), np.sort(np.concatenate(held_out))


def cap_per_class(labels: np.ndarray, indices: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Keep at most ``cap`` indices of each class (seeded, stable), for suites that subsample."""
    if len(indices) == 0:
        return indices
    rng = np.random.RandomState(seed)
    kept = []
    for cls in np.unique(labels[indices]):
        idx = indices[labels[indices] == cls]
        kept.append(np.sort(idx[rng.permutation(len(idx))[:cap]]))
    return np.sort(np.concatenate(kept))


def relabel(labels: np.ndarray, class_order: Sequence[int]) -> np.ndarray:
    """Map dataset labels to positions in ``class_order``."""
    position = np.full(max(class_order) + 1, -1, dtype=np.int64)
    position[np.asarray(class_order)] = np.arange(len(class_order))
    return position[labels]


def hash_indices(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
        digest.update(b"|")
    return digest.hexdigest()


def build_stream(
    *,
    train: Split,
    val: Split,
    test: Split,
    classes_per_task: Sequence[int],
    split_sha256: str,
) -> ClassIncrementalStream:
    """Cut relabelled splits into tasks of ``classes_per_task`` consecutive harness labels."""
    tasks, start = [], 0
    for index, count in enumerate(classes_per_task):
        end = start + count
        info = TaskInfo(index, len(classes_per_task), tuple(range(start, end)), end)
        in_task = [s.where((s.y >= start) & (s.y < end)) for s in (train, val)]
        tasks.append(TaskData(info, *in_task))
        start = end
    return ClassIncrementalStream(tuple(tasks), SealedSplit(test), split_sha256)
