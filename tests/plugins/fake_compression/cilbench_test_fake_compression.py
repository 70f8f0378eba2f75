"""Broken on purpose: claims to compress, but zeroes weights instead of removing channels."""

from __future__ import annotations

import copy

import torch
from torch import nn

from harness.api import FRAMEWORKS, Framework, LearnerContext, TaskData, learn_task_with_strategy


@FRAMEWORKS.register("broken_fake_compression")
class FakeCompression(Framework):
    """Serves a copy of the model with half of every conv's weights set to zero (unstructured
    magnitude pruning): as many dense multiply-adds and parameters as the plain model."""

    compresses = True

    def __init__(self, config: object, *, context: LearnerContext) -> None:
        super().__init__(config, context=context)
        self.strategy = context.make_strategy()
        self.model = context.build_model()

    def learn(self, task: TaskData) -> None:
        learn_task_with_strategy(self.context, self.model, self.strategy, task)
        sparse = copy.deepcopy(self.model)
        with torch.no_grad():
            for module in sparse.modules():
                if isinstance(module, nn.Conv2d):
                    weight = module.weight
                    weight[weight.abs() < weight.abs().median()] = 0.0
        self.served = self.strategy.predictor(sparse)

    def inference_model(self) -> nn.Module:
        return self.serving()
