"""Trials on the tiny suite, each run once per test session and shared by every test file.

The contract tests, the training-budget tests and the strategy, KD and pruning tests ask for
the same trials (e.g. lwf under every framework, seed 1); a trial takes a second or more on
two cores, so each distinct (strategy, framework, seed, backbone) runs once and later askers
get a copy of its record. A test that needs a fresh run (the determinism check's second run,
or one with a monkeypatched adapter) calls ``run_trial(tiny_spec(...))`` itself.

A plain module (not a conftest) so any test can ``from tests.contract_trials import ...``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import harness.run.trial
from harness.api.testing import tiny_suite
from harness.evaluation.protocol import TaskEvent
from harness.run.trial import TrialSpec, run_trial


def tiny_spec(
    strategy: str, framework: str, *, seed: int = 1, backbone: str | None = None
) -> TrialSpec:
    """A debug trial of the tiny suite (``backbone`` defaults to the suite's first)."""
    suite = tiny_suite()
    return TrialSpec(
        suite_text=suite.text,
        strategy=strategy,
        framework=framework,
        backbone=backbone or suite.backbones[0],
        seed=seed,
        label=f"{strategy}+{framework}",
        debug=True,
    )


@dataclass(frozen=True)
class ContractTrial:
    """A trial's record, and what the record does not say: the exemplar memory the harness
    gave the adapter (its budget, ``None`` if unbounded) and how much it held after each task."""

    record: dict[str, Any]
    memory_budget: int | None
    memory_after_task: tuple[int, ...]


_TRIALS: dict[tuple[str, str, int, str], ContractTrial] = {}


def contract_trial(
    strategy: str, framework: str, *, seed: int = 1, backbone: str | None = None
) -> ContractTrial:
    """The trial through ``run_trial`` (the harness's own path: test data sealed while
    learning, the served module evaluated and costed), run on first request only. The record
    is a deep copy, so a test may change it without touching the cache."""
    spec = tiny_spec(strategy, framework, seed=seed, backbone=backbone)
    key = (strategy, framework, seed, spec.backbone)
    if key not in _TRIALS:
        _TRIALS[key] = _run_watching_memory(spec)
    trial = _TRIALS[key]
    return ContractTrial(copy.deepcopy(trial.record), trial.memory_budget, trial.memory_after_task)


def tiny_record(
    strategy: str, framework: str, *, seed: int = 1, backbone: str | None = None
) -> dict[str, Any]:
    """The record of ``contract_trial`` (a copy of the cached one)."""
    return contract_trial(strategy, framework, seed=seed, backbone=backbone).record


def _run_watching_memory(spec: TrialSpec) -> ContractTrial:
    """``run_trial(spec)``, noting the size of the exemplar memory ``build_learner`` hands
    the adapter after every task (``build_learner`` is wrapped for this call only)."""
    real_build_learner = harness.run.trial.build_learner
    memories: list[Any] = []
    sizes: list[int] = []

    def build_learner(*args: Any, **kwargs: Any) -> Any:
        learner, memory = real_build_learner(*args, **kwargs)
        memories.append(memory)
        return learner, memory

    def on_task_end(event: TaskEvent) -> None:
        sizes.append(len(memories[-1]))

    harness.run.trial.build_learner = build_learner
    try:
        record = run_trial(spec, on_task_end=on_task_end)
    finally:
        harness.run.trial.build_learner = real_build_learner
    budget = memories[-1].budget if memories else None
    return ContractTrial(record, budget, tuple(sizes))
