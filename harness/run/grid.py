"""Plan a run: expand a suite's methods x backbones x seeds into trial specs, checked up front.

Every name and config is resolved before Ray starts, so a typo fails in a second with the
valid names, not minutes later inside a worker.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.api.adapters import FRAMEWORKS, STRATEGIES, load_adapters
from harness.api.config import ConfigError
from harness.data.datasets import check_dataset, load_dataset
from harness.data.suite import MethodEntry, Suite, SuiteError, load_suite
from harness.models.backbones import BACKBONES
from harness.models.execution import ExecutionOptions
from harness.models.weights import resolve_weights
from harness.records.provenance import code_version
from harness.records.safe_parse import load_json
from harness.records.store import index_record_files
from harness.run.trial_spec import ResolvedTrial, TrialSpec, resolve_trial, weights_spec
from harness.tuning.tuned_configs import find_tuned

QUICK_OVERRIDES = {"epochs": 1, "first_task_epochs": None}  # --quick: one epoch per task, debug


@dataclass
class TrialPlan:
    suite: Suite
    resolved: list[ResolvedTrial] = field(default_factory=list)  # the trials to run
    replace: list[bool] = field(default_factory=list)  # per trial: a record exists, is replaced
    skipped: list[str] = field(default_factory=list)
    run_ids: set[str] = field(default_factory=set)  # every trial planned or skipped, once

    @property
    def specs(self) -> list[TrialSpec]:
        return [trial.spec for trial in self.resolved]


def method_from_flag(text: str) -> MethodEntry:
    """``lwf``, ``lwf+none`` or ``lwf+prepruning@0.6``: a strategy, optionally under a
    framework, optionally with the framework's ``ratio`` (as the suites' labels write it)."""
    strategy, _, framework = text.partition("+")
    framework, at, ratio = framework.partition("@")
    if not at:
        return MethodEntry(strategy=strategy, framework=framework or "none")
    try:
        value = float(ratio)
    except ValueError:
        raise ConfigError(
            f"--method {text}: what follows '@' is the framework's ratio, a number (e.g. "
            f"{strategy}+{framework or 'prepruning'}@0.6); or set it with --set framework.ratio=0.6"
        ) from None
    return MethodEntry(strategy=strategy, framework=framework or "none", label=text,
                       config={"framework": {"ratio": value}})  # fmt: skip


def select_methods(suite: Suite, requested: Sequence[str]) -> list[MethodEntry]:
    """The suite's entries labelled as requested (``lwf+kd`` keeps the suite's student and
    ``lwf`` runs both of the suite's plain lwf entries); otherwise ``STRATEGY[+FRAMEWORK]``
    with the adapters' defaults."""
    entries: list[MethodEntry] = []
    for text in requested:
        matching = [m for m in suite.methods if method_label(m) == text]
        entries.extend(matching or [method_from_flag(text)])
    return entries


def method_label(entry: MethodEntry) -> str:
    if entry.label:
        return entry.label
    return entry.strategy if entry.framework == "none" else f"{entry.strategy}+{entry.framework}"


def check_folder_name(what: str, name: str) -> None:
    """Method labels name folders under results/: a ``..``, a ``/`` or an empty name would
    put records somewhere else (suite files check their own names and labels, more strictly;
    this guards labels made from registered plugin names)."""
    if not str(name).strip(".") or any(c in str(name) for c in "/\\\0"):
        raise SuiteError(
            f"{what} {name!r} cannot name a folder under results/: use a plain name (letters, "
            "digits and .+-_@=, not '..' and no '/'), e.g. lwf+prepruning@0.4"
        )


