"""Knowledge-distillation framework of Liu, Huttunen & Honkala (arXiv 2505.08327, "Low-Complexity
Inference in Continual Learning via Compressed Knowledge Transfer"), section on the KD framework.

A large pre-trained teacher learns every task with the CL strategy; a compact student of any
architecture learns every task with the same strategy's loss plus a distillation term from the
teacher; only the student serves inference, so only the student is costed on the leaderboard.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from harness.api.adapters import (
    FRAMEWORKS,
    Framework,
    LearnerContext,
    LossFn,
    start_task,
    train_on_task,
)
from harness.api.config import ConfigError, ranged
from harness.api.registry import did_you_mean
from harness.api.search_space import loguniform, uniform
from harness.cost.inference import count_flops_torch, count_parameters
from harness.data.stream import TaskData
from harness.models.backbones import BACKBONES
from harness.training.distillation import distillation_kl

# Roles under which the harness meters each model's training (harness.training.budget).
TEACHER, STUDENT = "teacher", "student"

DISTILL_MODES: tuple[str, ...] = ("previous_teacher", "current_teacher")


@dataclass(frozen=True)
class KDConfig:
    # student: the compact model that serves inference. "compact_cnn_small" is compact_cnn at
    # quarter width, a thinner-copy student (harness/models/backbones.py); any registered backbone
    # works, since only logits are distilled.
    student: str = "compact_cnn_small"
    # mode: which teacher the student distils from and on which classes.
    # "previous_teacher" (the paper's reading, default): at task t >= 2, the teacher as it was
    #   after task t-1, on the old classes only; no distillation at task 1.
    # "current_teacher": the teacher after it has learned task t, on all classes seen so far.
    mode: str = "previous_teacher"
    # temperature: 2.0, the value of Li & Hoiem's LwF (after Hinton et al., 2015) and of this
    # harness's ``lwf``, so the two distillation terms of lwf+kd are on one scale. The paper's
    # own value is not restated here; tune it with --set framework.temperature=...
    temperature: float = ranged(2.0, above=0)
    # lambda_kd: weight of the distillation term against the strategy's loss; 1.0 is Hinton et
    # al.'s (2015) equal weighting of the T^2-scaled soft term, as for LwF's lambda_o.
    lambda_kd: float = ranged(1.0, at_least=0)

    def __post_init__(self) -> None:
        if self.mode not in DISTILL_MODES:
            raise ConfigError(
                f"framework.mode={self.mode!r} is not one of {', '.join(DISTILL_MODES)}"
            )
        if not isinstance(self.student, str) or self.student not in BACKBONES:
            valid = BACKBONES.names()
            raise ConfigError(
                f"framework.student={self.student!r} is not a registered backbone."
                f"{did_you_mean(str(self.student), valid)} Valid: {', '.join(valid)}."
            )


class _Tally:
    """Running mean of the distillation term over a task's batches (for the report).

    Sums stay on the model's device: reading a value back per batch would make the host
    wait for the GPU at every step.
    """

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.count = 0

    def add(self, value: torch.Tensor) -> None:
        value = value.detach().float()
        self.total = value if self.total is None else self.total + value
        self.count += 1

    def mean(self) -> float:
        return float(self.total) / self.count if self.total is not None else 0.0


class _LastLogits:
    """Keeps the student's last output with its input, so the distillation term reuses the
    logits of the strategy's own forward pass on the same batch.

    A second forward pass would cost compute and, in training mode, update BatchNorm's running
    statistics twice per batch, which the plain strategy does not do.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._input: torch.Tensor | None = None
        self._output: torch.Tensor | None = None
        self._handle: Any = None

    def __enter__(self) -> _LastLogits:
        self._handle = self.model.register_forward_hook(self._keep)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()
        self._input = self._output = None

    def _keep(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        self._input = args[0] if args else None
        self._output = output

    def of(self, x: torch.Tensor) -> torch.Tensor | None:
        """The logits of the last forward pass if it ran on ``x`` with gradients, else None."""
        if self._input is x and self._output is not None and self._output.requires_grad:
            return self._output
        return None


@FRAMEWORKS.register("kd")
class KnowledgeDistillation(Framework):
    """KD framework (arXiv 2505.08327): a pre-trained teacher and a compact CL student.

    Per task t:

    - the teacher (the trial's backbone, built by ``context.build_model()`` and so starting
      from the suite's pre-trained weights for it) learns task t with its own instance of the
      CL strategy;
    - the student (``config.student``, built by ``context.build_model(config.student)``) learns
      task t with its own strategy instance's loss plus ``lambda_kd`` times the T^2-scaled KL
      between temperature-softened teacher and student logits (Hinton et al., 2015). In the
      default ``previous_teacher`` mode the student learns task t before the teacher does, so
      it distils the teacher as it was after task t-1 on the old classes (no snapshot copy is
      needed, and at task 1 the term is zero); in ``current_teacher`` mode the teacher learns
      first and the student distils it on all classes seen so far.

    Only ``strategy.predictor(student)`` serves inference and is costed by the harness; the
    teacher's cost and training time are reported in ``report()``.

    Exemplar memory: both strategies share the harness's memory, whose budget is enforced on
    every write. Both models train on the memory as it stood after task t-1 (the strategies'
    ``end_task`` run only once both have trained); then the teacher's ``end_task`` runs and
    the student's runs last, so the memory holds the student's own selection. This is fair: the
    memory never exceeds the suite's budget, holds only training data, and what the deployed
    student's classifier (e.g. iCaRL's class means) reads is exactly what the plain strategy
    would have selected with the student's features. The teacher trains on the student's
    selection, a handicap for the teacher only.

    Deviations from the paper: the teacher is the harness's ``compact_cnn`` pre-trained offline
    on a source disjoint from the suite (``cilbench pretrain``), not an ImageNet ResNet; teacher
    and student share the suite's training budget (epochs, optimiser) per task rather than
    separate schedules; logits are distilled, not intermediate features; the teacher also
    learns the last task in ``previous_teacher`` mode, although no student uses it then (its
    time is still reported, as a paper-style deployment would pay it).
    """

    Config = KDConfig
    # What ``cilbench tune`` searches: the distillation's weight, a decade either side of
    # Hinton et al.'s 1, and its temperature around 2.
    search_space = {"lambda_kd": loguniform(0.1, 10.0), "temperature": uniform(1.0, 4.0)}
    compresses = True

    def __init__(self, config: KDConfig, *, context: LearnerContext) -> None:
        super().__init__(config, context=context)
        self.teacher = context.build_model()
        self.teacher_strategy = context.make_strategy()
        self.student = context.build_model(config.student)
        self.student_strategy = context.make_strategy()
        self.teacher_seconds_per_task: list[float] = []
        self.distillation_loss_per_task: list[float] = []  # mean KD term over the task's batches

    def learn(self, task: TaskData) -> None:
        if self.config.mode == "previous_teacher":
            self._train_student(task)
            self._train_teacher(task)
        else:
            self._train_teacher(task)
            self._train_student(task)
        # Both trained on the memory as it stood after task t-1; the student's end_task runs
        # last, so its exemplar selection is what the memory keeps.
        self.teacher_strategy.end_task(self.teacher, task)
        self.student_strategy.end_task(self.student, task)
        self.served = self.student_strategy.predictor(self.student)

    def inference_model(self) -> nn.Module:
        return self.serving()

    def declared_epochs(self, task_index: int) -> dict[str, int]:
        """The teacher and the student each get the suite's budget for every task (and each
        runs the strategy's extra stages)."""
        epochs = self.context.training.epochs_for_task(task_index)
        return {
            TEACHER: epochs,
            STUDENT: epochs,
            **self.strategy_stages(self.teacher_strategy, TEACHER, task_index),
            **self.strategy_stages(self.student_strategy, STUDENT, task_index),
        }

    def report(self) -> dict[str, Any]:
        teacher_predictor = self.teacher_strategy.predictor(self.teacher)
        example = torch.zeros(self.context.input_shape, device=self.context.device)
        flops = count_flops_torch(teacher_predictor, example)
        total, head = count_parameters(teacher_predictor)
        return {
            "mode": self.config.mode,
            "teacher_backbone": self.context.backbone,
            "teacher_gflops_per_image": flops / 1e9,
            "teacher_params_millions": total / 1e6,
            "teacher_params_millions_without_head": (total - head) / 1e6,
            "teacher_train_time_s_per_task": list(self.teacher_seconds_per_task),
            "teacher_train_time_s_total": sum(self.teacher_seconds_per_task),
            "student_backbone": self.config.student,
            "distillation_loss_mean_per_task": list(self.distillation_loss_per_task),
        }

    def _train_teacher(self, task: TaskData) -> None:
        started = time.perf_counter()
        start_task(self.context, self.teacher, self.teacher_strategy, task)
        train_on_task(self.context, self.teacher, self.teacher_strategy, task, role=TEACHER)
        self.teacher_seconds_per_task.append(time.perf_counter() - started)

    def _train_student(self, task: TaskData) -> None:
        # The teacher's head covers the old classes before it learns task t, all seen after.
        num_distilled = self.teacher.num_classes
        tally = _Tally()
        with _LastLogits(self.student) as last_logits:
            extra_loss = None
            if num_distilled > 0 and self.config.lambda_kd > 0:
                extra_loss = self._distillation_term(num_distilled, last_logits, tally)
            start_task(self.context, self.student, self.student_strategy, task)
            train_on_task(self.context, self.student, self.student_strategy, task,
                          extra_loss=extra_loss, role=STUDENT)  # fmt: skip
        self.distillation_loss_per_task.append(tally.mean())

    def _distillation_term(
        self, num_distilled: int, last_logits: _LastLogits, tally: _Tally
    ) -> LossFn:
        teacher, config = self.teacher, self.config
        teacher.eval()  # frozen while the student learns: BatchNorm statistics stay put

        def extra_loss(student: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                teacher_logits = teacher(x)[:, :num_distilled]
            student_logits = last_logits.of(x)
            if student_logits is None:  # the strategy's loss did not run the student on x
                student_logits = student(x)
            term = distillation_kl(
                student_logits[:, :num_distilled], teacher_logits, config.temperature
            )
            tally.add(term)
            return config.lambda_kd * term

        return extra_loss
