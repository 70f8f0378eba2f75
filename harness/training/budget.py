"""The training budget, metered: what each model of a trial trained, per task, against what
its framework declared.

The suite fixes one training budget per task; a framework that trains more (pre-pruning's
sparsity stage on task 1, post-pruning's fine-tune of each pruned copy, the KD teacher's own
training) must say so in ``Framework.declared_epochs``. The harness's training loop counts
every epoch, optimiser step and sample it runs, under the role the framework names
(``model``, ``teacher``, ``student``, ``pruned_copy``, ...), and the trial fails if what was
spent differs from what was declared, so the leaderboard's training compute is measured, not
trusted. Counting happens in Python around the loop: nothing waits for the device.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from harness.records.schema import SpentTraining, TrainingBudget

DEFAULT_ROLE = "model"


class BudgetMismatchError(RuntimeError):
    """A framework trained more or less than it declared: the message lists both."""


@dataclass
class Spent:
    epochs: int = 0
    optimizer_steps: int = 0
    samples: int = 0


@dataclass
class TrainingMeter:
    """Per (task, role): epochs, optimiser steps and samples seen. The protocol sets ``task``."""

    task: int = 0
    spent: dict[tuple[int, str], Spent] = field(default_factory=lambda: defaultdict(Spent))

    def add_epoch(self, role: str) -> None:
        self.spent[(self.task, role)].epochs += 1

    def add_step(self, role: str, samples: int) -> None:
        entry = self.spent[(self.task, role)]
        entry.optimizer_steps += 1
        entry.samples += samples

    def epochs_by_task(self, num_tasks: int) -> list[dict[str, int]]:
        rows: list[dict[str, int]] = [{} for _ in range(num_tasks)]
        for (task, role), entry in sorted(self.spent.items()):
            rows[task][role] = entry.epochs
        return rows

    def check(self, declared: list[dict[str, int]]) -> None:
        """Raise ``BudgetMismatchError`` unless every task's epochs per role are as declared
        (roles declared with 0 epochs may be absent)."""
        spent = self.epochs_by_task(len(declared))
        for task, (wanted, got) in enumerate(zip(declared, spent, strict=True)):
            if {r: e for r, e in wanted.items() if e} != got:
                raise BudgetMismatchError(
                    f"task {task + 1}: the framework declared epochs {wanted} but trained "
                    f"{got}; declare every training stage in Framework.declared_epochs"
                )

    def to_record(self, declared: list[dict[str, int]]) -> TrainingBudget:
        """The record's ``training_budget``: tasks 1-based, as the record counts them."""
        spent = tuple(
            SpentTraining(task + 1, role, e.epochs, e.optimizer_steps, e.samples)
            for (task, role), e in sorted(self.spent.items())
        )
        return TrainingBudget(declared_epochs=declared, spent=spent)
