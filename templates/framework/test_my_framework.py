"""The adapter contract for my_framework: `cilbench check-adapter my_framework` as a test.

Run from this folder: `python -m pytest -q`. It trains on cilbench's tiny synthetic suite, on
the CPU, in well under a minute.
"""

from __future__ import annotations

import my_framework  # noqa: F401  (registers "my_framework", installed or not)

from harness.cli.check_adapter import check_adapter


def test_my_framework_keeps_the_adapter_contract() -> None:
    report = check_adapter("my_framework")
    assert report.holds, report.describe()
