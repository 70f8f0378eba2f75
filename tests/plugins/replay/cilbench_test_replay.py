"""A small working plugin: replay of random exemplars (the tests install it with pip)."""

from __future__ import annotations

import torch

from harness.api import STRATEGIES, IncrementalNet, Strategy, TaskData


@STRATEGIES.register("plugin_replay")
class PluginReplay(Strategy):
    """Experience replay: a random sample of each class stays in the memory and is trained on
    with every later task (``Strategy.training_data`` adds it)."""

    def end_task(self, model: IncrementalNet, task: TaskData) -> None:
        info = task.info
        quota = self.memory.make_room(
            info.num_seen_classes, new_classes=info.classes, method="plugin_replay"
        )
        for label in info.classes:
            images = task.train.x[task.train.y == label]
            # torch's global generator: the harness seeds it for every trial
            chosen = torch.randperm(len(images))[:quota].to(images.device)
            self.memory.store(label, images[chosen])
