"""``cilbench run``: plan a suite's trials, check everything up front, run them through Ray
Tune, save each record as it arrives, then rebuild the site."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

from harness.cli.common import (
    EXIT_OK,
    EXIT_SIGNAL,
    EXIT_TRIALS_FAILED,
    UsageError,
    add_data_root,
    log,
)
from harness.cli.site import build_site_after_run


def add_command(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run a suite's trials through Ray Tune and write records")
    _add_selection(run)
    _add_outputs(run)
    _add_execution(run)
    _add_resources(run)
    run.set_defaults(handler=command_run)


def _add_selection(run: argparse.ArgumentParser) -> None:
    """Which trials: suite, methods, backbones, seeds, config overrides, starting weights."""
    run.add_argument("--suite", default="digits-5split", help="suite name or path to a YAML file")
    run.add_argument(
        "--method",
        action="append",
        metavar="METHOD",
        help="method(s) to run: a label of the suite's methods (e.g. lwf+kd, "
        "lwf+prepruning@0.4; lwf runs every entry labelled lwf) or STRATEGY[+FRAMEWORK] with "
        "default configs (default: the suite's whole list)",
    )
    run.add_argument("--backbone", action="append", help="backbone(s) (default: the suite's)")
    run.add_argument(
        "--no-tuned",
        action="store_true",
        help="leave out the tuned twins of entries that have a tuned config (cilbench tune)",
    )
    run.add_argument("--seeds", help="comma-separated seeds (default: the suite's)")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SCOPE.KEY=VALUE",
        dest="overrides",
        help="config override, SCOPE is strategy, framework or "
        "training, e.g. --set strategy.lambda_kd=2 --set training.epochs=5",
    )
    run.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="BACKBONE=SPEC",
        help="weights a backbone starts from instead of the suite's: a local checkpoint path, "
        "torchvision:<ENUM> (from torch's hub cache) or none (random init), e.g. "
        "--weights resnet34_cifar=/data/resnet34-b627a593.pth --weights mobilenet_v2=none",
    )


def _add_outputs(run: argparse.ArgumentParser) -> None:
    """Where records and the site go, and the test-only shortcuts that mark records debug."""
    run.add_argument("--results", type=Path, default=Path("results"), help="records folder")
    run.add_argument("--site", type=Path, default=Path("site"), help="leaderboard folder")
    run.add_argument("--no-site", action="store_true", help="do not rebuild the site afterwards")
    add_data_root(run)
    run.add_argument(
        "--overwrite", action="store_true", help="rerun trials whose records exist and replace them"
    )
    run.add_argument(
        "--quick",
        action="store_true",
        help="one epoch per task; records are "
        "marked debug and the leaderboard leaves them out (for tests)",
    )
    run.add_argument(
        "--limit-per-class",
        type=int,
        metavar="N",
        help="at most N train, validation and test images per class; records are marked "
        "debug and the leaderboard leaves them out (for tests and smoke runs)",
    )


def _add_execution(run: argparse.ArgumentParser) -> None:
    """How each trial runs on its hardware."""
    from harness.models.execution import DEVICES, PRECISIONS

    run.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where trials train: auto (CUDA when a trial sees a GPU, else CPU), cpu or cuda",
    )
    run.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto (bf16 autocast with fp32 weights on CUDA, fp32 on CPU), fp32 or bf16",
    )
    run.add_argument(
        "--compile", action="store_true", help="torch.compile each training stage's model"
    )
    run.add_argument(
        "--deterministic",
        action="store_true",
        help="deterministic algorithms where torch has them (slower on GPUs; see README)",
    )


def _add_resources(run: argparse.ArgumentParser) -> None:
    """What Ray gives each trial, how many run at once, and which cluster."""
    run.add_argument(
        "--gpus-per-trial",
        type=float,
        help="GPUs each trial gets from Ray; a fraction packs trials on one GPU, e.g. 0.25 "
        "(default: 1 when this machine has a GPU and --device is not cpu, else 0)",
    )
    run.add_argument(
        "--max-concurrent",
        type=int,
        help="trials at once, >= 1 (default on a local Ray: one per idle CPU, by the load "
        "average; on a cluster: as its CPUs allow)",
    )
    run.add_argument(
        "--cpus-per-trial",
        type=int,
        default=1,
        help="CPUs (and torch threads) each trial gets (default: 1)",
    )
    run.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    run.add_argument(
        "--address",
        help="an existing Ray cluster (default: $RAY_ADDRESS, else a "
        "local Ray started for this run)",
    )


def command_run(args: argparse.Namespace) -> int:
    from harness.run.checks import (
        check_cpu_options,
        check_local_gpus,
        check_results_writable,
        gpus_per_trial,
        probe_ray_address,
    )
    from harness.run.grid import preflight

    check_cpu_options(args)
    plan = _plan(args)
    args.gpus_per_trial = gpus_per_trial(args.device, args.gpus_per_trial)
    address = args.address or os.environ.get("RAY_ADDRESS")
    if not address:
        check_local_gpus(args.gpus_per_trial)
    if plan.skipped:  # one line, not one per trial: a rerun of a whole suite skips dozens
        log.info("skipped %d trial(s) that already have a record in %s (ARGS='--overwrite' "
                 "or --overwrite reruns them)", len(plan.skipped), args.results)  # fmt: skip
    for skipped in plan.skipped:
        log.debug("skip %s", skipped)
    if not plan.specs:
        log.info("nothing to run: every trial already has a record in %s", args.results)
        return build_site_after_run(args, EXIT_OK)
    preflight(plan, args.data_root)  # missing data or weights: said first, nothing written
    check_results_writable(args.results)
    if address:
        probe_ray_address(address)
    return _run_plan(args, plan)


def _plan(args: argparse.Namespace) -> Any:
    from harness.models.execution import ExecutionOptions
    from harness.run.checks import positive
    from harness.run.grid import plan_trials

    return plan_trials(
        suite=args.suite,
        methods=args.method,
        backbones=args.backbone,
        seeds=_parse_seeds(args.seeds),
        overrides=_parse_overrides(args.overrides),
        data_root=args.data_root,
        debug=args.quick,
        num_threads=args.cpus_per_trial,
        results_dir=args.results,
        overwrite=args.overwrite,
        limit_per_class=positive("--limit-per-class", args.limit_per_class),
        weights=_parse_weights(args.weights),
        tuned=not args.no_tuned,
        execution=ExecutionOptions(
            device=args.device,
            precision=args.precision,
            compile=args.compile,
            deterministic=args.deterministic,
        ),
    )


class _Progress:
    """One console line per finished task and per trial; saves each record as it arrives."""

    def __init__(self, plan: Any, results: Path) -> None:
        self.plan, self.results = plan, results
        total = len(plan.specs)
        self.names = [f"[{i + 1}/{total}] {s.label} ({s.backbone}) seed={s.seed}"
                      for i, s in enumerate(plan.specs)]  # fmt: skip
        self.failures: list[str] = []

    def on_task(self, index: int, event: Any) -> None:
        log.info(
            "%s task %d/%d: accuracy on seen classes %.1f%% (%.1f s)",
            self.names[index],
            event.task_index + 1,
            event.num_tasks,
            event.acc_seen_pct,
            event.wall_time_s,
        )

    def on_record(self, index: int, record: dict[str, Any]) -> None:
        from harness.run.record_saving import save_record

        name = self.names[index]
        path, problem = save_record(record, self.plan.specs[index], self.results,
                                    overwrite=self.plan.replace[index])  # fmt: skip
        if problem:
            self.failures.append(f"{name}: {problem}")
            log.error("%s NOT SAVED: %s", name, problem)
        elif record["status"] == "ok":
            m, c = record["results"]["metrics"], record["inference_cost"]
            log.info(
                "%s done in %.1f s: ACC %.1f%%, avg. incremental %.1f%%, %.4f GFLOPs -> %s",
                name,
                record["timing"]["trial_wall_time_s"],
                m["final_acc_pct"],
                m["avg_incremental_acc_pct"],
                c["gflops_per_image"],
                path,
            )
        else:
            self.failures.append(f"{name}: {_error_text(record)}")
            log.info("%s FAILED: %s -> %s", name, _error_text(record), path)


def _run_plan(args: argparse.Namespace, plan: Any) -> int:
    from harness.run.scheduler import RayStartError, SchedulerOptions, run_grid

    total = len(plan.specs)
    log.info("running %d trial(s) of suite %s v%d through Ray Tune",
             total, plan.suite.name, plan.suite.version)  # fmt: skip
    progress = _Progress(plan, args.results)
    options = SchedulerOptions(
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        max_concurrent=_max_concurrent(args, total),
        address=args.address,
        num_cpus=args.num_cpus,
    )
    start = time.perf_counter()
    try:
        outcome = run_grid(
            plan.specs, options, on_record=progress.on_record, on_task=progress.on_task
        )
    except RayStartError as error:
        raise UsageError(str(error)) from error
    trial_times = outcome.trial_wall_s
    log.info(
        "grid: %d trial(s) in %.1f s wall (Ray start %.1f s, Tune %.1f s); per trial median "
        "%.1f s, sum %.1f s", total, time.perf_counter() - start, outcome.ray_start_s,
        outcome.tune_wall_s, statistics.median(trial_times), sum(trial_times),
    )  # fmt: skip
    failures = progress.failures
    failures += [f"result handling failed: {error}" for error in outcome.handler_errors]
    if outcome.interrupted_by:
        unfinished = [progress.names[i] for i in outcome.unfinished]
        log.error(
            "stopped by %s: %d trial(s) finished and were saved; %d did not finish (failure "
            "records say so; the next run retries them)%s",
            outcome.interrupted_by, total - len(unfinished), len(unfinished),
            "".join(f"\n  unfinished: {name}" for name in unfinished),
        )  # fmt: skip
        return EXIT_SIGNAL.get(outcome.interrupted_by, EXIT_SIGNAL["SIGINT"])
    code = EXIT_OK
    if failures:
        log.error("%d trial(s) failed:\n  %s", len(failures), "\n  ".join(failures))
        code = EXIT_TRIALS_FAILED
    return build_site_after_run(args, code)


def _max_concurrent(args: argparse.Namespace, trials: int) -> int | None:
    """``--max-concurrent``; else, on a local Ray, one trial per idle CPU (see
    ``harness.run.concurrency``); else (a cluster) as many as its CPUs allow."""
    if args.max_concurrent or args.address or os.environ.get("RAY_ADDRESS"):
        return args.max_concurrent
    from harness.run.concurrency import default_max_concurrent, load_average

    load = load_average()
    at_once = default_max_concurrent(
        cpus_per_trial=args.cpus_per_trial, load=load, num_cpus=args.num_cpus
    )
    log.info(
        "up to %d trial(s) at once: one per idle CPU of %d (load average %s; "
        "--max-concurrent N to choose)",
        min(at_once, trials), args.num_cpus or os.cpu_count() or 1,
        "unknown" if load is None else f"{load:.2f}",
    )  # fmt: skip
    return at_once


def _error_text(record: dict[str, Any]) -> str:
    error = record["error"]
    kind = error.get("type")
    return error["message"] if kind in (None, "TrialError") else f"{kind}: {error['message']}"


def _parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    from harness.data.suite import check_seeds

    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError as error:
        raise UsageError(f"--seeds takes comma-separated integers, got {text!r}") from error
    return check_seeds(seeds, where="--seeds")


def _parse_weights(items: list[str]) -> dict[str, str]:
    """``BACKBONE=SPEC`` pairs; local paths become absolute (trials may run elsewhere)."""
    weights: dict[str, str] = {}
    for item in items:
        backbone, sep, spec = item.partition("=")
        if not sep or not backbone or not spec:
            raise UsageError(
                f"--weights {item!r}: expected BACKBONE=SPEC, SPEC a checkpoint path, "
                "torchvision:<ENUM>, timm:<tag> or none (e.g. --weights mobilenet_v2=none)"
            )
        if spec != "none" and not spec.startswith(("torchvision:", "timm:")):
            spec = str(Path(spec).expanduser().resolve())
        weights[backbone] = spec
    return weights


def _parse_overrides(items: list[str]) -> dict[str, dict[str, str]]:
    overrides: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        scope, dot, name = key.partition(".")
        if not sep or not dot or scope not in ("strategy", "framework", "training"):
            raise UsageError(
                f"--set {item!r}: expected SCOPE.KEY=VALUE with SCOPE one of strategy, "
                "framework, training (e.g. --set training.epochs=5)"
            )
        overrides.setdefault(scope, {})[name] = value
    return overrides
