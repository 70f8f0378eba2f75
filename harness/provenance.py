"""Where a result came from: code version, environment and device."""

from __future__ import annotations

import os
import platform
import re
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
        "math_kernels": math_kernels(),
    }


# Environment variables that change which CPU kernels torch, oneDNN, MKL or OpenBLAS pick.
KERNEL_ENV_VARS = ("OPENBLAS_CORETYPE", "ATEN_CPU_CAPABILITY", "MKL_CBWR",
                   "MKL_ENABLE_INSTRUCTIONS", "DNNL_MAX_CPU_ISA", "ONEDNN_MAX_CPU_ISA")  # fmt: skip
_TORCH_LIBRARY_MARKERS = ("Math Kernel Library", "MKL-DNN", "oneDNN", "OpenBLAS", "BLIS")


def math_kernels() -> dict[str, Any]:
    """Which math-library kernels this process uses: beside the CPU model, they decide whether
    the same trial gives bit-identical numbers on another machine (see README, "Records")."""
    import torch

    config = torch.__config__.show()
    settings = dict(re.findall(r"\b(BLAS_INFO|LAPACK_INFO)=([^,\s]+)", config))
    libraries = [
        re.sub(r"\s*\(Git Hash [0-9a-f]+\)", "", line.strip(" -"))
        for line in config.splitlines()
        if any(marker in line for marker in _TORCH_LIBRARY_MARKERS)
    ]
    return {
        "torch_cpu_capability": getattr(torch.backends.cpu, "get_cpu_capability", lambda: None)(),
        "torch_blas": settings.get("BLAS_INFO"),
        "torch_lapack": settings.get("LAPACK_INFO"),
        "torch_mkldnn": torch.backends.mkldnn.is_available(),
        "torch_libraries": libraries,
        "numpy_blas": _numpy_blas(),
        "env": {name: os.environ[name] for name in KERNEL_ENV_VARS if name in os.environ},
    }


def _numpy_blas() -> list[dict[str, Any]] | None:
    """threadpoolctl's view of the BLAS numpy loaded (None without threadpoolctl)."""
    try:
        import numpy  # noqa: F401  (loads its BLAS, so threadpoolctl can see it)
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    keys = ("internal_api", "version", "architecture", "num_threads")
    return [
        {key: info.get(key) for key in keys}
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
