"""Rerun a trial from its record alone: the record names everything that decides its numbers.

From a record (a file, or a run id found under ``results/``) this rebuilds the ``TrialSpec``:
the suite text whose sha256 the record names (the current file under ``suites/`` when it
matches, else that file as git last held it with this hash, else, said loudly, the current
file), the adapters, backbone and label, the resolved config of every scope, the seed and
class order, the weights overrides, the torch thread count and the execution (device,
precision, compile, deterministic algorithms). It checks the rebuilt trial is the recorded
one (class order, config hash, run id), checks data and weights like a run does, and runs it
in this process. Nothing is written: comparing the rerun with the record is
``harness.run.record_agreement``'s job, the command line's to print and exit.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.data.current_suites import current_suite
from harness.data.suite import SuiteError, default_suites_dir
from harness.models.execution import PRECISIONS, ExecutionOptions
from harness.records.provenance import code_version
from harness.records.safe_parse import UntrustedInputError, load_json
from harness.records.staleness import CurrentSuite
from harness.records.store import find_record
from harness.records.validation import validate_record
from harness.run.grid import TrialPlan, preflight
from harness.run.trial import run_trial
from harness.run.trial_spec import CONFIG_SCOPES, ResolvedTrial, TrialSpec, resolve_trial

GIT_HISTORY_LIMIT = 500  # commits of a suite file searched for the record's text


class ReproduceError(ValueError):
    """The record cannot be rerun here (unknown run id, no suite text, not a valid record...);
    the message says what is missing and how to supply it."""


@dataclass(frozen=True)
class RecordedTrial:
    path: Path
    record: dict[str, Any]


@dataclass(frozen=True)
class SuiteText:
    """The suite text a rerun uses, and whether it is the record's own (same sha256)."""

    text: str
    source: str  # where it came from, in words
    exact: bool
    warnings: tuple[str, ...] = ()


@dataclass
class Rerun:
    """A rerun trial: what was rerun, its record, and what the reader must know about it."""

    recorded: RecordedTrial
    suite: SuiteText
    record: dict[str, Any]
    seconds: float
    warnings: list[str] = field(default_factory=list)


def find_recorded_trial(target: str, results_dir: Path) -> RecordedTrial:
    """The record ``target`` names: a record file, or a run id looked up under ``results_dir``."""
    path = Path(target)
    if not path.is_file():
        if path.suffix == ".json" or "/" in target:
            raise ReproduceError(f"no record file {target}: give a record's path or its run id")
        if not results_dir.is_dir():
            raise ReproduceError(
                f"{results_dir} does not exist: pass --results DIR where run id {target} lives"
            )
        found = find_record(results_dir, target)
        if found is None:
            raise ReproduceError(
                f"unknown run id {target!r}: no record seed*-{target}.json under {results_dir} "
                "(give the record's path, or --results DIR)"
            )
        path = found
    try:
        record = load_json(path.read_text(encoding="utf-8"), source=path.name)
    except (OSError, UnicodeDecodeError, UntrustedInputError) as error:
        raise ReproduceError(f"{path}: not a readable record ({error})") from None
    problems = validate_record(record)
    if problems:
        raise ReproduceError(f"{path} is not a valid record: " + "; ".join(problems[:5]))
    if record["status"] != "ok":
        raise ReproduceError(f"{path} records a failed trial: it has no numbers to reproduce")
    return RecordedTrial(path, record)


def recorded_suite_text(record: dict[str, Any], suites_dir: Path | None = None) -> SuiteText:
    """The suite text whose sha256 the record names: the current file if it matches, else
    that text from the file's git history, else (with a warning) the current file."""
    folder = suites_dir or default_suites_dir()
    name, version, wanted = (record["suite"][k] for k in ("name", "version", "file_sha256"))
    current = _current_file(folder, name)
    if current is not None and current.file_sha256 == wanted:
        return SuiteText(current.path.read_text(encoding="utf-8"), str(current.path), exact=True)
    where = current.path if current is not None else folder / f"{name}.yaml"
    commit = record["provenance"].get("git_commit")
    recovered = _from_git_history(where, wanted, first=commit)
    differs = (
        f"{where} is not the file the record ran (sha256 {wanted[:12]}, v{version})"
        if current is not None
        else f"no current suite file names {name!r} in {folder}"
    )
    if recovered is not None:
        text, found_in = recovered
        return SuiteText(text, f"{where.name} at commit {found_in[:12]} (git)", exact=True,
                         warnings=(f"{differs}; rerunning from the record's own file as git "
                                   f"holds it at commit {found_in[:12]}",))  # fmt: skip
    if current is None:
        raise ReproduceError(
            f"{differs}, and git history holds no file with the record's sha256 {wanted[:12]}: "
            f"put the suite file the record ran in {folder} (or set $CILBENCH_SUITES)"
        )
    return SuiteText(
        current.path.read_text(encoding="utf-8"),
        f"{current.path} (current, v{current.version}, sha256 {current.file_sha256[:12]})",
        exact=False,
        warnings=(
            f"{differs}, and git history does not hold the record's text: rerunning from the "
            "current file, so the numbers may differ for that reason alone",
        ),
    )


