"""Stale records: made from a suite that is no longer the current one.

A record names the suite it ran: ``suite.name``, ``suite.version``, ``suite.protocol_sha256``
(what its numbers depend on: the suite file without its default grid and description, see
``harness.data.suite``) and ``suite.file_sha256`` (the file's bytes). It is *stale* when the
current file of that suite has another version or another protocol, or when no current file
has its name. A record made before records carried the protocol hash is compared by its
file's bytes instead. Stale is not invalid: the record still says truly what ran; it just no
longer answers for the suite as it stands. ``cilbench validate`` warns about them, and the
site lists them apart and never ranks them with current records.

The current suites are read by the command line (``harness.data.current_suites``) and handed
in: this module and the leaderboard never read suite files. Torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.records.quantities import is_int


@dataclass(frozen=True)
class CurrentSuite:
    """What the current file of a suite is: its version, and the sha256 of its protocol and
    of its bytes."""

    name: str
    version: int
    file_sha256: str
    protocol_sha256: str
    path: Path


def stale_reason(record: Mapping[str, Any], current: Mapping[str, CurrentSuite]) -> str | None:
    """Why ``record`` was made from a suite other than the current one, or None.

    A record that names no suite version (a trial that failed before its suite was read)
    has nothing to compare and is never stale."""
    suite = record.get("suite")
    if not isinstance(suite, Mapping) or not is_int(suite.get("version")):
        return None
    name, version = suite.get("name"), suite["version"]
    now = current.get(str(name))
    if now is None:
        return f"no current suite file is named {name!r} (removed or renamed)"
    if version != now.version:
        return f"made with {name} v{version}; the current file {now.path.name} is v{now.version}"
    protocol = suite.get("protocol_sha256")
    if isinstance(protocol, str):
        if protocol == now.protocol_sha256:
            return None  # the same protocol: a method or seed added to the file changes nothing
        return (
            f"made with another {name} v{version} protocol (sha256 {protocol[:12]}) than the "
            f"current {now.path.name}'s ({now.protocol_sha256[:12]}): the suite changed "
            "without a version bump"
        )
    sha256 = str(suite.get("file_sha256"))  # older records: only the file's bytes to go by
    if sha256 != now.file_sha256:
        return (
            f"made with another {name} v{version} file (sha256 {sha256[:12]}) than the current "
            f"{now.path.name} ({now.file_sha256[:12]}), and the record predates protocol "
            "hashes: the suite changed without a version bump, or only its default grid did"
        )
    return None


def is_superseded_version(record: Mapping[str, Any], current: Mapping[str, CurrentSuite]) -> bool:
    """True for a record of an older version of a suite that still has a current file: the
    site shows such versions as archived pages of their own, not as stale entries."""
    suite = record.get("suite")
    if not isinstance(suite, Mapping) or not is_int(suite.get("version")):
        return False
    now = current.get(str(suite.get("name")))
    return now is not None and suite["version"] < now.version


def fix_for(name: str) -> str:
    """What to do about a suite's stale records, in one line."""
    return (
        f"rerun them with `cilbench run --suite {name}` (the current file's trials have "
        "their own run ids), or move them out of results/"
    )
