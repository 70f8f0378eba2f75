"""The default number of trials at once: one per idle CPU (by the load average), not one per
core; an explicit --max-concurrent, or a cluster, decides for itself."""

from __future__ import annotations

import argparse

import pytest

from harness.cli import run as run_command
from harness.run import concurrency
from harness.run.concurrency import default_max_concurrent


@pytest.mark.parametrize(
    ("cpus", "cpus_per_trial", "load", "expected"),
    [
        (2, 1, 0.1, 2),  # an idle 2-core machine: two at once
        (2, 1, 0.6, 2),  # the minute after an earlier run: still idle enough
        (2, 1, 0.9, 1),  # another job keeps a core busy: one at a time
        (2, 1, 1.2, 1),
        (2, 1, 2.8, 1),  # overloaded: still one
        (2, 2, 0.0, 1),  # one trial takes both cores
        (16, 1, 4.2, 12),
        (16, 4, 0.0, 4),
        (2, 1, None, 2),  # no load average on this platform: by the CPUs
    ],
)
def test_one_trial_per_idle_cpu(
    cpus: int, cpus_per_trial: int, load: float | None, expected: int
) -> None:
    assert (
        default_max_concurrent(cpus_per_trial=cpus_per_trial, load=load, num_cpus=cpus) == expected
    )


def _args(**changes: object) -> argparse.Namespace:
    args = {"max_concurrent": None, "address": None, "cpus_per_trial": 1, "num_cpus": 2}
    return argparse.Namespace(**{**args, **changes})


def test_the_command_line_sizes_a_local_run_by_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(concurrency, "load_average", lambda: 1.9)
    assert run_command._max_concurrent(_args(), trials=21) == 1
    monkeypatch.setattr(concurrency, "load_average", lambda: 0.1)
    assert run_command._max_concurrent(_args(), trials=21) == 2
    assert run_command._max_concurrent(_args(max_concurrent=3), trials=21) == 3  # asked for: kept
    assert run_command._max_concurrent(_args(address="10.0.0.5:6379"), trials=21) is None  # Ray's
