"""Joint training: the upper bound of class-incremental learning."""

from __future__ import annotations

from harness.api.adapters import STRATEGIES, Strategy
from harness.data.stream import TaskData
from harness.models.incremental_net import IncrementalNet


@STRATEGIES.register("joint")
class Joint(Strategy):
    """Trains, at each task, on all training data seen so far (not a CIL method: an oracle).

    It keeps every past training image in an unbounded memory, which only reference
    strategies may ask for. As in FACIL's ``joint`` (Masana et al., 2022), training continues
    from the previous task's model rather than restarting from scratch, with the same
    per-task budget as every other method.
    """

    reference = "upper_bound"
    unbounded_memory = True
    # On the tiny suite it ends at 100% on every task, any seed.
    seed_sensitive_on_tiny_suite = False

    def end_task(self, model: IncrementalNet, task: TaskData) -> None:
        for label in task.info.classes:
            self.memory.store(label, task.train.x[task.train.y == label])
