"""``cilbench site``: build the static leaderboard from ``results/`` alone, with the suites'
published reference points (``suites/targets/``) beside the ranked entries."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.common import EXIT_BAD_INPUT, EXIT_OK, log


def add_command(commands: argparse._SubParsersAction) -> None:
    site = commands.add_parser("site", help="build the static leaderboard from results/ alone")
    site.add_argument("--results", type=Path, default=Path("results"))
    site.add_argument("--out", type=Path, default=Path("site"))
    site.set_defaults(handler=command_site)


def command_site(args: argparse.Namespace) -> int:
    from harness.cli.method_cards import method_cards
    from harness.data.suite import default_suites_dir
    from harness.leaderboard.build import build_site
    from harness.leaderboard.targets import TargetsError, load_targets_folder
    from harness.records.store import load_records_leniently

    # Lenient on purpose: a malformed, partial, unknown-schema or debug file is named in a
    # warning and left out, and the leaderboard still builds (`cilbench validate` stays strict).
    loaded = load_records_leniently(args.results)  # a missing folder gives "No results yet"
    for warning in loaded.warnings:
        log.warning("%s", warning)
    # Read here and handed in as data, like the cards: where the suites live is the command
    # line's business ($CILBENCH_SUITES), and the build stays a function of what it is given.
    # Strict, unlike the records: a targets file is shipped with the suites, so a malformed
    # one is a mistake to fix, not a result to skip.
    try:
        targets = load_targets_folder(default_suites_dir())
    except TargetsError as error:
        print(f"cilbench: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    # The cards are read from the adapters here: the leaderboard package may not import them.
    index = build_site(loaded.records, args.out, skipped=loaded.warnings, sources=loaded.sources,
                       cards=method_cards(), targets=targets)  # fmt: skip
    log.info("leaderboard: %s (%d record(s); %d file(s) skipped or flagged)",
             index, len(loaded.records), len(loaded.warnings))  # fmt: skip
    return EXIT_OK


def build_site_after_run(args: argparse.Namespace, code: int) -> int:
    """After ``run``: the site from every record, unless ``--no-site``; the worse exit code."""
    if args.no_site:
        return code
    site_code = command_site(argparse.Namespace(results=args.results, out=args.site))
    return code or site_code
