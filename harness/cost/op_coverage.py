"""Which ops of an inference path were not counted: a missed op is listed, never silently free.

While the FLOP counter runs, ``OpRecorder`` notes every op that actually executed (after the
counter's own decompositions). Each is then one of:
- **counted**: a FLOP formula exists (torch's registry or ``harness.cost.flop_formulas``);
- **data movement**: views, copies, concatenation, indexing, padding, allocation: no
  arithmetic on tensor values;
- **negligible by design**: in ``NEGLIGIBLE_OPS`` below, each group with its reason;
- **uncounted**: anything else. These are what a record's ``uncounted_ops`` lists: an op that
  computes with no formula, e.g. a fused kernel a new library dispatches to.

The lists name ops explicitly so that a new op lands in "uncounted" until someone decides
otherwise: the check cannot be silenced by accident.
"""

from __future__ import annotations

from typing import Any

from torch.utils._python_dispatch import TorchDispatchMode

# op packet name -> why its arithmetic is left out of the FLOP figure. The convention is the
# paper's and torch's counter's: FLOPs are those of multiply-adds in matmuls, convolutions and
# attention; ops that cost a few operations per activation are orders of magnitude below them.
_ELEMENTWISE = "elementwise: a few operations per activation, orders below the matmuls/convs"
_ACTIVATION = "elementwise activation: a few operations per activation"
_NORMALISATION = (
    "normalisation: a scale and shift per activation at inference (BatchNorm folds into "
    "the preceding conv when deployed)"
)
_POOLING = "pooling or reduction: one operation per input element"
_SOFTMAX = "softmax: a few operations per score, as an activation"
_QUANTIZE = "(de)quantisation: a scale, a shift and a rounding per activation"
NEGLIGIBLE_OPS: dict[str, str] = {
    **dict.fromkeys(
        [
            "aten::add",
            "aten::add_",
            "aten::sub",
            "aten::sub_",
            "aten::rsub",
            "aten::mul",
            "aten::mul_",
            "aten::div",
            "aten::div_",
            "aten::neg",
            "aten::sqrt",
            "aten::rsqrt",
            "aten::pow",
            "aten::clamp",
            "aten::clamp_",
            "aten::clamp_min",
            "aten::clamp_min_",
            "aten::clamp_max",
            "aten::where",
            "aten::abs",
            "aten::exp",
            "aten::log",
            "aten::addcmul",
            "aten::lerp",
            "aten::reciprocal",
            "aten::masked_fill",
            "aten::masked_fill_",
        ],
        _ELEMENTWISE,
    ),  # fmt: skip
    **dict.fromkeys(
        [
            "aten::relu",
            "aten::relu_",
            "aten::gelu",
            "aten::gelu_",
            "aten::silu",
            "aten::silu_",
            "aten::sigmoid",
            "aten::sigmoid_",
            "aten::tanh",
            "aten::tanh_",
            "aten::hardtanh",
            "aten::hardtanh_",
            "aten::hardswish",
            "aten::hardswish_",
            "aten::hardsigmoid",
            "aten::hardsigmoid_",
            "aten::leaky_relu",
            "aten::leaky_relu_",
            "aten::elu",
            "aten::elu_",
            "aten::mish",
            "aten::mish_",
            "aten::threshold",
            "aten::softplus",
        ],
        _ACTIVATION,
    ),  # fmt: skip
    **dict.fromkeys(
        [
            "aten::native_batch_norm",
            "aten::_native_batch_norm_legit",
            "aten::_native_batch_norm_legit_no_training",
            "aten::cudnn_batch_norm",
            "aten::native_layer_norm",
            "aten::native_group_norm",
            "aten::_fused_rms_norm",
            "aten::linalg_vector_norm",
            "aten::norm",
        ],
        _NORMALISATION,
    ),  # fmt: skip
    **dict.fromkeys(
        [
            "aten::max_pool2d_with_indices",
            "aten::max_pool2d",
            "aten::avg_pool2d",
            "aten::_adaptive_avg_pool2d",
            "aten::adaptive_max_pool2d",
            "aten::mean",
            "aten::sum",
            "aten::amax",
            "aten::amin",
            "aten::max",
            "aten::min",
            "aten::argmax",
            "aten::argmin",
            "aten::topk",
            "aten::sort",
            "aten::eq",
            "aten::ne",
            "aten::lt",
            "aten::le",
            "aten::gt",
            "aten::ge",
        ],
        _POOLING,
    ),  # fmt: skip
    **dict.fromkeys(["aten::_softmax", "aten::_safe_softmax", "aten::_log_softmax"], _SOFTMAX),
    **dict.fromkeys(
        ["aten::quantize_per_tensor", "aten::quantize_per_channel", "aten::dequantize"],
        _QUANTIZE,
    ),
}

