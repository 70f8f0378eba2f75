"""How a trial runs on its hardware: device, precision, memory format, compilation.

Execution settings decide how fast a trial runs, not what it learns: the suite fixes the
data, budget and protocol, and the record states how each trial was executed. They are not
part of a trial's identity (a record made on a GPU answers for the same trial as one made on
a CPU; ``--overwrite`` replaces it).

On CUDA the harness uses what keeps a modern GPU busy: bf16 autocast with fp32 master
weights, channels-last tensors, cuDNN's autotuner, data resident on the device (uint8,
augmented there in batches) and, optionally, ``torch.compile``. On a CPU nothing changes:
fp32, default memory format, no compilation.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")

# GPU ops whose results can vary from run to run on the same seed (reported in every CUDA
# record). Seeds still fix data order and augmentation, drawn on the CPU.
CUDA_NONDETERMINISM = (
    "cuDNN autotuning (cudnn.benchmark) may pick different convolution algorithms per run",
    "adaptive_avg_pool2d backward and index/scatter backward accumulate with atomicAdd",
    "bf16 autocast rounds activations; sums reduced in a varying order differ in the last bits",
)


class ExecutionError(ValueError):
    """Execution options that cannot work here (e.g. CUDA asked for, none visible)."""


@dataclass(frozen=True)
class ExecutionOptions:
    """What the user asked for; resolved where the trial runs (a Ray worker may have a GPU
    that the driver lacks)."""

    device: str = "auto"  # auto: CUDA when a CUDA device is visible, else the CPU
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on the CPU
    compile: bool = False  # torch.compile the model for every training stage
    deterministic: bool = False  # deterministic algorithms where torch has them (slower)

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ExecutionError(f"device {self.device!r} is not one of {', '.join(DEVICES)}")
        if self.precision not in PRECISIONS:
            raise ExecutionError(
                f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}"
            )


class Execution:
    """Resolved options for the process that runs the trial, and the helpers that apply them."""

    def __init__(self, options: ExecutionOptions | None = None) -> None:
        self.options = options or ExecutionOptions()
        self.device = _resolve_device(self.options.device)
        self.on_cuda = self.device.type == "cuda"
        precision = self.options.precision
        self.precision = ("bf16" if self.on_cuda else "fp32") if precision == "auto" else precision
        self.channels_last = self.on_cuda
        self.compile = self.options.compile
        self.first_step_seconds = 0.0  # time of each stage's first step when compiling

    def setup(self) -> None:
        """Process-wide settings; call once at the start of the trial."""
        if self.options.deterministic:
            # cuBLAS needs a fixed workspace for deterministic results (torch's docs).
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
        if self.on_cuda:
            torch.backends.cudnn.benchmark = not self.options.deterministic
            torch.backends.cuda.matmul.allow_tf32 = True  # fp32 leftovers use tensor cores
            torch.backends.cudnn.allow_tf32 = True

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast for forward passes when asked for; weights stay fp32 (the master
        copy the optimiser updates), so no loss scaling is needed."""
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of images on the device in the model's memory format."""
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def place(self, model: nn.Module) -> nn.Module:
        """Move ``model`` to the device (in place) in the memory format its inputs use."""
        if self.channels_last:
            return model.to(self.device, memory_format=torch.channels_last)
        return model.to(self.device)

    def compiled(self, model: nn.Module) -> nn.Module:
        """``torch.compile(model)`` when asked for; the module itself otherwise."""
        return torch.compile(model) if self.compile else model

    def describe(self) -> dict[str, Any]:
        """For the record: where and how the trial ran."""
        return {
            "device": str(self.device),
            "device_name": torch.cuda.get_device_name(self.device) if self.on_cuda else "cpu",
            "precision": self.precision,
            "autocast_dtype": "bfloat16" if self.precision == "bf16" else None,
            "master_weights": "float32",
            "channels_last": self.channels_last,
            "cudnn_benchmark": bool(self.on_cuda and not self.options.deterministic),
            "compile": self.compile,
            "compile_first_steps_s": self.first_step_seconds if self.compile else None,
            "deterministic_algorithms": self.options.deterministic,
            "nondeterministic_ops": list(CUDA_NONDETERMINISM) if self.on_cuda else [],
        }


def _resolve_device(name: str) -> torch.device:
    if name == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if name == "cuda" and not available:
        raise ExecutionError(
            "device cuda was asked for, but no CUDA device is visible to this process. Under "
            "Ray a trial sees a GPU only if it asks for one: pass --gpus-per-trial (e.g. 1 or "
            "0.25); or run with --device cpu"
        )
    return torch.device("cuda", torch.cuda.current_device()) if available else torch.device("cpu")


@contextlib.contextmanager
def timed_first_step(execution: Execution) -> Iterator[None]:
    """Adds the wall time of the block (one stage's first step, compilation included) to
    ``execution.first_step_seconds``; a no-op unless compiling."""
    if not execution.compile:
        yield
        return
    if execution.on_cuda:
        torch.cuda.synchronize(execution.device)
    start = time.perf_counter()
    yield
    if execution.on_cuda:
        torch.cuda.synchronize(execution.device)
    execution.first_step_seconds += time.perf_counter() - start


CPU_EXECUTION = Execution(ExecutionOptions(device="cpu"))
