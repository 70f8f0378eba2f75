"""A backbone plus a classifier head that grows as classes arrive.

Labels inside the harness are positions in the suite's class order, so the classes of task t
are a contiguous block and the head only ever appends outputs.
"""

from __future__ import annotations

from copy import deepcopy

import torch
from torch import nn

# The attribute naming a backbone module with its registered name. It sits on the backbone
# itself, so a predictor that wraps the backbone without its IncrementalNet (iCaRL's
# nearest-mean classifier) still says what serves. Plain data: no effect on weights or FLOPs.
BACKBONE_NAME_ATTRIBUTE = "cilbench_backbone_name"


class ClassifierHead(nn.Module):
    """Marker base class: parameters of any ``ClassifierHead`` count as "head" in cost reports."""


class IncrementalLinearHead(ClassifierHead):
    """A linear classifier whose output dimension grows by ``add_classes``."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self._initial_in_features = in_features
        self.fc: nn.Linear | None = None

    @property
    def in_features(self) -> int:
        # The live layer wins: pruning may have shrunk the features since creation.
        return self._initial_in_features if self.fc is None else self.fc.in_features

    @property
    def num_classes(self) -> int:
        return 0 if self.fc is None else self.fc.out_features

    def add_classes(self, count: int) -> None:
        """Append ``count`` outputs, keeping the old rows (old classes) unchanged."""
        new_fc = nn.Linear(self.in_features, self.num_classes + count)
        if self.fc is not None:
            device = self.fc.weight.device
            new_fc = new_fc.to(device)
            with torch.no_grad():
                new_fc.weight[: self.num_classes] = self.fc.weight
                new_fc.bias[: self.num_classes] = self.fc.bias
        self.fc = new_fc

    def add_features(self, count: int) -> None:
        """Append ``count`` input features (a grown backbone's new branch): the old weights keep
        their columns, the new columns start at nn.Linear's initialisation."""
        if self.fc is None:
            self._initial_in_features += count
            return
        old = self.fc
        new_fc = nn.Linear(old.in_features + count, old.out_features).to(old.weight.device)
        with torch.no_grad():
            new_fc.weight[:, : old.in_features] = old.weight
            new_fc.bias.copy_(old.bias)
        self.fc = new_fc

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.fc is None:
            raise RuntimeError("the head has no classes yet: call add_classes() before forward()")
        return self.fc(features)


class IncrementalNet(nn.Module):
    """``backbone`` maps images to ``(N, out_features)`` features; ``head`` maps them to logits."""

    def __init__(
        self, backbone: nn.Module, feature_dim: int, *, backbone_name: str | None = None
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = IncrementalLinearHead(feature_dim)
        # The registered name the harness built it from: records read what serves from here.
        self.backbone_name = backbone_name
        setattr(backbone, BACKBONE_NAME_ATTRIBUTE, backbone_name)

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    def add_classes(self, count: int) -> None:
        self.head.add_classes(count)

    def frozen_copy(self) -> IncrementalNet:
        """A deep copy in eval mode with gradients off: the "old model" distillation reads."""
        copy = deepcopy(self).eval()
        for parameter in copy.parameters():
            parameter.requires_grad_(False)
        return copy

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def backbone_names(model: nn.Module) -> list[str]:
    """Names of the backbones inside ``model`` (a served predictor wraps one or more nets or
    their backbones), in order of appearance; "unknown" for one built without a name."""
    names = [
        getattr(m, BACKBONE_NAME_ATTRIBUTE) or "unknown"
        for m in model.modules()
        if hasattr(m, BACKBONE_NAME_ATTRIBUTE)
    ]
    return list(dict.fromkeys(names))
