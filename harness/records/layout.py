"""Where a record lives: ``results/<suite>/<label>/<backbone>/seed<seed>-<run id>.json``, each
part a safe folder name (a label that would climb out of ``results/`` is refused)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


class RecordPathError(ValueError):
    """A record's names would place its file outside the results folder (e.g. a ``..``)."""


def record_path(results_dir: Path, record: dict[str, Any]) -> Path:
    """``results/<suite>/<method label>/<backbone>/seed<seed>-<run id>.json``, inside
    ``results_dir`` whatever the names (a ``..`` or an empty name raises ``RecordPathError``)."""
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
    # Each part is one plain folder name (no separator, never "." or ".."), so the path lies
    # inside results_dir by construction, symlinked folders included; no filesystem call.
    return folder / f"{name}.json"


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
