"""Result records: one JSON file per trial, written once and atomically, validated on load.

The accuracy matrix is the source of truth; ``validate_record`` recomputes every summary
metric from it and refuses a record whose stored metrics disagree. Pure Python (no torch,
no Ray): the site builds from ``results/`` alone.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.metrics import compute_metrics
from harness.record_schema import (
    COUNTER_TOLERANCE_PCT,
    METHOD_KEYS,
    METRIC_NAMES,
    REQUIRED_KEYS,
    SCHEMA_VERSION,
    STATUSES,
    SUITE_KEYS,
    InferenceCost,
    TrainingBudget,
    is_int,
    is_number,
)
from harness.safe_parse import UntrustedInputError, load_json

METRIC_TOLERANCE = 1e-6


class MalformedRecordError(ValueError):
    """One or more record files are unreadable or break the schema; the message names each."""


class RecordExistsError(FileExistsError):
    """A record for this run id is already in results/ and overwriting was not asked for."""


class RecordPathError(ValueError):
    """A record's names would place its file outside the results folder (e.g. a ``..``)."""


def record_path(results_dir: Path, record: dict[str, Any]) -> Path:
    """``results/<suite>/<method label>/<backbone>/seed<seed>-<run id>.json``, proven to lie
    inside ``results_dir`` (a ``..`` or an empty name raises ``RecordPathError``)."""
    method = record["method"]
    parts = {
        "suite name": record["suite"]["name"],
        "method label": method["label"],
        "backbone": method["backbone"],
    }
    folder = Path(results_dir)
    for what, name in parts.items():
        folder = folder / _path_part(what, name)
    name = f"seed{_path_part('seed', record['seed'])}-{_path_part('run id', record['run_id'])}"
    path = folder / f"{name}.json"
    if not path.resolve().is_relative_to(Path(results_dir).resolve()):
        raise RecordPathError(f"record path {path} would lie outside {results_dir}; "
                              "suite names and method labels must be plain names")  # fmt: skip
    return path