def plan_trials(
    *,
    suite: str,
    methods: Sequence[str] | None = None,
    backbones: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    data_root: Path | None = None,
    debug: bool = False,
    num_threads: int = 1,
    results_dir: Path = Path("results"),
    overwrite: bool = False,
    limit_per_class: int | None = None,
    weights: dict[str, str] | None = None,
    execution: ExecutionOptions | None = None,
    tuned: bool = True,
) -> TrialPlan:
    """Expand the suite (or the given methods, backbones, seeds) into checked trial specs.

    ``limit_per_class`` (a debug shortcut: records marked debug) keeps at most that many
    images per class and split; ``weights`` replaces the suite's weights per backbone. An
    entry with a tuned config (``cilbench tune``) also runs as its tuned twin unless
    ``tuned`` is off: the two are separate trials and separate leaderboard rows.
    """
    load_adapters()
    loaded = load_suite(suite)  # its name and labels are checked safe folder names there
    entries = select_methods(loaded, methods) if methods else list(loaded.methods)
    for entry in entries:  # fail fast, with the valid names
        STRATEGIES.get(entry.strategy)
        FRAMEWORKS.get(entry.framework)
        check_folder_name("method label", method_label(entry))  # labels made from plugin names
    for name in [*(backbones or ()), *(weights or {})]:
        BACKBONES.get(name)
    debug = debug or limit_per_class is not None
    plan = TrialPlan(loaded)
    existing_records = index_record_files(results_dir)  # scanned once, not once per trial
    suite_labels = _suite_labels(loaded, debug)
    # What every trial of this run shares; each trial fills in its method, seed and order.
    shared = TrialSpec(suite_text=loaded.text, strategy="", framework="", backbone="", seed=0,
                       label="", data_root=str(data_root) if data_root else None, debug=debug,
                       limit_per_class=limit_per_class, weights=dict(weights or {}),
                       execution=execution or ExecutionOptions(), num_threads=num_threads,
                       code_version=code_version())  # fmt: skip
    for entry, tuned_config in _with_tuned_twins(entries, loaded, backbones, debug, tuned):
        for backbone in _backbones_for(entry, loaded, backbones):
            BACKBONES.get(backbone)
            for seed in seeds or loaded.seeds:
                for order_index in range(len(loaded.class_orders)):
                    merged = _merge(entry.config, overrides or {}, debug)
                    spec = replace(shared, strategy=entry.strategy, framework=entry.framework,
                                   backbone=backbone, seed=seed, label=method_label(entry),
                                   order_index=order_index, overrides=merged,
                                   tuned=tuned_config)  # fmt: skip
                    _add(plan, spec, existing_records, overwrite, suite_labels)
    return plan


def _with_tuned_twins(
    entries: list[MethodEntry],
    suite: Suite,
    backbones: Sequence[str] | None,
    debug: bool,
    tuned: bool,
) -> list[tuple[MethodEntry, dict[str, Any] | None]]:
    """Each entry untuned, then, per backbone with a tuned config, its tuned twin: the same
    label and adapters with the tuned config's overrides (``method.tuned`` names the file)."""
    planned: list[tuple[MethodEntry, dict[str, Any] | None]] = []
    for entry in entries:
        planned.append((entry, None))
        if not tuned:
            continue
        for backbone in _backbones_for(entry, suite, backbones):
            found = find_tuned(suite, method_label(entry), backbone)
            if found is None or (found.content["search"].get("debug") and not debug):
                continue  # a --quick search's winner serves only debug runs
            # The entry's own config (its training overrides too), the tuned values over it.
            config = {scope: dict(values) for scope, values in entry.config.items()}
            for scope, values in found.overrides.items():
                config.setdefault(scope, {}).update(values)
            twin = replace(entry, label=method_label(entry), backbone=backbone, config=config)
            planned.append((twin, found.reference()))
    return planned


def _identity_key(resolved: ResolvedTrial) -> str:
    return json.dumps(resolved.method_identity, sort_keys=True, default=str)


