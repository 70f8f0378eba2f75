"""Inference cost of a whole prediction path: FLOPs, parameters and batch-1 latency.

Fairness-critical: every method is charged for everything its prediction runs, so the model
measured here is the full path from images to class scores (extra forward passes, functional
ops, nearest-mean distances included). The primary figure comes from torch's ``FlopCounterMode``,
which counts at the aten level and therefore sees every op; ptflops is kept as a cross-check.
Units live in the names: FLOPs (2 per multiply-add) vs MACs (1 per multiply-add).
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from harness.cost.flop_formulas import ptflops_hooks, torch_mapping
from harness.cost.latency import measure_latency
from harness.cost.model_size import parameter_stats
from harness.cost.op_coverage import OpRecorder, uncounted_ops
from harness.records.schema import InferenceCost

# ptflops' "aten" backend counts matmuls and convolutions at dispatch level, like torch's
# counter: on compact_cnn (8x8, 28x28), resnet34_cifar and mobilenet_v2 (32x32) the two agree
# within 0.003% (ptflops adds bias additions). Its installed default, "pytorch" (module hooks),
# also counts BatchNorm, ReLU and pooling and reads 0.3% (ResNet-34) to 6.4% (MobileNetV2)
# higher, a different convention from torch's counter and the paper's figures.
PTFLOPS_BACKEND = "aten"


@dataclass(frozen=True)
class FlopCount:
    flops: int  # 2 per multiply-add
    uncounted_ops: tuple[str, ...]


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
    Its latency is measured there, in fp32 at batch 1.
    """
    shape = _batch_one_shape(input_shape)
    _check_on_device(model, torch.device(device))
    example = example_input(model, shape, torch.device(device))
    counted = count_flops(model, example)
    flops_ptflops = 2 * count_macs_ptflops(model, shape)
    sizes = parameter_stats(model)
    # Eval mode, no gradients and every submodule's train flag restored: measure_latency's own.
    latency = measure_latency(model, example, warmup=latency_warmup, repeats=latency_repeats)
    return InferenceCost(
        gflops_per_image=counted.flops / 1e9,
        gflops_per_image_torch=counted.flops / 1e9,
        gflops_per_image_ptflops=flops_ptflops / 1e9,
        counter_disagreement_pct=disagreement_pct(counted.flops, flops_ptflops),
        uncounted_ops=counted.uncounted_ops,
        params_millions=sizes.total / 1e6,
        params_millions_without_head=(sizes.total - sizes.head) / 1e6,
        nonzero_params_millions=sizes.nonzero / 1e6,
        sparsity_pct=sizes.sparsity_pct,
        param_bytes=sizes.bytes,
        param_dtypes=sizes.dtypes,
        latency_ms_b1=latency.ms_per_batch,
        latency_threads=torch.get_num_threads(),
        latencies=(latency,),
        input_shape=shape,
    )


def on_cpu(model: nn.Module) -> nn.Module:
    """The served model as the cost is measured: on the CPU (the paper's concern is inference
    on small devices, and one latency column must not mix devices). FLOPs and parameters do
    not depend on the device; a model trained elsewhere is copied, the original untouched."""
    if all(t.device.type == "cpu" for t in [*model.parameters(), *model.buffers()]):
        return model
    return copy.deepcopy(model).to("cpu", memory_format=torch.contiguous_format)


def disagreement_pct(primary: float, check: float) -> float:
    """How far ``check`` lies from ``primary``, in percent of ``primary`` (0 when both are 0)."""
    if primary == check:
        return 0.0
    return 100.0 * abs(primary - check) / abs(primary) if primary else 100.0


def count_flops(model: nn.Module, example: torch.Tensor) -> FlopCount:
    """FLOPs (2 per multiply-add) of ``model(example)``, counted by torch at aten level, and
    the ops that ran without a FLOP formula (``harness.cost.op_coverage``)."""
    counter = FlopCounterMode(display=False, custom_mapping=torch_mapping(flop_registry))
    recorder = OpRecorder()
    # The counter is entered last, so it sees each op first and the recorder sees what it
    # actually ran, after its own decompositions.
    with _measurement_mode(model), recorder, counter:
        model(example)
    return FlopCount(
        flops=int(counter.get_total_flops()),
        uncounted_ops=tuple(uncounted_ops(recorder.ops, set(counter.flop_registry))),
    )


def count_flops_torch(model: nn.Module, example: torch.Tensor) -> int:
    """FLOPs (2 per multiply-add) of ``model(example)``, counted by torch at aten level."""
    return count_flops(model, example).flops


def count_macs_ptflops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """MACs of ``model`` on one ``(1, ...)``-shaped input, by ptflops (backend ``PTFLOPS_BACKEND``).

    ptflops returns ``(None, None)`` instead of raising, and prints the reason: it is turned into
    an error that carries that output.
    """
    # Imported here: ptflops pulls in torch._dynamo, seconds of start-up a worker that never
    # costs a model (or the driver) should not pay.
    from ptflops import get_model_complexity_info
    from ptflops.aten_ops import ATEN_OPS_MAPPING

    shape = _batch_one_shape(input_shape)
    example = example_input(model, shape, _model_device(model))
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
            custom_modules_hooks=ptflops_hooks(ATEN_OPS_MAPPING),
        )
    if macs is None:
        raise RuntimeError(
            f"ptflops ({PTFLOPS_BACKEND} backend) could not count {type(model).__name__} on "
            f"input {list(shape)}; its output:\n{output.getvalue().strip()}"
        )
    return int(macs)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, head) parameter counts; head = weights inside any ``ClassifierHead``.

    Every weight the forward pass uses, whatever its storage, shared ones once
    (``harness.cost.model_size``).
    """
    sizes = parameter_stats(model)
    return sizes.total, sizes.head


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


def example_input(model: nn.Module, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """A fixed random input (own generator: the global RNG is left alone) in the model's dtype."""
    floating = [p for p in model.parameters() if p.is_floating_point()]
    dtype = floating[0].dtype if floating else torch.get_default_dtype()
    generator = torch.Generator().manual_seed(0)
    return torch.randn(shape, generator=generator).to(device=device, dtype=dtype)


def why_not_cheaper(plain: Mapping[str, Any], compressed: Mapping[str, Any]) -> str | None:
    """None when the ``compressed`` cost (a record's ``inference_cost``) needs fewer FLOPs and
    parameters than ``plain``; else why not, in words a framework's author can act on."""
    flops, params = "gflops_per_image", "params_millions"
    if compressed[flops] < plain[flops] and compressed[params] < plain[params]:
        return None
    reason = (
        f"the served model is not cheaper: {compressed[flops]:.6g} vs {plain[flops]:.6g} "
        f"GFLOPs and {compressed[params]:.6g} vs {plain[params]:.6g} M parameters"
    )
    if compressed.get("sparsity_pct", 0.0) > plain.get("sparsity_pct", 0.0):
        reason += (
            f". Its weights are {compressed['sparsity_pct']:.1f}% zeros, but zeroed weights "
            "(unstructured sparsity) still cost their multiply-adds in dense kernels and their "
            "storage in dense tensors: remove whole channels (structured pruning) to make it "
            f"cheaper. Non-zero parameters are recorded beside the dense count "
            f"({compressed.get('nonzero_params_millions', float('nan')):.6g} M)"
        )
    return reason
