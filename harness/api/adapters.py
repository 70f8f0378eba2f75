"""The adapter contract: CL strategies and compression frameworks, and their registries.

Two kinds of adapters compose (see HOUSE_STYLE.md):

- a ``Strategy`` says how a model learns a task: its loss, its exemplar memory, its classifier;
- a ``Framework`` decides which model is trained and which one serves inference, and when
  compression (pruning, distillation) happens, reusing a strategy's pieces.

The harness owns everything else. A framework sees one ``TaskData`` at a time (the current
task's train and validation splits, never test data) and must return, through
``inference_model()``, the one ``nn.Module`` that serves predictions: the harness evaluates
exactly that module and measures its FLOPs, parameters and latency, so the figures on the
leaderboard describe what produced the accuracy.

A new adapter is one file under ``methods/`` registered with ``@STRATEGIES.register`` or
``@FRAMEWORKS.register``; out-of-tree packages use the entry-point groups
``cilbench.strategies`` and ``cilbench.frameworks``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from harness.api.registry import Registry
from harness.api.search_space import Domain
from harness.data.stream import Split, TaskData
from harness.models.incremental_net import IncrementalNet
from harness.training.budget import DEFAULT_ROLE
from harness.training.exemplars import ExemplarMemory
from harness.training.trainer import TrainingConfig


@dataclass(frozen=True)
class NoConfig:
    """Config of an adapter without hyperparameters."""


LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


class BuildModel(Protocol):
    """``LearnerContext.build_model``: a fresh model of the suite's pixel normalisation, the
    backbone (default: the trial's) with the suite's weights, and an empty incremental head."""

    def __call__(self, backbone: str | None = None) -> IncrementalNet: ...


class Fit(Protocol):
    """``LearnerContext.fit``: the harness's training loop (``Trainer.fit``), the same for all.

    Trains ``model`` in place on ``data`` with ``loss_fn`` for ``epochs`` (default: the suite's
    for the task), optionally only ``parameters``; ``after_backward`` runs between backward and
    the optimiser step (e.g. a sparsity penalty); ``sample_weights`` draw batches by weight;
    every epoch is metered under ``role``, with ``extra_samples(batch size)`` more samples a
    step where the loss draws some of its own.
    """

    def __call__(
        self,
        model: nn.Module,
        data: Split,
        loss_fn: LossFn,
        *,
        epochs: int | None = None,
        parameters: list[nn.Parameter] | None = None,
        after_backward: Callable[[nn.Module], None] | None = None,
        sample_weights: torch.Tensor | None = None,
        role: str = DEFAULT_ROLE,
        extra_samples: Callable[[int], int] | None = None,
    ) -> None: ...


class StageFit(Protocol):
    """What ``Strategy.run_extra_stages`` trains a stage with: the harness's ``fit``, metered
    under ``<role>/<stage>``; ``epochs`` defaults to what ``extra_stages`` declared."""

    def __call__(
        self,
        stage: str,
        model: nn.Module,
        data: Split,
        loss_fn: LossFn,
        *,
        parameters: list[nn.Parameter] | None = None,
        epochs: int | None = None,
    ) -> None: ...


class Strategy:
    """How a model learns the next task. Subclasses override only the hooks they need.

    ``reference`` marks bounds that are not methods ("lower_bound", "upper_bound"); only a
    reference strategy may ask for ``unbounded_memory`` (e.g. joint training keeps all data).
    """

    Config: ClassVar[type] = NoConfig
    # Config fields ``cilbench tune`` may search, with their distributions
    # (harness.api.search_space); empty: nothing to tune.
    search_space: ClassVar[Mapping[str, Domain]] = {}
    reference: ClassVar[str | None] = None
    unbounded_memory: ClassVar[bool] = False
    # Whether its accuracy matrices on the shipped tiny suite move with the seed: the contract
    # tests then check that a trial's seed reaches training. A strategy that ends at the same
    # accuracies whatever the batch order there (all 100%, or only the newest task) says so.
    seed_sensitive_on_tiny_suite: ClassVar[bool] = True

    # How the strategy changes its network's shape after task 1, beyond the growing head:
    # None (it does not), "expands" (adds a branch per task and serves them all: DER, MEMO) or
    # "rebuilds" (replaces the network each task: FOSTER's compression). A framework may
    # refuse a strategy whose network does not stay the one it compressed
    # (``Framework.refusal``).
    network_growth: ClassVar[str | None] = None

    def __init__(self, config: Any, *, memory: ExemplarMemory) -> None:
        self.config = config
        self.memory = memory

    # The hooks, in the order the harness calls them on each task. ``task`` is always the
    # task's ``TaskData`` (its facts: ``task.index``, ``task.classes``, ``task.num_old_classes``;
    # its ``train`` and ``val`` splits); ``model`` is the framework's ``IncrementalNet``.

    def begin_task(self, model: IncrementalNet, task: TaskData) -> None:
        """Called after the head has grown for ``task`` and before training on it."""

    def training_data(self, task: TaskData) -> Split:
        """What to train on: the task's data plus the memory's exemplars of earlier classes.

        Exemplars of the current task's classes are left out: a memory shared with another
        strategy instance (a KD framework's teacher) may already hold them, and they are in
        ``task.train`` anyway.
        """
        old = self.memory.as_split(range(task.info.num_old_classes))
        return task.train if old is None else Split.concat([task.train, old])

    def learned_data(self, task: TaskData) -> Split:
        """Everything the model learns the task from: ``training_data`` plus any data the
        strategy replays outside it (DER++ draws its exemplars in ``loss``). A framework that
        fine-tunes a compressed copy of the model (post-pruning) fine-tunes it on this."""
        return self.training_data(task)

    def replayed_samples(self, batch_size: int, task: TaskData) -> int:
        """Samples ``loss`` draws beyond the batch of ``batch_size`` it is given (e.g. DER++'s
        replay draws): the harness's meter counts them as training samples too."""
        return 0

    def sample_weights(self, data: Split, task: TaskData) -> torch.Tensor | None:
        """Per-sample weights for drawing batches from ``data`` (None: plain shuffling)."""
        return None

    def loss(
        self, model: IncrementalNet, x: torch.Tensor, y: torch.Tensor, task: TaskData
    ) -> torch.Tensor:
        """Training loss of one batch; the default is cross-entropy over all seen classes."""
        return F.cross_entropy(model(x), y)

    def training_modules(self) -> list[nn.Module]:
        """Modules trained beside the model but never served (DER's auxiliary classifier):
        their parameters join the optimiser of the task's main stage."""
        return []

    def extra_stages(self, task_index: int, epochs: int) -> dict[str, int]:
        """Training stages this strategy runs after the main one on task ``task_index``
        (0-based), by name, with their epochs (``epochs``: the suite's for the task), e.g.
        BiC's ``{"bias": epochs}`` from task 2 on. Each is metered as ``<role>/<stage>`` and
        frameworks declare them (``Framework.declared_epochs``), so the budget still binds."""
        return {}

    def run_extra_stages(self, model: IncrementalNet, task: TaskData, stage: StageFit) -> None:
        """Runs the stages ``extra_stages`` declared, after the main stage and before
        ``end_task``, each through ``stage`` (the harness's training loop, metered)."""

    def end_task(self, model: IncrementalNet, task: TaskData) -> None:
        """Called after training on ``task`` (update exemplars, snapshot models, ...)."""

    def predictor(self, model: IncrementalNet) -> nn.Module:
        """The module mapping images to scores over all seen classes (e.g. NME for iCaRL)."""
        return model


@dataclass
class LearnerContext:
    """What the harness hands a framework: factories and the shared training loop.

    ``fit`` is the harness's training loop (suite-fixed budget, seeded batch order), so
    frameworks differ in what they train, not in how many steps they get.
    """

    build_model: BuildModel
    backbone: str  # the trial's backbone: what build_model() builds by default
    make_strategy: Callable[[], Strategy]
    fit: Fit
    training: TrainingConfig
    device: torch.device
    input_shape: tuple[int, ...]  # one image, batch dimension included: (1, C, H, W)


class Framework:
    """Which model is trained, which model serves inference, and when compression happens.

    ``compresses`` promises a cheaper inference model than the plain strategy's; the contract
    tests hold every such framework to it.
    """

    Config: ClassVar[type] = NoConfig
    search_space: ClassVar[Mapping[str, Domain]] = {}  # as Strategy.search_space
    compresses: ClassVar[bool] = False

    def __init__(self, config: Any, *, context: LearnerContext) -> None:
        self.config = config
        self.context = context
        # The module that serves predictions, set by ``learn()``; ``serving()`` hands it out.
        self.served: nn.Module | None = None

    def learn(self, task: TaskData) -> None:
        raise NotImplementedError

    def inference_model(self) -> nn.Module:
        """The module that serves predictions after the last ``learn()``: the same object on
        every call until the next ``learn()``. The harness evaluates it and then costs that
        very object, and refuses a framework that hands out another one on a second call."""
        raise NotImplementedError

    def serving(self) -> nn.Module:
        """``self.served`` once ``learn()`` has set it (a helper for ``inference_model``)."""
        if self.served is None:
            raise RuntimeError(f"{type(self).__name__}: no task learned yet, nothing serves")
        return self.served

    @classmethod
    def refusal(cls, strategy: type[Strategy]) -> str | None:
        """Why this framework cannot wrap ``strategy`` (one line), or None when it can: the
        trial is refused before anything trains."""
        return None

    def strategy_stages(self, strategy: Strategy, role: str, task_index: int) -> dict[str, int]:
        """The epochs of ``strategy``'s extra stages on a task, keyed by the role the harness
        meters them under (``<role>/<stage>``), for ``declared_epochs``."""
        epochs = self.context.training.epochs_for_task(task_index)
        stages = strategy.extra_stages(task_index, epochs)
        return {stage_role(role, name): count for name, count in stages.items()}

    def report(self) -> dict[str, Any]:
        """Framework facts for the record (e.g. achieved pruning, teacher cost and time)."""
        return {}

    def declared_epochs(self, task_index: int) -> dict[str, int]:
        """Epochs each model trains on task ``task_index`` (0-based), by role: what the
        harness's meter must count (``harness.training.budget``). Frameworks that train more
        than one model, or in more than one stage, say so here. The default: one model under
        ``model``, trained by ``self.strategy`` (with its extra stages) when there is one."""
        declared = {DEFAULT_ROLE: self.context.training.epochs_for_task(task_index)}
        strategy = getattr(self, "strategy", None)
        if isinstance(strategy, Strategy):
            declared.update(self.strategy_stages(strategy, DEFAULT_ROLE, task_index))
        return declared


def stage_role(role: str, stage: str) -> str:
    """The meter's role for a strategy's extra ``stage`` of the model trained under ``role``."""
    return f"{role}/{stage}"


def start_task(
    context: LearnerContext, model: IncrementalNet, strategy: Strategy, task: TaskData
) -> None:
    """Grow the head for the task's classes and let the strategy prepare (once per task)."""
    model.add_classes(len(task.info.classes))
    model.to(context.device)
    strategy.begin_task(model, task)


def train_on_task(
    context: LearnerContext,
    model: IncrementalNet,
    strategy: Strategy,
    task: TaskData,
    *,
    extra_loss: LossFn | None = None,
    epochs: int | None = None,
    after_backward: Callable[[nn.Module], None] | None = None,
    role: str = DEFAULT_ROLE,
    extra_stages: bool = True,
) -> None:
    """One training stage on the strategy's data with the strategy's loss, then the
    strategy's own extra stages (BiC's bias correction, FOSTER's compression) unless
    ``extra_stages`` is False (a framework's preliminary stage, e.g. pre-pruning's sparsity
    training, which the extra stages must not follow).

    ``extra_loss`` adds a framework's term (e.g. distillation from a teacher) to the
    strategy's loss on the same batch; ``epochs`` (default: the suite's for this task) and
    ``after_backward`` (e.g. a sparsity penalty) go to the harness's training loop.
    """

    def loss_fn(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = strategy.loss(m, x, y, task)
        return loss if extra_loss is None else loss + extra_loss(m, x, y)

    data = strategy.training_data(task)
    extras = [p for module in strategy.training_modules() for p in module.parameters()]
    context.fit(
        model,
        data,
        loss_fn,
        epochs=context.training.epochs_for_task(task.info.index) if epochs is None else epochs,
        parameters=[*model.parameters(), *extras] if extras else None,
        after_backward=after_backward,
        sample_weights=strategy.sample_weights(data, task),
        role=role,
        extra_samples=lambda batch_size: strategy.replayed_samples(batch_size, task),
    )
    if extra_stages:
        run_stages(context, model, strategy, task, role=role)


def run_stages(
    context: LearnerContext, model: IncrementalNet, strategy: Strategy, task: TaskData, *,
    role: str = DEFAULT_ROLE,
) -> None:  # fmt: skip
    """The strategy's extra stages on ``task`` (``Strategy.run_extra_stages``), each through
    the harness's loop, metered under ``<role>/<stage>``; an undeclared stage fails at once."""
    declared = strategy.extra_stages(
        task.info.index, context.training.epochs_for_task(task.info.index)
    )
    if not declared:
        return

    def stage_fit(
        stage: str, m: nn.Module, data: Split, loss_fn: LossFn, *,
        parameters: list[nn.Parameter] | None = None, epochs: int | None = None,
    ) -> None:  # fmt: skip
        if stage not in declared:
            raise ValueError(
                f"{type(strategy).__name__} ran stage {stage!r} on task {task.info.index + 1} "
                f"but extra_stages declared {sorted(declared)}"
            )
        context.fit(m, data, loss_fn, epochs=declared[stage] if epochs is None else epochs,
                    parameters=parameters, role=stage_role(role, stage))  # fmt: skip

    strategy.run_extra_stages(model, task, stage_fit)


def learn_task_with_strategy(
    context: LearnerContext,
    model: IncrementalNet,
    strategy: Strategy,
    task: TaskData,
    **training: Any,
) -> None:
    """The plain sequence: ``start_task``, ``train_on_task`` (with ``training`` options), then
    the strategy's ``end_task``. Frameworks that need a step in between call the parts."""
    start_task(context, model, strategy, task)
    train_on_task(context, model, strategy, task, **training)
    strategy.end_task(model, task)


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", plural="strategies", base=Strategy)
FRAMEWORKS: Registry[type[Framework]] = Registry("framework", base=Framework)
# The entry-point groups out-of-tree adapters register through; records name the plugin.
ENTRY_POINT_GROUPS = ("cilbench.strategies", "cilbench.frameworks")
_discovered = False


def load_adapters() -> None:
    """Register every in-tree adapter under ``methods/`` and every installed entry point (once)."""
    global _discovered
    if _discovered:
        return
    from harness.api.registry import discover

    discover("methods", entry_point_groups=ENTRY_POINT_GROUPS)
    _discovered = True
