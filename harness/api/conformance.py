"""The adapter contract as a library: which trials test an adapter, and its checks' verdict.

``cilbench check-adapter NAME`` and the project's contract tests apply the same checks
(``harness.api.contract_checks``) to trials of the shipped tiny suite run through the
harness's own path. Who runs the trials is the caller's (a ``TrialSource``): the command runs
them fresh through ``run_trial``, the tests share one run per session. That also keeps this
module, the adapter author's surface, free of ``harness.run``.

A strategy runs under ``none`` and under a compressing framework (``postpruning``); a
framework wraps the plain strategies ``finetune`` and ``lwf`` and, if it compresses, is
compared with them under ``none``. One trial runs twice (same seed, same matrix), and a
strategy that says its accuracies move with the seed runs with a second seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.api import contract_checks as checks
from harness.api.adapters import FRAMEWORKS, STRATEGIES
from harness.api.contract_checks import FAIL, NOT_CHECKED, PASS, CheckResult
from harness.api.registry import Registry, UnknownNameError, did_you_mean
from harness.records.provenance import is_built_in_module

PLAIN_FRAMEWORK = "none"
COMPRESSING_PARTNER = "postpruning"  # what a strategy is also checked under
PLAIN_STRATEGIES = ("finetune", "lwf")  # what a framework is checked with
Record = Mapping[str, Any]


class TrialSource(Protocol):
    """Runs (or recalls) a trial of the tiny suite and returns its record; ``fresh``: run it
    again even if it ran before (the determinism check's second run)."""

    def __call__(
        self, strategy: str, framework: str, *, seed: int = 1, fresh: bool = False
    ) -> Record: ...


@dataclass(frozen=True)
class ConformanceReport:
    """Every check's result for one adapter; it holds when every check passed."""

    name: str
    kinds: tuple[str, ...]  # "strategy", "framework" or both
    results: list[CheckResult] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return bool(self.results) and all(result.passed for result in self.results)

    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if not result.passed]

    def describe(self) -> str:
        """One line per check, then the failures' explanations (for a test's message)."""
        lines = [f"{result.status:>11}  {result.check}" for result in self.results]
        lines += [f"{result.check}: {result.explained()}" for result in self.failures()]
        return "\n".join(lines)


def is_built_in(adapter: type) -> bool:
    """Shipped in this checkout (not an installed plugin): the records' own rule
    (``harness.records.provenance``), which a distribution shipping a top-level ``methods``
    does not pass."""
    return is_built_in_module(adapter.__module__)


def built_in_names(registry: Registry[Any]) -> list[str]:
    return [name for name in registry.names() if is_built_in(registry.get(name))]


def adapter_kinds(name: str) -> tuple[str, ...]:
    """Which registries hold ``name``; an unknown name lists every valid one."""
    kinds = tuple(kind for kind, registry in (("strategy", STRATEGIES), ("framework", FRAMEWORKS))
                  if name in registry)  # fmt: skip
    if not kinds:
        valid = STRATEGIES.names() + FRAMEWORKS.names()
        raise UnknownNameError(
            f"no strategy or framework is registered as {name!r}.{did_you_mean(name, valid)} "
            f"Strategies: {', '.join(STRATEGIES.names())}. "
            f"Frameworks: {', '.join(FRAMEWORKS.names())}. "
            "A plugin registers through its package's entry point: `pip install -e` it first."
        )
    return kinds


def check_adapter(name: str, source: TrialSource) -> ConformanceReport:
    """Run ``name``'s trials from ``source`` and every check; the adapters must be loaded."""
    kinds = adapter_kinds(name)
    results: list[CheckResult] = []
    if "strategy" in kinds:
        results += _strategy_checks(name, source)
    if "framework" in kinds:
        results += _framework_checks(name, source)
    return ConformanceReport(name, kinds, results)


def _strategy_checks(name: str, source: TrialSource) -> list[CheckResult]:
    strategy = STRATEGIES.get(name)
    plain = source(name, PLAIN_FRAMEWORK)
    trials, notes = [plain], []
    partner = FRAMEWORKS.get(COMPRESSING_PARTNER) if COMPRESSING_PARTNER in FRAMEWORKS else None
    refusal = partner.refusal(strategy) if partner else "not registered"
    if refusal is None:
        trials.append(source(name, COMPRESSING_PARTNER))
    else:  # a framework may refuse a strategy (e.g. one whose network grows): not a failure
        notes.append(f"{COMPRESSING_PARTNER} not run: {refusal}")
    results = _per_trial(trials)
    results.append(_rerun(plain, source))
    if strategy.seed_sensitive_on_tiny_suite:
        results.append(_second_seed(plain, source))
    if len(trials) > 1:
        results.append(checks.check_cheaper(plain, trials[1]))
    results.append(checks.check_config_refuses_nan(strategy, scope="strategy"))
    return _with_notes(results, notes)