# Ops that move, copy, allocate or select values without arithmetic on them. Views (outputs
# that alias an input without writing it) are recognised from their schema as well.
DATA_MOVEMENT_OPS: frozenset[str] = frozenset(
    ["aten::clone", "aten::_to_copy", "aten::copy_", "aten::contiguous", "aten::cat",
     "aten::stack", "aten::index", "aten::index_select", "aten::gather", "aten::embedding",
     "aten::constant_pad_nd", "aten::reflection_pad2d", "aten::replication_pad2d",
     "aten::repeat", "aten::roll", "aten::flip", "aten::empty", "aten::empty_like",
     "aten::empty_strided", "aten::new_empty", "aten::new_empty_strided", "aten::zeros",
     "aten::zeros_like", "aten::new_zeros", "aten::ones", "aten::ones_like", "aten::full",
     "aten::full_like", "aten::fill_", "aten::zero_", "aten::arange", "aten::lift_fresh",
     "aten::lift_fresh_copy", "aten::scalar_tensor", "aten::_local_scalar_dense",
     "aten::resize_", "aten::set_", "aten::dropout", "aten::native_dropout", "aten::clone_",
     "aten::masked_select", "aten::nonzero", "aten::repeat_interleave", "aten::tril",
     "aten::triu", "aten::one_hot", "aten::bernoulli_", "aten::uniform_", "aten::normal_",
     "aten::_unsafe_view", "aten::_reshape_copy", "aten::view_copy", "aten::expand_copy",
     "aten::permute_copy", "aten::t_copy", "aten::transpose_copy", "aten::slice_copy",
     "aten::select_copy", "aten::unsqueeze_copy", "aten::squeeze_copy", "aten::im2col",
     "aten::pixel_shuffle", "aten::pixel_unshuffle", "aten::channel_shuffle",
     # unpacking a quantized weight (the quantized FLOP formulas do it to read the shape)
     "quantized::linear_unpack", "quantized::conv2d_unpack",
     # metadata queries
     "aten::size", "aten::sym_size", "aten::stride", "aten::sym_stride", "aten::numel",
     "aten::sym_numel", "aten::dim", "aten::storage_offset", "aten::sym_storage_offset",
     "aten::is_contiguous", "aten::sym_is_contiguous", "aten::is_strides_like_format",
     "aten::is_non_overlapping_and_dense", "prim::layout", "prim::device"]
)  # fmt: skip


class OpRecorder(TorchDispatchMode):
    """Every op that reaches the dispatcher below the counter, by overload."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: set[Any] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.ops.add(func)
        return func(*args, **(kwargs or {}))


def packet_name(op: Any) -> str:
    """``aten::add`` for ``aten.add.Tensor``: the name the lists above use."""
    schema = getattr(op, "_schema", None)  # higher-order operators have none
    return str(op) if schema is None else schema.name


def is_view(op: Any) -> bool:
    """An output aliasing an input without writing it: a view, no arithmetic."""
    schema = getattr(op, "_schema", None)
    if schema is None:
        return False
    returns = schema.returns
    return bool(returns) and all(
        r.alias_info is not None and not r.alias_info.is_write for r in returns
    )


def uncounted_ops(recorded: set[Any], counted_packets: set[Any]) -> list[str]:
    """Names (``aten.op.overload``) of the recorded ops that compute without a formula."""
    missed = {
        str(op)
        for op in recorded
        if getattr(op, "_overloadpacket", op) not in counted_packets
        and not is_view(op)
        and packet_name(op) not in DATA_MOVEMENT_OPS
        and packet_name(op) not in NEGLIGIBLE_OPS
    }
    return sorted(missed)
