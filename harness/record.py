"""Result records: one JSON file per trial, written once and atomically, validated on load.

The accuracy matrix is the source of truth; ``validate_record`` recomputes every summary
metric from it and refuses a record whose stored metrics disagree. Pure Python (no torch,
no Ray): the site builds from ``results/`` alone.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.metrics import METRIC_NAMES, compute_metrics

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed")
REQUIRED_KEYS = ("schema_version", "run_id", "status", "debug", "created_utc", "suite", "method",
                 "seed", "results", "inference_cost", "timing", "provenance", "error")  # fmt: skip
COST_KEYS = ("gflops_per_image", "gflops_per_image_ptflops", "gflops_per_image_torch",
             "params_millions", "params_millions_without_head", "latency_ms_b1")  # fmt: skip
METRIC_TOLERANCE = 1e-6


class MalformedRecordError(ValueError):
    """One or more record files are unreadable or break the schema; the message names each."""


class RecordExistsError(FileExistsError):
    """A record for this run id is already in results/ and overwriting was not asked for."""


def record_path(results_dir: Path, record: dict[str, Any]) -> Path:
    """``results/<suite>/<method label>/<backbone>/seed<seed>-<run id>.json``."""
    method = record["method"]
    return (
        Path(results_dir)
        / _safe(record["suite"]["name"])
        / _safe(method["label"])
        / _safe(method["backbone"])
        / f"seed{record['seed']}-{record['run_id']}.json"
    )


def write_record(record: dict[str, Any], results_dir: Path, *, overwrite: bool = False) -> Path:
    """Validate, then write atomically (temp file + rename); never replace a file silently."""
    problems = validate_record(record)
    if problems:
        raise MalformedRecordError("refusing to write an invalid record: " + "; ".join(problems))
    path = record_path(results_dir, record)
    if path.exists() and not overwrite:
        raise RecordExistsError(f"{path} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
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
        record, problems = _read_leniently(path)
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


def _read_leniently(path: Path) -> tuple[dict[str, Any], list[str]]:
    record, problems = _read_record(path)
    if problems:
        return record, problems
    try:
        return record, _site_problems(record)
    except Exception as error:  # a partial record can break these checks in any number of ways
        return record, [f"not a valid record ({type(error).__name__}: {error})"]


def _site_problems(record: dict[str, Any]) -> list[str]:
    """Types the leaderboard relies on and ``validate_record`` does not check."""
    suite, method = record["suite"], record["method"]
    checks = {
        "suite.name": isinstance(suite.get("name"), str),
        "suite.version": _is_int(suite.get("version")),
        "seed": _is_int(record.get("seed")),
        "run_id": isinstance(record.get("run_id"), str) and bool(record["run_id"]),
        "method.config": isinstance(method.get("config"), dict),
    }
    for key in ("label", "strategy", "framework", "backbone"):
        checks[f"method.{key}"] = isinstance(method.get(key), str)
    if record["status"] == "ok":
        checks["method.config_sha256"] = isinstance(method.get("config_sha256"), str)
    return [f"{name} has the wrong type or is missing" for name, ok in checks.items() if not ok]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_record(record: Any) -> list[str]:
    """Every way ``record`` breaks the schema, as readable strings (empty: valid)."""
    if not isinstance(record, dict):
        return ["a record must be a JSON object"]
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        return [f"missing key(s): {', '.join(missing)}"]
    problems = []
    if record["schema_version"] != SCHEMA_VERSION:
        problems.append(
            f"schema_version {record['schema_version']!r} is not {SCHEMA_VERSION} (this harness)"
        )
    if record["status"] not in STATUSES:
        problems.append(f"status {record['status']!r} is not one of {', '.join(STATUSES)}")
    for key in ("name", "version", "file_sha256", "class_order", "primary_metric"):
        if key not in (record["suite"] or {}):
            problems.append(f"suite.{key} is missing")
    for key in ("label", "strategy", "framework", "backbone", "config", "config_sha256"):
        if key not in (record["method"] or {}):
            problems.append(f"method.{key} is missing")
    if record["status"] == "failed":
        error = record["error"]
        if not isinstance(error, dict) or not error.get("message"):
            problems.append("a failed record needs error.message")
        return problems
    return problems + _validate_results(record["results"]) + _validate_cost(record)


def _validate_results(results: Any) -> list[str]:
    if not isinstance(results, dict):
        return ["results must be an object for an ok record"]
    try:
        recomputed = compute_metrics(
            results["acc_matrix_pct"],
            results["task_aware_acc_matrix_pct"],
            results["test_samples_per_task"],
        )
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as error:
        return [f"results: {error}"]
    stored = results.get("metrics") or {}
    problems = []
    for name in METRIC_NAMES:
        value, expected = stored.get(name), recomputed[name]
        if expected is None:
            if value is not None:
                problems.append(f"metrics.{name} should be null")
        elif not isinstance(value, int | float) or abs(value - expected) > METRIC_TOLERANCE:
            problems.append(
                f"metrics.{name}={value!r} disagrees with the accuracy matrix ({expected:.6f})"
            )
    return problems


def _validate_cost(record: dict[str, Any]) -> list[str]:
    cost = record["inference_cost"]
    if not isinstance(cost, dict):
        return ["inference_cost must be an object for an ok record"]
    problems = []
    for key in COST_KEYS:
        value = cost.get(key)
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            problems.append(f"inference_cost.{key}={value!r} is not a finite number >= 0")
    return problems


def _safe(part: Any) -> str:
    """A path component from a label: letters, digits and ``.+-_@=`` only."""
    return re.sub(r"[^A-Za-z0-9.+\-_@=]", "_", str(part))


def summarize_failures(records: Iterable[dict[str, Any]]) -> list[str]:
    return [
        f"{r['method']['label']} seed={r['seed']}: {r['error']['message']}"
        for r in records
        if r["status"] == "failed"
    ]
