"""Distillation losses shared by strategies (LwF, SS-IL, WA, BiC) and frameworks (KD,
post-pruning), and the distillation config LwF and iCaRL share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness.api.config import ranged


def soft_cross_entropy(
    logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Li & Hoiem's modified cross-entropy: -sum p_teacher^(1/T) log p_student^(1/T), batch mean."""
    targets = F.softmax(teacher_logits / temperature, dim=1)
    return -(targets * F.log_softmax(logits / temperature, dim=1)).sum(dim=1).mean()


def old_share_weighted_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    *,
    old_model: Callable[[torch.Tensor], torch.Tensor] | None,
    x: torch.Tensor,
    num_old_classes: int,
    num_seen_classes: int,
    temperature: float,
) -> torch.Tensor:
    """``(1 - lambda) * CE(logits, y) + lambda * soft_cross_entropy(old classes)`` with ``lambda
    = old / seen classes``, against ``old_model``'s logits on ``x`` (no gradient): BiC's
    rehearsal loss (Wu et al., 2019, Eq. 3), which WA adopts (Zhao et al., 2020, Eq. 4).
    Cross-entropy alone before there is an old model or an old class."""
    classification = F.cross_entropy(logits, y)
    if old_model is None or num_old_classes == 0:
        return classification
    with torch.no_grad():
        old_logits = old_model(x)[:, :num_old_classes]
    distill = soft_cross_entropy(logits[:, :num_old_classes], old_logits, temperature)
    weight = num_old_classes / num_seen_classes
    return (1.0 - weight) * classification + weight * distill


def distillation_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Hinton et al. (2015): T^2 * KL(softmax(teacher / T) || softmax(student / T)), batch mean.

    The T^2 factor keeps the soft term's gradients on the scale of a hard-label loss as T
    changes.
    """
    return (
        F.kl_div(
            F.log_softmax(student_logits / temperature, dim=1),
            F.log_softmax(teacher_logits / temperature, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        * temperature**2
    )


@dataclass(frozen=True)
class DistillationConfig:
    """The weight of a strategy's distillation from its previous model: the config LwF and
    iCaRL share (each adds its own fields by subclassing)."""

    # lambda_kd: weight of the old-class distillation term. 1.0 in both papers' losses: Li &
    # Hoiem's lambda_o (LwF); iCaRL's loss has no trade-off (Rebuffi et al., 2017, Alg. 3).
    # FACIL's defaults agree (``lamb=1`` for lwf and icarl; Masana et al., 2022).
    lambda_kd: float = ranged(1.0, at_least=0)
