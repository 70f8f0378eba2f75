"""Broken on purpose: a config that quietly turns NaN into its default instead of refusing it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness.api import STRATEGIES, IncrementalNet, Strategy, TaskData


@dataclass(frozen=True)
class ForgivingConfig:
    label_smoothing: float = 0.1

    def __post_init__(self) -> None:
        if not math.isfinite(self.label_smoothing):  # "helpful", and hides a typo'd sweep
            object.__setattr__(self, "label_smoothing", 0.1)


@STRATEGIES.register("broken_forgiving_config")
class Forgiving(Strategy):
    """Fine-tuning with label smoothing; everything but its config keeps the contract."""

    Config = ForgivingConfig
    # Like finetune: 100% on the newest task and 0% on the others on the tiny suite, any seed.
    seed_sensitive_on_tiny_suite = False

    def loss(
        self, model: IncrementalNet, x: torch.Tensor, y: torch.Tensor, task: TaskData
    ) -> torch.Tensor:
        return F.cross_entropy(model(x), y, label_smoothing=self.config.label_smoothing)
