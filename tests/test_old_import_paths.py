"""Adapters written against the flat layout (before 0.2) keep working for one release.

A plugin that imports ``harness.adapters``, ``harness.stream``, ``harness.exemplars``,
``harness.incremental_net`` and ``harness.training``'s names registers and runs a trial, and
each old path warns once, naming the new one. Runs in a fresh interpreter: a module warns when
first imported, and this test must see that import.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

OLD_PLUGIN = '''
from harness.adapters import STRATEGIES, Strategy
from harness.exemplars import ExemplarMemory
from harness.incremental_net import IncrementalNet
from harness.stream import TaskData
from harness.training import Trainer, TrainingConfig


@STRATEGIES.register("old_paths_finetune")
class OldPathsFinetune(Strategy):
    """Fine-tuning, written against the pre-0.2 import paths."""

    def end_task(self, model: IncrementalNet, task: TaskData) -> None:
        assert isinstance(self.memory, ExemplarMemory) and isinstance(model, IncrementalNet)
'''

CHECK = """
import json, sys, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import old_plugin
import harness.api as api
from harness.run.trial import TrialSpec, run_trial

same = {
    "Strategy": old_plugin.Strategy is api.Strategy,
    "STRATEGIES": old_plugin.STRATEGIES is api.STRATEGIES,
    "TaskData": old_plugin.TaskData is api.TaskData,
    "ExemplarMemory": old_plugin.ExemplarMemory is api.ExemplarMemory,
    "IncrementalNet": old_plugin.IncrementalNet is api.IncrementalNet,
    "Trainer": old_plugin.Trainer is api.Trainer,
    "TrainingConfig": old_plugin.TrainingConfig is api.TrainingConfig,
}
spec = TrialSpec(suite_text=SUITE, strategy="old_paths_finetune", framework="none",
                 backbone="compact_cnn", seed=1, label="old_paths_finetune", debug=True)
record = run_trial(spec)
print(json.dumps({
    "warnings": [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)],
    "same": same,
    "status": record["status"],
    "error": record.get("error"),
    "tasks": len(record.get("results", {}).get("acc_matrix_pct", [])),
}))
"""


# Installs a package and runs a trial in a subprocess (5 s); CI runs it (make test-all).
@pytest.mark.slow
def test_a_plugin_written_against_the_old_paths_registers_runs_and_is_warned(tmp_path: Path):
    (tmp_path / "old_plugin.py").write_text(textwrap.dedent(OLD_PLUGIN))
    from harness.api.testing import TINY_SUITE_YAML

    script = f"SUITE = {TINY_SUITE_YAML!r}\n{CHECK}"
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": f"{tmp_path}:{root}", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(report["same"].values()), report["same"]
    assert report["status"] == "ok", report["error"]
    assert report["tasks"] == 3
    moved = {
        "harness.adapters": "harness.api.adapters",
        "harness.exemplars": "harness.training.exemplars",
        "harness.incremental_net": "harness.models.incremental_net",
        "harness.stream": "harness.data.stream",
        "harness.training.Trainer": "harness.training.trainer.Trainer",
        "harness.training.TrainingConfig": "harness.training.trainer.TrainingConfig",
    }
    for old, new in moved.items():
        assert any(w.startswith(f"{old} moved to {new} ") for w in report["warnings"]), (
            old,
            report["warnings"],
        )
