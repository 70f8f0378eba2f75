"""One trial: suite x strategy x framework x config x seed, from spec to result record.

``run_trial`` takes the steps in order: seed and set up the hardware, build the stream and
the learner, run the protocol (learn a task, evaluate every seen class, repeat), check the
metered training budget against the declared one, cost the module that served, and assemble
the record. Nothing here imports Ray: the scheduler calls ``run_trial`` inside a Ray Tune
trial, and tests call it directly.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.api.adapters import Framework
from harness.cost.inference import measure_inference_cost, on_cpu
from harness.cost.latency import device_latencies
from harness.cost.per_task import PerTaskMeasures
from harness.data.stream import ClassIncrementalStream, TaskData
from harness.data.suite import Suite
from harness.data.suite_stream import stream_for_suite
from harness.evaluation.metrics import compute_metrics
from harness.evaluation.protocol import ProtocolOutcome, ProtocolResult, TaskEvent, run_protocol
from harness.models.execution import Execution, ExecutionOptions
from harness.models.incremental_net import backbone_names
from harness.records.schema import InferenceCost, KeptMemory, Results, TrialRecord
from harness.run.learner import build_learner
from harness.run.memory_alignment import MemoryAlignment
from harness.run.trial_record import DEVICE_NOT_STARTED, failure_record, record_header
from harness.run.trial_spec import (
    CONFIG_SCOPES,
    NO_WEIGHTS,
    ResolvedTrial,
    TrialSpec,
    resolve_trial,
    weights_spec,
)
from harness.training.budget import TrainingMeter
from harness.training.exemplars import ExemplarMemory

# The trial's public surface, wherever each piece lives.
__all__ = ["CONFIG_SCOPES", "NO_WEIGHTS", "ResolvedTrial", "TrialSpec", "build_learner",
           "failure_record", "resolve_trial", "run_trial", "weights_spec"]  # fmt: skip


def run_trial(
    spec: TrialSpec, *, on_task_end: Callable[[TaskEvent], None] | None = None
) -> dict[str, Any]:
    """Run the trial and return its record; any exception becomes a failure record."""
    started = time.perf_counter()
    resolved = None
    try:
        resolved = resolve_trial(spec)
        return _run(resolved, started, on_task_end)
    except Exception as error:  # a failing trial must not stop the others
        device = _resolved_device_name(spec.execution) if resolved else DEVICE_NOT_STARTED
        seconds = time.perf_counter() - started
        return failure_record(spec, resolved, error, seconds, device=device)


def _resolved_device_name(options: ExecutionOptions) -> str:
    """The device this process gives the trial (as ``_run`` resolves it), for a failure
    record; "not started" when even that fails (e.g. CUDA asked for, none visible)."""
    try:
        return Execution(options).describe()["device_name"]
    except Exception:
        return DEVICE_NOT_STARTED


def _run(
    resolved: ResolvedTrial, started: float, on_task_end: Callable[[TaskEvent], None] | None
) -> dict[str, Any]:
    spec, suite = resolved.spec, resolved.suite
    execution = prepare_execution(spec)
    stream = load_stream(spec, suite).to(execution.device)
    loaded_weights: dict[str, Any] = {}
    learned = learn_stream(
        resolved,
        stream,
        execution,
        on_task_end=on_task_end,
        loaded_weights=loaded_weights,
        measures=lambda learner, memory: PerTaskMeasures(learner, memory, (1, *suite.input_shape)),
    )
    per_task = learned.measures
    served = learned.outcome.served  # what was evaluated is what is costed
    cost = _inference_cost(served, resolved, execution)
    cost = replace(cost, after_task=tuple(per_task.cost_curve))  # the last point is the final
    executed = execution.describe()
    header = _ok_header(resolved, stream, served, loaded_weights, executed["device_name"])
    return TrialRecord(
        **header,
        results=_results(learned.outcome.result),
        inference_cost=cost,
        training_budget=learned.meter.to_record(learned.declared),
        timing={
            "task_wall_time_s": learned.outcome.result.task_wall_time_s,
            "trial_wall_time_s": time.perf_counter() - started,
        },
        framework_report=learned.learner.report(),
        execution=executed,
        memory=KeptMemory(tuple(per_task.kept)),
    ).to_json()


@dataclass(frozen=True)
class Learned:
    """What learning a stream leaves: the protocol's outcome, the learner, the metered
    training (already held to ``declared``) and what ``measures`` made (or None)."""

    outcome: ProtocolOutcome
    learner: Framework
    meter: TrainingMeter
    declared: list[dict[str, int]]
    measures: Any


def load_stream(spec: TrialSpec, suite: Suite) -> ClassIncrementalStream:
    """The trial's stream: its class order, data root and any debug cap per class."""
    return stream_for_suite(
        suite,
        order_index=spec.order_index,
        data_root=Path(spec.data_root) if spec.data_root else None,
        limit_per_class=spec.limit_per_class,
    )


