"""``cilbench site``: build the static leaderboard from ``results/`` alone, with the suites'
published reference points (``suites/targets/``) beside the ranked entries, and the records
made from a suite file other than the current one (stale) listed apart, unranked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.cli.common import EXIT_BAD_INPUT, EXIT_OK, log


def add_command(commands: argparse._SubParsersAction) -> None:
    site = commands.add_parser("site", help="build the static leaderboard from results/ alone")
    site.add_argument("--results", type=Path, default=Path("results"))
    site.add_argument("--out", type=Path, default=Path("site"))
    site.set_defaults(handler=command_site)


def command_site(args: argparse.Namespace) -> int:
    from harness.cli.method_cards import method_cards
    from harness.data.current_suites import read_current_suites
    from harness.data.suite import SuiteError, default_suites_dir
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
    # Strict, unlike the records: a targets or suite file is shipped with the suites, so a
    # malformed one is a mistake to fix, not a result to skip. The current suite files
    # (version, sha256) judge which records are stale; a suite just run from a file elsewhere
    # (``run --suite path``) counts as current too.
    try:
        targets = load_targets_folder(default_suites_dir())
        suites = read_current_suites(default_suites_dir())
        suites = _with_suite_run_from_a_file(suites, getattr(args, "suite_file", None))
    except (TargetsError, SuiteError) as error:
        print(f"cilbench: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    # The cards are read from the adapters here: the leaderboard package may not import them.
    index = build_site(loaded.records, args.out, skipped=loaded.warnings, sources=loaded.sources,
                       cards=method_cards(), targets=targets, suites=suites)  # fmt: skip
    log.info("leaderboard: %s (%d record(s); %d file(s) skipped or flagged)",
             index, len(loaded.records), len(loaded.warnings))  # fmt: skip
    return EXIT_OK


def build_site_after_run(args: argparse.Namespace, code: int) -> int:
    """After ``run``: the site from every record, unless ``--no-site``; the worse exit code."""
    if args.no_site:
        return code
    suite = getattr(args, "suite", None)
    suite_file = Path(suite) if suite and Path(suite).suffix in (".yaml", ".yml") else None
    namespace = argparse.Namespace(results=args.results, out=args.site, suite_file=suite_file)
    site_code = command_site(namespace)
    return code or site_code


def _with_suite_run_from_a_file(suites: dict[str, Any], path: Path | None) -> dict[str, Any]:
    """``suites`` plus the suite file a run was given by path, unless one of ``suites`` has
    its name: its records were just made from that file, and are not stale."""
    from harness.data.current_suites import current_suite

    if path is None or not path.is_file():
        return suites
    suite = current_suite(path)
    return suites if suite.name in suites else {**suites, suite.name: suite}
