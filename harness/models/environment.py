"""The process a trial or a pre-training ran in: Python, package versions, platform, CPU and
the math kernels torch and numpy picked, for the record's provenance.

Beside the CPU model, the kernels decide whether the same trial gives bit-identical numbers on
another machine (see README, "Records"). Imports torch when asked, so it lives beside the
execution it describes, not in the torch-free records/.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "torchvision", "numpy", "scikit-learn", "ray", "ptflops", "timm",
            "torch-pruning", "cilbench")  # fmt: skip


def environment(*, device: str) -> dict[str, Any]:
    """Python, package versions, platform and math kernels of this process, and ``device``:
    where the caller says the work ran (this module never guesses it from the machine: a
    trial on the CPU of a machine with a GPU ran on the CPU)."""
    import torch

    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    return {
        "python": sys.version.split()[0],
        "packages": packages,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": cpu_name(),
        "device": device,
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


@functools.cache
def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
