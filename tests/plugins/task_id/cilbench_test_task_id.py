"""Broken on purpose: serves a multi-head model that must be told which task an image is from."""

from __future__ import annotations

import torch
from torch import nn

from harness.api import FRAMEWORKS, Framework, LearnerContext, TaskData, learn_task_with_strategy


class TaskHeads(nn.Module):
    """Scores of one task's classes only, chosen by a task id the caller must pass."""

    def __init__(self, model: nn.Module, task_classes: list[tuple[int, ...]]) -> None:
        super().__init__()
        self.model, self.task_classes = model, task_classes

    def forward(self, x: torch.Tensor, task_id: int) -> torch.Tensor:
        classes = self.task_classes[task_id]
        return self.model(x)[:, classes[0] : classes[-1] + 1]


@FRAMEWORKS.register("broken_task_id")
class TaskIncremental(Framework):
    """Learns like ``none`` but serves task-incremental heads (a task id at inference)."""

    def __init__(self, config: object, *, context: LearnerContext) -> None:
        super().__init__(config, context=context)
        self.strategy = context.make_strategy()
        self.model = context.build_model()
        self.task_classes: list[tuple[int, ...]] = []

    def learn(self, task: TaskData) -> None:
        learn_task_with_strategy(self.context, self.model, self.strategy, task)
        self.task_classes.append(task.info.classes)
        self.served = TaskHeads(self.model, self.task_classes)

    def inference_model(self) -> nn.Module:
        return self.serving()
