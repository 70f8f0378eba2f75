"""FOSTER: Feature Boosting and Compression for Class-Incremental Learning (Wang, Zhou, Ye &
Zhan, ECCV 2022)."""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from harness.api.adapters import STRATEGIES, StageFit, Strategy
from harness.api.config import ConfigError, ranged
from harness.data.stream import Split, TaskData
from harness.models.expanding import ExpandingBackbone, add_branch, expanding_backbone, output_of
from harness.models.incremental_net import IncrementalNet
from harness.training.distillation import soft_cross_entropy
from harness.training.exemplars import ExemplarMemory
from methods.strategies.icarl import herd_exemplars
from methods.strategies.wa import align_weights

# The extra stage's name: the harness meters it as ``<role>/compression``.
COMPRESSION = "compression"


@dataclass(frozen=True)
class FOSTERConfig:
    # beta1: the class-balance factor of the boosting stage's logit-adjusted cross-entropy
    # (Cui et al.'s effective number of samples, 1 - beta^n); 0.96 is PyCIL's exps/foster.json
    # ("beta1": 0.96). 0 weighs every class alike.
    beta1: float = ranged(0.96, at_least=0, below=1)  # 1 would divide by zero
    # beta2: the same factor for the compression stage's balanced distillation; 0.97 is
    # PyCIL's exps/foster.json ("beta2": 0.97).
    beta2: float = ranged(0.97, at_least=0, below=1)
    # lambda_okd: weight of the distillation from the old model on old classes while boosting;
    # 1.0 is PyCIL's exps/foster.json ("lambda_okd": 1).
    lambda_okd: float = ranged(1.0, at_least=0)
    # temperature: T of both distillations (old model while boosting, teacher while
    # compressing); 2.0 is PyCIL's exps/foster.json ("T": 2).
    temperature: float = ranged(2.0, above=0)
    # teacher_wa / student_wa: weight aligning (WA, Zhao et al., 2020) of the boosted
    # network's head before compression / of the student's head after it; off in PyCIL's
    # exps/foster.json ("is_teacher_wa": false, "is_student_wa": false).
    teacher_wa: bool = False
    student_wa: bool = False
    # feature_batch_size: images per forward pass when extracting features for herding; a
    # memory knob only.
    feature_batch_size: int = ranged(256, at_least=1, integer=True)

    def __post_init__(self) -> None:
        for name in ("teacher_wa", "student_wa"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ConfigError(f"strategy.{name}={value!r} is not allowed: use true or false")


@STRATEGIES.register("foster")
class FOSTER(Strategy):
    """Grow a branch to learn each new task (boosting), then distil back into one backbone.

    - Task 1: cross-entropy over its classes on the one backbone (PyCIL's ``_init_train``).
    - Task t > 1, ``begin_task``: a frozen copy of the head's old-class rows is kept (PyCIL's
      ``oldfc``: the old model's classifier); the network grows one branch (``add_branch``,
      a copy of the served backbone, which is frozen with its BatchNorm statistics, as PyCIL
      freezes ``convnets[0]`` and keeps it in eval mode), the head widens to both branches'
      features, and a feature-enhancement head (PyCIL's ``fe_fc``: new branch's features to
      all seen classes) is created; it trains with the model (``training_modules``) and never
      serves.
    - Boosting (the main stage), per batch: logit-adjusted cross-entropy ``CE(logits / w1,
      y)`` with per-class weights ``w1`` from the effective number of samples, ``(1 - beta1)
      / (1 - beta1^n_c)`` normalised to sum to the number of classes; plus ``CE(fe_fc(new
      features), y)``; plus ``lambda_okd`` times Li & Hoiem's soft cross-entropy at
      ``temperature`` between the old classes' logits and the old model's (``oldfc`` on the
      frozen branch's features). The head's old-class rows are fine-tuned (PyCIL's default
      ``oofc: "ft"``). Optionally WA aligns the boosted head (``teacher_wa``).
    - Compression (the extra stage ``compression``, metered as ``<role>/compression``): a
      single-backbone student is initialised, as PyCIL's ``_feature_compression`` does, from
      the frozen old branch (``convnets[0]``) and the old head (``copy_fc(oldfc)``; new
      classes' rows fresh), then learns from the boosted network alone (no labels) by
      balanced distillation: soft cross-entropy at ``temperature`` against the teacher's
      softened probabilities re-weighted by ``w2`` (from ``beta2``) and renormalised
      (PyCIL's ``BKD``), on the main stage's data (PyCIL reuses its ``train_loader``).
      Optionally WA aligns the student's head (``student_wa``). The
      student's backbone and head then replace the model's, in place: one backbone again.
    - Exemplars: iCaRL's herding with the fixed total budget (``herd_exemplars``), after
      compression, with the student's features. Inference: the student's logits.

    Sources: the paper; PyCIL's models/foster.py, utils/inc_net.py (``FOSTERNet``) and
    exps/foster.json (commit 87cc4110), read, not copied.

    Deviations:
    - Optimiser, epochs and schedule are the suite's, for each stage: the main (boosting)
      stage and the compression stage each get the suite's epochs for the task, not PyCIL's
      170 boosting and 130 compression epochs (its own ratio, 0.76, is two full cosine
      schedules of similar length: no reason to give either stage a different share here);
      the compression stage also uses the suite's weight decay (PyCIL: none).
    - What serves and herds: PyCIL evaluates the boosted two-branch network after each task
      (``eval_task`` reads ``self._network``) and herds with its features; the student
      replaces it only when the next task begins, and its accuracy is only logged. Here the
      student serves and herds after every task, so the record's accuracy and cost describe
      the compressed model, and no two-branch network is kept between tasks.
    - The class-balance counts are read from the training data (new classes' samples, old
      classes' exemplars); PyCIL uses ``memory_per_class`` for old classes, the same number
      under its fixed per-class memory. Our memory is the suite's fixed total budget.
    - Only ``oofc: "ft"``; PyCIL's alternative ``"az"`` (new rows zeroed on old features) is
      left out. WA uses PyCIL's default ``wa_value`` of 1 (``align_weights``).
    - The student's new-class rows start at nn.Linear's initialisation (PyCIL's
      ``SimpleLinear``: Kaiming-uniform weights, zero bias).
    """

    Config = FOSTERConfig
    network_growth: ClassVar[str | None] = "rebuilds"

    def __init__(self, config: FOSTERConfig, *, memory: ExemplarMemory) -> None:
        super().__init__(config, memory=memory)
        self.old_head: nn.Linear | None = None  # PyCIL's oldfc, frozen
        self.fe_head: nn.Linear | None = None  # PyCIL's fe_fc, trained while boosting
        self.class_counts: torch.Tensor | None = None  # samples per class in training_data
        self._boost_weights: torch.Tensor | None = None

    def begin_task(self, model: IncrementalNet, task: TaskData) -> None:
        # The class counts stay: a framework may read training_data before the task begins.
        self.old_head = self.fe_head = None
        if task.num_old_classes == 0:
            return
        self.old_head = _frozen_rows(model, task.num_old_classes)
        backbone = add_branch(model, shared_blocks=0)
        device = self.old_head.weight.device
        self.fe_head = nn.Linear(backbone.branch_dim, task.num_seen_classes).to(device)

    def training_data(self, task: TaskData) -> Split:
        # The class-balance weights need each class's sample count in what the stages train
        # on, and this is the one hook that sees it before the main stage.
        data = super().training_data(task)
        counts = torch.bincount(data.y.cpu(), minlength=task.info.num_seen_classes)
        self.class_counts = counts
        self._boost_weights = None
        return data

    def training_modules(self) -> list[nn.Module]:
        return [] if self.fe_head is None else [self.fe_head]

    def extra_stages(self, task_index: int, epochs: int) -> dict[str, int]:
        return {COMPRESSION: epochs} if task_index >= 1 else {}

    def loss(
        self, model: IncrementalNet, x: torch.Tensor, y: torch.Tensor, task: TaskData
    ) -> torch.Tensor:
        if self.fe_head is None or self.old_head is None:
            return F.cross_entropy(model(x), y)
        branches = expanding_backbone(model).branches
        with output_of(branches[0]) as old, output_of(branches[-1]) as new:
            logits = model(x)  # one forward: a framework's hook may reuse these logits
        if self._boost_weights is None or self._boost_weights.device != logits.device:
            self._boost_weights = self._weights(self.config.beta1, logits.device)
        adjusted = F.cross_entropy(logits / self._boost_weights, y)
        enhancement = F.cross_entropy(self.fe_head(new.value.flatten(1)), y)
        old_logits = self.old_head(old.value.flatten(1)).detach()
        distill = soft_cross_entropy(
            logits[:, : task.num_old_classes], old_logits, self.config.temperature
        )
        return adjusted + enhancement + self.config.lambda_okd * distill

    def run_extra_stages(self, model: IncrementalNet, task: TaskData, stage: StageFit) -> None:
        if self.old_head is None:
            return
        new_classes = len(task.info.classes)
        if self.config.teacher_wa:
            align_weights(model, new_classes=new_classes)
        data = self.training_data(task)
        student = compression_student(model, self.old_head)
        weights = self._weights(self.config.beta2, self.old_head.weight.device)
        temperature = self.config.temperature
        model.eval()  # the teacher: frozen, BatchNorm statistics included

        def loss_fn(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                teacher_logits = model(x)
            return balanced_distillation(m(x), teacher_logits, weights, temperature)

        stage(COMPRESSION, student, data, loss_fn)
        if self.config.student_wa:
            align_weights(student, new_classes=new_classes)
        # The framework keeps this one model object: it becomes the student.
        model.backbone, model.head = student.backbone, student.head

    def end_task(self, model: IncrementalNet, task: TaskData) -> None:
        herd_exemplars(model, task, self.memory, feature_batch_size=self.config.feature_batch_size,
                       method="FOSTER")  # fmt: skip
        self._reset()  # nothing but the model is kept between tasks

    def predictor(self, model: IncrementalNet) -> nn.Module:
        backbone = model.backbone
        if isinstance(backbone, ExpandingBackbone) and len(backbone.branches) > 1:
            raise RuntimeError(
                "FOSTER serves the compressed single-backbone student, but the model still has "
                f"{len(backbone.branches)} branches: call predictor() after the compression "
                "stage (run_extra_stages)"
            )
        return model

    def _weights(self, beta: float, device: torch.device) -> torch.Tensor:
        if self.class_counts is None:
            raise RuntimeError("FOSTER needs training_data(task) before its class weights")
        return class_balance_weights(self.class_counts, beta).to(device)

    def _reset(self) -> None:
        self.old_head = self.fe_head = None
        self.class_counts = self._boost_weights = None


def class_balance_weights(counts: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-class weights ``(1 - beta) / (1 - beta^n_c)`` (Cui et al., CVPR 2019, the inverse
    effective number of samples), scaled to sum to the number of classes (PyCIL's FOSTER)."""
    n = counts.double().clamp(min=1)  # a class with no samples would divide by zero
    weights = (1.0 - beta) / (1.0 - torch.pow(beta, n))
    return (weights / weights.sum() * len(counts)).float()


def balanced_distillation(
    logits: torch.Tensor, teacher_logits: torch.Tensor, weights: torch.Tensor, temperature: float
) -> torch.Tensor:
    """FOSTER's compression loss (PyCIL's ``BKD``): soft cross-entropy against the teacher's
    probabilities at ``temperature``, re-weighted per class and renormalised; batch mean."""
    targets = F.softmax(teacher_logits.float() / temperature, dim=1) * weights
    targets = targets / targets.sum(dim=1, keepdim=True)
    return -(targets * F.log_softmax(logits.float() / temperature, dim=1)).sum(dim=1).mean()


def compression_student(model: IncrementalNet, old_head: nn.Linear) -> IncrementalNet:
    """The single-backbone student of a boosted ``model``: a trainable copy of its frozen old
    branch (PyCIL loads ``convnets[0]``) with a head over all seen classes whose old rows are
    ``old_head``'s (PyCIL's ``copy_fc(oldfc)``); the model itself is left as it is."""
    teacher = expanding_backbone(model)
    branch = deepcopy(teacher.branches[0])
    for parameter in branch.parameters():
        parameter.requires_grad_(True)
    backbone = ExpandingBackbone(
        deepcopy(teacher.shared),
        branch,
        teacher.branch_dim,
        train_shared=teacher.train_shared,
        flatten=teacher.flatten,
    )
    student = IncrementalNet(backbone, teacher.branch_dim, backbone_name=model.backbone_name)
    student.add_classes(model.num_classes)
    student.to(old_head.weight.device)
    fc = student.head.fc
    assert fc is not None  # add_classes made it
    with torch.no_grad():
        fc.weight[: old_head.out_features] = old_head.weight
        fc.bias[: old_head.out_features] = old_head.bias
    return student


def _frozen_rows(model: IncrementalNet, rows: int) -> nn.Linear:
    """A frozen copy of the head's first ``rows`` outputs: the old model's classifier."""
    fc = model.head.fc
    if fc is None or fc.out_features < rows:
        raise ValueError(f"the head has no {rows} old classes to keep")
    old = nn.Linear(fc.in_features, rows).to(fc.weight.device)
    with torch.no_grad():
        old.weight.copy_(fc.weight[:rows])
        old.bias.copy_(fc.bias[:rows])
    return old.requires_grad_(False).eval()
