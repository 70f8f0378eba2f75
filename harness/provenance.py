"""Where a result came from: code version, environment and device."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "torchvision", "numpy", "scikit-learn", "ray", "ptflops", "timm",
            "torch-pruning", "cilbench")  # fmt: skip
REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUT_PATHSPECS = (":(exclude)results", ":(exclude)site")


def code_version(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """Git commit and dirty flag of the harness checkout (None outside a git checkout)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    # Records and the generated site are outputs, not code: a new record must not make the
    # next one "dirty".
    status = (
        git("status", "--porcelain", "--untracked-files=no", "--", ".", *OUTPUT_PATHSPECS)
        if commit
        else None
    )
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def environment() -> dict[str, Any]:
    """Python, package versions, platform and the compute device of the process running a trial."""
    import torch

    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    cuda = torch.cuda.is_available()
    return {
        "python": sys.version.split()[0],
        "packages": packages,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch_threads": torch.get_num_threads(),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
