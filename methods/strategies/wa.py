"""WA: Maintaining Discrimination and Fairness in Class Incremental Learning (Zhao et al.,
CVPR 2020), "weight aligning"."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.api.adapters import STRATEGIES, Strategy
from harness.api.config import ranged
from harness.data.stream import TaskData
from harness.models.incremental_net import IncrementalNet
from harness.training.distillation import old_share_weighted_loss
from harness.training.exemplars import ExemplarMemory
from methods.strategies.icarl import herd_exemplars


@dataclass(frozen=True)
class WAConfig:
    # temperature: 2.0 for the distillation of the old model's logits, the paper's T (Zhao
    # et al., 2020, Sec. 4.1) and PyCIL's ``T = 2`` (models/wa.py).
    temperature: float = ranged(2.0, above=0)
    # feature_batch_size: images per forward pass when extracting features for herding; a
    # memory knob only (results do not depend on it beyond float rounding).
    feature_batch_size: int = ranged(256, at_least=1, integer=True)


@STRATEGIES.register("wa")
class WA(Strategy):
    """Rehearsal with distillation, then weight aligning of the classifier after each task.

    - Training on task t > 1: the task's data plus the exemplars of old classes, with loss
      ``(1 - lambda) * CE(all seen classes) + lambda * KD(old classes)``, ``lambda =
      old / seen classes`` and KD Li & Hoiem's soft cross-entropy at ``temperature`` against
      the previous model's logits (the paper's Eq. 3 and 4; PyCIL's ``wa``). Task 1: CE alone.
    - After training on task t > 1, weight aligning (the paper's Eq. 6): the new classes'
      weight vectors in the linear head are scaled by ``gamma = mean ||w_old|| / mean
      ||w_new||``, so old and new classes get equal mean norms (the bias towards new classes
      the imbalanced data left in the head is removed; biases are left as they are, as in
      PyCIL). Then the previous model is snapshotted for the next task's distillation.
    - Exemplars: iCaRL's herding with a fixed total budget (``herd_exemplars``), as PyCIL's
      WA builds its memory; inference: the aligned linear head's logits (no nearest mean).

    Deviations: the paper also clips the head's weights to be non-negative after each step
    ("weight clipping", Sec. 3.3); PyCIL's reference implementation does not, and neither do
    we. The optimiser, epochs and schedule are the suite's, as for every method, not the
    paper's 250 epochs with its step schedule.
    """

    Config = WAConfig

    def __init__(self, config: WAConfig, *, memory: ExemplarMemory) -> None:
        super().__init__(config, memory=memory)
        self.old_model: IncrementalNet | None = None
        self.last_gamma: float | None = None  # the latest alignment's scale, for tests

    def loss(
        self, model: IncrementalNet, x: torch.Tensor, y: torch.Tensor, task: TaskData
    ) -> torch.Tensor:
        return old_share_weighted_loss(
            model(x),
            y,
            old_model=self.old_model,
            x=x,
            num_old_classes=task.num_old_classes,
            num_seen_classes=task.num_seen_classes,
            temperature=self.config.temperature,
        )

    def end_task(self, model: IncrementalNet, task: TaskData) -> None:
        if task.info.num_old_classes > 0:
            self.last_gamma = align_weights(model, new_classes=len(task.info.classes))
        herd_exemplars(model, task, self.memory, feature_batch_size=self.config.feature_batch_size,
                       method="WA")  # fmt: skip
        self.old_model = model.frozen_copy()


@torch.no_grad()
def align_weights(model: IncrementalNet, *, new_classes: int) -> float:
    """Scale the head's last ``new_classes`` weight rows so their mean L2 norm equals the old
    rows' (Zhao et al., Eq. 6); returns the scale ``gamma``."""
    fc = model.head.fc
    if fc is None or not 0 < new_classes < fc.out_features:
        raise ValueError(f"cannot align {new_classes} new of {model.num_classes} classes")
    norms = fc.weight.norm(p=2, dim=1)
    gamma = norms[:-new_classes].mean() / norms[-new_classes:].mean()
    fc.weight[-new_classes:] *= gamma
    return float(gamma)
