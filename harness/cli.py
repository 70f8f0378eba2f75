"""The ``cilbench`` command: run suites, list what is registered, build the leaderboard site."""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_TRIALS_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}  # 128 + the signal's number, as shells report
log = logging.getLogger("cilbench")


class UsageError(Exception):
    """Bad input from the user: printed without a traceback, exit code 2."""


def _bad_input_errors() -> tuple[type[Exception], ...]:
    """Errors that mean "fix your input" (names, configs, suite files, missing data)."""
    from harness.config import ConfigError
    from harness.datasets import DatasetUnavailableError
    from harness.execution import ExecutionError
    from harness.leaderboard.files import SiteFolderError
    from harness.record import RecordExistsError, RecordPathError
    from harness.registry import UnknownNameError
    from harness.run_checks import RunCheckError
    from harness.suite import CheckpointHashError, SuiteError
    from harness.weights import MissingWeightsError, WeightsSpecError

    return (UsageError, UnknownNameError, ConfigError, SuiteError, DatasetUnavailableError,
            RecordExistsError, RecordPathError, CheckpointHashError, MissingWeightsError,
            WeightsSpecError, ExecutionError, SiteFolderError, RunCheckError)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return args.handler(args)
    except _bad_input_errors() as error:
        print(f"cilbench: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # a second Ctrl-C / SIGTERM, or one outside a grid
        print("cilbench: interrupted", file=sys.stderr)
        return EXIT_SIGNAL["SIGINT"]


def build_parser() -> argparse.ArgumentParser:
    from harness.data_command import add_data_command
    from harness.execution import DEVICES, PRECISIONS

    parser = argparse.ArgumentParser(
        prog="cilbench",
        description=(
            "Benchmark harness for low-complexity inference in class-incremental learning. "
            "Runs CL strategies (finetune, joint, lwf, ...) under compression frameworks "
            "(none, ...) on versioned suites, writes one JSON record per trial to results/, "
            "and builds a static leaderboard (accuracy vs. inference GFLOPs) in site/."
        ),
        epilog="Start with: cilbench run --suite digits-5split   (offline, CPU, a few minutes)",
    )
    sub = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a suite's trials through Ray Tune and write records")
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
    run.add_argument("--results", type=Path, default=Path("results"), help="records folder")
    run.add_argument("--site", type=Path, default=Path("site"), help="leaderboard folder")
    run.add_argument("--no-site", action="store_true", help="do not rebuild the site afterwards")
    _add_data_root(run)
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
    run.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="BACKBONE=SPEC",
        help="weights a backbone starts from instead of the suite's: a local checkpoint path, "
        "torchvision:<ENUM> (from torch's hub cache) or none (random init), e.g. "
        "--weights resnet34_cifar=/data/resnet34-b627a593.pth --weights mobilenet_v2=none",
    )
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
    run.set_defaults(handler=command_run)

    lister = sub.add_parser("list", help="list suites, strategies, frameworks, backbones")
    lister.add_argument("what", nargs="?", default="all",
                        choices=["all", "suites", "strategies", "frameworks", "backbones",
                                 "datasets"])  # fmt: skip
    lister.set_defaults(handler=command_list)

    site = sub.add_parser("site", help="build the static leaderboard from results/ alone")
    site.add_argument("--results", type=Path, default=Path("results"))
    site.add_argument("--out", type=Path, default=Path("site"))
    site.set_defaults(handler=command_site)

    add_data_command(sub)

    validate = sub.add_parser("validate", help="check every record under results/")
    validate.add_argument("--results", type=Path, default=Path("results"))
    validate.set_defaults(handler=command_validate)

    pretrain = sub.add_parser(
        "pretrain",
        help="pre-train a teacher backbone offline on a source disjoint from the suites",
        description="Train a backbone on a pre-training source with a fixed recipe (CPU, "
        "deterministic) and write its state dict plus a JSON recipe with the checkpoint's "
        "sha256, to use in a suite's weights: block.",
    )
    pretrain.add_argument("--backbone", default="compact_cnn", help="backbone to pre-train")
    pretrain.add_argument(
        "--source", default="fashion-mnist-8x8", help="pre-training source (default: %(default)s)"
    )
    pretrain.add_argument(
        "--out", type=Path, required=True, help="checkpoint file (.pt); the recipe goes beside it"
    )
    pretrain.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="recipe override, e.g. --set epochs=5 (keys: harness.pretrain.PretrainRecipe)",
    )
    _add_data_root(pretrain)
    pretrain.add_argument(
        "--overwrite", action="store_true", help="replace an existing checkpoint at --out"
    )
    pretrain.set_defaults(handler=command_pretrain)
    return parser


