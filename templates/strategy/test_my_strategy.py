"""The adapter contract for my_strategy: `cilbench check-adapter my_strategy` as a test.

Run from this folder: `python -m pytest -q`. It trains on cilbench's tiny synthetic suite, on
the CPU, in well under a minute.
"""

from __future__ import annotations

import my_strategy  # noqa: F401  (registers "my_strategy", installed or not)

from harness.cli.check_adapter import check_adapter


def test_my_strategy_keeps_the_adapter_contract() -> None:
    report = check_adapter("my_strategy")
    assert report.holds, report.describe()
