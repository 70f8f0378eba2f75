"""Start-up cost: heavy packages are imported where they are used, not by every process that
imports the harness (each Ray worker pays for every import before its first trial)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

HEAVY = ("sklearn", "scipy", "torch", "ray")


def _imported_after(code: str) -> set[str]:
    """Which of HEAVY a fresh interpreter has imported after running ``code``."""
    report = f"import json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    script = f"{code}\n{report}"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_command_line_imports_nothing_heavy_until_a_command_needs_it() -> None:
    assert _imported_after("import harness.cli") == set()


def test_the_driver_and_a_digits_trials_data_do_not_import_scikit_learn() -> None:
    driver_and_worker = """
import harness.cli, harness.run.grid, harness.run.record_saving, harness.run.checks
import harness.run.scheduler
from harness.data.datasets import load_dataset
from harness.run.grid import plan_trials, preflight
plan = plan_trials(suite="digits-5split", methods=["lwf"], seeds=[1], results_dir="/nonexistent")
preflight(plan, None)  # the driver's data and weights check
load_dataset("sklearn-digits")  # what a worker's first digits trial loads
"""
    imported = _imported_after(driver_and_worker)
    assert "torch" in imported and "ray" in imported  # the check saw the real import path
    assert not imported & {"sklearn", "scipy"}


def test_the_digits_are_scikit_learns_bit_for_bit() -> None:
    from sklearn.datasets import load_digits

    from harness.data.datasets import load_dataset

    ours, theirs = load_dataset("sklearn-digits"), load_digits()
    assert ours.train_x.dtype == np.float32 and ours.train_y.dtype == np.int64
    np.testing.assert_array_equal(ours.train_x, (theirs.images / 16.0).astype(np.float32)[:, None])
    np.testing.assert_array_equal(ours.train_y, theirs.target)
    assert ours.class_names == tuple(str(n) for n in theirs.target_names)


def test_a_trial_process_imports_model_libraries_only_when_a_trial_needs_them() -> None:
    """A Ray worker imports the trial code and every adapter before its first trial; the model
    libraries (torchvision pulls in torch._dynamo, torch-pruning pulls in timm, ptflops) cost
    it about two CPU-seconds, paid only by trials that build, prune or cost such models."""
    code = """
import json, sys
import harness.run.trial
from harness.api.adapters import load_adapters
load_adapters()
print(json.dumps([m for m in ("torchvision", "torch_pruning", "timm", "ptflops",
                              "torch._dynamo") if m in sys.modules]))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