def _add_data_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-root",
        type=Path,
        help="where datasets live or download to "
        "(default: $CILBENCH_DATA or ~/.cache/cilbench/data)",
    )


def command_run(args: argparse.Namespace) -> int:
    from harness.execution import ExecutionOptions
    from harness.grid import plan_trials, preflight
    from harness.run_checks import (
        check_cpu_options,
        check_local_gpus,
        check_results_writable,
        gpus_per_trial,
        positive,
        probe_ray_address,
    )

    check_cpu_options(args)
    plan = plan_trials(
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
        execution=ExecutionOptions(
            device=args.device,
            precision=args.precision,
            compile=args.compile,
            deterministic=args.deterministic,
        ),
    )
    args.gpus_per_trial = gpus_per_trial(args.device, args.gpus_per_trial)
    address = args.address or os.environ.get("RAY_ADDRESS")
    if not address:
        check_local_gpus(args.gpus_per_trial)
    for skipped in plan.skipped:
        log.info("skip %s (record exists; --overwrite to rerun)", skipped)
    if not plan.specs:
        log.info("nothing to run: every trial already has a record in %s", args.results)
        return _build_site_after_run(args, EXIT_OK)
    preflight(plan, args.data_root)  # missing data or weights: said first, nothing written
    check_results_writable(args.results)
    if address:
        probe_ray_address(address)
    return _run_plan(args, plan)


def _run_plan(args: argparse.Namespace, plan: Any) -> int:
    from harness.record_saving import save_record
    from harness.scheduler import RayStartError, SchedulerOptions, run_grid

    specs = plan.specs
    total = len(specs)
    names = [f"[{i + 1}/{total}] {s.label} ({s.backbone}) seed={s.seed}"
             for i, s in enumerate(specs)]  # fmt: skip
    log.info("running %d trial(s) of suite %s v%d through Ray Tune",
             total, plan.suite.name, plan.suite.version)  # fmt: skip
    failures: list[str] = []

    def on_task(index: int, event: Any) -> None:
        log.info(
            "%s task %d/%d: accuracy on seen classes %.1f%% (%.1f s)",
            names[index],
            event.task_index + 1,
            event.num_tasks,
            event.acc_seen_pct,
            event.wall_time_s,
        )

    def on_record(index: int, record: dict[str, Any]) -> None:
        path, problem = save_record(record, specs[index], args.results,
                                    overwrite=plan.replace[index])  # fmt: skip
        if problem:
            failures.append(f"{names[index]}: {problem}")
            log.error("%s NOT SAVED: %s", names[index], problem)
        elif record["status"] == "ok":
            m, c = record["results"]["metrics"], record["inference_cost"]
            log.info(
                "%s done in %.1f s: ACC %.1f%%, avg. incremental %.1f%%, %.4f GFLOPs -> %s",
                names[index],
                record["timing"]["trial_wall_time_s"],
                m["final_acc_pct"],
                m["avg_incremental_acc_pct"],
                c["gflops_per_image"],
                path,
            )
        else:
            failures.append(f"{names[index]}: {_error_text(record)}")
            log.info("%s FAILED: %s -> %s", names[index], _error_text(record), path)

    options = SchedulerOptions(
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        max_concurrent=_max_concurrent(args, len(specs)),
        address=args.address,
        num_cpus=args.num_cpus,
    )
    start = time.perf_counter()
    try:
        outcome = run_grid(specs, options, on_record=on_record, on_task=on_task)
    except RayStartError as error:
        raise UsageError(str(error)) from error
    wall = time.perf_counter() - start
    trial_times = outcome.trial_wall_s
    log.info(
        "grid: %d trial(s) in %.1f s wall (Ray start %.1f s, Tune %.1f s); per trial median "
        "%.1f s, sum %.1f s", total, wall, outcome.ray_start_s, outcome.tune_wall_s,
        statistics.median(trial_times), sum(trial_times),
    )  # fmt: skip
    failures += [f"result handling failed: {error}" for error in outcome.handler_errors]
    if outcome.interrupted_by:
        unfinished = [names[i] for i in outcome.unfinished]
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
    return _build_site_after_run(args, code)


