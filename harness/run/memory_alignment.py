"""Total-memory alignment: under a suite's ``total_memory_bytes``, a method keeps as many
exemplars as the bytes left by the models it keeps allow.

Zhou et al. (ICLR 2023, "A Model or 603 Exemplars") show that methods which keep models
between tasks (DER's old backbones, the frozen old network LwF, iCaRL and WA distil from, a KD
teacher) look better only because those bytes go uncounted, and compare methods at equal total
memory, converting model bytes into exemplars. The harness does the same with what it
measures: before each task the exemplar budget becomes ``(total - bytes of the models the
method keeps now) // bytes per exemplar`` (at most the suite's ``exemplar_budget``), and after
the task, before evaluation, the memory is cut to what the models it now keeps leave (a
network that grew a branch pays for it at once). Cutting keeps each class's first exemplars,
the ones a smaller quota would have chosen (``ExemplarMemory.shrink_to``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from harness.cost.per_task import kept_model_bytes
from harness.data.stream import TaskData
from harness.training.exemplars import ExemplarMemory


class MemoryBudgetError(ValueError):
    """The models a method keeps leave no room for one exemplar per class."""


class MemoryAlignment:
    """Sets the memory's exemplar budget around each task's learning (``around``)."""

    def __init__(
        self, total_bytes: int, memory: ExemplarMemory, learner: object, *, cap: int
    ) -> None:
        self.total_bytes, self.memory, self.learner, self.cap = total_bytes, memory, learner, cap
        self.budget_per_task: list[int] = []  # the budget each task ended with, for the record

    @contextmanager
    def around(self, task: TaskData) -> Iterator[None]:
        sample_bytes = self._bytes_per_exemplar(task)
        self.memory.budget = self._fitting(sample_bytes, task)
        yield
        fitting = self._fitting(sample_bytes, task)
        if len(self.memory) > fitting:
            classes = max(1, len(self.memory.classes))
            self.memory.shrink_to(fitting // classes)
        self.memory.budget = fitting
        self.budget_per_task.append(fitting)

    def _fitting(self, sample_bytes: int, task: TaskData) -> int:
        left = self.total_bytes - kept_model_bytes(self.learner)
        fitting = min(self.cap, max(0, left) // sample_bytes)
        if fitting < task.info.num_seen_classes:
            raise MemoryBudgetError(
                f"total_memory_bytes={self.total_bytes:,}: the models this method keeps take "
                f"{self.total_bytes - left:,} bytes, leaving room for {fitting} exemplars of "
                f"{sample_bytes:,} bytes, fewer than one per seen class "
                f"({task.info.num_seen_classes}): raise the suite's total_memory_bytes"
            )
        return fitting

    def _bytes_per_exemplar(self, task: TaskData) -> int:
        """What one kept sample costs: the memory's mean, extras included (DER++'s logits),
        or one training image's bytes before anything is stored."""
        if len(self.memory):
            return max(1, -(-self.memory.nbytes // len(self.memory)))
        image = task.train.x[0]
        return image.numel() * image.element_size()
