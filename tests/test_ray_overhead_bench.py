"""benchmarks/ray_overhead.py: its arguments, its arithmetic on fabricated timings, its checks
on records, and (slow) one tiny real run through Ray and in-process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from benchmarks import ray_overhead
from benchmarks.ray_overhead import (
    DEFAULT_METHODS,
    EXIT_DISAGREE,
    EXIT_TRIALS_FAILED,
    Timing,
    disagreements,
    failures,
    format_report,
    medians,
    parse_args,
    round_figures,
)
from harness.api.testing import write_tiny_suite

REPO = Path(__file__).resolve().parents[1]


def test_arguments_default_to_a_small_digits_grid_at_concurrency_one() -> None:
    args = parse_args([])
    assert args.suite == "digits-5split"
    assert args.methods == DEFAULT_METHODS and args.seeds == [1]
    assert args.rounds == 2 and args.max_concurrent == 1
    assert args.parallel == (os.cpu_count() or 1) and args.json is None


def test_arguments_take_comma_separated_methods_and_seeds() -> None:
    args = parse_args(["--methods", "lwf, icarl", "--seeds", "1,2", "--rounds", "3",
                       "--parallel", "0", "--json", "out.json"])  # fmt: skip
    assert args.methods == ["lwf", "icarl"] and args.seeds == [1, 2]
    assert args.rounds == 3 and args.parallel == 0 and args.json == Path("out.json")


@pytest.mark.parametrize(
    "argv",
    [
        ["--rounds", "0"],
        ["--max-concurrent", "0"],
        ["--parallel", "-1"],
        ["--seeds", "one"],
        ["--methods", ","],
    ],  # fmt: skip
)
def test_arguments_refuse_what_cannot_run(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2


def test_round_figures_from_fabricated_timings() -> None:
    ray = Timing(wall_s=100.0, start_s=8.0, trial_wall_s=[12.0] * 7, tune_s=90.0)
    sequential = Timing(wall_s=86.0, trial_wall_s=[12.0, 12.0, 12.0, 12.0, 12.0, 12.0, 14.0])
    parallel = Timing(wall_s=50.0, start_s=7.0)
    figures = round_figures(ray, sequential, parallel)
    assert figures["ray_start_s"] == 8.0 and figures["ray_tune_s"] == 90.0
    assert figures["ray_trials_sum_s"] == 84.0 and figures["sequential_trials_sum_s"] == 86.0
    assert figures["overhead_per_trial_s"] == pytest.approx(14.0 / 7)
    assert figures["overhead_per_trial_without_start_s"] == pytest.approx(6.0 / 7)
    assert figures["overhead_pct"] == pytest.approx(100 * 14.0 / 86.0)
    assert figures["overhead_without_start_pct"] == pytest.approx(100 * 6.0 / 86.0)
    assert figures["concurrency_gain"] == pytest.approx(86.0 / 50.0)
    assert figures["parallel_ray_start_s"] == 7.0


def test_ray_faster_than_the_loop_gives_a_negative_overhead_and_no_pass_no_gain() -> None:
    figures = round_figures(Timing(9.0, 1.0, [4.0, 4.0]), Timing(10.0, 0.0, [5.0, 5.0]), None)
    assert figures["overhead_per_trial_s"] == pytest.approx(-0.5)
    assert figures["overhead_per_trial_without_start_s"] == pytest.approx(-1.0)
    assert figures["overhead_pct"] == pytest.approx(-10.0)
    assert "concurrency_gain" not in figures and "parallel_ray_wall_s" not in figures


def test_medians_over_rounds_keep_only_keys_every_round_has() -> None:
    rounds = [{"a": 1.0, "b": 5.0}, {"a": 3.0}, {"a": 2.0, "b": 7.0}]
    assert medians(rounds) == {"a": 2.0}
    assert medians([{"a": 1.0}, {"a": 4.0}]) == {"a": 2.5}


def _record(matrix: list[list[float]], status: str = "ok") -> dict:
    if status != "ok":
        return {"status": status, "error": {"type": "ValueError", "message": "boom"}}
    return {"status": "ok", "results": {"acc_matrix_pct": matrix,
                                        "task_aware_acc_matrix_pct": matrix}}  # fmt: skip


def test_failures_name_each_trial_that_did_not_end_ok() -> None:
    records = [_record([[90.0]]), _record([], status="failed")]
    assert failures(records, ["lwf", "icarl"]) == ["icarl: failed: ValueError: boom"]


def test_disagreements_name_the_trial_the_matrix_and_the_runs() -> None:
    same = {"ray round 1": [_record([[90.0]])], "sequential round 1": [_record([[90.0]])]}
    assert disagreements(same, ["lwf"]) == []
    differ = {**same, "ray round 2": [_record([[90.5]])]}
    found = disagreements(differ, ["lwf"])
    assert found == [f"lwf: {key} of ray round 2 differs from ray round 1"
                     for key in ("acc_matrix_pct", "task_aware_acc_matrix_pct")]  # fmt: skip


def _result(rounds: list[dict[str, float]]) -> dict:
    return {
        "machine": {"cores": 2, "processor": "AMD EPYC", "system": "Linux", "python": "3.11",
                    "torch": "2", "ray": "2.60.0", "load_average_1min_at_start": 1.5},
        "grid": {"suite": "digits-5split", "version": 5, "trials": 7, "names": ["lwf"]},
        "options": {"rounds": 1, "max_concurrent": 1, "parallel": 2, "json": None},
        "rounds": rounds, "median": medians(rounds),
        "agreement": {"trials": 7, "runs": 3, "differences": []},
    }  # fmt: skip


def test_report_states_the_machine_the_figures_and_the_goal() -> None:
    ray, sequential = Timing(100.0, 8.0, [12.0] * 7, 90.0), Timing(95.0, 0.0, [13.0] * 7)
    report = format_report(_result([round_figures(ray, sequential, Timing(60.0, 7.0))]))
    assert "2 cores, AMD EPYC" in report and "load average (1 min) at start 1.50" in report
    assert "Ray overhead, % of sequential wall" in report and "+5.3" in report
    assert "concurrency gain (sequential / Ray at 2)" in report and "1.58x" in report
    assert "accuracy matrices identical" in report
    assert "under 10% of the grid's wall time: met (median +5.3%)" in report


def test_failed_trials_exit_1_without_figures_and_differing_matrices_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(args):
        raise ray_overhead.TrialsFailed("1 trial(s) failed in the ray pass")

    monkeypatch.setattr(ray_overhead, "benchmark", fail)
    assert ray_overhead.main(["--rounds", "1"]) == EXIT_TRIALS_FAILED
    assert capsys.readouterr().out == ""  # no speed reported for broken trials
    result = _result([round_figures(Timing(10.0, 1.0, [4.0]), Timing(9.0, 0.0, [4.0]), None)])
    result["agreement"]["differences"] = ["lwf: acc_matrix_pct of ray round 2 differs"]
    monkeypatch.setattr(ray_overhead, "benchmark", lambda args: result)
    assert ray_overhead.main(["--rounds", "1"]) == EXIT_DISAGREE
    assert "accuracy matrices DIFFER" in capsys.readouterr().out


@pytest.mark.slow
def test_a_tiny_real_run_through_ray_and_in_process(tmp_path: Path) -> None:
    """One round of the tiny suite's two quick trials: all ok, matrices identical, figures out."""
    suite = write_tiny_suite(tmp_path)
    ray_tmp = Path(tempfile.mkdtemp(prefix="cbt-", dir="/tmp"))  # unix socket paths stay short
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_TMPDIR": str(ray_tmp)}  # fmt: skip
    env.pop("RAY_ADDRESS", None)
    out = tmp_path / "figures.json"
    try:
        done = subprocess.run(
            [sys.executable, str(REPO / "benchmarks" / "ray_overhead.py"), "--suite", str(suite),
             "--methods", "finetune,lwf", "--rounds", "1", "--quick", "--parallel", "2",
             "--json", str(out)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(out.read_text())
    assert figures["grid"]["trials"] == 2 and figures["agreement"]["runs"] == 3
    assert figures["agreement"]["differences"] == []
    assert figures["median"]["ray_start_s"] > 0 and figures["median"]["sequential_wall_s"] > 0
    assert figures["median"]["concurrency_gain"] > 0
    assert "Ray overhead per trial" in done.stdout and "identical" in done.stdout
    assert not (tmp_path / "results").exists()  # records stay in memory
