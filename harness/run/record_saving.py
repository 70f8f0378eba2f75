"""Saving a trial's record without losing it: a save that fails fails that trial only.

The record is written create-if-absent (``harness.records.store.write_record``). When it cannot be
(another run saved the trial first, a full or read-only disk, a record the validator
refuses), the record is kept in a rescue file under the temp folder and named, and a refused
record is replaced by a failure record so that the next run retries the trial.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("cilbench")


def save_record(
    record: dict[str, Any], spec: Any, results: Path, *, overwrite: bool
) -> tuple[Path | None, str | None]:
    """Write one trial's record; a record that cannot be saved fails that trial only.

    Returns the path written and, if the record itself could not be saved, why (the record
    is then kept in a rescue file, and a refused record is replaced by a failure record so
    the next run retries the trial).
    """
    from harness.records.store import MalformedRecordError, RecordExistsError, write_record
    from harness.run.trial_record import failure_record

    refused = False
    try:
        return write_record(record, results, overwrite=overwrite), None
    except RecordExistsError as error:
        why = f"another run saved this trial's record first, kept: {error}"
    except MalformedRecordError as error:
        why, refused = str(error), True
    except Exception as error:  # full or read-only disk, a folder in the way, ...
        why = f"cannot write the record: {type(error).__name__}: {error}"
    rescued = _rescue(record)
    why += f"; this run's record is kept in {rescued}" if rescued else "; no copy kept either"
    if not refused:
        return None, why
    try:  # a failure record instead: the site counts a failure and the next run retries it
        seconds = record["timing"]["trial_wall_time_s"]
        seconds = seconds if isinstance(seconds, float) and math.isfinite(seconds) else 0.0
        refusal = failure_record(spec, None, f"its record was refused: {why}", seconds)
        return write_record(refusal, results, overwrite=True), why
    except Exception as error:
        return None, f"{why}; its failure record could not be written either ({error})"


def _rescue(record: dict[str, Any]) -> Path | None:
    """Keep a record that could not be saved under results/ (temp dir, cilbench-unsaved/)."""
    try:
        folder = Path(tempfile.gettempdir()) / "cilbench-unsaved"
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            dir=folder, prefix=f"{record.get('run_id', 'record')}-", suffix=".json"
        )
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1, default=str)  # NaN stays NaN: it is evidence
        return Path(name)
    except Exception as error:
        log.error("cannot keep a rescue copy of the record: %s", error)
        return None
