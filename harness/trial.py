"""One trial: suite x strategy x framework x config x seed, from spec to result record.

Nothing here imports Ray: the scheduler calls ``run_trial`` inside a Ray Tune trial, and
tests call it directly.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.adapters import (
    ENTRY_POINT_GROUPS,
    FRAMEWORKS,
    STRATEGIES,
    Framework,
    LearnerContext,
    load_adapters,
)
from harness.backbones import create_backbone
from harness.config import config_to_dict, resolve_config
from harness.cost import measure_inference_cost
from harness.execution import CPU_EXECUTION, Execution, ExecutionOptions
from harness.exemplars import ExemplarMemory
from harness.incremental_net import IncrementalNet, backbone_names
from harness.latency import device_latencies
from harness.metrics import compute_metrics
from harness.pixels import with_pixel_normalization
from harness.protocol import TaskEvent, run_protocol
from harness.provenance import adapter_origin, environment
from harness.record_schema import Results, TrialRecord
from harness.suite import Suite, class_order_sha256, parse_suite
from harness.suite_stream import stream_for_suite
from harness.training import Trainer, TrainingConfig
from harness.training_budget import TrainingMeter

CONFIG_SCOPES = ("strategy", "framework", "training")
NO_WEIGHTS = "none"  # a weights override that means random initialisation
# Prefix of the id of a failure record whose spec cannot even be resolved (no real run id).
UNRESOLVED_RUN_ID = "unresolved-"
# provenance.device of a failure record when no device was resolved for the trial: it failed
# before it could run, or it failed in a worker the driver cannot ask (a dead worker).
DEVICE_NOT_STARTED = "not started"
DEVICE_UNKNOWN = "unknown"


@dataclass(frozen=True)
class TrialSpec:
    """Everything that determines a trial; it travels to Ray workers, so it holds the suite
    text itself rather than a path."""

    suite_text: str
    strategy: str
    framework: str
    backbone: str
    seed: int
    label: str
    order_index: int = 0
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # keyed by CONFIG_SCOPES
    data_root: str | None = None
    debug: bool = False  # test-only shortcuts: the leaderboard refuses such records
    # Debug only: at most this many train, validation and test images per class.
    limit_per_class: int | None = None
    # Backbone -> weights replacing the suite's: "torchvision:<ENUM>", a local path, or "none".
    weights: dict[str, str] = field(default_factory=dict)
    # Where and how the trial runs (device, precision, compile): not part of its identity.
    execution: ExecutionOptions = field(default_factory=ExecutionOptions)
    num_threads: int = 1
    code_version: dict[str, Any] = field(default_factory=dict)  # git state of the driver

    @property
    def suite(self) -> Suite:
        return parse_suite(self.suite_text)


@dataclass(frozen=True)
class ResolvedTrial:
    spec: TrialSpec
    suite: Suite
    configs: dict[str, Any]  # scope -> frozen config dataclass

    @property
    def config_dict(self) -> dict[str, dict[str, Any]]:
        return {scope: config_to_dict(cfg) for scope, cfg in self.configs.items()}

    @property
    def config_sha256(self) -> str:
        return _sha256(self.config_dict)

    @property
    def method_identity(self) -> list[Any]:
        """What the method of the trial is, whatever its label: the adapters, the backbone
        and every resolved config (two labels for this content name one method)."""
        s = self.spec
        return [s.strategy, s.framework, s.backbone, self.config_dict]

    @property
    def run_id(self) -> str:
        """Same resolved spec, same id: reruns find their earlier record instead of duplicating.

        The label is not part of it: a method asked for by another name (``lwf+postpruning``
        for the suite's ``lwf+postpruning@0.4``) is the same trial and finds its record."""
        s = self.spec
        identity = {
            "suite": [self.suite.name, self.suite.version, self.suite.file_sha256],
            "method": self.method_identity,
            "seed": s.seed,
            "order_index": s.order_index,
            "debug": s.debug,
        }
        # Only when used, so that the ids of earlier records stay what they were.
        if s.limit_per_class is not None:
            identity["limit_per_class"] = s.limit_per_class
        if s.weights:
            identity["weights"] = dict(sorted(s.weights.items()))
        # The thread count changes float summation order, hence the numbers; 1 (every
        # earlier record) keeps its old id.
        if s.num_threads != 1:
            identity["num_threads"] = s.num_threads
        return _sha256(identity)[:16]


def resolve_trial(spec: TrialSpec) -> ResolvedTrial:
    """Check names and resolve every config (unknown keys fail with "did you mean")."""
    load_adapters()
    suite = spec.suite
    strategy_cls = STRATEGIES.get(spec.strategy)
    framework_cls = FRAMEWORKS.get(spec.framework)
    unknown = set(spec.overrides) - set(CONFIG_SCOPES)
    if unknown:
        raise ValueError(f"unknown config scope(s) {sorted(unknown)}; use {CONFIG_SCOPES}")
    training_defaults = {**suite.training, **spec.overrides.get("training", {})}
    configs = {
        "strategy": resolve_config(
            strategy_cls.Config, spec.overrides.get("strategy", {}), scope="strategy"
        ),
        "framework": resolve_config(
            framework_cls.Config, spec.overrides.get("framework", {}), scope="framework"
        ),
        "training": resolve_config(TrainingConfig, training_defaults, scope="training"),
    }
    if spec.limit_per_class is not None and (not spec.debug or spec.limit_per_class < 1):
        raise ValueError("limit_per_class is a debug shortcut: a positive count, debug=True")
    if strategy_cls.unbounded_memory and strategy_cls.reference is None:
        raise ValueError(
            f"strategy {spec.strategy!r} asks for unbounded memory but is no reference"
        )
    return ResolvedTrial(spec, suite, configs)


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
    torch.set_num_threads(spec.num_threads)
    _seed_everything(spec.seed)
    execution = Execution(spec.execution)
    execution.setup()
    stream = stream_for_suite(
        suite,
        order_index=spec.order_index,
        data_root=Path(spec.data_root) if spec.data_root else None,
        limit_per_class=spec.limit_per_class,
    ).to(execution.device)
    loaded_weights: dict[str, Any] = {}
    meter = TrainingMeter()
    learner, _ = build_learner(
        resolved, execution=execution, loaded_weights=loaded_weights, meter=meter
    )
    training: TrainingConfig = resolved.configs["training"]
    protocol = run_protocol(
        learner,
        stream,
        eval_batch_size=training.eval_batch_size,
        on_task_end=on_task_end,
        execution=execution,
        meter=meter,
    )
    outcome, served = protocol.result, protocol.served  # what was evaluated is what is costed
    declared = [learner.declared_epochs(i) for i in range(stream.num_tasks)]
    meter.check(declared)  # fairness enforced: a framework trains exactly what it declares
    repeats = {"warmup": 2, "repeats": 5} if spec.debug else {"warmup": 10, "repeats": 50}
    cost = measure_inference_cost(
        _on_cpu(served),
        (1, *suite.input_shape),
        latency_warmup=repeats["warmup"],
        latency_repeats=repeats["repeats"],
    )
    if execution.on_cuda:  # and where it was trained: batch 1 and a throughput batch
        cost = cost.with_latencies(
            device_latencies(served, (1, *suite.input_shape), execution=execution, **repeats)
        )
    results = Results(
        acc_matrix_pct=outcome.acc_matrix_pct,
        task_aware_acc_matrix_pct=outcome.task_aware_acc_matrix_pct,
        test_samples_per_task=outcome.test_samples_per_task,
        metrics=compute_metrics(
            outcome.acc_matrix_pct,
            outcome.task_aware_acc_matrix_pct,
            outcome.test_samples_per_task,
        ),
    )
    executed = execution.describe()
    header = _record_header(spec, resolved, status="ok", device=executed["device_name"])
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
    return TrialRecord(
        **header,
        results=results,
        inference_cost=cost,
        training_budget=meter.to_record(declared),
        timing={
            "task_wall_time_s": outcome.task_wall_time_s,
            "trial_wall_time_s": time.perf_counter() - started,
        },
        framework_report=learner.report(),
        execution=executed,
    ).to_json()


def _on_cpu(model: nn.Module) -> nn.Module:
    """The served model as the cost is measured: on the CPU (the paper's concern is inference
    on small devices, and one latency column must not mix devices). FLOPs and parameters do
    not depend on the device; a model trained elsewhere is copied, the original untouched."""
    if all(t.device.type == "cpu" for t in [*model.parameters(), *model.buffers()]):
        return model
    return copy.deepcopy(model).to("cpu", memory_format=torch.contiguous_format)


def build_learner(
    resolved: ResolvedTrial,
    *,
    execution: Execution = CPU_EXECUTION,
    loaded_weights: dict[str, Any] | None = None,
    meter: TrainingMeter | None = None,
) -> tuple[Framework, ExemplarMemory]:
    """The framework (wrapping its strategy) for a resolved trial, and the exemplar memory the
    harness gave it (unbounded only for reference strategies). ``loaded_weights``, if given,
    collects what each backbone built started from, for the record. ``execution`` says where
    models live and how batches run."""
    spec, suite = resolved.spec, resolved.suite
    strategy_cls = STRATEGIES.get(spec.strategy)
    memory = ExemplarMemory(None if strategy_cls.unbounded_memory else suite.exemplar_budget)
    training: TrainingConfig = resolved.configs["training"]

    def build_model(backbone: str | None = None) -> IncrementalNet:
        """A fresh model: the suite's pixel normalisation, then the backbone (default: the
        trial's) with its weights, then an empty incremental head."""
        name = backbone or spec.backbone
        built = create_backbone(
            name,
            in_channels=suite.input_shape[0],
            input_size=suite.input_shape[1],
            weights=weights_spec(spec, suite, name),
        )
        if loaded_weights is not None:
            loaded_weights[name] = built.weights.to_record() if built.weights else None
        normalised = with_pixel_normalization(
            built.module, suite.dataset.normalize_mean, suite.dataset.normalize_std
        )
        return execution.place(IncrementalNet(normalised, built.feature_dim, backbone_name=name))

    trainer = Trainer(
        training,
        seed=spec.seed,
        augmentation=suite.augmentation,
        execution=execution,
        meter=meter,
    )
    context = LearnerContext(
        build_model=build_model,
        backbone=spec.backbone,
        make_strategy=lambda: strategy_cls(resolved.configs["strategy"], memory=memory),
        fit=trainer.fit,
        training=training,
        device=execution.device,
        input_shape=(1, *suite.input_shape),
    )
    learner = FRAMEWORKS.get(spec.framework)(resolved.configs["framework"], context=context)
    return learner, memory


def weights_spec(spec: TrialSpec, suite: Suite, backbone: str) -> str | None:
    """What ``backbone`` starts from: the trial's override, else the suite's, else random
    initialisation. ``"none"`` as an override means random initialisation."""
    if backbone in spec.weights:
        override = spec.weights[backbone]
        return None if override == NO_WEIGHTS else override
    return suite.weights[backbone].spec if backbone in suite.weights else None


def failure_record(
    spec: TrialSpec,
    resolved: ResolvedTrial | None,
    error: BaseException | str,
    seconds: float,
    *,
    device: str = DEVICE_UNKNOWN,
) -> dict[str, Any]:
    """A record that says the trial failed and why; it does not count on the leaderboard.

    It carries the trial's own run id (the spec is resolved here if need be), so the next
    successful run of the trial finds and replaces it. ``device`` is the device resolved for
    the trial, if the caller knows it (never a guess from the machine this runs on)."""
    header = _record_header(spec, resolved or _try_resolve(spec), status="failed", device=device)
    if isinstance(error, BaseException):
        details = {
            "type": type(error).__name__,
            "message": str(error) or type(error).__name__,
            "traceback": "".join(traceback.format_exception(error)),
        }
    else:
        details = {"type": "TrialError", "message": error, "traceback": None}
    timing = {"task_wall_time_s": [], "trial_wall_time_s": seconds}
    return TrialRecord(**header, timing=timing, error=details).to_json()


def _record_header(
    spec: TrialSpec, resolved: ResolvedTrial | None, *, status: str, device: str = DEVICE_UNKNOWN
) -> dict[str, Any]:
    """``TrialRecord`` fields common to ok and failed trials. ``device``: where the trial ran
    (an ok record's comes from its execution)."""
    suite = resolved.suite if resolved else _try_parse(spec.suite_text)
    order = list(suite.class_orders[spec.order_index]) if suite else []
    strategy_cls = STRATEGIES.get(spec.strategy) if spec.strategy in STRATEGIES else None
    framework_cls = FRAMEWORKS.get(spec.framework) if spec.framework in FRAMEWORKS else None
    return {
        "run_id": resolved.run_id if resolved else UNRESOLVED_RUN_ID + _sha256(asdict(spec))[:16],
        "status": status,
        "debug": spec.debug,
        "created_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "suite": {
            "name": suite.name if suite else "unknown",
            "version": suite.version if suite else None,
            "file_sha256": suite.file_sha256 if suite else None,
            "class_order": order,
            "class_order_sha256": class_order_sha256(order) if order else None,
            "order_index": spec.order_index,
            "num_tasks": suite.num_tasks if suite else None,
            "classes_per_task": list(suite.classes_per_task) if suite else None,
            "exemplar_budget": suite.exemplar_budget if suite else None,
            "primary_metric": suite.primary_metric if suite else None,
        },
        "method": {
            "label": spec.label,
            "strategy": spec.strategy,
            "framework": spec.framework,
            "backbone": spec.backbone,
            "config": resolved.config_dict if resolved else spec.overrides,
            "config_sha256": resolved.config_sha256 if resolved else None,
            "reference": strategy_cls.reference if strategy_cls else None,
            "weights_overrides": dict(spec.weights),  # --weights: replaces the suite's weights
            # Built in, or the plugin distribution (and version) each adapter came from.
            "origins": {
                kind: adapter_origin(cls, entry_point_groups=ENTRY_POINT_GROUPS) if cls else None
                for kind, cls in (("strategy", strategy_cls), ("framework", framework_cls))
            },
        },
        "seed": spec.seed,
        "provenance": {**spec.code_version, **environment(device=device)},
    }


def _try_resolve(spec: TrialSpec) -> ResolvedTrial | None:
    try:
        return resolve_trial(spec)
    except Exception:  # unknown names, bad configs: the failure record says so itself
        return None


def _try_parse(text: str) -> Suite | None:
    try:
        return parse_suite(text)
    except Exception:
        return None


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _sha256(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
