"""Pre-pruning (arXiv 2505.08327, pruning-based framework): prune once on task 1, then learn on.

Task 1 runs Network Slimming (Liu et al., ICCV 2017) on the suite's (pre-trained) backbone:
fine-tune with an L1 penalty on BatchNorm scales, remove the globally smallest-|gamma| channels
(``harness.training.pruning``), fine-tune the pruned model. Every later task is learned by the CL
strategy on the pruned model, which alone ever serves inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.api.adapters import (
    FRAMEWORKS,
    LearnerContext,
    Strategy,
    learn_task_with_strategy,
    start_task,
    train_on_task,
)
from harness.api.config import ranged
from harness.data.stream import TaskData
from harness.training.budget import DEFAULT_ROLE
from harness.training.pruning import PruningSummary, bn_scale_l1, prune_channels
from methods.frameworks.slimming import SlimmingConfig, SlimmingFramework


@dataclass(frozen=True)
class PrePruningConfig(SlimmingConfig):
    # ratio and sparsity: see SlimmingConfig (0.4, the paper's ratio; 1e-4, Network Slimming's).
    # sparsity_epochs / finetune_epochs: the two task-1 stages; None means the suite's task-1
    # budget (training.first_task_epochs, else training.epochs) for each, i.e. the plain
    # task-1 budget twice (the paper fine-tunes both before and after pruning; it gives no
    # epoch counts for our suites).
    # sparsity_epochs may be 0 (pruning by the initial or pre-trained |gamma|); finetune_epochs,
    # the pruned model's task-1 learning proper, needs at least 1.
    sparsity_epochs: int | None = ranged(None, at_least=0, integer=True)
    finetune_epochs: int | None = ranged(None, at_least=1, integer=True)


@FRAMEWORKS.register("prepruning")
class PrePruning(SlimmingFramework):
    """Pre-pruning of Liu, Huttunen & Honkala (arXiv 2505.08327), on any CL strategy.

    Task 1, with the strategy's hooks run once (``begin_task`` before stage 1, ``end_task``
    after stage 2, so e.g. exemplars are chosen with the pruned model):
    1. train with the strategy's loss plus the BN-scale L1 penalty (``sparsity``);
    2. prune to ``ratio`` by |gamma| (global; the classifier keeps its outputs);
    3. train the pruned model with the strategy's loss (its task-1 learning proper).
    Tasks 2..T: the strategy learns on the pruned model as usual, without the penalty.

    Deviations: the paper's first stage fine-tunes an ImageNet-pre-trained ResNet-34 or
    MobileNetV2; here the model is whatever the suite gives (random init for the offline
    suites), so stage 1 is also its first training. Task 1 gets two training budgets (the
    other tasks one), as the paper's procedure needs; ``report()`` says so. Strategies must not
    keep references to parameters from ``begin_task`` into training (pruning replaces them).
    """

    Config = PrePruningConfig
    name = "prepruning"

    def __init__(self, config: PrePruningConfig, *, context: LearnerContext) -> None:
        super().__init__(config, context=context)
        self.pruning: PruningSummary | None = None

    def learn(self, task: TaskData) -> None:
        if self.pruning is not None:
            learn_task_with_strategy(self.context, self.model, self.strategy, task)
        else:
            self._learn_first_task_and_prune(task)
        self.served = self.strategy.predictor(self.model)

    def _learn_first_task_and_prune(self, task: TaskData) -> None:
        # The strategy's begin_task / end_task run once, around both stages and the pruning.
        cfg, ctx, model, strategy = self.config, self.context, self.model, self.strategy
        start_task(ctx, model, strategy, task)
        train_on_task(ctx, model, strategy, task, epochs=self._epochs(cfg.sparsity_epochs),
                      after_backward=bn_scale_l1(cfg.sparsity), extra_stages=False)  # fmt: skip
        self.pruning = prune_channels(model, ratio=cfg.ratio, example_inputs=self.example_input())
        train_on_task(ctx, model, strategy, task, epochs=self._epochs(cfg.finetune_epochs))
        strategy.end_task(model, task)

    def _epochs(self, configured: int | None) -> int:
        return self.context.training.epochs_for_task(0) if configured is None else configured

    def declared_epochs(self, task_index: int) -> dict[str, int]:
        """Task 1 trains twice (sparsity stage, then the pruned model), later tasks once."""
        if task_index > 0:
            return super().declared_epochs(task_index)
        cfg = self.config
        epochs = self._epochs(cfg.sparsity_epochs) + self._epochs(cfg.finetune_epochs)
        return {DEFAULT_ROLE: epochs, **self.strategy_stages(self.strategy, DEFAULT_ROLE, 0)}

    @classmethod
    def refusal(cls, strategy: type[Strategy]) -> str | None:
        if strategy.network_growth is None:
            return None
        return (
            f"pre-pruning prunes the task-1 network once and learns every later task on it, "
            f"but this strategy {strategy.network_growth} its network after task 1, so what "
            f"serves is not the network pre-pruning pruned (post-pruning prunes what serves)"
        )

    def report(self) -> dict[str, Any]:
        """The pruning achieved on task 1 (network incl. head, batch 1) and task-1 epochs."""
        cfg = self.config
        return {
            "pruning": None if self.pruning is None else self.pruning.to_dict(),
            "task1_epochs": {
                "sparsity": self._epochs(cfg.sparsity_epochs),
                "finetune": self._epochs(cfg.finetune_epochs),
            },
        }
