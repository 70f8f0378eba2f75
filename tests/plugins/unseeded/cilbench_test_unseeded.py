"""Broken on purpose: replay whose exemplars and input noise come from an unseeded generator."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.api import STRATEGIES, IncrementalNet, Strategy, TaskData


@STRATEGIES.register("broken_unseeded")
class Unseeded(Strategy):
    """Experience replay with noisy inputs, drawing from a generator seeded by the operating
    system: two runs with the same seed learn differently."""

    def __init__(self, config: object, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.generator = torch.Generator()
        self.generator.seed()  # from the OS: the trial's seed never reaches it

    def loss(
        self, model: IncrementalNet, x: torch.Tensor, y: torch.Tensor, task: TaskData
    ) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=self.generator).to(x.device)
        return F.cross_entropy(model(x + noise), y)

    def end_task(self, model: IncrementalNet, task: TaskData) -> None:
        info = task.info
        quota = self.memory.make_room(
            info.num_seen_classes, new_classes=info.classes, method="broken_unseeded"
        )
        for label in info.classes:
            images = task.train.x[task.train.y == label]
            chosen = torch.randperm(len(images), generator=self.generator)[:quota]
            self.memory.store(label, images[chosen.to(images.device)])
