"""Inference cost of a whole prediction path: FLOPs, parameters and batch-1 latency.

Fairness-critical: every method is charged for everything its prediction runs, so the model
measured here is the full path from images to class scores (extra forward passes, functional
ops, nearest-mean distances included). The primary figure comes from torch's ``FlopCounterMode``,
which counts at the aten level and therefore sees every op; ptflops is kept as a cross-check.
Units live in the names: FLOPs (2 per multiply-add) vs MACs (1 per multiply-add).
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import torch
from ptflops import get_model_complexity_info
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from harness.incremental_net import ClassifierHead

# ptflops' "aten" backend counts matmuls and convolutions at dispatch level, like torch's
# counter: on compact_cnn (8x8, 28x28), resnet34_cifar and mobilenet_v2 (32x32) the two agree
# within 0.003% (ptflops adds bias additions). Its installed default, "pytorch" (module hooks),
# also counts BatchNorm, ReLU and pooling and reads 0.3% (ResNet-34) to 6.4% (MobileNetV2)
# higher, a different convention from torch's counter and the paper's figures.
PTFLOPS_BACKEND = "aten"

aten = torch.ops.aten


def _distance_macs(x1: torch.Size, out: torch.Size) -> int:
    # One multiply-add per output pair and feature, as the matmul form of the distances costs.
    return out.numel() * x1[-1]


def _distance_flops(x1_shape: torch.Size, *args: object, out_shape: torch.Size, **_: object) -> int:
    return 2 * _distance_macs(torch.Size(x1_shape), torch.Size(out_shape))


def _distance_macs_ptflops(inputs: list, outputs: tuple) -> int:
    return _distance_macs(inputs[0].shape, outputs[0].shape)


# Neither counter has a formula for torch.cdist (nearest-mean classifiers use it): its aten ops
# would count zero, and a method would look free of its distance computation.
DISTANCE_OPS = (aten._cdist_forward, aten._euclidean_dist)


@dataclass(frozen=True)
class InferenceCost:
    """Cost of one prediction at batch 1; units are part of every name."""

    gflops_per_image: float  # primary: torch's counter, sees every aten op of the path
    gflops_per_image_torch: float
    gflops_per_image_ptflops: float  # 2 x ptflops MACs / 1e9, a cross-check
    params_millions: float
    params_millions_without_head: float
    latency_ms_b1: float
    latency_threads: int
    input_shape: tuple[int, ...]  # with the batch dimension, which is 1

    def to_dict(self) -> dict[str, float | int | list[int]]:
        record = asdict(self)
        record["input_shape"] = list(self.input_shape)
        return record


def measure_inference_cost(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    latency_warmup: int = 5,
    latency_repeats: int = 30,
    device: str | torch.device = "cpu",
) -> InferenceCost:
    """Measure ``model`` (images -> class scores) on inputs of ``input_shape`` = ``(1, C, H, W)``.

    The model must already be on ``device``: moving it here would change the caller's model.
    """
    shape = _batch_one_shape(input_shape)
    _check_on_device(model, torch.device(device))
    example = _example_input(model, shape, torch.device(device))
    flops_torch = count_flops_torch(model, example)
    macs_ptflops = count_macs_ptflops(model, shape)
    total, head = count_parameters(model)
    latency = measure_latency_ms(model, example, warmup=latency_warmup, repeats=latency_repeats)
    return InferenceCost(
        gflops_per_image=flops_torch / 1e9,
        gflops_per_image_torch=flops_torch / 1e9,
        gflops_per_image_ptflops=2 * macs_ptflops / 1e9,
        params_millions=total / 1e6,
        params_millions_without_head=(total - head) / 1e6,
        latency_ms_b1=latency,
        latency_threads=torch.get_num_threads(),
        input_shape=shape,
    )


def count_flops_torch(model: nn.Module, example: torch.Tensor) -> int:
    """FLOPs (2 per multiply-add) of ``model(example)``, counted by torch at aten level."""
    counter = FlopCounterMode(
        display=False, custom_mapping={op: _distance_flops for op in DISTANCE_OPS}
    )
    with _measurement_mode(model), counter:
        model(example)
    return int(counter.get_total_flops())


def count_macs_ptflops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """MACs of ``model`` on one ``(1, ...)``-shaped input, by ptflops (backend ``PTFLOPS_BACKEND``).

    ptflops returns ``(None, None)`` instead of raising, and prints the reason: it is turned into
    an error that carries that output.
    """
    shape = _batch_one_shape(input_shape)
    example = _example_input(model, shape, _model_device(model))
    output = io.StringIO()
    with (
        _measurement_mode(model),
        contextlib.redirect_stdout(output),
        contextlib.redirect_stderr(output),
    ):
        macs, _ = get_model_complexity_info(
            _Unregistered(model),
            shape[1:],  # ptflops adds the batch dimension itself
            input_constructor=lambda _: example,
            print_per_layer_stat=False,
            as_strings=False,
            ost=output,
            backend=PTFLOPS_BACKEND,
            custom_modules_hooks={op: _distance_macs_ptflops for op in DISTANCE_OPS},
        )
    if macs is None:
        raise RuntimeError(
            f"ptflops ({PTFLOPS_BACKEND} backend) could not count {type(model).__name__} on "
            f"input {list(shape)}; its output:\n{output.getvalue().strip()}"
        )
    return int(macs)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, head) parameter counts; head = parameters inside any ``ClassifierHead``.

    Shared parameters are counted once, as in ``model.parameters()``.
    """
    total = sum(p.numel() for p in model.parameters())
    head_params = {
        id(p): p
        for module in model.modules()
        if isinstance(module, ClassifierHead)
        for p in module.parameters()
    }
    return total, sum(p.numel() for p in head_params.values())


