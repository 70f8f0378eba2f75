"""What every ``cilbench`` command shares: exit codes, the usage error, the data-root option."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

EXIT_OK, EXIT_TRIALS_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}  # 128 + the signal's number, as shells report
log = logging.getLogger("cilbench")


class UsageError(Exception):
    """Bad input from the user: printed without a traceback, exit code 2."""


def add_data_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-root",
        type=Path,
        help="where datasets live or download to "
        "(default: $CILBENCH_DATA or ~/.cache/cilbench/data)",
    )
