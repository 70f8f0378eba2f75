"""Structured channel pruning by BatchNorm scale (Network Slimming), done with torch-pruning.

Network Slimming (Liu et al., "Learning Efficient Convolutional Networks through Network
Slimming", ICCV 2017) trains with an L1 penalty on the BatchNorm scales gamma, ranks every
channel of the network by |gamma| against one global threshold, removes the channels below it
and fine-tunes. The compression frameworks of arXiv 2505.08327 (pre-/post-pruning) use it.

This is the only module that imports ``torch_pruning``: channels are removed structurally by
its dependency graph (convs, BatchNorms, residual additions, depthwise convs and the classifier
input that reads them are pruned together), never by editing weights by hand.

Deviations from Network Slimming, all from using torch-pruning's group view:
- channels tied together (e.g. by a residual addition in ResNets) form one *group* and are
  ranked by the mean |gamma| over the group's BatchNorms (``BNScaleImportance``); in a plain
  chain such as ``compact_cnn`` every group is one conv + BN and this is exactly the paper;
- a guard keeps at least ``1 - max_layer_ratio`` of every group's channels (the paper has no
  guard; a global threshold may otherwise empty a layer, which torch-pruning then silently
  skips, missing the requested ratio).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from harness.cost.inference import count_flops_torch, count_parameters
from harness.models.incremental_net import IncrementalNet

# The guard's default: keep at least a tenth of every channel group. Our choice, not the paper's
# (Network Slimming has no guard); torch-pruning calls the same bound ``max_pruning_ratio``.
DEFAULT_MAX_LAYER_RATIO = 0.9


def bn_scale_l1(strength: float) -> Callable[[nn.Module], None]:
    """An ``after_backward`` hook for ``Trainer.fit``: the L1 sparsity penalty on BN scales.

    Adds ``strength * sign(gamma)`` to the gradient of every affine BatchNorm's weight, the
    subgradient of ``strength * sum |gamma|`` (Liu et al., 2017, Eq. 1; ``updateBN`` in their
    code, and what torch-pruning's ``BNScalePruner.regularize`` does without group lasso). It is
    written out here rather than taken from ``BNScalePruner`` because that needs a pruner traced
    on the current model, and the model's head grows every task. Network Slimming's
    ``strength`` (lambda) is 1e-4 for VGG-style networks (their Sec. 5.2 and code default).
    """
    if strength < 0:
        raise ValueError(f"the BN sparsity strength must be >= 0, got {strength}")

    def regularize(model: nn.Module) -> None:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
                if module.weight.grad is not None:
                    module.weight.grad.add_(torch.sign(module.weight.detach()), alpha=strength)

    return regularize


@dataclass(frozen=True)
class PruningSummary:
    """What one pruning achieved, measured on the whole network (head included) at batch 1."""

    ratio: float
    params_before: int
    params_after: int
    gflops_before: float
    gflops_after: float
    conv_channels_before: int
    conv_channels_after: int

    @property
    def params_reduction_pct(self) -> float:
        return _reduction_pct(self.params_before, self.params_after)

    @property
    def gflops_reduction_pct(self) -> float:
        return _reduction_pct(self.gflops_before, self.gflops_after)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ratio": self.ratio,
            "params_millions_before": self.params_before / 1e6,
            "params_millions_after": self.params_after / 1e6,
            "params_reduction_pct": self.params_reduction_pct,
            "gflops_per_image_before": self.gflops_before,
            "gflops_per_image_after": self.gflops_after,
            "gflops_reduction_pct": self.gflops_reduction_pct,
            "conv_channels_before": self.conv_channels_before,
            "conv_channels_after": self.conv_channels_after,
        }


def prune_channels(
    model: IncrementalNet,
    *,
    ratio: float,
    example_inputs: torch.Tensor,
    max_layer_ratio: float = DEFAULT_MAX_LAYER_RATIO,
) -> PruningSummary:
    """Remove, in place, the fraction ``ratio`` of prunable channels with the smallest |gamma|.

    ``ratio`` is torch-pruning's ``pruning_ratio`` with global ranking: the fraction of all
    prunable channels (channel groups; channels tied by a residual addition count once) that is
    removed, wherever in the network they are. Parameters and FLOPs drop by about
    ``1 - (1 - ratio)^2``, since a conv loses both input and output channels.

    The classifier head keeps its outputs (one per seen class; it is in ``ignored_layers``) while
    its inputs shrink with the pruned features; ``IncrementalLinearHead`` reads the live
    ``in_features``, so it keeps growing with ``add_classes`` afterwards. ``max_layer_ratio``
    (keep at least that complement of each group: our guard, see the module docstring) must
    exceed ``ratio``. ``example_inputs`` is one ``(1, C, H, W)`` input on the model's device,
    used to trace the graph and to count FLOPs per image.
    """
    check_ratio(ratio, max_layer_ratio=max_layer_ratio)
    if example_inputs.shape[0] != 1:
        raise ValueError(f"example_inputs must have batch size 1, got {list(example_inputs.shape)}")
    if model.head.fc is None:
        raise ValueError("the model has no classes yet: call add_classes() before pruning")
    params_before, flops_before, channels_before = _measure(model, example_inputs)
    import torch_pruning as tp  # here: it imports timm, a cost for trials that never prune

    # torch-pruning's tracing leaves the model in eval mode, and it builds its dependency graph
    # from autograd's, where a frozen parameter (a grown network's old branches) is missing.
    with _keeping_train_flags(model), _traceable(model):
        pruner = tp.pruner.BasePruner(
            model,
            example_inputs,
            importance=_GuardedBNScaleImportance(max_layer_ratio),
            global_pruning=True,
            pruning_ratio=ratio,
            ignored_layers=[model.head.fc],
        )
        pruner.step()
    params_after, flops_after, channels_after = _measure(model, example_inputs)
    return PruningSummary(
        ratio=ratio,
        params_before=params_before,
        params_after=params_after,
        gflops_before=flops_before / 1e9,
        gflops_after=flops_after / 1e9,
        conv_channels_before=channels_before,
        conv_channels_after=channels_after,
    )


def check_ratio(ratio: float, *, max_layer_ratio: float = DEFAULT_MAX_LAYER_RATIO) -> None:
    """Refuse a ratio the guard cannot honour (frameworks call this before any training)."""
    if not 0.0 < ratio < max_layer_ratio <= 1.0:
        raise ValueError(
            f"the pruning ratio must lie in (0, {max_layer_ratio}) (the fraction of channels "
            f"removed, below the per-layer guard max_layer_ratio), got {ratio}"
        )


class NotPrunableError(ValueError):
    """A backbone this pruning cannot rank: the message names the framework and backbone."""


def check_prunable(model: nn.Module, *, framework: str, backbone: str) -> None:
    """Refuse, before any training, a model without affine BatchNorm layers.

    Network Slimming ranks channels by BatchNorm scale: ResNets, MobileNets, EfficientNets and
    RegNets (torchvision's or timm's) have them; ViTs, ConvNeXts and NFNets normalise with
    LayerNorm or none, so there is nothing to rank and torch-pruning would silently prune
    nothing (the model would be served unpruned, under a pruning label).
    """
    if not any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine for m in model.modules()
    ):
        raise NotPrunableError(
            f"framework {framework!r} prunes channels by BatchNorm scale (Network Slimming), but "
            f"backbone {backbone!r} has no BatchNorm layers (e.g. a ViT or ConvNeXt, which use "
            "LayerNorm). Use a backbone with BatchNorm (resnet34, mobilenet_v2, timm:resnet50, "
            "timm:efficientnet_b0, ...) or a framework that does not prune (none, kd)."
        )


def conv_channels(model: nn.Module) -> int:
    """Output channels summed over every conv layer: what channel pruning removes."""
    return sum(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d))


class _GuardedBNScaleImportance:
    """|gamma| per channel (``BNScaleImportance``), with each group's strongest channels exempt.

    No normaliser: Network Slimming compares raw |gamma| across layers with one threshold,
    while torch-pruning's default divides each group by its mean, which would rank channels
    relative to their own layer. The ``ceil((1 - max_layer_ratio) * n)`` largest channels of
    each group get an infinite score, so the global threshold never reaches them.
    """

    def __init__(self, max_layer_ratio: float) -> None:
        self.max_layer_ratio = max_layer_ratio
        import torch_pruning as tp

        self._bn_scale = tp.importance.BNScaleImportance(normalizer=None)

    def __call__(self, group: Any) -> torch.Tensor | None:
        scores = self._bn_scale(group)
        if scores is None:  # a group without BatchNorm: nothing to rank it by, left alone
            return None
        keep = max(1, math.ceil((1.0 - self.max_layer_ratio) * len(scores)))
        guarded = scores.clone()
        guarded[scores.topk(keep).indices] = math.inf
        return guarded


def _measure(model: nn.Module, example_inputs: torch.Tensor) -> tuple[int, int, int]:
    total_params, _ = count_parameters(model)
    return total_params, count_flops_torch(model, example_inputs), conv_channels(model)


@contextmanager
def _keeping_train_flags(model: nn.Module) -> Iterator[None]:
    modes = [(module, module.training) for module in model.modules()]
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


@contextmanager
def _traceable(model: nn.Module) -> Iterator[None]:
    """Every parameter requires grad inside the block (so autograd's graph sees it), and gets
    its own flag back after (pruning may replace a parameter: the new one takes the old flag)."""
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    try:
        yield
    finally:
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name not in frozen)


def _reduction_pct(before: float, after: float) -> float:
    return 100.0 * (1.0 - after / before) if before else 0.0
