"""Faults through the real command line and Ray: nothing lost, nothing wrong, whatever happens.

Each test runs ``python -m harness.cli`` (or a thin wrapper that injects one fault on the
driver) in a subprocess with its own short ``RAY_TMPDIR``. The ones where Ray runs trials take
20-35 s each and are marked ``slow`` (``make test-all``, which CI runs); the default run
keeps the checks that fail within seconds, and ``tests/test_cli.py``'s grid run goes through
Ray by default.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from harness.api.testing import TINY_SUITE_YAML, write_tiny_suite
from harness.cli import EXIT_BAD_INPUT, main
from harness.records.layout import record_path
from harness.records.store import load_records
from harness.records.validation import validate_record
from harness.run.grid import plan_trials
from tests.waiting import wait_for

# A tiny suite whose second method trains long enough to be stopped or killed mid-trial.
SLOW_SUITE_YAML = TINY_SUITE_YAML.replace(
    "  - strategy: lwf\n",
    "  - {strategy: lwf, label: lwf-slow, config: {training: {epochs: 80}}}\n",
)
REPO = Path(__file__).resolve().parents[1]  # subprocesses run this checkout's harness
STACK_DUMP_MARKERS = ("Traceback", "*** SIGTERM received", "PC: @", "Fatal Python error")


@pytest.fixture
def ray_tmp():
    """A short, private RAY_TMPDIR (unix socket paths must stay under 107 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="cbt-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _env(ray_tmp: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_TMPDIR": str(ray_tmp), "PYTHONPATH": path, **extra}  # fmt: skip
    env.pop("RAY_ADDRESS", None)
    return env


def _cli(*args: str, cwd: Path, env: dict[str, str], timeout: float = 240):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def _no_stack_dump(output: str) -> None:
    for marker in STACK_DUMP_MARKERS:
        assert marker not in output, output


# ---- item 11: resources Ray would wait on forever, addresses it would retry for minutes ----


# Four subprocess runs of the CLI (10 s together); CI runs them (make test-all).
@pytest.mark.slow
@pytest.mark.parametrize(
    "args, expected",
    [
        (["--cpus-per-trial", "3", "--num-cpus", "2"], "--cpus-per-trial 3 but the local Ray"),
        (["--cpus-per-trial", str((os.cpu_count() or 1) + 1)], "no trial could ever start"),
        (["--gpus-per-trial", "64"], "GPU(s) visible"),
        (["--address", "127.0.0.1:1"], "cannot reach the Ray cluster at 127.0.0.1:1"),
    ],
)
def test_resources_ray_would_wait_on_fail_within_seconds(args, expected, tmp_path, ray_tmp):
    """In a subprocess: before the fix, each of these hung (or retried) for minutes."""
    suite = write_tiny_suite(tmp_path)
    start = time.monotonic()
    run = _cli("run", "--suite", str(suite), "--seeds", "1", "--quick", "--no-site",
               "--results", "results", *args, cwd=tmp_path, env=_env(ray_tmp),
               timeout=90)  # fmt: skip
    assert run.returncode == EXIT_BAD_INPUT, run.stdout + run.stderr
    assert expected in run.stderr
    assert time.monotonic() - start < 60
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
    _no_stack_dump(run.stdout + run.stderr)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--num-cpus", "0"], "--num-cpus must be a positive integer"),
        (["--cpus-per-trial", "0"], "--cpus-per-trial must be a positive integer"),
        (["--max-concurrent", "0"], "--max-concurrent must be a positive integer"),
        (["--address", "nohostport"], "expected HOST:PORT"),
    ],
)
def test_impossible_cpu_options_are_refused(args, expected, tmp_path, capsys) -> None:
    suite = write_tiny_suite(tmp_path)
    code = main(["run", "--suite", str(suite), "--seeds", "1", "--quick", "--no-site",
                 "--results", str(tmp_path / "results"), *args])  # fmt: skip
    assert code == EXIT_BAD_INPUT
    assert expected in capsys.readouterr().err


