"""SS-IL: Separated Softmax for Incremental Learning (Ahn et al., ICCV 2021)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness.api.adapters import STRATEGIES, Strategy
from harness.api.config import ranged
from harness.data.stream import Split, TaskData
from harness.models.incremental_net import IncrementalNet
from harness.training.exemplars import ExemplarMemory

# Mixes the trial seed with a class label into one generator seed (any odd 64-bit constant
# works; this one is the golden-ratio increment of splitmix64).
_SEED_MIX = 0x9E3779B97F4A7C15


@dataclass(frozen=True)
class SSILConfig:
    # temperature: T = 2 in the official code (hongjoon0805/SS-IL-Official, trainer/ssil.py).
    temperature: float = ranged(2.0, above=0)
    # lambda_kd: the official loss is CE + the task-wise KD sum with no weight (trainer/ssil.py),
    # i.e. 1.0; the KD terms carry the usual T^2 factor there and here.
    lambda_kd: float = ranged(1.0, at_least=0)
    # replay_fraction: expected share of replayed exemplars per batch; the official run uses 128
    # new + 32 replayed images per step (arguments.py defaults, README command line: 32 / 160).
    replay_fraction: float = ranged(0.2, above=0, below=1)


@STRATEGIES.register("ssil")
class SSIL(Strategy):
    """SS-IL: separated softmax, task-wise distillation, balanced replay of random exemplars.

    - Separated softmax: a sample of the current task gets cross-entropy over the current
      task's logits only; a replayed exemplar over the old classes' logits only (summed over
      the batch and divided by its size, as in the official code).
    - Task-wise KD on every sample of the batch: for each earlier task, temperature-scaled KL
      divergence between the previous model's and the current model's softmax over that task's
      logits (times T^2), summed over tasks.
    - Memory: exemplars drawn at random (as in the paper) within the fixed total budget,
      ``budget // seen_classes`` per class; old classes keep the head of their random order.

    Deviations from the paper and its official code:
    - One batch stream with weighted sampling (``sample_weights``) instead of two loaders
      (128 new + 32 replayed images): in expectation ``replay_fraction`` of each batch is
      replay, drawn with replacement, and an epoch has as many draws as the task's data plus
      the exemplars (the official epoch stops when the shorter loader runs out).
    - The random order of a class's images comes from a generator seeded by the trial seed
      (``torch.initial_seed()``, which the harness sets) and the class label, so the choice is
      reproducible and the same for every strategy instance sharing the memory. The official
      code keeps the first images of each class in its (shuffled) dataset order.
    - Quota ``budget // seen_classes`` (the harness memory's), not the official ``ceil``
      followed by dropping one exemplar from the largest classes.
    - Training optimiser and schedule are the harness's, shared by every method.
    """

    Config = SSILConfig

    def __init__(self, config: SSILConfig, *, memory: ExemplarMemory) -> None:
        super().__init__(config, memory=memory)
        if not 0.0 < config.replay_fraction < 1.0:
            raise ValueError(
                f"strategy.replay_fraction must be in (0, 1), got {config.replay_fraction}"
            )
        self.old_model: IncrementalNet | None = None
        # Class blocks [start, end) of the tasks the old model has learned; plain integers,
        # valid for any model (pruned copy, student) learning the same stream.
        self.old_task_blocks: list[tuple[int, int]] = []

    def sample_weights(self, data: Split, task: TaskData) -> torch.Tensor | None:
        replay = data.y < task.num_old_classes
        num_replay = int(replay.sum())
        if num_replay == 0 or num_replay == len(data):
            return None
        fraction = self.config.replay_fraction
        return torch.where(
            replay, fraction / num_replay, (1.0 - fraction) / (len(data) - num_replay)
        ).double()

    def loss(
        self, model: IncrementalNet, x: torch.Tensor, y: torch.Tensor, task: TaskData
    ) -> torch.Tensor:
        logits = model(x)
        loss = separated_softmax_loss(logits, y, task)
        if self.old_model is not None and self.old_task_blocks:
            with torch.no_grad():
                old_logits = self.old_model(x)
            distill = task_wise_kd(
                logits, old_logits, self.old_task_blocks, temperature=self.config.temperature
            )
            loss = loss + self.config.lambda_kd * distill
        return loss

    def end_task(self, model: IncrementalNet, task: TaskData) -> None:
        quota = self.memory.quota_per_class(task.info.num_seen_classes)
        self.memory.shrink_to(quota, keep=task.info.classes)
        for label in task.info.classes:
            images = task.train.x[task.train.y == label]
            order = torch.randperm(len(images), generator=_class_generator(label))
            self.memory.store(label, images[order[:quota]])
        self.old_task_blocks.append((task.info.classes[0], task.info.classes[-1] + 1))
        self.old_model = model.frozen_copy()


def separated_softmax_loss(logits: torch.Tensor, y: torch.Tensor, task: TaskData) -> torch.Tensor:
    """Cross-entropy of current-task samples over the current task's logits and of old-class
    samples over the old logits, summed and divided by the batch size."""
    start, end = task.num_old_classes, task.num_seen_classes
    new = y >= start
    total = F.cross_entropy(logits[new, start:end], y[new] - start, reduction="sum")
    if bool((~new).any()):
        total = total + F.cross_entropy(logits[~new, :start], y[~new], reduction="sum")
    return total / len(y)


def task_wise_kd(
    logits: torch.Tensor,
    old_logits: torch.Tensor,
    task_blocks: list[tuple[int, int]],
    *,
    temperature: float,
) -> torch.Tensor:
    """Sum over earlier tasks of T^2 * KL(old || current) of the softmax within each task."""
    total = logits.new_zeros(())
    for start, end in task_blocks:
        log_p = F.log_softmax(logits[:, start:end] / temperature, dim=1)
        q = F.softmax(old_logits[:, start:end] / temperature, dim=1)
        total = total + F.kl_div(log_p, q, reduction="batchmean") * temperature**2
    return total


def _class_generator(label: int) -> torch.Generator:
    seed = (torch.initial_seed() * _SEED_MIX + label) % 2**63
    return torch.Generator().manual_seed(seed)