def _suite_labels(suite: Suite, debug: bool) -> dict[str, str]:
    """Each suite entry's label by what its method is (adapters, backbone, resolved configs),
    so that a method asked for by another name takes the suite's label."""
    labels: dict[str, str] = {}
    for entry in suite.methods:
        for backbone in _backbones_for(entry, suite, None):
            spec = TrialSpec(
                suite_text=suite.text,
                strategy=entry.strategy,
                framework=entry.framework,
                backbone=backbone,
                seed=suite.seeds[0],
                label=method_label(entry),
                overrides=_merge(entry.config, {}, debug),
                debug=debug,
            )
            try:
                key = _identity_key(resolve_trial(spec))
            except Exception:  # e.g. a plugin's entry, plugin not installed: matches nothing
                continue
            labels.setdefault(key, method_label(entry))
    return labels


def preflight(plan: TrialPlan, data_root: Path | None) -> None:
    """Check the data and every backbone's weights once on the driver, before Ray starts:
    missing or corrupt data, or missing weights, fail here in seconds with how to fix them."""
    suite = plan.suite
    check_dataset(suite.dataset.name, data_root, image_size=suite.dataset.image_size)
    if suite.dataset.image_size is not None:  # JPEG folders: decode once here, not per trial
        load_dataset(suite.dataset.name, data_root, image_size=suite.dataset.image_size)
    checked: set[tuple[str, str]] = set()
    for trial in plan.resolved:
        for backbone in backbones_built(trial):
            weights = weights_spec(trial.spec, suite, backbone)
            if weights is not None and (backbone, weights) not in checked:
                resolve_weights(backbone, weights)
                checked.add((backbone, weights))


def backbones_built(trial: ResolvedTrial) -> list[str]:
    """The trial's backbone and any other backbone its framework config names (a KD student)."""
    backbone = trial.spec.backbone
    named = [v for v in trial.config_dict["framework"].values() if isinstance(v, str)]
    return [backbone, *(v for v in named if v in BACKBONES.names() and v != backbone)]


def _add(
    plan: TrialPlan,
    spec: TrialSpec,
    existing_records: dict[str, Path],
    overwrite: bool,
    suite_labels: dict[str, str],
) -> None:
    resolved = resolve_trial(spec)  # also validates every config key
    suite_label = suite_labels.get(_identity_key(resolved), spec.label)
    if suite_label != spec.label:  # e.g. lwf+postpruning is the suite's lwf+postpruning@0.4
        spec = replace(spec, label=suite_label)
        resolved = replace(resolved, spec=spec)
    run_id = resolved.run_id
    if run_id in plan.run_ids:  # the same trial asked for twice (e.g. --seeds 1,1)
        return
    plan.run_ids.add(run_id)
    existing = existing_records.get(run_id)
    if existing is not None and not overwrite and _is_ok(existing):
        plan.skipped.append(f"{spec.label} ({spec.backbone}) seed={spec.seed}: {existing}")
        return
    plan.resolved.append(resolved)
    plan.replace.append(existing is not None)  # failed records are retried and replaced


def _is_ok(path: Path) -> bool:
    try:
        record = load_json(path.read_text(encoding="utf-8"), source=path.name)
    except (OSError, ValueError):  # unreadable, malformed or hostile: retried and replaced
        return False
    return isinstance(record, dict) and record.get("status") == "ok"


def _backbones_for(
    entry: MethodEntry, suite: Suite, requested: Sequence[str] | None
) -> Sequence[str]:
    if requested:
        return requested
    return [entry.backbone] if entry.backbone else suite.backbones


def _merge(
    entry_config: dict[str, dict[str, Any]], cli: dict[str, dict[str, Any]], debug: bool
) -> dict[str, dict[str, Any]]:
    """Method entry config <- command-line overrides <- --quick shortcuts."""
    merged = {scope: dict(values) for scope, values in entry_config.items()}
    for scope, values in cli.items():
        merged.setdefault(scope, {}).update(values)
    if debug:
        merged.setdefault("training", {}).update(QUICK_OVERRIDES)
    return merged
