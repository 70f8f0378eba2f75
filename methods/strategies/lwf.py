"""Learning without Forgetting (Li & Hoiem, ECCV 2016 / TPAMI 2017), class-incremental form."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness.api.adapters import STRATEGIES, Strategy
from harness.api.config import ranged
from harness.data.stream import TaskData
from harness.models.incremental_net import IncrementalNet
from harness.training.distillation import DistillationConfig, soft_cross_entropy


@dataclass(frozen=True)
class LwFConfig(DistillationConfig):
    # lambda_kd: see DistillationConfig (1.0, Li & Hoiem's lambda_o and FACIL's default).
    # temperature: 2.0, the value Li & Hoiem use (after Hinton et al., 2015).
    temperature: float = ranged(2.0, above=0)


@STRATEGIES.register("lwf")
class LwF(Strategy):
    """Cross-entropy on the new task plus distillation of the previous model's old-class logits.

    Deviations from the paper, as in the usual class-incremental port (FACIL's ``lwf``): one
    shared head over all seen classes instead of task-specific heads (task ids are unknown at
    test time), cross-entropy over all seen classes, no warm-up stage that trains only the new
    head, and the previous model is snapshotted whole after each task. No exemplars.
    """

    Config = LwFConfig
    # On the tiny suite it ends at 100% on the newest task and 0% on the others, any seed.
    seed_sensitive_on_tiny_suite = False

    def __init__(self, config: LwFConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.old_model: IncrementalNet | None = None

    def loss(
        self, model: IncrementalNet, x: torch.Tensor, y: torch.Tensor, task: TaskData
    ) -> torch.Tensor:
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        if self.old_model is not None:
            with torch.no_grad():
                old_logits = self.old_model(x)
            distill = soft_cross_entropy(
                logits[:, : task.num_old_classes], old_logits, self.config.temperature
            )
            loss = loss + self.config.lambda_kd * distill
        return loss

    def end_task(self, model: IncrementalNet, task: TaskData) -> None:
        self.old_model = model.frozen_copy()
