"""``cilbench tune``: search a method's declared space on validation data, under the suite's
budget, and write the winner as a tuned config that ``cilbench run`` then ranks on test."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import EXIT_OK, EXIT_TRIALS_FAILED, add_data_root


def add_command(commands: argparse._SubParsersAction) -> None:
    tune = commands.add_parser(
        "tune",
        help="tune a method on the suite's validation split (same budget for every method)",
        description="Searches the hyperparameters the method's strategy and framework declare "
        "(search_space) with Ray Tune: the suite's tuning budget of configurations (the "
        "method's own config first), ASHA stopping weak ones by tasks learned, scored by "
        "average incremental accuracy on the validation split; the test split is never read. "
        "Writes suites/tuned/SUITE/BACKBONE/LABEL.json; cilbench run then runs a tuned twin "
        "of that entry next to the untuned one.",
    )
    tune.add_argument("--suite", required=True, help="the suite the tuned config is for")
    tune.add_argument("--method", required=True, metavar="METHOD",
                      help="a label of the suite's methods (e.g. lwf, lwf+kd)")  # fmt: skip
    tune.add_argument("--backbone", help="the entry's backbone, when its label has several")
    tune.add_argument(
        "--tuning-suite",
        help="search on this suite instead and rank on --suite (tune on one protocol, evaluate "
        "on another, as Cha & Cho 2024 propose); its tasks, budget and validation split are used",
    )
    tune.add_argument("--seed", type=int, default=0,
                      help="the search's seed: which configurations are drawn")  # fmt: skip
    tune.add_argument(
        "--samples",
        type=int,
        help="configurations to try instead of the suite's budget: only with --no-write, since "
        "every tuned config on a suite must come from the same budget",
    )
    tune.add_argument("--no-write", action="store_true", help="search and report; write nothing")
    tune.add_argument("--quick", action="store_true",
                      help="one epoch per task (for tests); the tuned config is marked debug "
                      "and only debug runs use it")  # fmt: skip
    tune.add_argument(
        "--max-concurrent",
        type=int,
        default=1,
        help="configurations at once (default 1). The same configurations are drawn and score "
        "the same whatever the concurrency; which ones ASHA stops depends on the order they "
        "run in",
    )
    tune.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    tune.add_argument("--address", help="an existing Ray cluster (default: $RAY_ADDRESS, else "
                      "a local Ray)")  # fmt: skip
    add_data_root(tune)
    tune.set_defaults(handler=command_tune)


def command_tune(args: argparse.Namespace) -> int:
    from harness.run.scheduler import SchedulerOptions
    from harness.tuning.tune_method import TuneRequest, TuningFailedError, tune

    request = TuneRequest(
        suite=args.suite,
        method=args.method,
        tuning_suite=args.tuning_suite,
        backbone=args.backbone,
        seed=args.seed,
        samples=args.samples,
        data_root=Path(args.data_root) if args.data_root else None,
        debug=args.quick,
        write=not args.no_write,
    )
    options = SchedulerOptions(max_concurrent=args.max_concurrent, num_cpus=args.num_cpus,
                               address=args.address)  # fmt: skip
    try:
        outcome, path = tune(request, options)
    except TuningFailedError as error:
        print(f"cilbench: {error}")
        return EXIT_TRIALS_FAILED
    for tried in outcome.tried:
        curve = " ".join(f"{v:.1f}" for v in tried.val_acc_pct)
        score = "-" if tried.val_aia_pct is None else f"{tried.val_aia_pct:.2f}"
        ended = "" if tried.error is None else f"  FAILED: {tried.error[:120]}"
        complete = len(tried.val_acc_pct) == outcome.num_tasks or tried.error
        stopped = "" if complete else "  (stopped by ASHA)"
        print(f"  {tried.values}  val AIA {score}%  per task: {curve}{stopped}{ended}")
    best = outcome.best
    assert best is not None
    print(f"best on validation: {best.values}  val AIA {best.val_aia_pct:.2f}%")
    print(f"wrote {path}" if path else "nothing written (--no-write)")
    return EXIT_OK
