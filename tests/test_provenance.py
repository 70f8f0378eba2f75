"""Provenance: a record's dirty flag speaks of the code, not of the results beside it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.provenance import code_version


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_new_or_deleted_records_do_not_make_the_code_dirty(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "harness").mkdir()
    (tmp_path / "harness" / "a.py").write_text("x = 1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.json").write_text("{}\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    assert code_version(tmp_path)["git_dirty"] is False
    (tmp_path / "results" / "r.json").unlink()  # a regenerated record replaces it
    assert code_version(tmp_path)["git_dirty"] is False
    (tmp_path / "harness" / "a.py").write_text("x = 2\n")
    assert code_version(tmp_path)["git_dirty"] is True
