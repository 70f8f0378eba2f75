"""After every task: what the serving module costs, and what the trial keeps in memory.

The protocol hands the module that served after each task to ``PerTaskMeasures``, which
counts its FLOPs, parameters and bytes (the cost curve: a network that grows per task shows
it; counting is cheap, latency stays final-only) and measures the bytes the method keeps
until the next task. Those bytes are measured from the method's own objects, not declared by
it: the exemplar memory's samples, and every distinct parameter, buffer and tensor reachable
from the framework and its strategies (the model it trains and serves, old copies it distils
from, teachers, extra branches, stored logits), each counted once.
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from harness.cost.inference import count_flops, example_input, on_cpu
from harness.cost.model_size import parameter_stats
from harness.records.schema import CostAfterTask, KeptAfterTask
from harness.training.exemplars import ExemplarMemory


class PerTaskMeasures:
    """Called with the served module after each task; collects one point per task."""

    def __init__(self, learner: object, memory: ExemplarMemory, input_shape: Sequence[int]):
        self.learner, self.memory = learner, memory
        self.input_shape = tuple(input_shape)
        self.cost_curve: list[CostAfterTask] = []
        self.kept: list[KeptAfterTask] = []

    def __call__(self, served: nn.Module) -> None:
        task = len(self.cost_curve) + 1
        self.cost_curve.append(cost_after_task(served, self.input_shape, task=task))
        self.kept.append(
            KeptAfterTask(
                task=task,
                exemplars=len(self.memory),
                exemplar_bytes=self.memory.nbytes,
                model_bytes=kept_model_bytes(self.learner),
            )
        )


def cost_after_task(served: nn.Module, input_shape: Sequence[int], *, task: int) -> CostAfterTask:
    """FLOPs (torch's count), parameters and bytes of ``served``, on a CPU copy if need be."""
    model = on_cpu(served)
    example = example_input(model, tuple(input_shape), torch.device("cpu"))
    sizes = parameter_stats(model)
    return CostAfterTask(
        task=task,
        gflops_per_image=count_flops(model, example).flops / 1e9,
        params_millions=sizes.total / 1e6,
        param_bytes=sizes.bytes,
    )


def kept_model_bytes(learner: object) -> int:
    """Bytes of every distinct tensor reachable from ``learner`` through its attributes,
    containers and modules (parameters and buffers), the exemplar memory excepted."""
    seen: dict[tuple[int, int, torch.dtype], int] = {}
    for tensor in _reachable_tensors(learner):
        key = (tensor.data_ptr(), tensor.numel(), tensor.dtype)
        seen[key] = tensor.numel() * tensor.element_size()
    return sum(seen.values())


# Objects that hold no state a method keeps: code, and the memory (counted as exemplars).
_NOT_STATE = (type, types.FunctionType, types.MethodType, types.BuiltinFunctionType,
              types.ModuleType, ExemplarMemory, torch.device, torch.dtype)  # fmt: skip


def _reachable_tensors(root: object) -> Iterator[torch.Tensor]:
    visited: set[int] = set()
    stack: list[Any] = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in visited or isinstance(obj, _NOT_STATE):
            continue
        visited.add(id(obj))
        if isinstance(obj, nn.Module):
            yield from obj.parameters()
            yield from obj.buffers()
        elif isinstance(obj, torch.Tensor):
            yield obj
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif hasattr(obj, "__dict__"):
            stack.extend(vars(obj).values())
