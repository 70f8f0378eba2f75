"""``cilbench validate``: every record under ``results/`` checked strictly (CI runs it), and
the stale ones (made from a suite file that is no longer the current one) named."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.common import EXIT_OK, UsageError


def add_command(commands: argparse._SubParsersAction) -> None:
    validate = commands.add_parser("validate", help="check every record under results/")
    validate.add_argument("--results", type=Path, default=Path("results"))
    validate.set_defaults(handler=command_validate)


def command_validate(args: argparse.Namespace) -> int:
    from harness.data.current_suites import read_current_suites
    from harness.records.store import MalformedRecordError, load_records
    from harness.records.validation import cost_warnings

    if not args.results.exists():
        raise UsageError(f"{args.results} does not exist")
    try:
        records = load_records(args.results)
    except MalformedRecordError as error:
        raise UsageError(str(error)) from error
    current = read_current_suites()  # a broken suite file: SuiteError, exit 2
    failed = sum(r["status"] == "failed" for r in records)
    print(f"{len(records)} valid record(s) under {args.results} ({failed} failed trial(s))")
    for line in cost_warnings(records):
        print(f"warning: {line}")
    for line in stale_lines(records, current):
        print(line)
    return EXIT_OK  # stale is not invalid: the records still say truly what ran


def stale_lines(records: list[dict[str, Any]], current: Any) -> list[str]:
    """One warning per suite version and reason, with the count, some run ids and the fix;
    empty when no record is stale. (A suite's whole grid can be stale: one line per record
    would bury the rest.)"""
    from harness.records.staleness import fix_for, stale_reason

    groups: dict[tuple[str, Any, str], list[str]] = {}
    for record in records:
        reason = stale_reason(record, current)
        if reason is not None:
            suite = record["suite"]
            groups.setdefault((suite["name"], suite["version"], reason), []).append(
                record["run_id"]
            )
    lines = []
    for (name, version, reason), run_ids in sorted(groups.items(), key=str):
        shown = ", ".join(sorted(run_ids)[:SHOWN_RUN_IDS])
        more = f" and {len(run_ids) - SHOWN_RUN_IDS} more" if len(run_ids) > SHOWN_RUN_IDS else ""
        lines.append(
            f"warning: {len(run_ids)} stale record(s) of {name} v{version} (run ids {shown}"
            f"{more}): {reason}; still valid, but the site lists them apart and never ranks "
            f"them. Fix: {fix_for(name)}"
        )
    return lines


SHOWN_RUN_IDS = 5
