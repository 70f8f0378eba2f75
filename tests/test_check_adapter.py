"""``cilbench check-adapter``: every built-in adapter passes; each deliberately broken plugin of
``tests/plugins/`` fails the one check it breaks, with its fix; a plugin installed the way a
user installs one (pip, its entry point) is listed, checked and run.

The built-in and broken adapters are checked in process on the session's shared trials
(``tests/contract_source.py``: the contract tests run the same ones); a broken plugin is
registered only for its test (the registries are restored after it). The installed plugins
run ``cilbench`` in subprocesses, with the plugins on ``PYTHONPATH`` and the project's
virtual environment untouched.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

import harness.cli.check_adapter as check_adapter_command
from harness import cli
from harness.api import contract_checks as checks
from harness.api.adapters import FRAMEWORKS, STRATEGIES, load_adapters
from harness.api.conformance import built_in_names, check_adapter
from harness.api.testing import write_tiny_suite
from tests.contract_source import shared_trials
from tests.plugin_install import cilbench, install_plugins

PLUGINS = Path(__file__).resolve().parent / "plugins"
load_adapters()
BUILT_IN = [*built_in_names(STRATEGIES), *built_in_names(FRAMEWORKS)]

# folder under tests/plugins, its module, the registered name, the one check it must fail,
# and what that failure must say (the cause and the fix).
BROKEN = [
    ("peeking", "cilbench_test_peeking", "broken_peeking", checks.NO_TEST_DATA,
     ["TestDataAccessError", "cilbench_test_peeking.py", "in begin_task", "task.train, task.val"]),
    ("fake_compression", "cilbench_test_fake_compression", "broken_fake_compression",
     checks.CHEAPER, ["not cheaper", "unstructured sparsity", "declare `compresses = False`",
                      "prune_channels"]),
    ("unseeded", "cilbench_test_unseeded", "broken_unseeded", checks.DETERMINISTIC,
     ["with seed 1 gave two accuracy matrices", "torch.initial_seed()"]),
    ("hoarding", "cilbench_test_hoarding", "broken_hoarding", checks.MEMORY,
     ["ExemplarBudgetError", "over the suite's budget of 12", "memory.make_room("]),
    ("forgiving_config", "cilbench_test_forgiving_config", "broken_forgiving_config",
     checks.CONFIG, ["strategy.label_smoothing=NaN", "= ranged(default"]),
    ("task_id", "cilbench_test_task_id", "broken_task_id", checks.NO_TASK_ID,
     ["TypeError", "task_id", "make forward(x) take images only"]),
]  # fmt: skip


@pytest.fixture
def register_plugin(monkeypatch: pytest.MonkeyPatch):
    """Registers a plugin of tests/plugins in this process for one test: the registries get
    a copy of their entries, restored afterwards, and the module is forgotten."""
    monkeypatch.setattr(STRATEGIES, "_entries", dict(STRATEGIES._entries))
    monkeypatch.setattr(FRAMEWORKS, "_entries", dict(FRAMEWORKS._entries))
    imported: list[str] = []

    def register(folder: str, module: str) -> None:
        monkeypatch.syspath_prepend(str(PLUGINS / folder))
        sys.modules.pop(module, None)
        importlib.import_module(module)
        imported.append(module)

    yield register
    for module in imported:
        sys.modules.pop(module, None)


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_built_in_adapter_passes_check_adapter(name: str) -> None:
    report = check_adapter(name, shared_trials)
    assert report.holds, report.describe()


# Six plugin installs and contract runs (12 s together); CI runs them (make test-all).
@pytest.mark.slow
@pytest.mark.parametrize("folder, module, name, check, words", BROKEN)
def test_each_broken_plugin_fails_its_check_with_the_fix(
    folder, module, name, check, words, register_plugin
) -> None:
    register_plugin(folder, module)
    report = check_adapter(name, shared_trials)
    failed = {result.check: result for result in report.results if result.status == checks.FAIL}
    assert not report.holds
    assert list(failed) == [check], report.describe()
    explained = failed[check].explained()
    missing = [word for word in words if word not in explained]
    assert not missing, explained


def test_a_second_run_that_fails_fails_the_determinism_check() -> None:
    def flaky(strategy: str, framework: str, *, seed: int = 1, fresh: bool = False):
        record = shared_trials(strategy, framework, seed=seed)
        if fresh:  # the rerun crashes where the first run finished
            record.update(status="failed", error={"type": "RuntimeError", "message": "flaky",
                                                  "traceback": None})  # fmt: skip
        return record

    report = check_adapter("finetune", flaky)
    assert [result.check for result in report.failures()] == [checks.DETERMINISTIC]
    message = report.failures()[0].message
    assert "another run failed where the first finished: finetune+none failed: " in message
    assert "RuntimeError: flaky" in message


def test_the_command_prints_each_check_and_exits_1_when_one_fails(
    register_plugin, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(check_adapter_command, "FreshTrials", lambda: shared_trials)
    register_plugin("fake_compression", "cilbench_test_fake_compression")
    assert cli.main(["check-adapter", "broken_fake_compression"]) == 1
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines() if line.startswith("  ")]
    statuses = [words[0] for words in lines if words[0] in ("pass", "FAIL", "not")]
    assert statuses.count("FAIL") == 1 and len(statuses) == 12, out
    assert "compressed model cheaper than plain" in out and "Fix: declare" in out
    assert "broken_fake_compression: the contract does not hold" in out


def test_the_command_exits_0_when_every_check_holds(monkeypatch, capsys) -> None:
    monkeypatch.setattr(check_adapter_command, "FreshTrials", lambda: shared_trials)
    assert cli.main(["check-adapter", "lwf"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "lwf: the contract holds" in out


def test_an_unknown_name_exits_2_naming_the_valid_ones(capsys) -> None:
    assert cli.main(["check-adapter", "lwff"]) == 2
    err = capsys.readouterr().err
    assert 'Did you mean "lwf"?' in err
    assert "Strategies: " in err and "finetune" in err and "Frameworks: " in err
    assert "postpruning" in err and "pip install -e" in err


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A working plugin and a broken one, installed with pip into a folder of their own."""
    target = tmp_path_factory.mktemp("plugins") / "site-packages"
    return install_plugins([PLUGINS / "replay", PLUGINS / "fake_compression"], target)


