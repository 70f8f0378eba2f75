"""Where a result came from: the code version and each adapter's origin (torch-free; the
process environment is ``harness.models.environment``).

Provenance states only what is known: the device is the one the caller says the trial ran
on (never guessed from the machine), the dirty flag covers every file that is code, tracked
or not, and an adapter names the distribution that shipped it.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, entry_points, packages_distributions, version
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]  # harness/records/provenance.py
OUTPUT_PATHSPECS = (":(exclude)results", ":(exclude)site")


def code_version(repo: Path = REPO_ROOT, *, also_outputs: tuple[str, ...] = ()) -> dict[str, Any]:
    """Git commit and dirty flag of the harness checkout (None outside a git checkout).

    ``also_outputs``: more paths that are outputs for the caller (``cilbench tune`` writes
    tuned configs, which its own searches never read: one written must not make the next
    search "dirty")."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    # Untracked files count (a new adapter or suite not yet committed changes what runs);
    # git-ignored ones (.venv, caches) do not. Records and the generated site are outputs,
    # not code: a new record must not make the next one "dirty".
    status = (
        git(
            "status",
            "--porcelain",
            "--untracked-files=all",
            "--",
            ".",
            *OUTPUT_PATHSPECS,
            *(f":(exclude){path}" for path in also_outputs),
        )  # fmt: skip
        if commit
        else None
    )
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def node_text(node: Any) -> str:
    """The Ray node a record names (``execution.ray_node``), e.g. "gpu-7 (node 3f2a9c1e)"."""
    node_id = node.get("node_id")
    short = f" (node {node_id[:8]})" if isinstance(node_id, str) and node_id else ""
    return f"{node.get('host') or 'unknown host'}{short}"


BUILT_IN = "built-in"


def adapter_origin(adapter: object, *, entry_point_groups: Iterable[str]) -> dict[str, Any]:
    """Where a registered adapter's code comes from, for the record.

    ``{"origin": "built-in"}`` for this checkout's ``harness``/``methods`` packages; a plugin
    names its distribution and version (found through the entry point that loaded it, else
    through the installed package that holds its module); code no installed distribution
    holds (a local script, a test) is ``"unpackaged"``, with its module.
    """
    module = getattr(adapter, "__module__", None) or ""
    if is_built_in_module(module):
        return {"origin": BUILT_IN, "module": module}
    top = module.partition(".")[0]
    for group in entry_point_groups:
        for point in entry_points(group=group):
            if point.module == module or point.module.partition(".")[0] == top:
                dist = point.dist
                return {
                    "origin": "plugin",
                    "package": dist.name if dist else None,
                    "version": dist.version if dist else None,
                    "module": module,
                    "entry_point": f"{group}:{point.name}",
                }
    distributions = _distributions_by_package().get(top, [])
    if distributions:
        return {
            "origin": "plugin",
            "package": distributions[0],
            "version": _version_or_none(distributions[0]),
            "module": module,
            "entry_point": None,
        }
    return {"origin": "unpackaged", "package": None, "version": None, "module": module}


def is_built_in_module(module: str) -> bool:
    """The module's file lies in this checkout's ``harness`` or ``methods`` package (a
    distribution that happens to ship a top-level ``methods`` is not built in)."""
    loaded = sys.modules.get(module)
    file = getattr(loaded, "__file__", None)
    if not file:
        return False
    path = Path(file).resolve()
    return any(path.is_relative_to(folder) for folder in _built_in_folders())


@functools.cache
def _built_in_folders() -> tuple[Path, ...]:
    import methods

    return (Path(__file__).resolve().parents[1], Path(methods.__file__).resolve().parent)


@functools.cache
def _distributions_by_package() -> dict[str, list[str]]:
    return packages_distributions()


def _version_or_none(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None
