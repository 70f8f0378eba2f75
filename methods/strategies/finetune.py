"""Fine-tuning: the lower bound of class-incremental learning."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.api.adapters import STRATEGIES, Strategy
from harness.api.config import choice
from harness.data.stream import TaskData
from harness.models.incremental_net import IncrementalNet
from harness.training.cross_entropy import CE_SCOPES, scoped_cross_entropy


@dataclass(frozen=True)
class FinetuneConfig:
    # ce_scope: the cross-entropy's classes on tasks after the first. "seen" (all seen
    # classes; Mammoth's sgd goes further, over every output) or "new" (the new task's only:
    # PyCIL's models/finetune.py, logits[:, known:] against y - known; FACIL's default).
    ce_scope: str = choice("seen", CE_SCOPES)


@STRATEGIES.register("finetune")
class Finetune(Strategy):
    """Plain cross-entropy on each new task with no memory and no regularisation.

    It forgets catastrophically (McCloskey & Cohen, 1989), which makes it the reference
    lower bound every method must beat. ``ce_scope`` chooses a cross-entropy over all seen
    classes (ours, as Mammoth) or over the new task's classes only (PyCIL's and FACIL's).
    """

    Config = FinetuneConfig
    reference = "lower_bound"
    # On the tiny suite it ends at 100% on the newest task and 0% on the others, any seed.
    seed_sensitive_on_tiny_suite = False

    def loss(
        self, model: IncrementalNet, x: torch.Tensor, y: torch.Tensor, task: TaskData
    ) -> torch.Tensor:
        return scoped_cross_entropy(model(x), y, num_old_classes=task.num_old_classes,
                                    scope=self.config.ce_scope)  # fmt: skip
