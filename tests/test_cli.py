"""The command line, end to end: Ray Tune trials, records, site, and errors that name the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.api.adapters import FRAMEWORKS, STRATEGIES, load_adapters
from harness.api.testing import TINY_SUITE_YAML
from harness.cli import EXIT_BAD_INPUT, EXIT_OK, main
from harness.data import datasets

load_adapters()

BROKEN_METHOD = """\
  - strategy: crashes_in_worker
    label: lwf-broken
"""
# An out-of-tree strategy (found through its entry point, in the driver and in every Ray
# worker) that passes every check before the run and then crashes inside its trial.
CRASHING_PLUGIN = {
    "crashing_strategy.py": (
        "from harness.api.adapters import STRATEGIES, Strategy\n\n\n"
        "@STRATEGIES.register('crashes_in_worker')\n"
        "class CrashesInWorker(Strategy):\n"
        "    def begin_task(self, model, task):\n"
        "        raise RuntimeError('boom: this strategy crashes on purpose')\n"
    ),
    "crashing_strategy-0.0.dist-info/METADATA": "Name: crashing-strategy\nVersion: 0.0\n",
    "crashing_strategy-0.0.dist-info/entry_points.txt": (
        "[cilbench.strategies]\ncrashes_in_worker = crashing_strategy\n"
    ),
}


def _cilbench(*args: str, cwd: Path, plugins: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    if plugins is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugins), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    """One real Ray Tune run: two methods that work and one whose trial crashes."""
    folder = tmp_path_factory.mktemp("grid")
    suite = folder / "tiny-3split.yaml"
    suite.write_text(TINY_SUITE_YAML + BROKEN_METHOD)
    for name, text in CRASHING_PLUGIN.items():
        (folder / "plugins" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "plugins" / name).write_text(text)
    run = _cilbench("run", "--suite", str(suite), "--seeds", "1", "--quick", "--max-concurrent",
                    "2", "--results", "results", "--site", "site", cwd=folder,
                    plugins=folder / "plugins")  # fmt: skip
    return folder, suite, run


def test_grid_writes_records_and_site_and_names_failures(grid_run) -> None:
    folder, _, run = grid_run
    assert run.returncode == 1, run.stdout + run.stderr
    records = [json.loads(p.read_text()) for p in (folder / "results").glob("**/*.json")]
    by_label = {r["method"]["label"]: r for r in records}
    assert set(by_label) == {"finetune", "lwf", "lwf-broken"}
    assert by_label["finetune"]["status"] == by_label["lwf"]["status"] == "ok"
    assert by_label["lwf-broken"]["status"] == "failed"
    assert "crashes on purpose" in by_label["lwf-broken"]["error"]["message"]
    assert "1 trial(s) failed" in run.stdout and "lwf-broken" in run.stdout
    assert (folder / "site" / "index.html").is_file()


def test_console_shows_one_line_per_task_and_no_ray_flood(grid_run) -> None:
    _, _, run = grid_run
    for label in ("finetune", "lwf"):
        for task in (1, 2, 3):
            assert sum(f"{label} (" in line and f"task {task}/3" in line
                       for line in run.stdout.splitlines()) == 1  # fmt: skip
    assert "Trial status" not in run.stdout + run.stderr
    assert "== Status ==" not in run.stdout + run.stderr


def test_rerun_skips_trials_that_have_records(grid_run) -> None:
    folder, suite, _ = grid_run
    before = sorted(p.stat().st_mtime_ns for p in (folder / "results").glob("**/*.json"))
    again = _cilbench("run", "--suite", str(suite), "--seeds", "1", "--quick", "--method",
                      "finetune", "--method", "lwf", "--no-site", "--results", "results",
                      cwd=folder)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "skipped 2 trial(s) that already have a record" in again.stdout
    assert "nothing to run" in again.stdout and "skip finetune" not in again.stdout
    after = sorted(p.stat().st_mtime_ns for p in (folder / "results").glob("**/*.json"))
    assert before == after


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["--suite", "nope"],
            "Valid suites: aircraft-10split, cars-10split, cifar100-10split, "
            "digits-5split, fmnist-5split",
        ),
        (["--method", "nope"], "Valid strategies: " + ", ".join(STRATEGIES.names())),
        (["--method", "lwf+nope"], "Valid frameworks: " + ", ".join(FRAMEWORKS.names())),
        (["--method", "lfw"], 'Did you mean "lwf"'),
        (["--backbone", "resnet"], "Valid backbones:"),
        (["--set", "strategy.lamda_kd=2", "--method", "lwf"], 'Did you mean "lambda_kd"'),
        (["--set", "epochs=2"], "SCOPE.KEY=VALUE"),
        (["--weights", "resnet=x.pt"], "Valid backbones:"),
        (["--weights", "compact_cnn"], "BACKBONE=SPEC"),
        (["--limit-per-class", "0"], "positive"),
    ],
)
def test_bad_names_fail_with_the_valid_ones(args, expected, capsys, tmp_path) -> None:
    code = main(["run", *args, "--results", str(tmp_path / "r"), "--no-site"])
    assert code == EXIT_BAD_INPUT
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_missing_dataset_says_how_to_get_it(capsys, tmp_path, monkeypatch) -> None:
    import torchvision.datasets

    class Offline:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Offline)
    code = main(["run", "--suite", "fmnist-5split", "--data-root", str(tmp_path / "data"),
                 "--results", str(tmp_path / "r"), "--no-site"])  # fmt: skip
    assert code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "apt-get install dataset-fashion-mnist" in err and "--data-root" in err


def test_site_skips_malformed_records_and_names_them(tmp_path, caplog) -> None:
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "bad.json").write_text("[]")
    code = main(["site", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "s")])
    assert code == EXIT_OK
    assert "bad.json" in caplog.text
    assert (tmp_path / "s" / "index.html").is_file()


def test_validate_is_strict_about_malformed_records(tmp_path, capsys) -> None:
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "bad.json").write_text("[]")
    assert main(["validate", "--results", str(tmp_path / "results")]) == EXIT_BAD_INPUT
    assert "bad.json" in capsys.readouterr().err


def test_help_and_list(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "run" in capsys.readouterr().out
    assert main(["list", "strategies"]) == 0
    assert capsys.readouterr().out.strip() == "strategies: " + ", ".join(STRATEGIES.names())
