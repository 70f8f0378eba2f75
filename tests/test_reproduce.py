"""``cilbench reproduce``: a committed record rerun from itself alone holds; a doctored copy
does not, and says which cell; what cannot run says why (exit 2). Nothing lands in results/.

The end-to-end tests rerun one committed digits-5split trial (finetune on
``compact_cnn_small``: about 1.5 s of training) in this process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness.api.testing import TINY_SUITE_YAML
from harness.cli import EXIT_BAD_INPUT, EXIT_OK, main
from harness.evaluation.metrics import compute_metrics
from harness.records.validation import validate_record
from harness.run.record_agreement import compare
from harness.run.reproduce import recorded_suite_text
from tests.record_factory import make_record, with_hardware

ROOT = Path(__file__).resolve().parents[1]
CHEAPEST = ROOT / "results" / "digits-5split" / "finetune" / "compact_cnn_small"
EXIT_DIFFERS = 1


def committed_record() -> Path:
    [path] = sorted(CHEAPEST.glob("seed1-*.json"))
    return path


def _snapshot(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_a_committed_record_reproduces(tmp_path, capsys) -> None:
    path = committed_record()
    record = json.loads(path.read_text())
    before = _snapshot(ROOT / "results")
    started = time.perf_counter()
    code = main(["reproduce", str(path), "--out", str(tmp_path / "rerun.json")])
    seconds = time.perf_counter() - started
    out = capsys.readouterr().out
    assert _snapshot(ROOT / "results") == before  # nothing written under results/
    rerun = json.loads((tmp_path / "rerun.json").read_text())
    agreement = compare(record, rerun)
    verdict = out.strip().splitlines()[-1]
    if agreement.exact:  # the CPU and kernels the record names: bit for bit
        assert code == EXIT_OK, out
        assert rerun["results"]["acc_matrix_pct"] == record["results"]["acc_matrix_pct"]
        assert verdict.startswith("HOLDS: accuracy matrix largest difference 0 points over 15")
        assert "bit-identical required" in verdict
    else:  # another machine: the stated tolerance, and the difference measured
        assert code == (EXIT_OK if agreement.holds else EXIT_DIFFERS), out
        assert "within ±1 points per cell" in verdict
        assert f"largest difference {agreement.largest_points:.4g} points" in verdict
    assert "GFLOPs and parameters match" in verdict or code == EXIT_DIFFERS
    print(f"reproduce took {seconds:.1f} s")  # shown with -s; README quotes it


def test_a_doctored_record_differs_and_names_the_cell(tmp_path, capsys) -> None:
    path = committed_record()
    record = json.loads(path.read_text())
    results = record["results"]
    recorded = results["acc_matrix_pct"][4][4]
    results["acc_matrix_pct"][4][4] = recorded - 5.0  # and the metrics follow, so it validates
    results["metrics"] = compute_metrics(results["acc_matrix_pct"],
                                         results["task_aware_acc_matrix_pct"],
                                         results["test_samples_per_task"])  # fmt: skip
    assert validate_record(record) == []
    copy = tmp_path / "results" / path.relative_to(ROOT / "results")
    copy.parent.mkdir(parents=True)
    copy.write_text(json.dumps(record, indent=1))
    code = main(["reproduce", record["run_id"], "--results", str(tmp_path / "results")])
    verdict = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == EXIT_DIFFERS
    assert verdict.startswith(f"DIFFERS: acc_matrix_pct[4][4]: recorded {recorded - 5.0!r}")
    assert "(5 points)" in verdict


def test_an_unknown_run_id_cannot_run(tmp_path, capsys) -> None:
    (tmp_path / "results").mkdir()
    code = main(["reproduce", "0123456789abcdef", "--results", str(tmp_path / "results")])
    assert code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "cannot reproduce: unknown run id '0123456789abcdef'" in err
    assert str(tmp_path / "results") in err


def test_a_failed_record_and_an_out_file_under_results_cannot_run(tmp_path, capsys) -> None:
    failed = tmp_path / "failed.json"
    failed.write_text(json.dumps(make_record(status="failed")))
    assert main(["reproduce", str(failed)]) == EXIT_BAD_INPUT
    assert "records a failed trial" in capsys.readouterr().err
    out = tmp_path / "results" / "x.json"
    args = ["reproduce", str(failed), "--results", str(tmp_path / "results"), "--out", str(out)]
    assert main(args) == EXIT_BAD_INPUT
    assert "reproduce never writes there" in capsys.readouterr().err


def _suite_record(text: str, name: str = "tiny-3split") -> dict:
    import hashlib

    record = make_record(suite=name)
    record["suite"]["file_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    return record


SUITE_V1 = TINY_SUITE_YAML


def test_the_suite_text_is_the_current_file_when_its_hash_matches(tmp_path) -> None:
    (tmp_path / "tiny-3split.yaml").write_text(SUITE_V1)
    suite = recorded_suite_text(_suite_record(SUITE_V1), tmp_path)
    assert suite.exact and suite.text == SUITE_V1 and suite.warnings == ()


def test_a_changed_suite_file_is_recovered_from_git_history(tmp_path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "tiny-3split.yaml").write_text(SUITE_V1)
    subprocess.run([*git, "add", "tiny-3split.yaml"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "v1"], check=True)
    (tmp_path / "tiny-3split.yaml").write_text(SUITE_V1 + "# changed\n")  # not committed
    suite = recorded_suite_text(_suite_record(SUITE_V1), tmp_path)
    assert suite.exact and suite.text == SUITE_V1
    assert "is not the file the record ran" in suite.warnings[0]
    assert "rerunning from the record's own file as git holds it" in suite.warnings[0]


def test_an_unrecoverable_suite_text_falls_back_to_the_current_file_loudly(tmp_path) -> None:
    (tmp_path / "tiny-3split.yaml").write_text(SUITE_V1 + "# changed\n")
    suite = recorded_suite_text(_suite_record(SUITE_V1), tmp_path)
    assert not suite.exact and suite.text.endswith("# changed\n")
    assert "git history does not hold the record's text" in suite.warnings[0]


def test_no_suite_file_and_no_history_cannot_run(tmp_path) -> None:
    from harness.run.reproduce import ReproduceError

    with pytest.raises(ReproduceError, match="no current suite file names 'tiny-3split'"):
        recorded_suite_text(_suite_record(SUITE_V1), tmp_path)


def _pair(**changes: float) -> tuple[dict, dict]:
    """A record and its rerun: the same apart from the given matrix cells and costs."""
    record = with_hardware(make_record(acc=[[90.0, None], [60.0, 80.0]]), processor="A",
                           torch_threads=1)  # fmt: skip
    record["provenance"]["math_kernels"] = {"torch_cpu_capability": "AVX512", "env": {}}
    rerun = json.loads(json.dumps(record))
    for key, value in changes.items():
        if key.startswith("cell"):
            i, j = int(key[4]), int(key[5])
            rerun["results"]["acc_matrix_pct"][i][j] = value
        else:
            rerun["inference_cost"][key] = value
    return record, rerun


def test_same_hardware_requires_bit_identical_cells() -> None:
    record, rerun = _pair(cell10=60.0000001)
    agreement = compare(record, rerun)
    assert agreement.exact and not agreement.holds
    assert agreement.verdict().startswith("DIFFERS: acc_matrix_pct[1][0]: recorded 60.0")
    assert compare(record, json.loads(json.dumps(record))).holds


def test_a_record_that_does_not_name_its_kernels_is_held_to_the_tolerance() -> None:
    record, rerun = _pair(cell10=60.5)
    del record["provenance"]["math_kernels"]
    agreement = compare(record, rerun)
    assert agreement.hardware_differences == ["math kernels: not recorded"]
    assert agreement.holds


def test_other_hardware_is_held_to_the_stated_tolerance_either_way() -> None:
    for cell, holds in ((60.9, True), (59.1, True), (61.5, False), (58.5, False)):
        record, rerun = _pair(cell10=cell)
        rerun["provenance"]["processor"] = "B"
        agreement = compare(record, rerun, tolerance_pp=1.0)
        assert not agreement.exact and agreement.holds is holds, cell
        assert f"largest difference {abs(cell - 60.0):.4g} points" in agreement.verdict()
    assert compare(record, rerun, tolerance_pp=2.0).holds


def test_a_cost_that_moved_differs_whatever_the_hardware() -> None:
    record, rerun = _pair(gflops_per_image=0.5 * 1.001)
    verdict = compare(record, rerun).verdict()
    assert verdict.startswith("DIFFERS: inference_cost.gflops_per_image: recorded 0.5")
