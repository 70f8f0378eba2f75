"""One tuning trial: learn the suite's tasks with one config, score it on validation data only.

The stream a tuning trial learns from is built from the suite's tasks alone: each task's
validation split becomes the held-out set scored after every task (as the test split is in a
ranked trial), and the learner sees an empty validation split, so what it is scored on is
never learned from. The suite's test split is not part of this stream at all, so neither the
learner nor the tuner can read it: no test number can reach a tuning decision.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from harness.data.stream import ClassIncrementalStream, SealedSplit, Split, TaskData
from harness.data.suite import SuiteError
from harness.evaluation.metrics import accuracy_on_seen
from harness.evaluation.protocol import TaskEvent
from harness.run.trial import learn_stream, load_stream, prepare_execution
from harness.run.trial_spec import TrialSpec, resolve_trial


class NoValidationDataError(SuiteError):
    """The suite holds out no validation data (``dataset.val_fraction: 0``)."""


def validation_stream(stream: ClassIncrementalStream) -> ClassIncrementalStream:
    """The tasks with their validation splits moved into the held-out slot; no test split."""
    held_out = Split.concat([task.val for task in stream.tasks])
    empty = torch.zeros(len(held_out), dtype=torch.bool, device=held_out.y.device)
    if any(len(task.val) == 0 for task in stream.tasks):
        raise NoValidationDataError(
            "a task has no validation images: tuning scores configs on the suite's "
            "validation split, so the suite needs dataset.val_fraction > 0"
        )
    tasks = tuple(TaskData(t.info, t.train, held_out.where(empty)) for t in stream.tasks)
    return ClassIncrementalStream(tasks, SealedSplit(held_out), stream.split_sha256)


def run_validation_trial(
    spec: TrialSpec, *, on_task_end: Callable[[TaskEvent], None] | None = None
) -> list[float]:
    """Accuracy (%) on the validation images of the classes seen so far, after each task.

    The training is the ranked trial's (the same learner, budget check and memory
    alignment); exceptions propagate (a tuning trial that fails is Ray's failed trial)."""
    resolved = resolve_trial(spec)
    execution = prepare_execution(spec)
    stream = validation_stream(load_stream(spec, resolved.suite)).to(execution.device)
    # Only the validation stream is kept: nothing below can reach the test split.
    result = learn_stream(resolved, stream, execution, on_task_end=on_task_end,
                          loaded_weights={}).outcome.result  # fmt: skip
    return accuracy_on_seen(result.acc_matrix_pct, result.test_samples_per_task)
