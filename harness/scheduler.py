"""Ray Tune scheduling of trials. The only module that imports Ray.

Each trial reports one intermediate result per task (for progress lines) and a final result
carrying its record as JSON; the driver writes records itself, so Ray's output folder (a
temporary directory, deleted afterwards) is never the result store, and trials on a remote
cluster need no shared filesystem for results.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Quiet, self-contained Ray: set before Ray is imported (Ray reads these at import and init).
for _key, _value in {
    "RAY_AIR_NEW_OUTPUT": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_CHDIR_TO_TRIAL_DIR": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "HF_HUB_OFFLINE": "1",
}.items():
    os.environ.setdefault(_key, _value)

import ray  # noqa: E402
from ray import tune  # noqa: E402

from harness.protocol import TaskEvent  # noqa: E402
from harness.trial import TrialSpec, failure_record, run_trial  # noqa: E402

log = logging.getLogger("cilbench")


@dataclass(frozen=True)
class SchedulerOptions:
    cpus_per_trial: int = 1
    gpus_per_trial: float = 0.0  # a fraction packs trials on one GPU (e.g. 0.25: four)
    max_concurrent: int | None = None  # None: as many trials as the cluster's CPUs allow
    address: str | None = None  # an existing Ray cluster; None: start a local one for the run
    num_cpus: int | None = None  # size of the local Ray; None: all CPUs of this machine


@dataclass
class GridOutcome:
    records: list[dict[str, Any]]
    ray_start_s: float
    tune_wall_s: float
    trial_wall_s: list[float] = field(default_factory=list)


RecordSink = Callable[[int, dict[str, Any]], None]
TaskSink = Callable[[int, TaskEvent], None]


def run_grid(
    specs: list[TrialSpec],
    options: SchedulerOptions,
    *,
    on_record: RecordSink,
    on_task: TaskSink,
) -> GridOutcome:
    """Run every spec as a Ray Tune trial; ``on_record`` gets each record as it completes."""
    records: dict[int, dict[str, Any]] = {}

    def deliver(index: int, record: dict[str, Any]) -> None:
        records[index] = record
        on_record(index, record)

    start = time.perf_counter()
    _start_ray(options)
    ray_start_s = time.perf_counter() - start
    storage = tempfile.mkdtemp(prefix="cilbench-tune-")
    try:
        tuner = tune.Tuner(
            tune.with_resources(
                tune.with_parameters(_trainable, specs=specs), trial_resources(options)
            ),
            param_space={"trial_index": tune.grid_search(list(range(len(specs))))},
            tune_config=tune.TuneConfig(
                num_samples=1,
                max_concurrent_trials=options.max_concurrent,
                # Reusing worker processes saves a Python + torch start per trial.
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name="cilbench",
                storage_path=storage,
                verbose=0,
                callbacks=[_TrialEvents(specs, deliver, on_task)],
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            ),
        )
        tune_start = time.perf_counter()
        tuner.fit()
        tune_wall_s = time.perf_counter() - tune_start
    finally:
        ray.shutdown()
        shutil.rmtree(storage, ignore_errors=True)
    for index, spec in enumerate(specs):  # a trial that vanished without a word still counts
        if index not in records:
            deliver(index, failure_record(spec, None, "the trial ended without a record", 0.0))
    ordered = [records[i] for i in range(len(specs))]
    return GridOutcome(
        records=ordered,
        ray_start_s=ray_start_s,
        tune_wall_s=tune_wall_s,
        trial_wall_s=[r["timing"]["trial_wall_time_s"] for r in ordered],
    )


def trial_resources(options: SchedulerOptions) -> dict[str, float]:
    """What Ray reserves per trial. Ray hides GPUs (``CUDA_VISIBLE_DEVICES=""``) from a trial
    that asks for none, so a GPU trial must ask; on a cluster, trials go where GPUs are."""
    resources: dict[str, float] = {"cpu": options.cpus_per_trial}
    if options.gpus_per_trial > 0:
        resources["gpu"] = options.gpus_per_trial
    return resources


def _start_ray(options: SchedulerOptions) -> None:
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    address = options.address or os.environ.get("RAY_ADDRESS")
    if address:
        log.info("connecting to the Ray cluster at %s", address)
        ray.init(address=address, **quiet)
        return
    # address="local" starts a fresh Ray for this run (and ignores RAY_ADDRESS).
    ray.init(
        address="local",
        num_cpus=options.num_cpus or os.cpu_count() or 1,
        include_dashboard=False,
        object_store_memory=200 * 1024**2,
        **quiet,
    )


def _trainable(config: dict[str, Any], specs: list[TrialSpec]) -> None:
    """Runs inside a Ray worker: one trial, reporting per task and then the record."""
    spec = specs[config["trial_index"]]

    def report_task(event: TaskEvent) -> None:
        tune.report({"kind": "task", **event.__dict__})

    record = run_trial(spec, on_task_end=report_task)
    tune.report({"kind": "record", "record_json": json.dumps(record)})


class _TrialEvents(tune.Callback):
    """Turns Tune's results into progress events and records on the driver."""

    def __init__(self, specs: list[TrialSpec], on_record: RecordSink, on_task: TaskSink) -> None:
        self.specs = specs
        self.on_record = on_record
        self.on_task = on_task

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:  # noqa: ANN001
        index = trial.config["trial_index"]
        if result.get("kind") == "task":
            fields = TaskEvent.__dataclass_fields__
            self.on_task(index, TaskEvent(**{k: result[k] for k in fields}))
        elif result.get("kind") == "record":
            self.on_record(index, json.loads(result["record_json"]))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:  # noqa: ANN001
        index = trial.config["trial_index"]
        error = trial.get_pickled_error()
        message = f"Ray reported the trial failed: {error!r}" if error else "Ray trial failed"
        self.on_record(index, failure_record(self.specs[index], None, message, 0.0))
