"""Provenance: a record's dirty flag speaks of the code, not of the results beside it; the
record names what decides bit-identical numbers (threads, CPU kernels)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from harness.provenance import code_version, environment
from harness.testing import TINY_SUITE_YAML
from harness.trial import TrialSpec, resolve_trial


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


def test_records_name_the_math_kernels_that_decide_bit_identical_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    env = environment()
    kernels = env["math_kernels"]
    assert json.loads(json.dumps(kernels)) == kernels  # small and JSON-able
    assert len(json.dumps(kernels)) < 2000
    assert kernels["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert kernels["torch_mkldnn"] == torch.backends.mkldnn.is_available()
    assert kernels["env"] == {"OPENBLAS_CORETYPE": "Haswell"}
    for blas in kernels["numpy_blas"]:  # threadpoolctl comes with scikit-learn
        assert set(blas) == {"internal_api", "version", "architecture", "num_threads"}
    assert env["processor"]


def _run_id(num_threads: int) -> str:
    spec = TrialSpec(
        suite_text=TINY_SUITE_YAML,
        strategy="lwf",
        framework="none",
        backbone="compact_cnn",
        seed=1,
        label="lwf",
        num_threads=num_threads,
    )
    return resolve_trial(spec).run_id


def test_the_thread_count_is_part_of_a_trial_id_only_when_it_is_not_1() -> None:
    # The id the code before this change gave the same 1-thread trial: earlier records keep it.
    assert _run_id(1) == "159ec3bced8de4b2"
    assert len({_run_id(1), _run_id(2), _run_id(4)}) == 3
