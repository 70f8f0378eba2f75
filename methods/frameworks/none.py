"""No compression: the model that learns is the model that serves inference."""

from __future__ import annotations

from torch import nn

from harness.api.adapters import FRAMEWORKS, Framework, LearnerContext, learn_task_with_strategy
from harness.data.stream import TaskData


@FRAMEWORKS.register("none")
class NoCompression(Framework):
    """The plain CL method: one model (the suite's backbone), trained by the strategy."""

    def __init__(self, config: object, *, context: LearnerContext) -> None:
        super().__init__(config, context=context)
        self.strategy = context.make_strategy()
        self.model = context.build_model()

    def learn(self, task: TaskData) -> None:
        learn_task_with_strategy(self.context, self.model, self.strategy, task)
        self.served = self.strategy.predictor(self.model)

    def inference_model(self) -> nn.Module:
        return self.serving()
