"""Result records: one JSON file per trial, written once and atomically, validated on load.

The accuracy matrix is the source of truth; ``validate_record`` recomputes every summary
metric from it and refuses a record whose stored metrics disagree. Pure Python (no torch,
no Ray): the site builds from ``results/`` alone.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.records.layout import record_path
from harness.records.safe_parse import UntrustedInputError, load_json
from harness.records.validation import validate_record


class MalformedRecordError(ValueError):
    """One or more record files are unreadable or break the schema; the message names each."""


class RecordExistsError(FileExistsError):
    """A record for this run id is already in results/ and overwriting was not asked for."""


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
