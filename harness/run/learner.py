"""Assemble a trial's learner: the framework wrapping its strategy, with the model factory,
the exemplar memory and the training loop the harness hands it (``LearnerContext``)."""

from __future__ import annotations

from typing import Any

from harness.api.adapters import FRAMEWORKS, STRATEGIES, Framework, LearnerContext
from harness.data.pixels import with_pixel_normalization
from harness.models.backbones import create_backbone
from harness.models.execution import CPU_EXECUTION, Execution
from harness.models.incremental_net import IncrementalNet
from harness.run.trial_spec import ResolvedTrial, weights_spec
from harness.training.budget import TrainingMeter
from harness.training.exemplars import ExemplarMemory
from harness.training.trainer import Trainer, TrainingConfig


def build_learner(
    resolved: ResolvedTrial,
    *,
    execution: Execution = CPU_EXECUTION,
    loaded_weights: dict[str, Any] | None = None,
    meter: TrainingMeter | None = None,
) -> tuple[Framework, ExemplarMemory]:
    """The framework (wrapping its strategy) for a resolved trial, and the exemplar memory the
    harness gave it (unbounded only for reference strategies). ``loaded_weights``, if given,
    collects what each backbone built started from, for the record. ``execution`` says where
    models live and how batches run."""
    spec, suite = resolved.spec, resolved.suite
    strategy_cls = STRATEGIES.get(spec.strategy)
    memory = ExemplarMemory(None if strategy_cls.unbounded_memory else suite.exemplar_budget)
    training: TrainingConfig = resolved.configs["training"]

    def build_model(backbone: str | None = None) -> IncrementalNet:
        """A fresh model: the suite's pixel normalisation, then the backbone (default: the
        trial's) with its weights, then an empty incremental head."""
        name = backbone or spec.backbone
        built = create_backbone(
            name,
            in_channels=suite.input_shape[0],
            input_size=suite.input_shape[1],
            weights=weights_spec(spec, suite, name),
        )
        if loaded_weights is not None:
            loaded_weights[name] = built.weights.to_record() if built.weights else None
        normalised = with_pixel_normalization(
            built.module, suite.dataset.normalize_mean, suite.dataset.normalize_std
        )
        return execution.place(IncrementalNet(normalised, built.feature_dim, backbone_name=name))

    trainer = Trainer(
        training,
        seed=spec.seed,
        augmentation=suite.augmentation,
        execution=execution,
        meter=meter,
    )
    context = LearnerContext(
        build_model=build_model,
        backbone=spec.backbone,
        make_strategy=lambda: strategy_cls(resolved.configs["strategy"], memory=memory),
        fit=trainer.fit,
        training=training,
        device=execution.device,
        input_shape=(1, *suite.input_shape),
    )
    learner = FRAMEWORKS.get(spec.framework)(resolved.configs["framework"], context=context)
    return learner, memory
