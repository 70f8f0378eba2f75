"""Compression that changes dtype or sparsity is costed honestly: hand-computed answers."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from harness.cost.inference import measure_inference_cost, why_not_cheaper
from harness.cost.model_size import parameter_stats


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(512, 64), nn.ReLU(), nn.Linear(64, 1000))


def _dynamically_quantized(model: nn.Module) -> nn.Module:
    with warnings.catch_warnings():  # torch.ao.quantization is deprecated, still what users try
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


WEIGHTS, BIASES = 512 * 64 + 64 * 1000, 64 + 1000
MACS = 512 * 64 + 64 * 1000


def test_dense_float_model_by_hand() -> None:
    cost = measure_inference_cost(_mlp(), (1, 512), latency_repeats=1)
    assert cost.gflops_per_image * 1e9 == 2 * MACS
    assert cost.params_millions * 1e6 == pytest.approx(WEIGHTS + BIASES)
    assert cost.param_bytes == 4 * (WEIGHTS + BIASES)
    assert cost.param_dtypes == {"float32": WEIGHTS + BIASES}


def test_int8_quantized_linears_keep_their_macs_and_parameters() -> None:
    quantized = _dynamically_quantized(_mlp())
    assert not list(quantized.parameters())  # what made them vanish before
    cost = measure_inference_cost(quantized, (1, 512), latency_repeats=1)
    assert cost.gflops_per_image * 1e9 == 2 * MACS
    assert cost.gflops_per_image_ptflops * 1e9 == 2 * MACS
    assert cost.uncounted_ops == ()
    assert cost.params_millions * 1e6 == pytest.approx(WEIGHTS + BIASES)
    assert cost.param_dtypes == {"float32": BIASES, "qint8": WEIGHTS}
    assert cost.param_bytes == WEIGHTS + 4 * BIASES  # one byte per int8 weight


def test_a_quantized_model_is_not_cheaper_in_flops_or_parameters() -> None:
    dense = measure_inference_cost(_mlp(), (1, 512), latency_repeats=1).to_json()
    quantized = measure_inference_cost(
        _dynamically_quantized(_mlp()), (1, 512), latency_repeats=1
    ).to_json()
    assert why_not_cheaper(dense, quantized) is not None
    assert quantized["param_bytes"] < dense["param_bytes"] / 3


@pytest.mark.parametrize("made_permanent", [False, True])
def test_magnitude_pruning_records_sparsity_beside_the_dense_figures(made_permanent: bool) -> None:
    model = _mlp()
    prune.l1_unstructured(model[0], name="weight", amount=0.5)  # 16,384 of 32,768 zeroed
    prune.l1_unstructured(model[2], name="weight", amount=0.25)  # 16,000 of 64,000
    if made_permanent:
        prune.remove(model[0], "weight")
        prune.remove(model[2], "weight")
    cost = measure_inference_cost(model, (1, 512), latency_repeats=1)
    zeros = 16_384 + 16_000
    assert cost.gflops_per_image * 1e9 == 2 * MACS  # dense kernels: no FLOP is saved
    assert cost.params_millions * 1e6 == pytest.approx(WEIGHTS + BIASES)
    assert cost.nonzero_params_millions * 1e6 == pytest.approx(WEIGHTS + BIASES - zeros)
    assert cost.sparsity_pct == pytest.approx(100 * zeros / (WEIGHTS + BIASES))
    assert cost.param_bytes == 4 * (WEIGHTS + BIASES)  # dense storage


def test_why_a_sparse_model_is_not_cheaper_is_explained() -> None:
    dense = measure_inference_cost(_mlp(), (1, 512), latency_repeats=1).to_json()
    model = _mlp()
    prune.l1_unstructured(model[2], name="weight", amount=0.9)
    sparse = measure_inference_cost(model, (1, 512), latency_repeats=1).to_json()
    reason = why_not_cheaper(dense, sparse)
    assert reason is not None
    assert "unstructured sparsity" in reason and "dense kernels" in reason
    assert (
        why_not_cheaper(sparse, sparse | {"gflops_per_image": 0.0, "params_millions": 0.0}) is None
    )


def test_shared_and_packed_weights_are_counted_once() -> None:
    linear = nn.Linear(8, 8)
    stats = parameter_stats(nn.Sequential(linear, linear))
    assert stats.total == 72 and stats.bytes == 288 and stats.nonzero == 72


class _StaticInt8Conv(nn.Module):
    """A statically quantized 3x3 conv (4 -> 8 channels), called as int8 models call it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        weight = torch.quantize_per_tensor(torch.randn(8, 4, 3, 3), 0.1, 0, torch.qint8)
        self.packed = torch.ops.quantized.conv2d_prepack(weight, None, [1, 1], [1, 1], [1, 1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qx = torch.quantize_per_tensor(x, 0.1, 128, torch.quint8)
        return torch.ops.quantized.conv2d(qx, self.packed, 0.2, 0).dequantize()


def test_an_int8_convolution_costs_the_macs_of_its_float_twin() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost = measure_inference_cost(_StaticInt8Conv(), (1, 4, 6, 6), latency_repeats=1)
    assert cost.gflops_per_image * 1e9 == 2 * 6 * 6 * 8 * 4 * 9  # outputs x in x kernel
    assert cost.gflops_per_image_ptflops == cost.gflops_per_image
    assert cost.uncounted_ops == ()
