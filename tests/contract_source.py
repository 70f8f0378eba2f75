"""The conformance checks' trial source in tests: the session's shared contract trials.

``harness.api.conformance.check_adapter`` asks a ``TrialSource`` for its trials; here they
come from ``tests/contract_trials.py`` (each trial runs once per session, whichever test file
asks first), and the determinism check's second run of a trial is run once per session too,
so the contract tests and the check-adapter tests compare the same pair of runs.

A plain module (not a conftest) so any test can ``from tests.contract_source import ...``.
"""

from __future__ import annotations

import copy
from typing import Any

from harness.run.trial import run_trial
from tests.contract_trials import tiny_record, tiny_spec

_RERUNS: dict[tuple[str, str, int], dict[str, Any]] = {}


def rerun_record(strategy: str, framework: str, *, seed: int = 1) -> dict[str, Any]:
    """A second, fresh run of the trial (not ``tiny_record``'s), once per session; a copy."""
    key = (strategy, framework, seed)
    if key not in _RERUNS:
        _RERUNS[key] = run_trial(tiny_spec(strategy, framework, seed=seed))
    return copy.deepcopy(_RERUNS[key])


def shared_trials(
    strategy: str, framework: str, *, seed: int = 1, fresh: bool = False
) -> dict[str, Any]:
    """A ``TrialSource`` over the session's trials: ``fresh`` asks for the second run."""
    if fresh:
        return rerun_record(strategy, framework, seed=seed)
    return tiny_record(strategy, framework, seed=seed)