def test_an_installed_plugin_is_listed(installed) -> None:
    listed = cilbench("list", env=installed)
    assert listed.returncode == 0, listed.stderr
    assert "plugin_replay" in listed.stdout and "broken_fake_compression" in listed.stdout


# Slow (a cilbench subprocess running trials, 6 s): CI runs it; the same checks run in
# process on every broken plugin above.
@pytest.mark.slow
def test_an_installed_plugin_passes_check_adapter(installed) -> None:
    checked = cilbench("check-adapter", "plugin_replay", env=installed)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "plugin cilbench-test-replay 0.1.0" in checked.stdout  # found by its entry point
    assert "plugin_replay: the contract holds" in checked.stdout


# Slow (a cilbench subprocess running trials, 6 s): CI runs it; the same checks run in
# process on every broken plugin above.
@pytest.mark.slow
def test_an_installed_broken_plugin_fails_check_adapter(installed) -> None:
    checked = cilbench("check-adapter", "broken_fake_compression", env=installed)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "FAIL        compressed model cheaper than plain" in checked.stdout


@pytest.mark.slow
def test_an_installed_plugin_runs_and_its_record_names_the_package(installed, tmp_path) -> None:
    suite = write_tiny_suite(tmp_path)
    results = tmp_path / "results"
    ran = cilbench("run", "--suite", str(suite), "--method", "plugin_replay", "--seeds", "1",
                   "--results", str(results), "--no-site", env=installed)  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (path,) = results.rglob("*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok"
    origin = record["method"]["origins"]["strategy"]
    assert (origin["origin"], origin["package"], origin["version"]) == (
        "plugin", "cilbench-test-replay", "0.1.0")  # fmt: skip
