"""Attention is counted, whichever kernel runs it: known answers from the ViT formula.

A ViT's FLOPs follow from its shape alone (Dosovitskiy et al., 2021): the patch embedding, then
per block the qkv projection, the attention scores ``q k^T``, the attention-weighted values,
the output projection and the MLP, then the head. These tests derive that count by hand and
compare both counters at several sequence lengths and through every attention kernel.
"""

from __future__ import annotations

import pytest
import timm
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from harness.cost.inference import count_flops, count_macs_ptflops

# Kernels scaled_dot_product_attention dispatches to on a CPU (flash: CPU's fused kernel,
# torch's counter has no formula for it; math: decomposed into matmuls).
CPU_KERNELS = [SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]
CUDA_KERNELS = [
    SDPBackend.FLASH_ATTENTION,
    SDPBackend.EFFICIENT_ATTENTION,
    SDPBackend.CUDNN_ATTENTION,
    SDPBackend.MATH,
]


def vit_macs(vit: VisionTransformer, *, image_size: int) -> int:
    """Multiply-adds of a timm ViT (class token, no register tokens) on one image, by hand."""
    patch = vit.patch_embed.patch_size[0]
    channels = vit.patch_embed.proj.in_channels
    dim = vit.embed_dim
    hidden = vit.blocks[0].mlp.fc1.out_features
    patches = (image_size // patch) ** 2
    tokens = patches + vit.num_prefix_tokens
    embedding = patches * channels * patch * patch * dim
    block = (
        tokens * dim * 3 * dim  # qkv projection
        + tokens * tokens * dim  # scores q k^T, all heads together
        + tokens * tokens * dim  # attention-weighted values
        + tokens * dim * dim  # output projection
        + 2 * tokens * dim * hidden  # MLP
    )
    head = dim * vit.num_classes if vit.num_classes else 0
    return embedding + len(vit.blocks) * block + head


def _small_vit(image_size: int) -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(
        img_size=image_size, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=10
    ).eval()


@pytest.mark.parametrize("image_size", [16, 32, 64])  # 5, 17 and 65 tokens
@pytest.mark.parametrize("kernel", CPU_KERNELS, ids=lambda k: k.name)
def test_vit_flops_match_the_formula_on_every_cpu_kernel(image_size: int, kernel) -> None:
    vit = _small_vit(image_size)
    expected = 2 * vit_macs(vit, image_size=image_size)
    image = torch.randn(1, 3, image_size, image_size)
    with sdpa_kernel([kernel]):
        counted = count_flops(vit, image)
        ptflops = 2 * count_macs_ptflops(vit, (1, 3, image_size, image_size))
    assert counted.flops == expected
    assert counted.uncounted_ops == ()
    assert ptflops == pytest.approx(expected, rel=0.01)  # ptflops adds bias additions


def test_explicit_attention_matmuls_count_the_same_as_the_fused_kernel() -> None:
    vit = _small_vit(32)
    image = torch.randn(1, 3, 32, 32)
    fused = count_flops(vit, image).flops
    for block in vit.blocks:
        block.attn.fused_attn = False  # timm's own q @ k^T, softmax, @ v
    assert count_flops(vit, image).flops == fused == 2 * vit_macs(vit, image_size=32)


class _SelfAttention(nn.Module):
    def __init__(self, need_weights: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.attention = nn.MultiheadAttention(16, 2, batch_first=True)
        self.need_weights = need_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x, x, x, need_weights=self.need_weights)[0]


def test_multihead_attention_fast_path_is_counted_like_its_slow_path() -> None:
    x = torch.randn(2, 5, 16)
    fast = count_flops(_SelfAttention(need_weights=False).eval(), x)  # one fused op
    slow = count_flops(_SelfAttention(need_weights=True).eval(), x)  # linears and bmms
    projections, attention = 4 * 2 * 5 * 16 * 16, 2 * 2 * 5 * 5 * 16
    assert fast.flops == slow.flops == 2 * (projections + attention)
    assert fast.uncounted_ops == slow.uncounted_ops == ()


def _resnet50_macs(image_size: int = 224, classes: int = 1000) -> int:
    """ResNet-50 (He et al., 2016, Table 1) by hand: stem, 3-4-6-3 bottlenecks, head."""
    size = image_size // 2
    macs = size * size * 64 * 3 * 7 * 7  # 7x7 stride-2 stem
    size //= 2  # max-pool
    channels = 64
    for width, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for index in range(blocks):
            out_size = size // stride if index == 0 else size
            macs += size * size * channels * width  # 1x1 reduce, at the input size
            macs += out_size * out_size * width * width * 9  # 3x3 (carries the stride)
            macs += out_size * out_size * width * 4 * width  # 1x1 expand
            if index == 0:  # projection shortcut
                macs += out_size * out_size * channels * 4 * width
            channels, size = 4 * width, out_size
            stride = 1
    return macs + channels * classes


@pytest.mark.parametrize(
    ("name", "analytic_macs"),
    [
        ("vit_small_patch16_224", None),  # from vit_macs
        ("resnet50", _resnet50_macs()),
    ],
)
def test_timm_figures_at_224_match_their_analytic_counts(name: str, analytic_macs) -> None:
    model = timm.create_model(name).eval()
    analytic = 2 * (analytic_macs or vit_macs(model, image_size=224))
    counted = count_flops(model, torch.randn(1, 3, 224, 224))
    assert counted.flops == pytest.approx(analytic, rel=0.01)
    assert counted.uncounted_ops == ()


@pytest.mark.gpu
@pytest.mark.parametrize("kernel", CUDA_KERNELS, ids=lambda k: k.name)
def test_vit_flops_match_the_formula_on_every_cuda_kernel(kernel) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    vit = _small_vit(64).cuda().to(torch.bfloat16)
    image = torch.randn(1, 3, 64, 64, device="cuda", dtype=torch.bfloat16)
    with sdpa_kernel([kernel]):
        counted = count_flops(vit, image)
    assert counted.flops == 2 * vit_macs(vit, image_size=64)
    assert counted.uncounted_ops == ()
