"""``cilbench reproduce``: rerun a trial from its record alone and say whether the record holds.

Exit 0: it holds (the accuracy matrix bit-identical where hardware and kernels match the
record's, else within the stated tolerance; GFLOPs and parameters equal). Exit 1: it differs,
or the rerun failed. Exit 2: it cannot run here (unknown run id, no suite text, missing data
or weights...). Nothing is written under ``results/``: the rerun record goes to ``--out``, if
asked for, and nowhere else.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from harness.cli.common import EXIT_OK, EXIT_TRIALS_FAILED, UsageError, add_data_root

EXIT_DIFFERS = EXIT_TRIALS_FAILED  # 1, as a run whose trials failed


def add_command(commands: argparse._SubParsersAction) -> None:
    from harness.run.record_agreement import DEFAULT_TOLERANCE_PP

    reproduce = commands.add_parser(
        "reproduce",
        help="rerun a trial from its record and check the record holds",
        description="Rerun a trial from its record alone and compare. Exit 0: it holds (the "
        "accuracy matrix bit-identical where hardware and kernels match the record's, else "
        "within --tolerance-pp; GFLOPs and parameters equal). Exit 1: it differs, or the rerun "
        "failed. Exit 2: it cannot run here (unknown run id, no suite text, missing data...). "
        "Nothing is written under results/.",
    )
    reproduce.add_argument("record", metavar="RECORD", help="a record file, or a run id")
    reproduce.add_argument("--results", type=Path, default=Path("results"),
                           help="where to look a run id up (default: results)")  # fmt: skip
    reproduce.add_argument(
        "--tolerance-pp",
        type=float,
        default=DEFAULT_TOLERANCE_PP,
        metavar="POINTS",
        help="largest difference per accuracy cell, either way, where the hardware or kernels "
        f"differ from the record's (default: {DEFAULT_TOLERANCE_PP:g} percentage point)",
    )
    reproduce.add_argument(
        "--out", type=Path, help="write the rerun's record to this file (never into --results)"
    )
    add_data_root(reproduce)
    reproduce.set_defaults(handler=command_reproduce)


def command_reproduce(args: argparse.Namespace) -> int:
    from harness.run.record_agreement import COST_RTOL, compare
    from harness.run.reproduce import ReproduceError, find_recorded_trial, rerun

    if not args.tolerance_pp >= 0:
        raise UsageError(f"--tolerance-pp {args.tolerance_pp} must be a number of points >= 0")
    _check_out(args.out, args.results)
    try:
        recorded = find_recorded_trial(args.record, args.results)
        record = recorded.record
        print(f"reproducing {_name(record)} from {recorded.path}")
        done = rerun(recorded, data_root=args.data_root)
    except ReproduceError as error:
        raise UsageError(f"cannot reproduce: {error}") from error
    print(f"suite text: {done.suite.source}")
    for line in done.warnings:
        print(f"warning: {line}")
    print(f"rerun in {done.seconds:.1f} s")
    if args.out:
        args.out.write_text(json.dumps(done.record, indent=1, allow_nan=True) + "\n")
        print(f"rerun record: {args.out}")
    if done.record["status"] != "ok":
        print(f"DIFFERS: the rerun failed: {done.record['error']['message']}")
        return EXIT_DIFFERS
    agreement = compare(record, done.record, tolerance_pp=args.tolerance_pp)
    for line in agreement.code_warnings:
        print(f"warning: {line}")
    _print_rule(agreement, args.tolerance_pp)
    print(f"cost: {', '.join(_cost_text(record, done.record))} (relative tolerance {COST_RTOL:g})")
    print(agreement.verdict())
    return EXIT_OK if agreement.holds else EXIT_DIFFERS


def _check_out(out: Path | None, results: Path) -> None:
    """``--out`` may not land under ``--results``: a rerun is not a result."""
    if out is None:
        return
    if out.resolve().is_relative_to(results.resolve()):
        raise UsageError(f"--out {out} lies under {results}: reproduce never writes there")


def _name(record: dict[str, Any]) -> str:
    suite, method = record["suite"], record["method"]
    return (f"{suite['name']} v{suite['version']} {method['label']} ({method['backbone']}) "
            f"seed={record['seed']}, run id {record['run_id']}")  # fmt: skip


def _print_rule(agreement: Any, tolerance_pp: float) -> None:
    if agreement.exact:
        print("hardware and kernels: as recorded (processor, device, torch version, threads, "
              "precision, math kernels): the accuracy matrix must be bit-identical")  # fmt: skip
        return
    for line in agreement.hardware_differences:
        print(f"differs from the record: {line}")
    print(f"hardware or kernels differ: each accuracy cell must lie within ±{tolerance_pp:g} "
          "percentage points of the record's (--tolerance-pp)")  # fmt: skip


def _cost_text(record: dict[str, Any], rerun: dict[str, Any]) -> list[str]:
    from harness.run.record_agreement import COST_FIELDS

    recorded, here = record["inference_cost"], rerun["inference_cost"]
    return [f"{name} {recorded.get(name)!r} recorded, {here.get(name)!r} rerun"
            for name in COST_FIELDS if name in recorded]  # fmt: skip
