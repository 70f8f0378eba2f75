"""Broken on purpose: keeps every training image of every class, over the suite's budget."""

from __future__ import annotations

from harness.api import STRATEGIES, IncrementalNet, Strategy, TaskData


@STRATEGIES.register("broken_hoarding")
class Hoarding(Strategy):
    """Stores all of each new class's images without making room (``memory.make_room``)."""

    def end_task(self, model: IncrementalNet, task: TaskData) -> None:
        for label in task.info.classes:
            self.memory.store(label, task.train.x[task.train.y == label])
