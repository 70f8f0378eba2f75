"""A minimal CL strategy for cilbench: experience replay with a weighted replay loss.

Copy this package, rename it and change what the strategy does; CONTRIBUTING.md walks through
the rest (install, ``cilbench check-adapter my_strategy``, a run, the pull request).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness.api import STRATEGIES, IncrementalNet, Strategy, TaskData
from harness.api.config import ranged

# Mixed into each class's generator seed, so the exemplar choice differs from other strategies'.
_SEED_MIX = 7919


@dataclass(frozen=True)
class MyStrategyConfig:
    # replay_weight: how much a replayed exemplar's loss counts against a new image's. 1.0 is
    # plain experience replay (Chaudhry et al., 2019, "On Tiny Episodic Memories in Continual
    # Learning"). `ranged` declares the allowed values: `cilbench run --set
    # strategy.replay_weight=-1` (or NaN) is refused before anything runs.
    replay_weight: float = ranged(1.0, at_least=0)


@STRATEGIES.register("my_strategy")
class MyStrategy(Strategy):
    """Experience replay (Chaudhry et al., 2019) with a weight on the replayed samples' loss.

    After each task a random sample of each new class is kept in the harness's exemplar memory
    (``self.memory``: the suite's budget, split evenly over the classes seen so far); the
    next tasks train on their own data plus those exemplars (``Strategy.training_data``, not
    overridden). Deviations from the paper: exemplars are chosen once per task, at its end,
    instead of by reservoir sampling over the stream; the optimiser and schedule are the
    harness's, as for every method.
    """

    Config = MyStrategyConfig

    def loss(
        self, model: IncrementalNet, x: torch.Tensor, y: torch.Tensor, task: TaskData
    ) -> torch.Tensor:
        """Cross-entropy over every class seen so far; replayed samples (labels of earlier
        tasks) weigh ``replay_weight``."""
        per_sample = F.cross_entropy(model(x), y, reduction="none")
        replayed = y < task.num_old_classes
        weights = torch.where(replayed, self.config.replay_weight, 1.0)
        return (per_sample * weights).sum() / len(y)

    @torch.no_grad()
    def end_task(self, model: IncrementalNet, task: TaskData) -> None:
        """Keep a random sample of each new class, after cutting the earlier classes down to
        the new quota (``make_room``): the memory refuses anything over the suite's budget."""
        info = task.info
        quota = self.memory.make_room(
            info.num_seen_classes, new_classes=info.classes, method="my_strategy"
        )
        for label in info.classes:
            images = task.train.x[task.train.y == label]
            order = torch.randperm(len(images), generator=_class_generator(label))
            self.memory.store(label, images[order[:quota].to(images.device)])


def _class_generator(label: int) -> torch.Generator:
    """A generator seeded by the trial's seed (the harness sets ``torch.initial_seed()``) and
    the class: the same seed picks the same exemplars, in every strategy instance that shares
    the memory (a KD framework's teacher and student)."""
    return torch.Generator().manual_seed((torch.initial_seed() * _SEED_MIX + label) % 2**63)
