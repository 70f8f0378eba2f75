"""Ray Tune scheduling of trials. The only module that imports Ray.

Each trial reports one intermediate result per task (for progress lines) and a final result
carrying its record as JSON; the driver writes records itself, so Ray's output folder (a
temporary directory, deleted afterwards) is never the result store, and trials on a remote
cluster need no shared filesystem for results.

Every node needs the same install: each trial first compares its node's harness commit and
plugins with the driver's (on a cluster, ``--address``, its data and weights files too; see
``harness.run.cluster_checks``) and, on a difference, ends as a failure record that says why
instead of a wrong record. Records name the Ray node that ran them (``execution.ray_node``).

Ctrl-C and SIGTERM stop a run the same way: Tune stops every trial, finished records stay
written, unfinished trials get failure records, and Ray and the run's temp folder (Ray's
session and Tune's storage, ``$RAY_TMPDIR`` or ``/tmp``, ``cilbench-ray-*``) are removed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Quiet, self-contained Ray: set before Ray is imported (Ray reads these at import and init).
for _key, _value in {
    "RAY_AIR_NEW_OUTPUT": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_CHDIR_TO_TRIAL_DIR": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # Our handler stops the grid on Ctrl-C and SIGTERM alike (see _StopOnSignal).
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
    # A failed trial's traceback goes into its failure record, not onto the console.
    "TUNE_PRINT_ALL_TRIAL_ERRORS": "0",
    "HF_HUB_OFFLINE": "1",
}.items():
    os.environ.setdefault(_key, _value)

import ray  # noqa: E402
from ray import cloudpickle, tune  # noqa: E402

from harness.evaluation.protocol import TaskEvent  # noqa: E402
from harness.run.cluster_checks import (  # noqa: E402
    driver_facts,
    node_record,
    refusal,
    this_node,
    with_ray_node,
)
from harness.run.trial import TrialSpec, failure_record, run_trial  # noqa: E402
from harness.run.trial_record import DEVICE_NOT_STARTED  # noqa: E402

log = logging.getLogger("cilbench")

# Unix socket paths (Ray's session folder lives in the run folder) are limited to 107 bytes.
MAX_TEMP_BASE_CHARS = 32


class RayStartError(RuntimeError):
    """Ray could not be started or reached; the message names the address and what to do."""


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
    interrupted_by: str | None = None  # "SIGINT" or "SIGTERM" when a signal stopped the grid
    unfinished: list[int] = field(default_factory=list)  # trials stopped before their record
    # Errors raised by on_record / on_task (they never stop the grid; the caller reports them).
    handler_errors: list[str] = field(default_factory=list)


RecordSink = Callable[[int, dict[str, Any]], None]
TaskSink = Callable[[int, TaskEvent], None]


def run_grid(
    specs: list[TrialSpec],
    options: SchedulerOptions,
    *,
    on_record: RecordSink,
    on_task: TaskSink,
) -> GridOutcome:
    """Run every spec as a Ray Tune trial; ``on_record`` gets each record as it completes.

    Every spec ends with exactly one record: its own, or a failure record (a dead worker, a
    trial stopped by Ctrl-C / SIGTERM, a trial that ended without a word), which carries the
    trial's run id so that a later successful run replaces it.
    """
    records: dict[int, dict[str, Any]] = {}
    handler_errors: list[str] = []

    def deliver(index: int, record: dict[str, Any]) -> None:
        if index in records:  # e.g. a worker that died after it had sent its record
            log.warning("trial %d: a second result (%s) ignored", index + 1, record["status"])
            return
        records[index] = record
        _call_safely(on_record, index, record, handler_errors)

    stop = _StopOnSignal()
    folder = _run_folder()
    ray_start_s = tune_wall_s = 0.0
    try:
        stop.install()
        start = time.perf_counter()
        _start_ray(options, folder)
        stop.install()  # again: ray.init puts its own SIGTERM handler in place
        ray_start_s = time.perf_counter() - start
        if stop.signal_name is None:
            tune_start = time.perf_counter()
            _tuner(specs, options, folder, stop, deliver, on_task, handler_errors).fit()
            tune_wall_s = time.perf_counter() - tune_start
        unfinished = [i for i in range(len(specs)) if i not in records]
        why = (f"stopped by {stop.signal_name} before it finished" if stop.signal_name
               else "the trial ended without a record")  # fmt: skip
        for index in unfinished:  # every trial ends with a record, even one that vanished
            deliver(index, failure_record(specs[index], None, why, 0.0))
    finally:
        try:
            ray.shutdown()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            stop.restore()
    ordered = [records[i] for i in range(len(specs))]
    return GridOutcome(
        records=ordered,
        ray_start_s=ray_start_s,
        tune_wall_s=tune_wall_s,
        trial_wall_s=[r["timing"]["trial_wall_time_s"] for r in ordered],
        interrupted_by=stop.signal_name,
        unfinished=unfinished,
        handler_errors=handler_errors,
    )


def _tuner(
    specs: list[TrialSpec],
    options: SchedulerOptions,
    folder: Path,
    stop: tune.Stopper,
    deliver: RecordSink,
    on_task: TaskSink,
    handler_errors: list[str],
) -> tune.Tuner:
    # What every trial checks its node against: the code; on a cluster, data and weights too.
    on_cluster = bool(options.address or os.environ.get("RAY_ADDRESS"))
    driver = driver_facts(specs, on_cluster=on_cluster)
    events = _TrialEvents(specs, deliver, on_task, handler_errors, on_cluster)
    return tune.Tuner(
        tune.with_resources(
            tune.with_parameters(_trainable, specs=specs, driver=driver), trial_resources(options)
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
            storage_path=str(folder / "tune"),
            verbose=0,
            stop=stop,
            callbacks=[events],
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        ),
    )


def _call_safely(sink: Callable[..., None], index: int, payload: Any, errors: list[str]) -> None:
    """A sink that raises (a record that cannot be saved, ...) fails one trial, not the grid."""
    try:
        sink(index, payload)
    except Exception as error:
        message = f"trial {index + 1}: {type(error).__name__}: {error}"
        errors.append(message)
        log.error("cilbench: %s", message)


def _run_folder() -> Path:
    """This run's own temp folder (Ray's session, Tune's storage), removed at the end.

    Short on purpose: Ray puts unix sockets in it, and their paths are limited to 107 bytes.
    """
    base = os.environ.get("RAY_TMPDIR") or "/tmp"
    if len(base) > MAX_TEMP_BASE_CHARS or not os.path.isdir(base):
        base = "/tmp"
    return Path(tempfile.mkdtemp(prefix="cilbench-ray-", dir=base))


class _StopOnSignal(tune.Stopper):
    """Ctrl-C and SIGTERM alike: the first asks Tune to stop every trial (finished records
    stay written; unfinished trials get failure records); a second one stops at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.signal_name is not None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # Python only lets the main thread handle signals
        for signum in self.SIGNALS:
            previous = signal.signal(signum, self._handle)
            self._previous.setdefault(signum, previous)

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.signal_name is not None:
            raise KeyboardInterrupt(f"{name} received twice")
        self.signal_name = name
        log.warning(
            "%s received: stopping every trial (finished records are kept; send it again to "
            "stop at once)",
            name,
        )

    def __reduce__(self) -> tuple[Any, ...]:  # Tune may pickle its stopper; handlers stay
        return (_StopOnSignal, ())