def write_record(record: dict[str, Any], results_dir: Path, *, overwrite: bool = False) -> Path:
    """Validate, then write atomically: a temp file is linked into place only if no record of
    that run id is there yet (two writers of one run id: exactly one wins, the other gets
    ``RecordExistsError``); ``overwrite`` renames it over the old one (readers never see a
    partial file). Invalid records (NaN, wrong shapes, ...) raise ``MalformedRecordError``."""
    problems = validate_record(record)
    if problems:
        raise MalformedRecordError("refusing to write an invalid record: " + "; ".join(problems))
    path = record_path(results_dir, record)
    if path.exists() and not overwrite:
        raise RecordExistsError(f"{path} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _create_if_absent(Path(tmp), path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _create_if_absent(tmp: Path, path: Path) -> None:
    """Put ``tmp`` at ``path`` unless something is there: a hard link fails atomically when
    the name exists. Where the filesystem has no hard links, an exclusive lock per run id
    serialises check and rename instead."""
    try:
        os.link(tmp, path)
        return
    except FileExistsError:
        raise RecordExistsError(
            f"{path} exists (another run wrote it meanwhile); pass --overwrite to replace it"
        ) from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
    with open(path.parent / f".lock-{path.stem}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            raise RecordExistsError(
                f"{path} exists (another run wrote it meanwhile); pass --overwrite to replace it"
            )
        os.replace(tmp, path)


def index_record_files(results_dir: Path) -> dict[str, Path]:
    """Run id -> record file under ``results_dir`` (by name ``seed<seed>-<run id>.json``;
    the first in sorted order where one run id has several files)."""
    index: dict[str, Path] = {}
    for path in sorted(Path(results_dir).glob("**/seed*-*.json")):
        index.setdefault(path.stem.split("-", 1)[1], path)
    return index


def find_record(results_dir: Path, run_id: str) -> Path | None:
    """The record file of ``run_id`` anywhere under ``results_dir``, if there is one."""
    return index_record_files(results_dir).get(run_id)


def load_records(results_dir: Path) -> list[dict[str, Any]]:
    """Every record under ``results_dir``; raises ``MalformedRecordError`` naming all bad files."""
    records, problems = [], []
    for path in sorted(Path(results_dir).glob("**/*.json")):
        record, issues = _read_record(path)
        if issues:
            problems.append(f"{path}: " + "; ".join(issues))
        else:
            records.append(record)
    if problems:
        raise MalformedRecordError(
            f"{len(problems)} malformed record(s) under {results_dir} (fix or move them away; "
            "nothing was changed):\n  " + "\n  ".join(problems)
        )
    return records


def _read_record(path: Path) -> tuple[dict[str, Any], list[str]]:
    """A record file and every way it breaks the schema (a partial record may even make the
    validation itself fail: that is reported too, never raised)."""
    try:
        record = load_json(path.read_text(encoding="utf-8"), source=path.name)
    except UntrustedInputError as error:
        return {}, [error.problem]
    except (OSError, UnicodeDecodeError) as error:
        return {}, [f"not readable JSON ({error})"]
    try:
        return record, validate_record(record)
    except Exception as error:
        return record, [f"not a valid record ({type(error).__name__}: {error})"]


@dataclass
class LoadedRecords:
    """What ``load_records_leniently`` found: usable records, and one warning per file."""

    records: list[dict[str, Any]] = field(default_factory=list)
    # "<path>: <why>" for every file left out (unreadable, malformed, partial, unknown schema)
    # and every debug record (kept in ``records`` so the site can count it, never shown).
    warnings: list[str] = field(default_factory=list)
    # run id -> its file, so the site can publish each record byte for byte (run ids found in
    # more than one file are left out: which file a link should show would be a guess).
    sources: dict[str, Path] = field(default_factory=dict)


def load_records_leniently(results_dir: Path) -> LoadedRecords:
    """Every usable record under ``results_dir``; bad files become warnings, not errors.

    For the leaderboard: one stale or half-written file must not take the whole site down.
    ``load_records`` stays strict for ``cilbench validate`` and CI.
    """
    loaded = LoadedRecords()
    seen: dict[str, int] = {}
    for path in sorted(Path(results_dir).glob("**/*.json")):
        record, problems = _read_record(path)  # the same checks as validate
        if problems:
            loaded.warnings.append(f"{path}: skipped: " + "; ".join(problems))
            continue
        if record.get("debug"):
            loaded.warnings.append(
                f"{path}: debug record (made with test-only shortcuts such as --quick); "
                "the leaderboard leaves it out"
            )
        loaded.records.append(record)
        loaded.sources[record["run_id"]] = path
        seen[record["run_id"]] = seen.get(record["run_id"], 0) + 1
    for run_id, times in seen.items():
        if times > 1:
            del loaded.sources[run_id]
    return loaded


def validate_record(record: Any) -> list[str]:
    """Every way ``record`` breaks the schema, as readable strings (empty: valid).

    The one check for every reader and writer: ``write_record`` refuses, ``cilbench validate``
    fails on, and the site's lenient loader skips exactly the records this rejects.
    """
    if not isinstance(record, dict):
        return ["a record must be a JSON object"]
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        return [f"missing key(s): {', '.join(missing)}"]
    problems = [f"{where}={value!r}: every number must be finite"
                for where, value in _non_finite_numbers(record)]  # fmt: skip
    if record["schema_version"] != SCHEMA_VERSION:
        problems.append(
            f"schema_version {record['schema_version']!r} is not {SCHEMA_VERSION} (this harness)"
        )
    if record["status"] not in STATUSES:
        problems.append(f"status {record['status']!r} is not one of {', '.join(STATUSES)}")
    if not isinstance(record["debug"], bool):
        problems.append(f"debug={record['debug']!r} must be true or false")
    if not isinstance(record["suite"], dict) or not isinstance(record["method"], dict):
        return [*problems, "suite and method must be objects"]
    for key in SUITE_KEYS:
        if key not in record["suite"]:
            problems.append(f"suite.{key} is missing")
    for key in METHOD_KEYS:
        if key not in record["method"]:
            problems.append(f"method.{key} is missing")
    problems += _type_problems(record) + _timing_problems(record["timing"])
    if record["status"] == "failed":
        error = record["error"]
        if not isinstance(error, dict) or not error.get("message"):
            problems.append("a failed record needs error.message")
        return problems
    if record["status"] != "ok":
        return problems
    return (
        problems
        + _validate_results(record)
        + InferenceCost.problems(record["inference_cost"])
        + TrainingBudget.problems(record.get("training_budget"))
    )


def _non_finite_numbers(value: Any, where: str = "record") -> Iterable[tuple[str, float]]:
    """NaN and infinities anywhere in a record (JSON readers accept them; the schema does not)."""
    if isinstance(value, float) and not math.isfinite(value):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite_numbers(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _non_finite_numbers(item, f"{where}[{i}]")


def _type_problems(record: dict[str, Any]) -> list[str]:
    """Types that the leaderboard and the results/ layout rely on."""
    suite, method = record["suite"], record["method"]
    checks = {
        "suite.name": isinstance(suite.get("name"), str) and bool(suite["name"]),
        "suite.version": is_int(suite.get("version")),
        "seed": is_int(record.get("seed")),
        "run_id": isinstance(record.get("run_id"), str) and bool(record["run_id"]),
        "method.config": isinstance(method.get("config"), dict),
    }
    for key in ("label", "strategy", "framework", "backbone"):
        checks[f"method.{key}"] = isinstance(method.get(key), str) and bool(method[key])
    if record["status"] == "ok":
        checks["method.config_sha256"] = isinstance(method.get("config_sha256"), str)
    problems = [f"{n} has the wrong type or is missing" for n, ok in checks.items() if not ok]
    if not problems:
        try:
            record_path(Path("results"), record)
        except RecordPathError as error:
            problems.append(str(error))
    return problems


def _timing_problems(timing: Any) -> list[str]:
    if not isinstance(timing, dict):
        return ["timing must be an object"]
    per_task = timing.get("task_wall_time_s", [])
    total = timing.get("trial_wall_time_s")
    if not isinstance(per_task, list) or not all(is_number(t) and t >= 0 for t in per_task):
        return [f"timing.task_wall_time_s={per_task!r} must be a list of seconds >= 0"]
    if not (is_number(total) and total >= 0):
        return [f"timing.trial_wall_time_s={total!r} is not a number of seconds >= 0"]
    return []


def _validate_results(record: dict[str, Any]) -> list[str]:
    results = record["results"]
    if not isinstance(results, dict):
        return ["results must be an object for an ok record"]
    tasks = record["suite"].get("num_tasks")
    if not is_int(tasks) or tasks < 1:
        return [f"suite.num_tasks={tasks!r} is not a positive integer"]
    problems = [
        problem
        for key in ("acc_matrix_pct", "task_aware_acc_matrix_pct")
        for problem in _matrix_problems(key, results.get(key), tasks)
    ]
    counts = results.get("test_samples_per_task")
    if not (isinstance(counts, list) and len(counts) == tasks
            and all(is_int(c) and c > 0 for c in counts)):  # fmt: skip
        problems.append(
            f"results.test_samples_per_task={counts!r} must be {tasks} positive integers"
        )
    if problems:
        return problems
    recomputed = compute_metrics(
        results["acc_matrix_pct"], results["task_aware_acc_matrix_pct"], counts
    )
    stored = results.get("metrics")
    if not isinstance(stored, dict):
        return ["results.metrics must be an object"]
    for name in METRIC_NAMES:
        value, expected = stored.get(name), recomputed[name]
        if expected is None:
            if value is not None:
                problems.append(f"metrics.{name} should be null")
        elif not is_number(value) or abs(value - expected) > METRIC_TOLERANCE:
            problems.append(
                f"metrics.{name}={value!r} disagrees with the accuracy matrix ({expected:.6f})"
            )
    return problems


def _matrix_problems(key: str, matrix: Any, tasks: int) -> list[str]:
    """``tasks`` x ``tasks``, lower-triangular: accuracies in 0..100 on and below the diagonal,
    null above it (task j is not learned before step j)."""
    where = f"results.{key}"
    if not (isinstance(matrix, list) and len(matrix) == tasks
            and all(isinstance(row, list) and len(row) == tasks for row in matrix)):  # fmt: skip
        return [f"{where} must be {tasks} x {tasks} (suite.num_tasks), got {_shape(matrix)}"]
    problems = []
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if j > i and value is not None:
                problems.append(f"{where}[{i}][{j}]={value!r} must be null (task {j} comes later)")
            elif j <= i and not (is_number(value) and 0 <= value <= 100):
                problems.append(f"{where}[{i}][{j}]={value!r} is not an accuracy in 0..100")
    return problems


def _shape(matrix: Any) -> str:
    if not isinstance(matrix, list):
        return type(matrix).__name__
    return f"{len(matrix)} row(s) of " + ", ".join(
        str(len(row)) if isinstance(row, list) else type(row).__name__ for row in matrix
    )


def _safe(part: Any) -> str:
    """A path component from a label: letters, digits and ``.+-_@=`` only."""
    return re.sub(r"[^A-Za-z0-9.+\-_@=]", "_", str(part))


def _path_part(what: str, name: Any) -> str:
    part = _safe(name)
    if not part.strip("."):  # "", "." and ".." name no folder of their own
        raise RecordPathError(
            f"{what} {name!r} cannot name a folder under results/ (it would place the record "
            "elsewhere); use letters, digits and .+-_@="
        )
    return part


def summarize_failures(records: Iterable[dict[str, Any]]) -> list[str]:
    return [
        f"{r['method']['label']} seed={r['seed']}: {r['error']['message']}"
        for r in records
        if r["status"] == "failed"
    ]


def cost_warnings(records: Iterable[dict[str, Any]]) -> list[str]:
    """Valid records whose FLOP figure may be too low: ops that ran without a FLOP formula, or
    the two counters more than 1% apart (the leaderboard flags the same entries)."""
    lines = []
    for r in records:
        cost = r.get("inference_cost") or {}
        where = f"{r['suite']['name']} {r['method']['label']} seed={r['seed']}"
        if cost.get("uncounted_ops"):
            lines.append(f"{where}: ops without a FLOP formula ran in the served model: "
                         f"{', '.join(cost['uncounted_ops'])}")  # fmt: skip
        if cost.get("counter_disagreement_pct", 0.0) > COUNTER_TOLERANCE_PCT:
            lines.append(f"{where}: the FLOP counters disagree by "
                         f"{cost['counter_disagreement_pct']:.2f}%")  # fmt: skip
    return lines
