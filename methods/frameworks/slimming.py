"""What the paper's two pruning frameworks share (pre-pruning and post-pruning): the
Network Slimming knobs and their checks, and the set-up of a prunable full model.

Both prune channels by BatchNorm scale (Liu et al., ICCV 2017; ``harness.training.pruning``)
after sparsity training with an L1 penalty on the scales. Registers nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from harness.api.adapters import Framework, LearnerContext
from harness.api.config import ranged
from harness.training.pruning import DEFAULT_MAX_LAYER_RATIO, check_prunable, check_ratio


@dataclass(frozen=True)
class SlimmingConfig:
    # ratio: fraction of prunable channels removed (harness.training.pruning.prune_channels);
    # 0.4 is the paper's headline pruning ratio.
    ratio: float = ranged(
        0.4, above=0, below=DEFAULT_MAX_LAYER_RATIO
    )  # check_ratio's per-layer cap
    # sparsity: lambda of the L1 penalty on BN scales; 1e-4 is Network Slimming's value for
    # VGG-style networks (Liu et al., 2017, Sec. 5.2) and their code's default.
    sparsity: float = ranged(1e-4, at_least=0)


class SlimmingFramework(Framework):
    """A framework that prunes the strategy's full model (or a copy of it) by BN scale.

    Sets up, in this order: the strategy, the full model (the suite's backbone and weights),
    and the check that the backbone has BatchNorm scales to prune by.
    """

    name: ClassVar[str]  # the registered name, for error messages
    compresses = True

    def __init__(self, config: SlimmingConfig, *, context: LearnerContext) -> None:
        super().__init__(config, context=context)
        check_ratio(config.ratio)
        self.strategy = context.make_strategy()
        self.model = context.build_model()
        check_prunable(self.model, framework=self.name, backbone=context.backbone)

    def example_input(self) -> torch.Tensor:
        """Zeros of one image's shape: tracing and FLOP counting need a shape, not values,
        nor a draw from the global RNG."""
        return torch.zeros(self.context.input_shape, device=self.context.device)

    def inference_model(self) -> nn.Module:
        return self.serving()
