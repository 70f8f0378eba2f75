"""The class-incremental protocol: learn a task, evaluate on every class seen so far, repeat.

After task i the harness evaluates the learner's inference model on the test data of all
seen classes and fills row i of the accuracy matrix. The model gets images only: no task id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from harness.api.adapters import Framework
from harness.data.stream import ClassIncrementalStream, Split, TaskData
from harness.evaluation.metrics import accuracy_on_seen
from harness.models.execution import CPU_EXECUTION, Execution
from harness.training.budget import TrainingMeter


class ContractViolation(RuntimeError):
    """An adapter broke the contract (e.g. predictions of the wrong shape)."""


@dataclass
class ProtocolResult:
    acc_matrix_pct: list[list[float | None]]
    task_aware_acc_matrix_pct: list[list[float | None]]
    test_samples_per_task: list[int]
    task_wall_time_s: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class ProtocolOutcome:
    result: ProtocolResult
    served: nn.Module  # the very module evaluated after the last task: the one to cost


@dataclass(frozen=True)
class TaskEvent:
    """Progress after one task, for console lines."""

    task_index: int
    num_tasks: int
    acc_seen_pct: float
    wall_time_s: float


def predict_scores(
    model: nn.Module,
    x: torch.Tensor,
    *,
    batch_size: int,
    execution: Execution = CPU_EXECUTION,
) -> torch.Tensor:
    """Scores (float32, on the CPU) of ``model`` on ``x`` in eval mode, batched, without
    gradients, in the trial's precision; one copy back to the host at the end."""
    was_training = model.training
    model.eval()
    with torch.inference_mode(), execution.autocast():
        scores = torch.cat([model(execution.batch(x[i : i + batch_size])).float()
                            for i in range(0, len(x), batch_size)])  # fmt: skip
    model.train(was_training)
    return scores.cpu()


def evaluate(
    model: nn.Module,
    test: Split,
    task_classes: list[tuple[int, ...]],
    *,
    batch_size: int,
    execution: Execution = CPU_EXECUTION,
) -> tuple[list[float], list[float]]:
    """Class-incremental and task-aware accuracy (percent) on each seen task's test data."""
    num_seen = sum(len(c) for c in task_classes)
    seen = test.where(test.y < num_seen)
    scores = predict_scores(model, seen.x, batch_size=batch_size, execution=execution)
    seen_y = seen.y.cpu()  # beside the scores, which come back to the host
    if scores.shape != (len(seen), num_seen):
        raise ContractViolation(
            f"the inference model returned scores of shape {tuple(scores.shape)}; expected "
            f"{(len(seen), num_seen)} (one score per class seen so far)"
        )
    predicted = scores.argmax(dim=1)
    acc, task_aware = [], []
    for classes in task_classes:
        lo, hi = classes[0], classes[-1] + 1
        in_task = (seen_y >= lo) & (seen_y < hi)
        labels = seen_y[in_task]
        acc.append(_percent(predicted[in_task] == labels))
        # Task-aware: argmax restricted to the task's own classes (a diagnostic only).
        within = scores[in_task][:, lo:hi].argmax(dim=1) + lo
        task_aware.append(_percent(within == labels))
    return acc, task_aware


def run_protocol(
    learner: Framework,
    stream: ClassIncrementalStream,
    *,
    eval_batch_size: int,
    on_task_end: Callable[[TaskEvent], None] | None = None,
    after_evaluation: Callable[[nn.Module], None] | None = None,
    execution: Execution = CPU_EXECUTION,
    meter: TrainingMeter | None = None,
    around_learning: Callable[[TaskData], AbstractContextManager[None]] | None = None,
) -> ProtocolOutcome:
    """Learn every task, evaluating after each; ``meter`` (the trainer's) learns which task
    its training belongs to. ``after_evaluation`` sees the module that served after each task
    (e.g. to count its cost: the cost curve); ``around_learning(task)`` wraps each task's
    learning, before evaluation (e.g. the suite's total-memory alignment). Returns the
    accuracies and the module that served last."""
    test_y = stream.test.read().y.cpu()
    counts = [int(((test_y >= c[0]) & (test_y <= c[-1])).sum()) for c in stream.task_classes()]
    result = ProtocolResult([], [], counts)
    padding = [None] * stream.num_tasks
    served: nn.Module | None = None
    for task in stream.tasks:
        if meter is not None:
            meter.task = task.info.index
        start = time.perf_counter()
        around = nullcontext() if around_learning is None else around_learning(task)
        with stream.test.sealed(), around:
            learner.learn(task)
        seconds = time.perf_counter() - start
        seen_classes = stream.task_classes()[: task.info.index + 1]
        served = learner.inference_model()
        acc, task_aware = evaluate(
            served,
            stream.test.read(),
            seen_classes,
            batch_size=eval_batch_size,
            execution=execution,
        )
        result.acc_matrix_pct.append(acc + padding[len(acc) :])
        result.task_aware_acc_matrix_pct.append(task_aware + padding[len(acc) :])
        result.task_wall_time_s.append(seconds)
        if after_evaluation is not None:
            after_evaluation(served)
        if on_task_end is not None:
            acc_seen = accuracy_on_seen(result.acc_matrix_pct, counts)[-1]
            on_task_end(TaskEvent(task.info.index, stream.num_tasks, acc_seen, seconds))
    if served is None or learner.inference_model() is not served:
        raise ContractViolation(
            f"{type(learner).__name__}.inference_model() returned a different module on a "
            "second call: it must return the module that serves, the same object until the "
            "next learn(), so that what is costed is what was evaluated (set it in learn())"
        )
    return ProtocolOutcome(result=result, served=served)


def _percent(correct: torch.Tensor) -> float:
    if len(correct) == 0:
        raise ValueError("a task has no test samples: the suite's split is too small")
    return 100.0 * int(correct.sum()) / len(correct)
