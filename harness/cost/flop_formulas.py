"""Multiply-adds of the ops that compute but that neither FLOP counter knows, in one table.

torch's ``FlopCounterMode`` knows matmuls, convolutions and the CUDA attention kernels; ptflops'
aten backend knows matmuls and convolutions only. A served model can run more than that: the
CPU attention kernel ``scaled_dot_product_attention`` dispatches to, ``torch.cdist`` in
nearest-mean classifiers, int8 kernels of a quantized model. Each would count zero and make
the model look cheaper than it is. Every formula is written once here, in MACs from the op's
raw arguments and output, and handed to both counters (``torch_mapping``, ``ptflops_hooks``),
so the two stay comparable: where torch already has a formula (CUDA attention, ``baddbmm``)
ptflops gets one too, so a gap between the counters means a real disagreement, not a missing
formula. A quantized op costs the MACs of its float twin: MACs do not vanish when the dtype
changes, only their price does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

aten = torch.ops.aten
quantized = torch.ops.quantized

# raw positional args, raw output -> multiply-adds of one call
MacsFormula = Callable[[tuple[Any, ...], Any], int]


def _first(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


def _attention_macs(args: tuple[Any, ...], _: Any) -> int:
    """Scores ``q k^T`` and the weighted values ``p v``: ``B H L S (E + Ev)`` multiply-adds.

    Every SDPA kernel takes query ``(..., L, E)``, key ``(..., S, E)`` and value
    ``(..., S, Ev)`` first; the softmax between the two products is left to the allow-list
    (a few operations per score, like an activation).
    """
    query, key, value = args[0], args[1], args[2]
    batch_heads = math.prod(query.shape[:-2])
    length, head_dim = query.shape[-2], query.shape[-1]
    return batch_heads * length * key.shape[-2] * (head_dim + value.shape[-1])


def _native_mha_macs(args: tuple[Any, ...], _: Any) -> int:
    """``nn.MultiheadAttention``'s inference fast path: the q, k, v and output projections
    (``E x E`` each) around the attention of ``_attention_macs`` (heads split ``E``)."""
    query, key = args[0], args[1]  # (B, L, E), (B, S, E)
    batch, length, embed = query.shape[0], query.shape[-2], query.shape[-1]
    source = key.shape[-2]
    projections = batch * (2 * length + 2 * source) * embed * embed
    return projections + batch * length * source * 2 * embed


def _baddbmm_macs(args: tuple[Any, ...], _: Any) -> int:
    batch1, batch2 = args[1], args[2]  # baddbmm(input, batch1, batch2): (b, n, m) @ (b, m, p)
    return batch1.shape[0] * batch1.shape[1] * batch1.shape[2] * batch2.shape[2]


def _distance_macs(args: tuple[Any, ...], output: Any) -> int:
    # One multiply-add per output pair and feature, as the matmul form of the distances costs.
    return _first(output).numel() * args[0].shape[-1]


def _quantized_linear_macs(args: tuple[Any, ...], output: Any) -> int:
    """``x (..., in) @ W^T``: one multiply-add per output element and input feature."""
    weight = quantized.linear_unpack(args[1])[0]  # (out, in)
    return _first(output).numel() * weight.shape[1]


def _quantized_conv_macs(args: tuple[Any, ...], output: Any) -> int:
    """As a float conv: per output element, ``in_channels / groups x kernel`` multiply-adds.

    The packed weight is ``(out, in / groups, kh, kw)``, so its per-filter size is exactly that.
    """
    weight = quantized.conv2d_unpack(args[1])[0]
    return _first(output).numel() * math.prod(weight.shape[1:])


ATTENTION_OPS = (
    aten._scaled_dot_product_flash_attention_for_cpu,  # CPU's fused kernel: torch lacks it
    aten._scaled_dot_product_fused_attention_overrideable,  # other backends' fused kernel
    aten._scaled_dot_product_flash_attention,
    aten._scaled_dot_product_efficient_attention,
    aten._scaled_dot_product_cudnn_attention,
)
# nn.MultiheadAttention / TransformerEncoderLayer in eval mode call one fused op.
FUSED_ATTENTION_OPS = (aten._native_multi_head_attention,)
# Neither counter has a formula for torch.cdist (nearest-mean classifiers use it).
DISTANCE_OPS = (aten._cdist_forward, aten._euclidean_dist)
QUANTIZED_LINEAR_OPS = (
    quantized.linear_dynamic,  # torch.ao.quantization.quantize_dynamic's Linear
    quantized.linear_relu_dynamic,
    quantized.linear,  # static int8 Linear
    quantized.linear_relu,
)
QUANTIZED_CONV_OPS = (quantized.conv2d, quantized.conv2d_relu)

# Formulas for ops at least one counter lacks. Ops torch already knows are listed for ptflops
# only (``torch_mapping`` leaves torch's own formula in place).
MACS_FORMULAS: dict[Any, MacsFormula] = {
    **{op: _attention_macs for op in ATTENTION_OPS},
    **{op: _native_mha_macs for op in FUSED_ATTENTION_OPS},
    aten.baddbmm: _baddbmm_macs,
    **{op: _distance_macs for op in DISTANCE_OPS},
    **{op: _quantized_linear_macs for op in QUANTIZED_LINEAR_OPS},
    **{op: _quantized_conv_macs for op in QUANTIZED_CONV_OPS},
}


def torch_mapping(known: Mapping[Any, Any]) -> dict[Any, Callable[..., int]]:
    """``custom_mapping`` for ``FlopCounterMode``: FLOPs (2 per MAC) of the ops not in ``known``
    (torch's own registry), taking raw arguments as these formulas need packed weights."""

    def flops(formula: MacsFormula) -> Callable[..., int]:
        def count(*args: Any, out_val: Any = None, **_: Any) -> int:
            return 2 * formula(args, out_val)

        count._get_raw = True  # type: ignore[attr-defined]  # FlopCounterMode's flag
        return count

    return {op: flops(f) for op, f in MACS_FORMULAS.items() if op not in known}


def _addmm_macs(args: tuple[Any, ...], _: Any) -> int:
    matrix, weight = args[1], args[2]  # addmm(bias, input, weight): (n, k) @ (k, m)
    return matrix.shape[0] * matrix.shape[1] * weight.shape[1]


# ptflops' own addmm adds one operation per output for the bias: 1/in_features more than the
# multiply-adds, 2% for a 48-wide test ViT. Counted as torch counts it (multiply-adds only),
# a gap between the counters means they disagree about the model, not about conventions.
PTFLOPS_CONVENTION: dict[Any, MacsFormula] = {aten.addmm: _addmm_macs}


def ptflops_hooks(known: Mapping[Any, Any]) -> dict[Any, Callable[[Any, Any], int]]:
    """``custom_modules_hooks`` for ptflops' aten backend: MACs of the ops not in ``known``
    (its own table) and ``PTFLOPS_CONVENTION``, called with the raw arguments and outputs."""
    formulas = {op: f for op, f in MACS_FORMULAS.items() if op not in known}
    return {
        op: (lambda inputs, outputs, f=f: f(tuple(inputs), outputs))
        for op, f in {**formulas, **PTFLOPS_CONVENTION}.items()
    }
