"""What a trial is: its spec (suite text, adapters, backbone, seed, overrides), resolved
into checked configs, and the run id that names its record.

Imports no model code: the driver resolves every trial of a grid up front with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.api.adapters import FRAMEWORKS, STRATEGIES, load_adapters
from harness.api.config import config_to_dict, resolve_config
from harness.data.suite import Suite, parse_suite
from harness.models.execution import ExecutionOptions
from harness.records.schema import canonical_sha256
from harness.training.trainer import TrainingConfig

CONFIG_SCOPES = ("strategy", "framework", "training")
NO_WEIGHTS = "none"  # a weights override that means random initialisation


@dataclass(frozen=True)
class TrialSpec:
    """Everything that determines a trial; it travels to Ray workers, so it holds the suite
    text itself rather than a path."""

    suite_text: str
    strategy: str
    framework: str
    backbone: str
    seed: int
    label: str
    order_index: int = 0
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # keyed by CONFIG_SCOPES
    data_root: str | None = None
    debug: bool = False  # test-only shortcuts: the leaderboard refuses such records
    # Debug only: at most this many train, validation and test images per class.
    limit_per_class: int | None = None
    # Backbone -> weights replacing the suite's: "torchvision:<ENUM>", a local path, or "none".
    weights: dict[str, str] = field(default_factory=dict)
    # Where and how the trial runs (device, precision, compile): not part of its identity.
    execution: ExecutionOptions = field(default_factory=ExecutionOptions)
    num_threads: int = 1
    code_version: dict[str, Any] = field(default_factory=dict)  # git state of the driver
    # A tuned twin's tuned config (harness.tuning.tuned_configs): file, sha256, tuning suite.
    tuned: dict[str, Any] | None = None

    @property
    def suite(self) -> Suite:
        return parse_suite(self.suite_text)


@dataclass(frozen=True)
class ResolvedTrial:
    spec: TrialSpec
    suite: Suite
    configs: dict[str, Any]  # scope -> frozen config dataclass

    @property
    def config_dict(self) -> dict[str, dict[str, Any]]:
        return {scope: config_to_dict(cfg) for scope, cfg in self.configs.items()}

    @property
    def config_sha256(self) -> str:
        return sha256_of(self.config_dict)

    @property
    def method_identity(self) -> list[Any]:
        """What the method of the trial is, whatever its label: the adapters, the backbone
        and every resolved config (two labels for this content name one method)."""
        s = self.spec
        return [s.strategy, s.framework, s.backbone, self.config_dict]

    @property
    def run_id(self) -> str:
        """Same resolved spec, same id: reruns find their earlier record instead of duplicating.

        The label is not part of it: a method asked for by another name (``lwf+postpruning``
        for the suite's ``lwf+postpruning@0.4``) is the same trial and finds its record."""
        s = self.spec
        identity = {
            # The protocol, not the file: adding a method or a seed to the suite leaves
            # every earlier trial's id, hence its record, as it was.
            "suite": [self.suite.name, self.suite.version, self.suite.protocol_sha256],
            "method": self.method_identity,
            "seed": s.seed,
            "order_index": s.order_index,
            "debug": s.debug,
        }
        # Only when used, so that the ids of earlier records stay what they were.
        if s.limit_per_class is not None:
            identity["limit_per_class"] = s.limit_per_class
        if s.weights:
            identity["weights"] = dict(sorted(s.weights.items()))
        # The thread count changes float summation order, hence the numbers; 1 (every
        # earlier record) keeps its old id.
        if s.num_threads != 1:
            identity["num_threads"] = s.num_threads
        # A tuned twin is its own trial even where the winner is the default config.
        if s.tuned is not None:
            identity["tuned"] = s.tuned["sha256"]
        return sha256_of(identity)[:16]


def resolve_trial(spec: TrialSpec) -> ResolvedTrial:
    """Check names and resolve every config (unknown keys fail with "did you mean")."""
    load_adapters()
    suite = spec.suite
    strategy_cls = STRATEGIES.get(spec.strategy)
    framework_cls = FRAMEWORKS.get(spec.framework)
    unknown = set(spec.overrides) - set(CONFIG_SCOPES)
    if unknown:
        raise ValueError(f"unknown config scope(s) {sorted(unknown)}; use {CONFIG_SCOPES}")
    training_defaults = {**suite.training, **spec.overrides.get("training", {})}
    configs = {
        "strategy": resolve_config(
            strategy_cls.Config, spec.overrides.get("strategy", {}), scope="strategy"
        ),
        "framework": resolve_config(
            framework_cls.Config, spec.overrides.get("framework", {}), scope="framework"
        ),
        "training": resolve_config(TrainingConfig, training_defaults, scope="training"),
    }
    if spec.limit_per_class is not None and (not spec.debug or spec.limit_per_class < 1):
        raise ValueError("limit_per_class is a debug shortcut: a positive count, debug=True")
    refusal = framework_cls.refusal(strategy_cls)
    if refusal is not None:
        raise ValueError(f"{spec.strategy}+{spec.framework} is refused: {refusal}")
    if strategy_cls.unbounded_memory and strategy_cls.reference is None:
        raise ValueError(
            f"strategy {spec.strategy!r} asks for unbounded memory but is no reference"
        )
    return ResolvedTrial(spec, suite, configs)


def weights_spec(spec: TrialSpec, suite: Suite, backbone: str) -> str | None:
    """What ``backbone`` starts from: the trial's override, else the suite's, else random
    initialisation. ``"none"`` as an override means random initialisation."""
    if backbone in spec.weights:
        override = spec.weights[backbone]
        return None if override == NO_WEIGHTS else override
    return suite.weights[backbone].spec if backbone in suite.weights else None


sha256_of = canonical_sha256  # the run id's and the config's digest
