"""Provenance: a record's dirty flag speaks of the code (tracked or not), not of the results
beside it; the device is where the trial ran, never a guess from the machine; each adapter
names its origin; the record names what decides bit-identical numbers (threads, CPU kernels)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from harness.api.adapters import STRATEGIES, load_adapters
from harness.api.testing import TINY_SUITE_YAML
from harness.models.environment import environment
from harness.models.execution import ExecutionOptions
from harness.records import provenance
from harness.records.provenance import code_version
from harness.run.trial import TrialSpec, failure_record, resolve_trial, run_trial

load_adapters()


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


def _committed_repo(root: Path) -> Path:
    _git(root, "init", "-q")
    (root / ".gitignore").write_text(".venv/\n__pycache__/\n")
    for name in ("harness/a.py", "methods/strategies/lwf.py", "suites/s.yaml", "Makefile"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x = 1\n")
    _git(root, "add", ".")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return root


@pytest.mark.parametrize(
    "untracked",
    ["methods/strategies/my_adapter.py", "harness/new/module.py", "suites/mine.yaml",
     "tests/test_mine.py", "benchmarks/b.py", "pyproject.toml"],
)  # fmt: skip
def test_untracked_source_files_make_the_code_dirty(tmp_path: Path, untracked: str) -> None:
    repo = _committed_repo(tmp_path)
    assert code_version(repo)["git_dirty"] is False
    (repo / untracked).parent.mkdir(parents=True, exist_ok=True)
    (repo / untracked).write_text("NEW = True\n")  # an adapter not yet committed, say
    assert code_version(repo)["git_dirty"] is True


def test_new_outputs_and_ignored_files_keep_the_code_clean(tmp_path: Path) -> None:
    repo = _committed_repo(tmp_path)
    for name in ("results/s/lwf/cnn/seed1-abc.json", "site/index.html", ".venv/lib/x.py",
                 "harness/__pycache__/a.pyc"):  # fmt: skip
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text("{}\n")
    assert code_version(repo)["git_dirty"] is False


def _spec(**changes: object) -> TrialSpec:
    fields = {"suite_text": TINY_SUITE_YAML, "strategy": "lwf", "framework": "none",
              "backbone": "compact_cnn", "seed": 1, "label": "lwf", **changes}  # fmt: skip
    return TrialSpec(**fields)  # type: ignore[arg-type]


@pytest.fixture
def machine_with_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process sees a GPU (that no trial below uses)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "Fake GPU 80GB")


@pytest.mark.usefixtures("machine_with_a_gpu")
def test_a_failure_record_names_the_trials_device_not_the_machines_gpu() -> None:
    # Fails before anything runs: no device was resolved for the trial.
    unresolvable = run_trial(_spec(strategy="no_such_strategy"))
    assert unresolvable["status"] == "failed"
    assert unresolvable["provenance"]["device"] == "not started"
    # Fails while running on the CPU it was given (a missing weights file).
    on_cpu = run_trial(
        _spec(weights={"compact_cnn": "/nonexistent/w.pt"}, execution=ExecutionOptions("cpu"))
    )
    assert on_cpu["status"] == "failed"
    assert on_cpu["provenance"]["device"] == "cpu"
    # Written by the driver for a trial whose worker died: the driver cannot know.
    lost = failure_record(_spec(), None, "the worker died", 0.0)
    assert lost["provenance"]["device"] == "unknown"
    for record in (unresolvable, on_cpu, lost):
        assert "Fake GPU" not in json.dumps(record["provenance"])


def test_environment_takes_the_device_from_its_caller(machine_with_a_gpu: None) -> None:
    assert environment(device="cpu")["device"] == "cpu"
    with pytest.raises(TypeError):
        environment()  # type: ignore[call-arg]  (no default: a device is never guessed)


def test_built_in_adapters_say_so() -> None:
    origins = failure_record(_spec(), resolve_trial(_spec()), "x", 0.0)["method"]["origins"]
    assert origins["strategy"] == {"origin": "built-in", "module": "methods.strategies.lwf"}
    assert origins["framework"] == {"origin": "built-in", "module": "methods.frameworks.none"}


PLUGIN_MODULE = """\
from harness.api.adapters import Strategy


class DemoPluginStrategy(Strategy):
    \"\"\"Plain cross-entropy, shipped by an out-of-tree package (a test double).\"\"\"
"""


@pytest.fixture
def plugin_strategy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A strategy registered from a module outside harness/ and methods/, as a plugin's."""
    (tmp_path / "cilbench_demo_plugin.py").write_text(PLUGIN_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cilbench_demo_plugin", raising=False)
    import cilbench_demo_plugin

    monkeypatch.setitem(STRATEGIES._entries, "demo_plugin", cilbench_demo_plugin.DemoPluginStrategy)
    return "demo_plugin"


def test_an_entry_point_plugin_names_its_package_and_version(
    plugin_strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    point = SimpleNamespace(
        name="demo",
        module="cilbench_demo_plugin",
        dist=SimpleNamespace(name="cilbench-demo-plugin", version="0.3.1"),
    )
    monkeypatch.setattr(
        provenance,
        "entry_points",
        lambda group: [point] if group == "cilbench.strategies" else [],
    )
    record = run_trial(_spec(strategy=plugin_strategy, execution=ExecutionOptions("cpu")))
    assert record["status"] == "ok", record["error"]
    origins = record["method"]["origins"]
    assert origins["strategy"] == {
        "origin": "plugin",
        "package": "cilbench-demo-plugin",
        "version": "0.3.1",
        "module": "cilbench_demo_plugin",
        "entry_point": "cilbench.strategies:demo",
    }
    assert origins["framework"]["origin"] == "built-in"


def test_a_plugin_without_entry_point_is_found_by_its_package_or_said_unpackaged(
    plugin_strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provenance, "entry_points", lambda group: [])
    spec = _spec(strategy=plugin_strategy)

    def strategy_origin() -> dict:
        return failure_record(spec, resolve_trial(spec), "x", 0.0)["method"]["origins"]["strategy"]

    assert strategy_origin() == {"origin": "unpackaged", "package": None, "version": None,
                                 "module": "cilbench_demo_plugin"}  # fmt: skip
    monkeypatch.setattr(
        provenance,
        "_distributions_by_package",
        lambda: {"cilbench_demo_plugin": ["cilbench-demo-plugin"]},
    )
    installed = provenance.version
    monkeypatch.setattr(
        provenance,
        "version",
        lambda name: "2.0" if name == "cilbench-demo-plugin" else installed(name),
    )
    assert strategy_origin() == {"origin": "plugin", "package": "cilbench-demo-plugin",
                                 "version": "2.0", "module": "cilbench_demo_plugin",
                                 "entry_point": None}  # fmt: skip


def test_records_name_the_math_kernels_that_decide_bit_identical_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    env = environment(device="cpu")
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
    # The 1-thread id since run ids follow the suite's protocol rather than its file bytes
    # (09b4f7a; before: the label, issue 11): a change of the formula shows here first, and
    # means regenerating results/.
    assert _run_id(1) == "1105fe1013817653"
    assert len({_run_id(1), _run_id(2), _run_id(4)}) == 3
