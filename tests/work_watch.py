"""Count the work a call does instead of timing it: what "fails at once" promises, checked on
any machine under any load.

``watch_work()`` records, through Python's audit hooks, every network call, sleep, child
process and file opened while its block runs. A test then asserts the work that makes a call
slow is absent (no network attempt, no retry wait, no file read beyond the few it names),
which holds on a busy CI machine where a wall-clock bound does not. Benchmarks in
``benchmarks/`` print the times.

A plain module (not a conftest) so any test can ``from tests.work_watch import watch_work``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

NETWORK_EVENTS = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request"}


@dataclass
class Work:
    network: list[tuple] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)
    opened: list[Path] = field(default_factory=list)

    def opened_under(self, folder: Path) -> list[Path]:
        folder = Path(folder).resolve()
        return [p for p in self.opened if p.resolve().is_relative_to(folder)]


_watching: list[Work] = []  # the innermost active watch; empty when none (the hook returns)


def _hook(event: str, args: tuple) -> None:
    if not _watching:
        return
    work = _watching[-1]
    if event in NETWORK_EVENTS:
        work.network.append((event, *map(repr, args[:2])))
    elif event == "time.sleep":
        work.sleeps.append(args[0])
    elif event == "subprocess.Popen":
        work.processes.append(repr(args[1]))
    elif event == "open" and isinstance(args[0], str | bytes | Path):
        work.opened.append(Path(args[0].decode() if isinstance(args[0], bytes) else args[0]))


_installed = False


@contextmanager
def watch_work() -> Iterator[Work]:
    """The work done inside the block (audit hooks cannot be removed: one is installed per
    process and stays idle outside a watch)."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    work = Work()
    _watching.append(work)
    try:
        yield work
    finally:
        _watching.remove(work)


def assert_fails_at_once(work: Work) -> None:
    """Nothing that makes a failure slow happened: no network, no wait, no child process."""
    assert work.network == [], f"tried the network: {work.network}"
    assert work.sleeps == [], f"waited: {work.sleeps}"
    assert work.processes == [], f"started processes: {work.processes}"
