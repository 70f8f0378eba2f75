"""``cilbench tune``'s work: one suite entry, its space, the suite's budget, the tuned file.

The search learns on the suite it tunes on (``tuning_suite``, by default the suite the config
is for) with the suite's first seed and first class order; the tuned config is then ranked on
the target suite's test split with every seed, by ``cilbench run``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.api.config import ConfigError
from harness.data.datasets import check_dataset
from harness.data.suite import Suite, load_suite
from harness.records.provenance import code_version
from harness.run.grid import plan_trials
from harness.run.scheduler import SchedulerOptions
from harness.run.trial_spec import ResolvedTrial, resolve_trial
from harness.tuning.search import METRIC, TIME_AXIS, SearchOutcome, search
from harness.tuning.space import method_space, space_to_json, with_sampled
from harness.tuning.tuned_configs import SCHEMA, write_tuned


class TuningFailedError(RuntimeError):
    """No configuration learned every task; nothing was written."""


@dataclass(frozen=True)
class TuneRequest:
    suite: str  # the suite the tuned config is for (where it will be ranked)
    method: str  # a label of that suite, or STRATEGY[+FRAMEWORK[@RATIO]]
    tuning_suite: str | None = None  # where to search; None: the suite itself
    backbone: str | None = None  # needed when the label runs on several backbones
    seed: int = 0  # the search's seed: which configurations are drawn
    samples: int | None = None  # None: the suite's budget; another value only with write=False
    data_root: Path | None = None
    debug: bool = False
    write: bool = True


def tune(request: TuneRequest, options: SchedulerOptions) -> tuple[SearchOutcome, Path | None]:
    """Search, then write the tuned config (unless ``write`` is off); returns both."""
    target = load_suite(request.suite)
    source = load_suite(request.tuning_suite) if request.tuning_suite else target
    base = _base_trial(request, target, source)
    budget = source.tuning
    if request.samples is not None and request.samples != budget.samples:
        if request.write:
            raise ConfigError(
                f"{source.name} gives every method {budget.samples} configurations, so that "
                "tuned configs are comparable; --samples is for exploring, with --no-write"
            )
        budget = type(budget)(**{**budget.to_dict(), "samples": request.samples})
    space = method_space(base.spec.strategy, base.spec.framework)
    # Missing data fails here in a second with how to get it, not in every configuration.
    check_dataset(source.dataset.name, request.data_root, image_size=source.dataset.image_size)
    defaults = {key: getattr(base.configs[key.split(".")[0]], key.split(".")[1]) for key in space}
    outcome = search(base.spec, space, defaults, budget, num_tasks=source.num_tasks,
                     seed=request.seed, options=options)  # fmt: skip
    if outcome.best is None:
        errors = [t.error for t in outcome.tried if t.error]
        why = f" (first error: {errors[0]})" if errors else ""
        raise TuningFailedError(f"no configuration of {base.spec.label} learned every task of "
                                f"{source.name}{why}: nothing written")  # fmt: skip
    if not request.write:
        return outcome, None
    content = _tuned_content(request, target, source, base, outcome, space, defaults, budget)
    return outcome, write_tuned(content)


def _base_trial(request: TuneRequest, target: Suite, source: Suite) -> ResolvedTrial:
    """The target suite's entry (its label, backbone and config), learning ``source`` with
    that suite's first seed and class order."""
    plan = plan_trials(suite=target.name, methods=[request.method],
                       backbones=[request.backbone] if request.backbone else None,
                       seeds=[target.seeds[0]], data_root=request.data_root, debug=request.debug,
                       results_dir=Path("/nonexistent"), overwrite=True,
                       tuned=False)  # fmt: skip
    first_order = [t for t in plan.resolved if t.spec.order_index == 0]
    backbones = sorted({t.spec.backbone for t in first_order})
    if len(backbones) != 1:
        raise ConfigError(f"{request.method} runs on several backbones in {target.name} "
                         f"({', '.join(backbones)}): choose one with --backbone")  # fmt: skip
    spec = replace(first_order[0].spec, suite_text=source.text, seed=source.seeds[0])
    return resolve_trial(spec)


def _tuned_content(
    request: TuneRequest,
    target: Suite,
    source: Suite,
    base: ResolvedTrial,
    outcome: SearchOutcome,
    space: dict[str, Any],
    defaults: dict[str, Any],
    budget: Any,
) -> dict[str, Any]:
    best = outcome.best
    assert best is not None
    default_run = next((t for t in outcome.tried if t.values == defaults), None)
    default_tasks = len(default_run.val_acc_pct) if default_run else 0
    spec = base.spec
    return {
        "schema": SCHEMA,
        "suite": _suite_ref(target),
        "tuning_suite": _suite_ref(source),
        "method": {"label": spec.label, "strategy": spec.strategy,
                   "framework": spec.framework, "backbone": spec.backbone},  # fmt: skip
        "overrides": with_sampled(_entry_overrides(spec.overrides), best.values),
        "tuned_values": best.values,
        "defaults": defaults,
        "result": {
            "val_aia_pct": best.val_aia_pct,
            # Only where the defaults learned every task (ASHA may stop them): an average over
            # fewer tasks does not compare.
            "default_val_aia_pct": default_run.val_aia_pct
            if default_run and default_tasks == outcome.num_tasks
            else None,
            "default_tasks_learned": default_tasks,
        },
        "search": {
            "space": space_to_json(space),
            "budget": budget.to_dict(),
            "metric": METRIC,
            "split": "validation",
            "scheduler": {"name": "ASHA", "time_attr": TIME_AXIS, "max_t": source.num_tasks,
                          "grace_period": budget.grace_tasks,
                          "reduction_factor": budget.reduction_factor},  # fmt: skip
            "search_alg": "BasicVariantGenerator (defaults first)",
            "seed": request.seed,
            "trial_seed": spec.seed,
            "debug": request.debug,  # --quick: only debug runs use it
            "tried": [t.to_dict() for t in outcome.tried],
        },
        "provenance": {**code_version(also_outputs=("suites/tuned",)),
                       "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
    }  # fmt: skip


def _entry_overrides(overrides: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The entry's own overrides: strategy and framework only (the training recipe is the
    suite's, the same for every method, and --quick's shortcuts are not a config)."""
    return {scope: dict(values) for scope, values in overrides.items() if scope != "training"}


def _suite_ref(suite: Suite) -> dict[str, Any]:
    return {"name": suite.name, "version": suite.version, "protocol_sha256": suite.protocol_sha256}