def measure_latency_ms(
    model: nn.Module, example: torch.Tensor, *, warmup: int, repeats: int
) -> float:
    """Median wall time in ms of ``model(example)`` at batch 1, after ``warmup`` calls.

    Uses the current ``torch.get_num_threads()``: callers set it to match how trials run
    (one thread per concurrent job). The median resists the outliers of a shared machine.
    """
    if example.shape[0] != 1:
        raise ValueError(
            f"latency is measured at batch 1, got an example of shape {list(example.shape)}"
        )
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1, got {warmup} and {repeats}")
    with _measurement_mode(model), torch.inference_mode():
        for _ in range(warmup):
            model(example)
        timings = [_time_one_call(model, example) for _ in range(repeats)]
    return statistics.median(timings) * 1e3


def _time_one_call(model: nn.Module, example: torch.Tensor) -> float:
    _synchronize(example.device)
    start = time.perf_counter()
    model(example)
    _synchronize(example.device)
    return time.perf_counter() - start


def _synchronize(device: torch.device) -> None:
    # CUDA calls return before the kernels finish; without this the timing is launch time.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _measurement_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode and no gradients, restoring every submodule's own train flag afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


class _Unregistered(nn.Module):
    """Calls ``model`` without registering it as a child.

    ptflops' aten backend hooks every child for per-module statistics and never removes the
    hooks; behind this wrapper it finds no children and the caller's model stays untouched.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_model", model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._model(x)


def _batch_one_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(d) for d in input_shape)
    if len(shape) < 2 or shape[0] != 1:
        raise ValueError(
            f"input_shape must include the batch dimension, which must be 1 (e.g. (1, 3, 32, 32)),"
            f" got {list(shape)}"
        )
    return shape


def _model_device(model: nn.Module) -> torch.device:
    tensor = next(_tensors(model), None)
    return torch.device("cpu") if tensor is None else tensor.device


def _check_on_device(model: nn.Module, device: torch.device) -> None:
    for tensor in _tensors(model):
        if tensor.device.type != device.type or (
            device.index is not None and tensor.device.index != device.index
        ):
            wanted, actual = str(device), str(tensor.device)
            raise ValueError(
                f"the model has tensors on {actual} but device={wanted!r}: "
                f"move it first with model.to({wanted!r}) or pass device={actual!r}"
            )


def _tensors(model: nn.Module) -> Iterator[torch.Tensor]:
    yield from model.parameters()
    yield from model.buffers()


def _example_input(model: nn.Module, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """A fixed random input (own generator: the global RNG is left alone) in the model's dtype."""
    floating = [p for p in model.parameters() if p.is_floating_point()]
    dtype = floating[0].dtype if floating else torch.get_default_dtype()
    generator = torch.Generator().manual_seed(0)
    return torch.randn(shape, generator=generator).to(device=device, dtype=dtype)
