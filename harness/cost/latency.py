"""Wall time of one prediction where it runs: batch-1 on the CPU, and on a GPU when there is one.

A latency is meaningless without its device, precision, batch size and (on a CPU) thread
count, so each measurement carries them, and the leaderboard puts each device in its own
column. The paper's concern is low-complexity inference on small devices, hence batch 1 on the
CPU for every trial; a trial that ran on a GPU adds batch 1 and a throughput batch there.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from harness.models.environment import cpu_name
from harness.models.execution import CPU_EXECUTION, Execution
from harness.records.schema import Latency

# Our choice: large enough to fill a GPU with the paper's small students, small enough for
# 224x224 teachers to fit in memory.
THROUGHPUT_BATCH_SIZE = 256


def measure_latency(
    model: nn.Module,
    example: torch.Tensor,
    *,
    warmup: int,
    repeats: int,
    execution: Execution = CPU_EXECUTION,
) -> Latency:
    """Median wall time of ``model(example)`` on ``execution``'s device and precision.

    On a CPU it uses the current ``torch.get_num_threads()``: callers set it to match how trials
    run. The median resists the outliers of a shared machine; CUDA calls are synchronised, or
    the timing would be launch time.
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1, got {warmup} and {repeats}")
    x = execution.batch(example)
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.inference_mode(), execution.autocast():
            for _ in range(warmup):
                model(x)
            timings = [_time_one_call(model, x) for _ in range(repeats)]
    finally:
        for module, training in modes:  # each submodule's own flag (e.g. a frozen BN) back
            module.training = training
    on_cuda = x.device.type == "cuda"
    return Latency(
        device=x.device.type,
        device_name=torch.cuda.get_device_name(x.device) if on_cuda else cpu_name(),
        precision=execution.precision,
        batch_size=int(x.shape[0]),
        threads=None if on_cuda else torch.get_num_threads(),
        ms_per_batch=statistics.median(timings) * 1e3,
    )


def _time_one_call(model: nn.Module, x: torch.Tensor) -> float:
    _synchronize(x.device)
    start = time.perf_counter()
    model(x)
    _synchronize(x.device)
    return time.perf_counter() - start


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_latencies(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    execution: Execution,
    warmup: int,
    repeats: int,
    throughput_batch_size: int = THROUGHPUT_BATCH_SIZE,
) -> list[Latency]:
    """Batch 1 and ``throughput_batch_size`` on ``execution``'s device and precision, for a
    ``model`` already there (inputs are random: timing needs shapes, not values)."""
    generator = torch.Generator().manual_seed(0)
    return [
        measure_latency(
            model,
            torch.randn((batch, *input_shape[1:]), generator=generator),
            warmup=warmup,
            repeats=repeats,
            execution=execution,
        )
        for batch in (1, throughput_batch_size)
    ]