def trial_resources(options: SchedulerOptions) -> dict[str, float]:
    """What Ray reserves per trial. Ray hides GPUs (``CUDA_VISIBLE_DEVICES=""``) from a trial
    that asks for none, so a GPU trial must ask; on a cluster, trials go where GPUs are."""
    resources: dict[str, float] = {"cpu": options.cpus_per_trial}
    if options.gpus_per_trial > 0:
        resources["gpu"] = options.gpus_per_trial
    return resources


def _start_ray(options: SchedulerOptions, folder: Path) -> None:
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    address = options.address or os.environ.get("RAY_ADDRESS")
    if address:
        log.info("connecting to the Ray cluster at %s", address)
        try:
            ray.init(address=address, **quiet)
        except Exception as error:
            raise RayStartError(
                f"cannot connect to the Ray cluster at {address}: {type(error).__name__}: "
                f"{error}. Check --address (or $RAY_ADDRESS) and that the cluster runs"
            ) from error
        return
    try:
        # address="local" starts a fresh Ray for this run (and ignores RAY_ADDRESS); its
        # session folder goes into this run's folder, removed at the end.
        ray.init(
            address="local",
            num_cpus=options.num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            object_store_memory=200 * 1024**2,
            _temp_dir=str(folder / "ray"),
            **quiet,
        )
    except Exception as error:
        raise RayStartError(
            f"could not start a local Ray: {type(error).__name__}: {error}"
        ) from error