# ---- item 1: results/ checked before any trial; one unsavable record fails one trial ----


def test_an_unwritable_results_folder_stops_the_run_before_it_starts(tmp_path, capsys) -> None:
    suite = write_tiny_suite(tmp_path)
    not_a_folder = tmp_path / "results"
    not_a_folder.write_text("a file where the records folder should be")
    code = main(["run", "--suite", str(suite), "--seeds", "1", "--quick", "--no-site",
                 "--results", str(not_a_folder)])  # fmt: skip
    assert code == EXIT_BAD_INPUT
    assert "cannot write records to" in capsys.readouterr().err


def test_a_full_results_folder_stops_the_run_before_it_starts(tmp_path, capsys, monkeypatch):
    import harness.run.checks

    suite = write_tiny_suite(tmp_path)
    full = shutil._ntuple_diskusage(total=10**9, used=10**9 - 4096, free=4096)
    monkeypatch.setattr(harness.run.checks.shutil, "disk_usage", lambda path: full)
    code = main(["run", "--suite", str(suite), "--seeds", "1", "--quick", "--no-site",
                 "--results", str(tmp_path / "results")])  # fmt: skip
    assert code == EXIT_BAD_INPUT
    assert "only 4 kB free" in capsys.readouterr().err


# The driver-side faults of one run: seed 2's record carries a NaN, seed 3's record path is
# taken by a folder (an OSError like a full or read-only disk), and a concurrent run of the
# same grid saves seed 4's record first. Seed 1 must be saved as if nothing happened.
FAULTY_DRIVER = textwrap.dedent("""\
    import json, sys
    from pathlib import Path
    from harness.run import scheduler
    from harness.cli import main
    from harness.records.store import write_record

    deliver = scheduler._TrialEvents.on_trial_result

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get("kind") == "record":
            record = json.loads(result["record_json"])
            if record["seed"] == 2:
                record["results"]["metrics"]["bwt_pct"] = float("nan")
            if record["seed"] == 4:
                rival = dict(record, created_utc="1999-01-01T00:00:00Z")
                write_record(rival, Path("results"))  # the other run got there first
            result = {**result, "record_json": json.dumps(record)}
        return deliver(self, iteration, trials, trial, result, **info)

    scheduler._TrialEvents.on_trial_result = on_trial_result
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.slow  # Ray runs trials: 20-35 s
def test_records_that_cannot_be_saved_fail_only_their_trials(tmp_path, ray_tmp) -> None:
    suite = write_tiny_suite(tmp_path)
    seed3 = plan_trials(suite=str(suite), methods=["finetune"], seeds=[3], debug=True).specs[0]
    from harness.run.trial import failure_record

    blocked = record_path(tmp_path / "results", failure_record(seed3, None, "x", 0.0))
    blocked.mkdir(parents=True)  # a folder where seed 3's record goes
    (tmp_path / "driver.py").write_text(FAULTY_DRIVER)
    rescue_tmp = tmp_path / "tmp"
    rescue_tmp.mkdir()
    run = subprocess.run(
        [sys.executable, "driver.py", "run", "--suite", str(suite), "--method", "finetune",
         "--seeds", "1,2,3,4", "--quick", "--no-site", "--results", "results"],
        cwd=tmp_path, env=_env(ray_tmp, TMPDIR=str(rescue_tmp)),
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    _no_stack_dump(output)
    assert "3 trial(s) failed" in output
    for seed in (2, 3, 4):
        assert f"seed={seed}: " in output.split("3 trial(s) failed")[1]
    records = {}
    for path in (tmp_path / "results").glob("**/*.json"):
        if path.is_file():
            record = json.loads(path.read_text())
            assert validate_record(record) == []
            records[record["seed"]] = record
    assert records[1]["status"] == "ok"  # the others kept going
    assert records[2]["status"] == "failed" and "finite" in records[2]["error"]["message"]
    assert 3 not in records and blocked.is_dir()
    assert records[4]["created_utc"] == "1999-01-01T00:00:00Z"  # the rival's, not replaced
    rescued = sorted((rescue_tmp / "cilbench-unsaved").glob("*.json"))
    assert len(rescued) == 3  # nothing lost: every unsaved record is kept and named
    for path in rescued:
        assert str(path) in output
    assert not any(ray_tmp.iterdir())


# ---- items 12 and 2: SIGTERM like Ctrl-C; a killed worker; failure records' run ids ----


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _start_slow_run(folder: Path, ray_tmp: Path) -> tuple[subprocess.Popen, Path]:
    suite = folder / "slow.yaml"
    suite.write_text(SLOW_SUITE_YAML.replace("name: tiny-3split", "name: tiny-slow"))
    log = folder / "out.txt"
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "--suite", str(suite), "--seeds", "1",
         "--max-concurrent", "1", "--no-site", "--results", "results"],
        cwd=folder, env=_env(ray_tmp), stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    return process, suite


@pytest.mark.slow  # Ray runs trials: 20-35 s
def test_sigterm_stops_like_ctrl_c_and_leaves_nothing_behind(tmp_path, ray_tmp) -> None:
    process, suite = _start_slow_run(tmp_path, ray_tmp)
    log = tmp_path / "out.txt"
    wait_for(lambda: "lwf-slow (compact_cnn) seed=1 task 1/3" in log.read_text(), process, log)
    assert list((tmp_path / "results").glob("tiny-slow/finetune/**/*.json"))  # first record
    family = _descendants(process.pid)
    assert any("raylet" in _cmdline(p) for p in family)
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=90)
    output = log.read_text()
    assert code == 143, output
    _no_stack_dump(output)
    assert "stopped by SIGTERM" in output and "unfinished: [2/2] lwf-slow" in output
    records = {r["method"]["label"]: r for r in load_records(tmp_path / "results")}
    assert records["finetune"]["status"] == "ok"  # finished records stay written
    stopped = records["lwf-slow"]
    assert stopped["status"] == "failed" and "SIGTERM" in stopped["error"]["message"]
    spec = plan_trials(suite=str(suite), methods=["lwf-slow"], seeds=[1]).specs[0]
    from harness.run.trial import resolve_trial

    assert stopped["run_id"] == resolve_trial(spec).run_id  # the next run replaces it
    deadline = time.monotonic() + 60  # a hang guard; agents exit within seconds
    while any(_alive(p) for p in family) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [p for p in family if _alive(p)] == []  # Ray is shut down: no agent left
    assert not any(ray_tmp.iterdir())  # the run's Ray session and Tune storage are gone


@pytest.mark.slow  # Ray runs trials: 20-35 s
def test_a_killed_worker_gives_a_failure_record_with_its_cause(tmp_path, ray_tmp) -> None:
    process, suite = _start_slow_run(tmp_path, ray_tmp)
    log = tmp_path / "out.txt"
    wait_for(lambda: "lwf-slow (compact_cnn) seed=1 task 1/3" in log.read_text(), process, log)
    workers = [p for p in _descendants(process.pid) if "ImplicitFunc" in _cmdline(p)]
    assert workers, log.read_text()
    for worker in workers:  # a process this test started, through its own run
        os.kill(worker, signal.SIGKILL)
    code = process.wait(timeout=120)
    output = log.read_text()
    assert code == 1, output
    records = {r["method"]["label"]: r for r in load_records(tmp_path / "results")}
    assert records["finetune"]["status"] == "ok"
    died = records["lwf-slow"]
    assert died["status"] == "failed"
    assert died["error"]["type"] in ("ActorDiedError", "RayActorError", "WorkerCrashedError")
    assert "Ray trial failed" not in died["error"]["message"]
    spec = plan_trials(suite=str(suite), methods=["lwf-slow"], seeds=[1]).specs[0]
    from harness.run.trial import resolve_trial

    assert died["run_id"] == resolve_trial(spec).run_id
    assert not any(ray_tmp.iterdir())