def _current_file(folder: Path, name: str) -> CurrentSuite | None:
    """The suite file in ``folder`` whose ``name`` is ``name`` (``<name>.yaml`` first)."""
    candidates = [folder / f"{name}.yaml", *sorted(folder.glob("*.yaml"))]
    for path in candidates:
        try:
            suite = current_suite(path) if path.is_file() else None
        except SuiteError:
            continue  # another suite's broken file is not this record's problem
        if suite is not None and suite.name == name:
            return suite
    return None


def _from_git_history(path: Path, sha256: str, *, first: str | None) -> tuple[str, str] | None:
    """``(text, commit)`` of the version of ``path`` whose sha256 is ``sha256`` in git's
    history (the record's own commit first), or None; read-only git, nothing checked out."""
    folder = path.parent if path.parent.is_dir() else Path.cwd()
    log = _git(folder, "log", f"-n{GIT_HISTORY_LIMIT}", "--format=%H", "--", path.name)
    commits = [c for c in ([first] if first else []) + (log or "").split() if c]
    for commit in dict.fromkeys(commits):
        text = _git(folder, "show", f"{commit}:./{path.name}")
        if text is not None and hashlib.sha256(text.encode()).hexdigest() == sha256:
            return text, commit
    return None


def _git(folder: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                             text=True, timeout=20)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def spec_from_record(
    record: dict[str, Any], suite_text: str, *, data_root: Path | None = None, device: str
) -> TrialSpec:
    """The trial the record ran, on ``device`` (the record's own, or the CPU when this
    machine lacks it): configs, seed, class order, weights and thread count as recorded."""
    method, execution = record["method"], record.get("execution") or {}
    overrides = {scope: dict(method["config"].get(scope) or {}) for scope in CONFIG_SCOPES}
    precision = execution.get("precision")
    if precision not in PRECISIONS or not str(execution.get("device", "cpu")).startswith(device):
        precision = "auto"  # moved off its GPU: the CPU's own default, fp32
    return TrialSpec(
        suite_text=suite_text,
        strategy=method["strategy"],
        framework=method["framework"],
        backbone=method["backbone"],
        seed=record["seed"],
        label=method["label"],
        order_index=int(record["suite"].get("order_index", 0)),
        overrides=overrides,
        data_root=str(data_root) if data_root else None,
        debug=bool(record["debug"]),
        weights=dict(method.get("weights_overrides") or {}),
        execution=ExecutionOptions(
            device=device,
            precision=precision,
            compile=bool(execution.get("compile")),
            deterministic=bool(execution.get("deterministic_algorithms")),
        ),
        num_threads=recorded_threads(record),
        code_version=code_version(),
        tuned=method.get("tuned"),  # a tuned twin: its config is in the record already
    )


def recorded_threads(record: dict[str, Any]) -> int:
    """The torch thread count the trial ran with (older records: its latency's, else 1)."""
    for value in (record["provenance"].get("torch_threads"),
                  (record.get("inference_cost") or {}).get("latency_threads")):  # fmt: skip
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
    return 1


def recorded_device(record: dict[str, Any], *, cuda_available: bool) -> tuple[str, list[str]]:
    """Where to rerun: the record's device, or the CPU (with a warning) when it ran on a GPU
    this machine lacks."""
    ran_on = str((record.get("execution") or {}).get("device") or "cpu")
    if not ran_on.startswith("cuda"):
        return "cpu", []
    if cuda_available:
        return "cuda", []
    return "cpu", ["the record ran on CUDA and this machine has no GPU: rerunning on the CPU"]


def identity_warnings(resolved: ResolvedTrial, record: dict[str, Any]) -> list[str]:
    """Where the rebuilt trial is not the recorded one. A different class order cannot be
    compared at all (``ReproduceError``); configs or run ids that moved are warned about."""
    order = list(resolved.suite.class_orders[resolved.spec.order_index])
    if order != record["suite"]["class_order"]:
        raise ReproduceError(
            f"the suite text used orders the classes {order}, the record "
            f"{record['suite']['class_order']}: another trial; restore the record's suite file"
        )
    warnings = []
    if resolved.config_sha256 != record["method"]["config_sha256"]:
        warnings.append(
            "the recorded config resolves to another config under this code (a key added or "
            f"renamed since?): config sha256 {resolved.config_sha256[:12]}, recorded "
            f"{record['method']['config_sha256'][:12]}"
        )
    if resolved.run_id != record["run_id"]:
        warnings.append(
            f"the rebuilt trial's run id is {resolved.run_id}, not the record's "
            f"{record['run_id']} (its suite protocol or config differs, the run id's "
            "definition changed since the record, or the record used a shortcut it does not "
            "store, such as --limit-per-class)"
        )
    return warnings


def rerun(recorded: RecordedTrial, *, data_root: Path | None = None) -> Rerun:
    """Rebuild the recorded trial, check its data and weights, and run it here."""
    import torch

    record = recorded.record
    suite = recorded_suite_text(record)
    device, warnings = recorded_device(record, cuda_available=torch.cuda.is_available())
    spec = spec_from_record(record, suite.text, data_root=data_root, device=device)
    resolved = resolve_trial(spec)
    warnings = [*suite.warnings, *warnings, *identity_warnings(resolved, record)]
    plan = TrialPlan(resolved.suite)
    plan.resolved.append(resolved)
    preflight(plan, data_root)  # missing data or weights: said now, exit 2
    started = time.perf_counter()
    rerun_record = run_trial(spec)
    seconds = time.perf_counter() - started
    return Rerun(recorded, suite, rerun_record, seconds, warnings)
