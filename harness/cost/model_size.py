"""How big a served model is: parameters whatever their storage, bytes, dtypes and sparsity.

``model.parameters()`` alone misses weights that compression moves out of it: a quantized
``Linear`` keeps its int8 weight in packed params (``quantize_dynamic`` made a 1000-class
head's 65k parameters vanish from the count), and ``torch.nn.utils.prune`` keeps the dense
``weight_orig`` as the parameter while the forward pass uses ``weight_orig * weight_mask``.
Here a weight is what the forward pass multiplies with: packed weights are unpacked, pruned
weights are read as masked, and each is counted once, with its bytes and dtype.

Sparsity is recorded beside the dense figures, never instead of them: zeroed weights still
cost their multiply-adds in dense kernels, so unstructured pruning lowers the non-zero count
but neither the FLOPs nor (in dense storage) the bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from harness.models.incremental_net import ClassifierHead


@dataclass(frozen=True)
class ParameterStats:
    total: int
    head: int  # inside any ClassifierHead
    nonzero: int
    bytes: int  # storage of the weights as the model holds them (int8 = 1 byte each)
    dtypes: dict[str, int]  # dtype name -> number of parameters stored in it

    @property
    def sparsity_pct(self) -> float:
        return 100.0 * (1.0 - self.nonzero / self.total) if self.total else 0.0


def parameter_stats(model: nn.Module) -> ParameterStats:
    """Count every weight ``model``'s forward pass multiplies with, once (shared ones too)."""
    weights = dict(_weights(model))
    head_ids = {key for m in model.modules() if isinstance(m, ClassifierHead)
                for key, _ in _weights(m)}  # fmt: skip
    dtypes: Counter[str] = Counter()
    for tensor in weights.values():
        dtypes[str(tensor.dtype).removeprefix("torch.")] += tensor.numel()
    return ParameterStats(
        total=sum(t.numel() for t in weights.values()),
        head=sum(weights[key].numel() for key in head_ids if key in weights),
        nonzero=sum(_nonzero(t) for t in weights.values()),
        bytes=sum(t.numel() * t.element_size() for t in weights.values()),
        dtypes=dict(sorted(dtypes.items())),
    )


def _weights(model: nn.Module) -> Iterator[tuple[tuple[int, ...], torch.Tensor]]:
    """``(identity, tensor)`` of every weight, as the forward pass sees it."""
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            yield (id(param),), _as_used(module, name, param)
        for index, tensor in enumerate(_packed_weights(module)):
            yield (id(module), index), tensor


def _as_used(module: nn.Module, name: str, param: torch.Tensor) -> torch.Tensor:
    # torch.nn.utils.prune: parameter "<w>_orig", buffer "<w>_mask", forward uses their product.
    base = name.removesuffix("_orig")
    mask = getattr(module, f"{base}_mask", None) if base != name else None
    return param.detach() * mask if isinstance(mask, torch.Tensor) else param.detach()


def _packed_weights(module: nn.Module) -> list[torch.Tensor]:
    """Weight and bias of a quantized module (``torch.ao.nn.quantized``, static or dynamic).

    They store both in packed params and expose them through ``weight()`` / ``bias()``
    methods, not as parameters.
    """
    if not hasattr(module, "_packed_params") or not callable(getattr(module, "weight", None)):
        return []
    tensors = [module.weight(), module.bias() if callable(getattr(module, "bias", None)) else None]
    return [t for t in tensors if isinstance(t, torch.Tensor)]


def _nonzero(tensor: torch.Tensor) -> int:
    values = tensor.dequantize() if tensor.is_quantized else tensor
    return int(torch.count_nonzero(values))
