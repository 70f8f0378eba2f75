"""Waiting on a `cilbench` subprocess in end-to-end tests, without hanging the test run."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def wait_for(
    condition: Callable[[], bool], process: subprocess.Popen, log: Path, timeout: float = 120
) -> None:
    """Poll ``condition`` until it holds; kill ``process`` and fail with its output if it ends
    first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"gave up waiting; output:\n{log.read_text()}")
        time.sleep(0.2)
