"""BiC: Large Scale Incremental Learning (Wu et al., CVPR 2019), "bias correction"."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.api.adapters import STRATEGIES, StageFit, Strategy
from harness.api.config import ranged
from harness.data.stream import Split, TaskData
from harness.models.incremental_net import ClassifierHead, IncrementalNet
from harness.training.distillation import old_share_weighted_loss
from harness.training.exemplars import ExemplarMemory
from methods.strategies.icarl import herd_exemplars

BIAS_STAGE = "bias"  # the extra stage's name: the harness meters it as ``<role>/bias``


@dataclass(frozen=True)
class BiCConfig:
    # val_ratio: the share of an old class's exemplar quota (budget // old classes) held out
    # per class, for old and new classes alike, as the balanced validation slice stage 2
    # trains on: the paper's 9:1 train/validation split and PyCIL's ``split_ratio = 0.1``
    # with ``val_samples_per_class = int(split_ratio * memory_size / known_classes)``
    # (models/bic.py).
    val_ratio: float = ranged(0.1, above=0, below=1)
    # temperature: 2.0 for the distillation of the old model's logits, the paper's T and
    # PyCIL's ``T = 2`` (models/bic.py).
    temperature: float = ranged(2.0, above=0)
    # feature_batch_size: images per forward pass when extracting features for herding; a
    # memory knob only (results do not depend on it beyond float rounding).
    feature_batch_size: int = ranged(256, at_least=1, integer=True)


@STRATEGIES.register("bic")
class BiC(Strategy):
    """Rehearsal with distillation, then a two-parameter bias correction of each new task.

    Per task t > 1 (task 1: cross-entropy on its data, no correction):
    - Validation slice: from the task's training data and the memory's exemplars of old
      classes, ``int(val_ratio * (budget // old classes))`` samples of every class (old and
      new: a balanced slice, at least one, always leaving one) are held out, drawn with a
      generator seeded from the trial's seed and the task index. ``training_data`` is the
      rest; ``learned_data`` both parts. ``task.val`` is never used.
    - Stage 1 (the harness's main stage): ``(1 - lambda) * CE(all seen classes) + lambda *
      KD(old classes)`` with ``lambda = old / seen classes`` and KD Li & Hoiem's soft
      cross-entropy at ``temperature`` against the previous model (the paper's baseline
      loss; PyCIL's ``_run`` stage "training"). Both the current logits and the previous model's
      pass through the bias layers of earlier tasks, frozen, as in PyCIL's
      ``IncrementalNetWithBias``.
    - Stage 2 (extra stage ``bias``, the suite's epochs for the task, as PyCIL runs both
      stages for ``epochs``): a bias layer ``alpha * o + beta`` on the new classes' logits
      only (``alpha = 1, beta = 0`` at start), trained with CE on the validation slice's
      corrected logits while the network and earlier bias layers stay frozen (the paper's
      bias correction layer; PyCIL's ``BiasLayer_BIC`` in utils/inc_net.py).
    - Exemplars: iCaRL's herding with a fixed total budget (``herd_exemplars``), from all of
      the task's training data, as PyCIL's ``build_rehearsal_memory``; then the model and
      the bias layers are snapshotted for the next task's distillation.
    - Inference: the network's logits through every task's bias layer (``predictor``).

    Deviations: the optimiser, epochs and schedule are the suite's (SGD, cosine), not the
    paper's or PyCIL's (170 epochs, steps at 60/100/140, weight decay 2e-4), also for stage
    2 (whose alpha and beta get the suite's weight decay, as PyCIL's get its own). Stage
    2's loss is the paper's CE on the corrected logits; PyCIL applies CE to their softmax
    (a second softmax). In stage 2 the network runs in eval mode, so BatchNorm
    statistics stay those of stage 1 (the paper freezes the network; PyCIL runs it in train
    mode, which moves BatchNorm statistics on the validation slice). The per-class slice
    size is at least one sample and leaves at least one for stage 1 (PyCIL's formula gives
    zero for budgets under ten exemplars per old class). PyCIL's bias layer for task 1
    never trains (an identity); it is left out.

    Where the toolboxes differ (PyCIL 87cc411, Mammoth e75a491): Mammoth's ``bic`` weights the
    distillation by ``1 / (t + 1)`` (new over seen, the reverse of the paper's and PyCIL's)
    times T²; trains the bias stage with Adam at lr 1e-3 for 250 epochs on the latest task
    only; and draws its validation slice as a Bernoulli 10% of the buffer plus as many random
    new samples, not balanced per class. Ours follows the paper and PyCIL on all three.
    """

    Config = BiCConfig

    def __init__(self, config: BiCConfig, *, memory: ExemplarMemory) -> None:
        super().__init__(config, memory=memory)
        self.bias = BiasLayers()  # one trained layer per task from task 2 on
        self.old_model: BiasCorrected | None = None
        # (task index, (stage-1 data, validation slice)), carved once per task.
        self._carved: tuple[int, tuple[Split, Split]] | None = None

    def begin_task(self, model: IncrementalNet, task: TaskData) -> None:
        if task.num_old_classes > 0 and self.bias.end < task.num_seen_classes:
            self.bias.add_task(task.num_old_classes, task.num_seen_classes,
                               device=_device_of(model))  # fmt: skip

    def training_data(self, task: TaskData) -> Split:
        return self.carve(task)[0]

    def learned_data(self, task: TaskData) -> Split:
        """Stage 1's data and the validation slice: the task's data plus old exemplars."""
        return super().training_data(task)

    def carve(self, task: TaskData) -> tuple[Split, Split]:
        """(stage-1 data, validation slice) of ``task``; the same pair on every call."""
        if self._carved is None or self._carved[0] != task.info.index:
            self._carved = (task.info.index, self._split(task))
        return self._carved[1]

    def _split(self, task: TaskData) -> tuple[Split, Split]:
        data = super().training_data(task)
        old = task.info.num_old_classes
        if old == 0:  # task 1 has no bias stage: nothing is held out (as in PyCIL)
            return data, data.where(torch.zeros_like(data.y, dtype=torch.bool))
        # The epsilon keeps e.g. 0.29 * 100 from rounding down to 28.
        per_class = max(1, int(self.config.val_ratio * self.memory.quota_per_class(old) + 1e-9))
        held_out = held_out_mask(data.y, per_class, _slice_generator(task.info.index))
        return data.where(~held_out), data.where(held_out)

    def loss(
        self, model: IncrementalNet, x: torch.Tensor, y: torch.Tensor, task: TaskData
    ) -> torch.Tensor:
        return old_share_weighted_loss(
            self.bias(model(x)),
            y,
            old_model=self.old_model,
            x=x,
            num_old_classes=task.num_old_classes,
            num_seen_classes=task.num_seen_classes,
            temperature=self.config.temperature,
        )

    def extra_stages(self, task_index: int, epochs: int) -> dict[str, int]:
        return {BIAS_STAGE: epochs} if task_index >= 1 else {}

    def run_extra_stages(self, model: IncrementalNet, task: TaskData, stage: StageFit) -> None:
        """Stage 2: the newest bias layer on the validation slice, everything else frozen."""
        newest = self.bias.layers[-1]
        was_training = model.training
        model.eval()
        newest.requires_grad_(True)
        try:
            stage(BIAS_STAGE, _BiasStage(model, self.bias), self.carve(task)[1],
                  _stage_two_loss, parameters=list(newest.parameters()))  # fmt: skip
        finally:
            newest.requires_grad_(False)
            model.train(was_training)

    def end_task(self, model: IncrementalNet, task: TaskData) -> None:
        herd_exemplars(model, task, self.memory, feature_batch_size=self.config.feature_batch_size,
                       method="BiC")  # fmt: skip
        self.old_model = BiasCorrected(model.frozen_copy(), copy.deepcopy(self.bias)).eval()
        self._carved = None  # not kept between tasks (it would count as kept memory)

    def predictor(self, model: IncrementalNet) -> nn.Module:
        """``model``'s logits through a copy of every bias layer learned so far: applies to
        any model handed in (a pruned copy too) and is not changed by later tasks."""
        bias = copy.deepcopy(self.bias).to(_device_of(model))
        # The module holds the model: mirror its mode so callers that restore the predictor's
        # mode after evaluating (harness.evaluation.protocol) leave the model as it was.
        return BiasCorrected(model, bias).train(model.training)


class TaskBias(nn.Module):
    """One task's bias layer: ``alpha * logits + beta`` on the logit columns
    ``[start, end)`` (that task's classes), identity at creation; frozen until stage 2."""

    def __init__(self, start: int, end: int) -> None:
        super().__init__()
        if not 0 <= start < end:
            raise ValueError(f"a bias layer needs classes: got columns [{start}, {end})")
        self.start, self.end = start, end
        self.alpha = nn.Parameter(torch.ones(1), requires_grad=False)
        self.beta = nn.Parameter(torch.zeros(1), requires_grad=False)


class BiasLayers(ClassifierHead):
    """Every task's bias layer, applied to logits; columns no layer covers pass unchanged.

    A ``ClassifierHead``: the harness counts its parameters (two per task) with the head's.
    """

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList()

    @property
    def end(self) -> int:
        """The first logit column after the last corrected task (0 with no layers)."""
        return self.layers[-1].end if len(self.layers) else 0

    def add_task(self, start: int, end: int, *, device: torch.device | None = None) -> None:
        if start < self.end:
            raise ValueError(f"columns [{start}, {end}) overlap a corrected task's")
        self.layers.append(TaskBias(start, end).to(device))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        if not len(self.layers):
            return logits
        pieces, done = [], 0
        for layer in self.layers:
            pieces.append(logits[:, done : layer.start])
            pieces.append(layer.alpha * logits[:, layer.start : layer.end] + layer.beta)
            done = layer.end
        pieces.append(logits[:, done:])
        return torch.cat(pieces, dim=1)


class BiasCorrected(nn.Module):
    """BiC's inference path: the network's logits, then the bias layers."""

    def __init__(self, net: IncrementalNet, bias: BiasLayers) -> None:
        super().__init__()
        self.net = net
        self.bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias(self.net(x))


class _BiasStage(nn.Module):
    """What stage 2 trains: the frozen network (held outside the module tree, so the
    training loop's ``train()`` leaves it in eval mode) and the bias layers."""

    def __init__(self, net: IncrementalNet, bias: BiasLayers) -> None:
        super().__init__()
        object.__setattr__(self, "net", net)  # not a submodule: train() does not reach it
        self.bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            logits = self.net(x)
        return self.bias(logits)


def _stage_two_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The paper's bias-correction loss: cross-entropy of the corrected logits."""
    return F.cross_entropy(model(x), y)


def held_out_mask(labels: torch.Tensor, per_class: int, generator: torch.Generator) -> torch.Tensor:
    """A mask of ``min(per_class, n - 1)`` samples drawn at random from each class's ``n``
    (every class keeps one sample outside it), class by class in label order."""
    held_out = torch.zeros(len(labels), dtype=torch.bool)
    cpu_labels = labels.cpu()
    for label in torch.unique(cpu_labels).tolist():
        rows = torch.nonzero(cpu_labels == label).flatten()
        chosen = torch.randperm(len(rows), generator=generator)[: min(per_class, len(rows) - 1)]
        held_out[rows[chosen]] = True
    return held_out.to(labels.device)


def _slice_generator(task_index: int) -> torch.Generator:
    """A generator for task ``task_index``'s slice, seeded from the trial's seed (the one
    the harness gives torch's default generator) and the task: the slice does not depend on
    how many draws came before it, nor does carving it move the default generator."""
    entropy = (torch.initial_seed(), task_index)
    seed = int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(seed)


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device