def _max_concurrent(args: argparse.Namespace, trials: int) -> int | None:
    """``--max-concurrent``; else, on a local Ray, one trial per idle CPU (see
    ``harness.concurrency``); else (a cluster) as many as its CPUs allow."""
    if args.max_concurrent or args.address or os.environ.get("RAY_ADDRESS"):
        return args.max_concurrent
    from harness.concurrency import default_max_concurrent, load_average

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


def _build_site_after_run(args: argparse.Namespace, code: int) -> int:
    if args.no_site:
        return code
    site_code = command_site(argparse.Namespace(results=args.results, out=args.site))
    return code or site_code


def command_list(args: argparse.Namespace) -> int:
    from harness.adapters import FRAMEWORKS, STRATEGIES, load_adapters
    from harness.backbones import BACKBONES
    from harness.datasets import DATASETS
    from harness.suite import list_suites

    load_adapters()
    listings = {
        "suites": list_suites(),
        "strategies": STRATEGIES.names(),
        "frameworks": FRAMEWORKS.names(),
        "backbones": BACKBONES.names(),
        "datasets": DATASETS.names(),
    }
    for what, names in listings.items():
        if args.what in ("all", what):
            print(f"{what}: {', '.join(names)}")
    return EXIT_OK


def command_site(args: argparse.Namespace) -> int:
    from harness.leaderboard.build import build_site
    from harness.record import load_records_leniently

    # Lenient on purpose: a malformed, partial, unknown-schema or debug file is named in a
    # warning and left out, and the leaderboard still builds (`cilbench validate` stays strict).
    loaded = load_records_leniently(args.results)  # a missing folder gives "No results yet"
    for warning in loaded.warnings:
        log.warning("%s", warning)
    index = build_site(loaded.records, args.out, skipped=loaded.warnings, sources=loaded.sources)
    log.info("leaderboard: %s (%d record(s); %d file(s) skipped or flagged)",
             index, len(loaded.records), len(loaded.warnings))  # fmt: skip
    return EXIT_OK


def command_validate(args: argparse.Namespace) -> int:
    from harness.record import MalformedRecordError, cost_warnings, load_records

    if not args.results.exists():
        raise UsageError(f"{args.results} does not exist")
    try:
        records = load_records(args.results)
    except MalformedRecordError as error:
        raise UsageError(str(error)) from error
    failed = sum(r["status"] == "failed" for r in records)
    print(f"{len(records)} valid record(s) under {args.results} ({failed} failed trial(s))")
    for line in cost_warnings(records):
        print(f"warning: {line}")
    return EXIT_OK


def command_pretrain(args: argparse.Namespace) -> int:
    from harness.config import resolve_config
    from harness.pretrain import PretrainRecipe, run_pretrain

    overrides: dict[str, str] = {"backbone": args.backbone, "source": args.source}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE (e.g. --set epochs=5)")
        overrides[key] = value
    recipe = resolve_config(PretrainRecipe, overrides, scope="pretrain")
    if args.out.exists() and not args.overwrite:
        raise UsageError(f"{args.out} exists; pass --overwrite to replace it")
    result = run_pretrain(recipe, out=args.out, data_root=args.data_root)
    log.info(
        "pretrained %s on %s in %.1f s: source train %.2f%%, test %.2f%%\n"
        "  checkpoint %s (sha256 %s)\n  recipe %s",
        recipe.backbone, recipe.source, result.wall_time_s, result.train_acc_pct,
        result.test_acc_pct, result.checkpoint, result.sha256, result.recipe_json,
    )  # fmt: skip
    return EXIT_OK


def _parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    from harness.suite import check_seeds

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


if __name__ == "__main__":
    sys.exit(main())
