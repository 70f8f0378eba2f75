"""Training: the trainer every method shares, the metered training budget, exemplar memory,
distillation losses and structured pruning. May import data/, models/, records/; never run/.

``from harness.training import Trainer, TrainingConfig`` (the old module's path) still works
for one release, with a deprecation warning: import them from ``harness.training.trainer``.
"""

from __future__ import annotations

from typing import Any

_MOVED_TO_TRAINER = {"Trainer", "TrainingConfig"}


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_TRAINER:
        from harness.moved import warn_moved
        from harness.training import trainer

        warn_moved(f"harness.training.{name}", f"harness.training.trainer.{name}")
        return getattr(trainer, name)
    raise AttributeError(f"module 'harness.training' has no attribute {name!r}")