def _trainable(config: dict[str, Any], specs: list[TrialSpec], driver: dict[str, Any]) -> None:
    """Runs inside a Ray worker: one trial, reporting per task and then the record (naming
    this node); on a node whose code (or data) differs from the driver's, only why."""
    index = config["trial_index"]
    spec = specs[index]
    node = this_node(ray.get_runtime_context().get_node_id())
    node_json = json.dumps(node)
    why_not = refusal(driver, spec, node)
    if why_not is not None:  # the driver writes its failure record, with the driver's run id
        tune.report({"kind": "refused", "error": why_not, "ray_node_json": node_json})
        return

    def report_task(event: TaskEvent) -> None:
        tune.report({"kind": "task", "ray_node_json": node_json, **event.__dict__})

    record = node_record(run_trial(spec, on_task_end=report_task), spec, node,
                         driver=driver, index=index)  # fmt: skip
    tune.report({"kind": "record", "record_json": json.dumps(record)})


class _TrialEvents(tune.Callback):
    """Turns Tune's results into progress events and records on the driver."""

    def __init__(
        self,
        specs: list[TrialSpec],
        on_record: RecordSink,
        on_task: TaskSink,
        handler_errors: list[str],
        on_cluster: bool = False,
    ) -> None:
        self.specs = specs
        self.on_record = on_record
        self.on_task = on_task
        self.handler_errors = handler_errors
        self.on_cluster = on_cluster  # failure messages then name the node
        self.nodes: dict[int, dict[str, Any]] = {}  # trial index -> the node it reported from

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:  # noqa: ANN001
        index = trial.config["trial_index"]
        if result.get("ray_node_json"):
            self.nodes[index] = json.loads(result["ray_node_json"])
        if result.get("kind") == "refused":  # the node's harness differs: it ran nothing
            record = failure_record(self.specs[index], None, result["error"], 0.0,
                                    device=DEVICE_NOT_STARTED)  # fmt: skip
            self.on_record(index, with_ray_node(record, self.nodes[index], name_in_error=False))
        elif result.get("kind") == "task":
            fields = TaskEvent.__dataclass_fields__
            event = TaskEvent(**{k: result[k] for k in fields})
            _call_safely(self.on_task, index, event, self.handler_errors)
        elif result.get("kind") == "record":
            self.on_record(index, json.loads(result["record_json"]))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:  # noqa: ANN001
        index = trial.config["trial_index"]
        record = failure_record(self.specs[index], None, _trial_error(trial), 0.0)
        node = self.nodes.get(index)  # known once the trial has reported from its node
        if node is not None:
            record = with_ray_node(record, node, name_in_error=self.on_cluster)
        self.on_record(index, record)


def _trial_error(trial: Any) -> BaseException | str:
    """Why Ray says a trial failed: the original exception (a dead worker's ActorDiedError,
    ...) rather than Ray's wrapper; else the text Ray saved; else that Ray gave no reason."""
    # Tune writes both files to the trial's local folder at once and syncs them to its
    # storage only later, so read the local ones first.
    error = _read_quietly(trial.pickled_error_file, binary=True) or _quietly(
        trial.get_pickled_error
    )
    while isinstance(error, ray.exceptions.RayTaskError) and error.cause is not None:
        error = error.cause
    if isinstance(error, BaseException):
        return error
    text = _read_quietly(trial.error_file, binary=False) or _quietly(trial.get_error)
    if text:
        return f"Ray reported the trial failed: {str(text).strip()}"
    return "Ray reported the trial failed without giving a reason (see Ray's logs)"


def _read_quietly(path: str | None, *, binary: bool) -> Any:
    if not path:
        return None
    try:
        if binary:
            return cloudpickle.loads(Path(path).read_bytes())
        return Path(path).read_text()
    except Exception:  # missing, or an exception class the driver cannot unpickle
        return None


def _quietly(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception:
        return None
