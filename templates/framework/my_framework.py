"""A minimal compression framework for cilbench: prune a copy after every task, serve the copy.

Copy this package, rename it and change what the framework does; CONTRIBUTING.md walks through
the rest (install, ``cilbench check-adapter my_framework``, a run, the pull request).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.api import FRAMEWORKS, Framework, LearnerContext, TaskData, learn_task_with_strategy
from harness.api.config import ranged
from harness.training.pruning import (
    DEFAULT_MAX_LAYER_RATIO,
    PruningSummary,
    check_prunable,
    prune_channels,
)

# The role the harness meters the pruned copy's fine-tuning under: every model a framework
# trains has a role, and its epochs are declared per task (``declared_epochs``).
PRUNED_COPY = "pruned_copy"


@dataclass(frozen=True)
class MyFrameworkConfig:
    # ratio: the fraction of prunable channels removed from the copy (global BatchNorm-scale
    # ranking, Network Slimming); 0.4 is arXiv 2505.08327's headline ratio. Below the
    # per-layer guard (harness.training.pruning.DEFAULT_MAX_LAYER_RATIO).
    ratio: float = ranged(0.4, above=0, below=DEFAULT_MAX_LAYER_RATIO)
    # finetune_epochs: fine-tuning of each pruned copy. Our choice: 2 epochs recover most of
    # the accuracy pruning costs on the tiny and digits suites, for little extra training.
    finetune_epochs: int = ranged(2, at_least=1, integer=True)


@FRAMEWORKS.register("my_framework")
class MyFramework(Framework):
    """Prune-and-fine-tune after every task (Network Slimming's pruning, Liu et al., ICCV 2017,
    applied as arXiv 2505.08327's post-pruning does), simplified.

    Per task: the strategy learns the task on the full model, exactly as without compression;
    a copy of the full model loses ``ratio`` of its channels (``prune_channels``: whole
    channels, so FLOPs and parameters drop) and is fine-tuned for ``finetune_epochs`` with
    cross-entropy on the data the full model learned from; the copy serves. Deviations from
    post-pruning: no sparsity penalty while learning and no distillation from the full model
    while fine-tuning (``methods/frameworks/postpruning.py`` has both).
    """

    Config = MyFrameworkConfig
    compresses = True  # promises a cheaper served model: `cilbench check-adapter` holds it to it

    def __init__(self, config: MyFrameworkConfig, *, context: LearnerContext) -> None:
        super().__init__(config, context=context)
        self.strategy = context.make_strategy()  # the CL strategy this framework wraps
        self.model = context.build_model()  # the suite's backbone; the full model
        # Refuse, before anything trains, a backbone with no BatchNorm scales to rank by.
        check_prunable(self.model, framework="my_framework", backbone=context.backbone)
        self.pruning: list[PruningSummary] = []

    def learn(self, task: TaskData) -> None:
        learned = self.strategy.learned_data(task)  # read before end_task updates the memory
        learn_task_with_strategy(self.context, self.model, self.strategy, task)
        copy_ = copy.deepcopy(self.model)
        example = torch.zeros(self.context.input_shape, device=self.context.device)
        self.pruning.append(prune_channels(copy_, ratio=self.config.ratio, example_inputs=example))

        def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(model(x), y)

        self.context.fit(
            copy_, learned, loss_fn, epochs=self.config.finetune_epochs, role=PRUNED_COPY
        )
        # The module the harness evaluates and costs: set here, handed out until the next task.
        self.served = self.strategy.predictor(copy_)

    def inference_model(self) -> nn.Module:
        return self.serving()

    def declared_epochs(self, task_index: int) -> dict[str, int]:
        """The full model's epochs (and the strategy's extra stages), plus the copy's."""
        return {**super().declared_epochs(task_index), PRUNED_COPY: self.config.finetune_epochs}

    def report(self) -> dict[str, Any]:
        """What the record keeps beside the measured cost: the pruning of the copy that serves."""
        return {"pruning": self.pruning[-1].to_dict() if self.pruning else None}
