"""Networks that grow a feature extractor per task, for the strategies that own their growth.

DER (Yan et al., CVPR 2021) serves one whole backbone per task, their features concatenated;
MEMO (Zhou et al., ICLR 2023) shares the shallow blocks and grows only the deep ones; FOSTER
(Wang et al., ECCV 2022) grows one branch for a task and then distils the pair back into one
backbone. All three read the same structure (PyCIL's ``DERNet`` and ``AdaptiveNet``, in its
``utils/inc_net.py``): a shared stem, then branches side by side, each new branch starting as
a copy of the newest one, the older branches frozen with their BatchNorm statistics.

A strategy grows its ``IncrementalNet`` in place (``add_branch``) in ``begin_task``: the
framework keeps the one model object it built, and the harness costs whatever serves, so a
grown network's FLOPs and parameters are measured after every task like any other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy

import torch
from torch import nn

from harness.models.incremental_net import BACKBONE_NAME_ATTRIBUTE, IncrementalNet


class ExpandingBackbone(nn.Module):
    """``shared`` then every branch on its output, features concatenated (oldest first)."""

    def __init__(
        self,
        shared: nn.Module,
        branch: nn.Module,
        branch_dim: int,
        *,
        train_shared: bool,
        flatten: bool = False,
    ) -> None:
        super().__init__()
        self.shared = shared
        self.branches = nn.ModuleList([branch])
        self.branch_dim = branch_dim  # a new branch's width (pruning a copy leaves it as is)
        # DER has no shared blocks; MEMO trains them on every task (PyCIL's train_base: true).
        self.train_shared = train_shared
        # Branches end in pooled maps, flattened after the concatenation: torch-pruning 1.6
        # maps channel indices through a concatenation of flattened tensors wrongly (the
        # classifier keeps inputs that no branch produces), and of pooled maps correctly.
        self.flatten = flatten

    def grow(self) -> nn.Module:
        """Append a copy of the newest branch (it goes on learning); freeze all older ones."""
        newest = self.branches[-1]
        copy = deepcopy(newest)
        for parameter in newest.parameters():
            parameter.requires_grad_(False)
        newest.eval()
        for parameter in copy.parameters():
            parameter.requires_grad_(True)
        self.branches.append(copy)
        return copy

    def train(self, mode: bool = True) -> ExpandingBackbone:
        # Frozen branches keep their BatchNorm statistics while the newest trains (PyCIL's
        # DER.train() and MEMO.set_network() put them in eval mode each epoch).
        super().train(mode)
        if mode:
            for branch in self.branches[:-1]:
                branch.eval()
            if not self.train_shared:
                self.shared.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.shared(x)
        features = torch.cat([branch(h) for branch in self.branches], dim=1)
        return features.flatten(1) if self.flatten else features


def add_branch(model: IncrementalNet, *, shared_blocks: int | None = 0) -> ExpandingBackbone:
    """Grow ``model`` by one branch, in place, and widen its head to the new features.

    The first call turns the model's backbone into an ``ExpandingBackbone`` whose first branch
    is the backbone's last blocks (``shared_blocks`` of its blocks shared; 0: DER, the whole
    backbone per task; None: ``default_shared_blocks``), then grows it. The head's rows for
    the new features start at nn.Linear's initialisation, old rows keep their weights over the
    old features (PyCIL's ``DERNet.update_fc``).
    """
    backbone = model.backbone
    if not isinstance(backbone, ExpandingBackbone):
        backbone = _as_expanding(model, shared_blocks)
        model.backbone = backbone
    backbone.grow()
    model.head.add_features(backbone.branch_dim)
    return backbone


def _as_expanding(model: IncrementalNet, shared_blocks: int | None) -> ExpandingBackbone:
    """The model's backbone (the suite's pixel normalisation, then the net) as a stem plus one
    branch; the normalisation always sits in the stem, so it runs once per image."""
    wrapped = model.backbone
    if not isinstance(wrapped, nn.Sequential) or not hasattr(wrapped, "net"):
        raise TypeError("add_branch expects a model built by the harness (pixels, then net)")
    try:
        blocks = backbone_blocks(wrapped.net)
    except TypeError:
        if shared_blocks != 0:
            raise
        blocks = [wrapped.net]  # a whole backbone per branch needs no split
    split = default_shared_blocks(wrapped.net) if shared_blocks is None else shared_blocks
    flatten = isinstance(blocks[-1], nn.Flatten)
    if flatten:
        blocks = blocks[:-1]
    if not 0 <= split < len(blocks):
        raise ValueError(f"shared_blocks={split}: the backbone has {len(blocks)} blocks")
    expanding = ExpandingBackbone(
        nn.Sequential(wrapped.pixels, *blocks[:split]),
        nn.Sequential(*blocks[split:]),
        model.head.in_features,
        train_shared=split > 0,
        flatten=flatten,
    )
    setattr(expanding, BACKBONE_NAME_ATTRIBUTE, model.backbone_name)
    return expanding


def backbone_blocks(net: nn.Module) -> list[nn.Module]:
    """The backbone as the sequence of blocks its forward pass runs, in order.

    ``nn.Sequential`` backbones (the compact CNNs) are their children; a torchvision ResNet is
    its stem, four stages, pooling and flattening (its ``fc`` is the identity in a backbone);
    a torchvision MobileNetV2 its feature blocks, pooling and flattening.
    """
    if isinstance(net, nn.Sequential):
        return list(net.children())
    if isinstance(getattr(net, "features", None), nn.Sequential) and isinstance(
        getattr(net, "classifier", None), nn.Identity
    ):  # torchvision's MobileNetV2: features, then average pooling and flattening
        return [*net.features.children(), nn.AdaptiveAvgPool2d(1), nn.Flatten(1)]
    names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool")
    if all(hasattr(net, name) for name in names) and isinstance(getattr(net, "fc", None),
                                                                nn.Identity):  # fmt: skip
        return [*(getattr(net, name) for name in names), nn.Flatten(1)]
    raise TypeError(
        f"{type(net).__name__} cannot be split into blocks: shared stems need a backbone that "
        "is an nn.Sequential, a torchvision ResNet or a torchvision MobileNetV2"
    )


def default_shared_blocks(net: nn.Module) -> int:
    """Where MEMO splits by default: before the last stage, as PyCIL's memo_resnet32 shares
    all but its last stage. For a ResNet, before ``layer4``; for a sequential net, after its
    last fixed-size pooling layer (compact_cnn: the two 32-channel blocks and their pool);
    for a MobileNetV2, before its last four feature blocks (its 160- and 320-channel stages
    and the final 1x1 convolution)."""
    blocks = backbone_blocks(net)
    if hasattr(net, "layer4"):
        return blocks.index(net.layer4)
    if not isinstance(net, nn.Sequential):
        return len(net.features) - 4
    pools = [i for i, b in enumerate(blocks) if isinstance(b, nn.MaxPool2d | nn.AvgPool2d)]
    return pools[-1] + 1 if pools else len(blocks) // 2


def expanding_backbone(model: nn.Module) -> ExpandingBackbone:
    """The grown backbone of ``model`` (an error before its first branch was added)."""
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, ExpandingBackbone):
        raise TypeError("the model has not grown a branch yet")
    return backbone


class Captured:
    """The last output ``output_of`` saw."""

    value: torch.Tensor


@contextmanager
def output_of(module: nn.Module) -> Iterator[Captured]:
    """The output of ``module``'s forward passes inside the block (e.g. the newest branch's
    features for DER's auxiliary classifier), without a second forward pass."""
    captured = Captured()

    def keep(_module: nn.Module, _args: tuple, output: torch.Tensor) -> None:
        captured.value = output

    handle = module.register_forward_hook(keep)
    try:
        yield captured
    finally:
        handle.remove()
