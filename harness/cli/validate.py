"""``cilbench validate``: every record under ``results/`` checked strictly (CI runs it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import EXIT_OK, UsageError


def add_command(commands: argparse._SubParsersAction) -> None:
    validate = commands.add_parser("validate", help="check every record under results/")
    validate.add_argument("--results", type=Path, default=Path("results"))
    validate.set_defaults(handler=command_validate)


def command_validate(args: argparse.Namespace) -> int:
    from harness.records.store import MalformedRecordError, load_records
    from harness.records.validation import cost_warnings

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