def learn_stream(
    resolved: ResolvedTrial,
    stream: ClassIncrementalStream,
    execution: Execution,
    *,
    on_task_end: Callable[[TaskEvent], None] | None,
    loaded_weights: dict[str, Any],
    measures: Callable[[Framework, ExemplarMemory], Callable[[nn.Module], None]] | None = None,
) -> Learned:
    """Every trial's learning, ranked or tuning alike: build the learner, run the protocol on
    ``stream`` inside the suite's memory alignment, then hold the metered training to the
    declared budget. ``measures(learner, memory)`` makes what sees each task's served module
    (a ranked trial's cost curve)."""
    meter = TrainingMeter()
    learner, memory = build_learner(
        resolved, execution=execution, loaded_weights=loaded_weights, meter=meter
    )
    seen = measures(learner, memory) if measures is not None else None
    outcome = run_protocol(
        learner,
        stream,
        eval_batch_size=resolved.configs["training"].eval_batch_size,
        on_task_end=on_task_end,
        after_evaluation=seen,
        execution=execution,
        meter=meter,
        around_learning=_memory_alignment(resolved.suite, memory, learner),
    )
    declared = [learner.declared_epochs(i) for i in range(stream.num_tasks)]
    meter.check(declared)  # fairness enforced: a framework trains exactly what it declares
    return Learned(outcome, learner, meter, declared, seen)


def _memory_alignment(
    suite: Suite, memory: ExemplarMemory, learner: Framework
) -> Callable[[TaskData], AbstractContextManager[None]] | None:
    """The suite's total-memory alignment around each task's learning, where it has one."""
    if suite.total_memory_bytes is None or memory.budget is None:
        return None
    return MemoryAlignment(
        suite.total_memory_bytes, memory, learner, cap=suite.exemplar_budget
    ).around


def prepare_execution(spec: TrialSpec) -> Execution:
    """Threads, seeds and the hardware, in this order, before anything random happens."""
    torch.set_num_threads(spec.num_threads)
    _seed_everything(spec.seed)
    execution = Execution(spec.execution)
    execution.setup()
    return execution


def _inference_cost(
    served: nn.Module, resolved: ResolvedTrial, execution: Execution
) -> InferenceCost:
    """FLOPs, parameters and CPU latency of the served module; on CUDA, its latency there too."""
    input_shape = (1, *resolved.suite.input_shape)
    repeats = {"warmup": 2, "repeats": 5} if resolved.spec.debug else {"warmup": 10, "repeats": 50}
    cost = measure_inference_cost(
        on_cpu(served),
        input_shape,
        latency_warmup=repeats["warmup"],
        latency_repeats=repeats["repeats"],
    )
    if execution.on_cuda:  # and where it was trained: batch 1 and a throughput batch
        cost = cost.with_latencies(
            device_latencies(served, input_shape, execution=execution, **repeats)
        )
    return cost


def _results(outcome: ProtocolResult) -> Results:
    return Results(
        acc_matrix_pct=outcome.acc_matrix_pct,
        task_aware_acc_matrix_pct=outcome.task_aware_acc_matrix_pct,
        test_samples_per_task=outcome.test_samples_per_task,
        metrics=compute_metrics(
            outcome.acc_matrix_pct,
            outcome.task_aware_acc_matrix_pct,
            outcome.test_samples_per_task,
        ),
    )


def _ok_header(
    resolved: ResolvedTrial,
    stream: ClassIncrementalStream,
    served: nn.Module,
    loaded_weights: dict[str, Any],
    device_name: str,
) -> dict[str, Any]:
    suite = resolved.suite
    header = record_header(resolved.spec, resolved, status="ok", device=device_name)
    header["suite"].update(
        split_sha256=stream.split_sha256, train_augmentation=suite.augmentation.describe()
    )
    header["method"].update(
        # method.backbone is the trial's (teacher's) backbone; this one serves, and is
        # costed: read from the served module itself.
        inference_backbone="+".join(backbone_names(served)) or "unknown",
        # Every backbone built, with the weights it started from (file and sha256) or null.
        weights=loaded_weights,
    )
    return header


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
