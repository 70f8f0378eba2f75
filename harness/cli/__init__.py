"""The ``cilbench`` command: run suites, list what is registered, build the leaderboard site.

One module per command, each owning its arguments (``add_command``) and its handler; this
module only assembles them and turns bad input into exit code 2 without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from harness.cli import (
    check_adapter,
    data,
    listing,
    pretrain,
    reproduce,
    run,
    site,
    tune,
    validate,
)
from harness.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_SIGNAL,
    EXIT_TRIALS_FAILED,
    UsageError,
)

__all__ = ["EXIT_BAD_INPUT", "EXIT_OK", "EXIT_SIGNAL", "EXIT_TRIALS_FAILED", "UsageError", "main"]
# In the order --help lists them.
COMMANDS = (run, tune, listing, check_adapter, site, data, validate, reproduce, pretrain)


def _bad_input_errors() -> tuple[type[Exception], ...]:
    """Errors that mean "fix your input" (names, configs, suite files, missing data)."""
    from harness.api.config import ConfigError
    from harness.api.registry import UnknownNameError
    from harness.data.datasets import DatasetUnavailableError
    from harness.data.suite import CheckpointHashError, SuiteError
    from harness.leaderboard.files import SiteFolderError
    from harness.models.execution import ExecutionError
    from harness.models.weights import MissingWeightsError, WeightsSpecError
    from harness.records.layout import RecordPathError
    from harness.records.store import RecordExistsError
    from harness.run.checks import RunCheckError

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
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_command(commands)
    return parser
