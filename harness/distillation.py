"""Distillation losses shared by strategies (LwF, SS-IL) and frameworks (KD, post-pruning)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_cross_entropy(
    logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Li & Hoiem's modified cross-entropy: -sum p_teacher^(1/T) log p_student^(1/T), batch mean."""
    targets = F.softmax(teacher_logits / temperature, dim=1)
    return -(targets * F.log_softmax(logits / temperature, dim=1)).sum(dim=1).mean()


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
