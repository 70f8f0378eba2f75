"""Tuned configs: the winner of a search, with where it came from, for ``cilbench run``.

One file per suite, backbone and method label: ``suites/tuned/<suite>/<backbone>/<label>.json``
(beside the suites, since it is an input to runs, not a result). It holds the config overrides
the tuned trials run with (the suite entry's, with the winning values laid over them) and the
provenance a reader needs to judge it: the space, the budget, the metric and the split it was
chosen on, the scheduler, the search seed, every configuration tried with its validation
curve, the suite it was tuned on (another suite for the two-protocol option of Cha & Cho,
2024), and the commit and date. ``cilbench run`` runs a tuned twin of each suite entry that
has one; its records name this file and its sha256 (``method.tuned``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.suite import Suite, SuiteError, default_suites_dir
from harness.records.safe_parse import UntrustedInputError, load_json

SCHEMA = "cilbench.tuned_config/1"
TUNED_DIR = "tuned"


class TunedConfigError(SuiteError):
    """A tuned config that cannot be used; the message says why and how to re-tune."""


@dataclass(frozen=True)
class TunedConfig:
    path: Path
    sha256: str
    content: dict[str, Any]

    @property
    def overrides(self) -> dict[str, dict[str, Any]]:
        return self.content["overrides"]

    def reference(self) -> dict[str, Any]:
        """What a record says of it: the file (relative to the suites folder), its digest and
        the suite it was tuned on."""
        return {
            "file": f"{TUNED_DIR}/{self.path.relative_to(tuned_root())}",
            "sha256": self.sha256,
            "tuning_suite": self.content["tuning_suite"]["name"],
        }


def tuned_root() -> Path:
    return default_suites_dir() / TUNED_DIR


def tuned_path(suite: str, backbone: str, label: str) -> Path:
    return tuned_root() / suite / backbone / f"{label}.json"


def write_tuned(content: dict[str, Any]) -> Path:
    """Write atomically (a temp file, then rename): a crash never leaves half a file."""
    method = content["method"]
    path = tuned_path(content["suite"]["name"], method["backbone"], method["label"])
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".json.tmp")
    temp.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temp, path)
    return path


def find_tuned(suite: Suite, label: str, backbone: str) -> TunedConfig | None:
    """The tuned config of this suite entry, checked; None when it has none."""
    path = tuned_path(suite.name, backbone, label)
    if not path.is_file():
        return None
    raw = path.read_bytes()
    try:
        content = load_json(raw.decode("utf-8"), source=str(path))
    except (UnicodeDecodeError, UntrustedInputError) as error:
        raise TunedConfigError(f"{path}: not a readable tuned config ({error}); delete it or "
                               "re-tune with cilbench tune") from None  # fmt: skip
    _check(content, path, suite, label, backbone)
    return TunedConfig(path=path, sha256=hashlib.sha256(raw).hexdigest(), content=content)


def _check(content: Any, path: Path, suite: Suite, label: str, backbone: str) -> None:
    retune = f"re-tune with: cilbench tune --suite {suite.name} --method {label}"
    if not isinstance(content, dict) or content.get("schema") != SCHEMA:
        raise TunedConfigError(f"{path}: not a {SCHEMA} file; {retune}")
    method = content.get("method") or {}
    if (content.get("suite") or {}).get("name") != suite.name or method.get("label") != label \
            or method.get("backbone") != backbone:  # fmt: skip
        raise TunedConfigError(f"{path}: names another suite or method than its path; {retune}")
    budget = (content.get("search") or {}).get("budget")
    if budget != suite.tuning.to_dict():
        # Equal budgets are the point: a config tuned under another budget is not comparable.
        raise TunedConfigError(
            f"{path}: tuned under the budget {budget}, but {suite.name} now gives every method "
            f"{suite.tuning.to_dict()}; {retune}"
        )
    overrides = content.get("overrides")
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        raise TunedConfigError(f"{path}: overrides must map scopes to config values; {retune}")