def _framework_checks(name: str, source: TrialSource) -> list[CheckResult]:
    framework = FRAMEWORKS.get(name)
    refused = {s: framework.refusal(STRATEGIES.get(s)) for s in PLAIN_STRATEGIES}
    partners = [s for s in PLAIN_STRATEGIES if not refused[s]]
    trials = [source(strategy, name) for strategy in partners]
    results = [_composes(name, refused)]
    if trials:
        results += _per_trial(trials)
        results.append(_rerun(trials[0], source))
    if framework.compresses:
        pairs = [
            (source(s, PLAIN_FRAMEWORK), trial) for s, trial in zip(partners, trials, strict=True)
        ]
        results.append(_combine(checks.CHEAPER, [checks.check_cheaper(*pair) for pair in pairs]))
    results.append(checks.check_config_refuses_nan(framework, scope="framework"))
    return results


def _per_trial(trials: list[Record]) -> list[CheckResult]:
    """Every per-trial check, each combined over the trials."""
    return [_combine(name, [check(trial) for trial in trials])
            for name, check in checks.PER_TRIAL.items()]  # fmt: skip


def _rerun(first: Record, source: TrialSource) -> CheckResult:
    """The determinism check: the same trial once more, unless the first run failed."""
    if first["status"] != "ok":
        return checks.check_deterministic(first, first)  # "not checked", naming the failure
    method = first["method"]
    again = source(method["strategy"], method["framework"], seed=first["seed"], fresh=True)
    return _failed_later(checks.DETERMINISTIC, again) or checks.check_deterministic(first, again)


def _second_seed(first: Record, source: TrialSource) -> CheckResult:
    if first["status"] != "ok":
        return checks.check_seed_reaches_training(first, first)
    method = first["method"]
    other = source(method["strategy"], method["framework"], seed=first["seed"] + 1)
    return _failed_later(checks.SEED_REACHES, other) or checks.check_seed_reaches_training(
        first, other
    )


def _failed_later(check: str, record: Record) -> CheckResult | None:
    """A FAIL of ``check`` when its extra run failed although the first one finished (the
    per-trial checks saw only the first), with the error's own explanation and fix."""
    if record["status"] == "ok":
        return None
    failure = checks.failure_of(record, checks.owner_of(record.get("error") or {}))
    assert failure is not None
    message = f"another run failed where the first finished: {failure.message}"
    return CheckResult(check, FAIL, message, failure.fix)


def _composes(name: str, refused: Mapping[str, str | None]) -> CheckResult:
    reasons = [f"{strategy}: {reason}" for strategy, reason in refused.items() if reason]
    if reasons:
        message = f"{name}.refusal() refuses {'; '.join(reasons)}."
        fix = (
            f"a framework must wrap the plain strategies ({', '.join(PLAIN_STRATEGIES)}); "
            "refuse only what it cannot compress (e.g. a network that grows)."
        )
        return CheckResult(checks.COMPOSES, FAIL, message, fix)
    return CheckResult(checks.COMPOSES, PASS, f"wraps {', '.join(PLAIN_STRATEGIES)}")


def _combine(check: str, results: list[CheckResult]) -> CheckResult:
    """One result for a check over several trials: any failure fails it, then any trial
    not checked leaves it not checked; it passes only when every trial passed. Messages are
    joined, each fix said once."""
    for status in (FAIL, NOT_CHECKED, PASS):
        matching = [result for result in results if result.status == status]
        if matching:
            message = " | ".join(dict.fromkeys(result.message for result in matching))
            fix = " ".join(dict.fromkeys(result.fix for result in matching if result.fix))
            return CheckResult(check, status, message, fix)
    return CheckResult(check, PASS, "nothing to check")


def _with_notes(results: list[CheckResult], notes: list[str]) -> list[CheckResult]:
    """The first result (every trial runs to the end), if it passed, carries the notes:
    what was left out, and why."""
    if not notes:
        return results
    suffix = f" ({'; '.join(notes)})"
    return [CheckResult(r.check, r.status, r.message + suffix, r.fix) if r.passed else r
            for r in results[:1]] + results[1:]  # fmt: skip
