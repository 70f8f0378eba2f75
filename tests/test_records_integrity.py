"""Record integrity: complete validation (the same for writer, validate and the site), paths
that stay inside results/, create-if-absent writes, and failure records with real run ids."""

from __future__ import annotations

import copy
import errno
import json
import os
import threading
from pathlib import Path

import pytest

from harness.api.testing import TINY_SUITE_YAML, write_tiny_suite
from harness.cli import EXIT_BAD_INPUT, main
from harness.records import store as record_module
from harness.records.layout import RecordPathError, record_path
from harness.records.store import (
    MalformedRecordError,
    RecordExistsError,
    index_record_files,
    load_records,
    load_records_leniently,
    write_record,
)
from harness.records.validation import validate_record
from harness.run.grid import plan_trials
from harness.run.trial import TrialSpec, failure_record, resolve_trial
from tests.record_factory import make_record

NAN, INF = float("nan"), float("inf")


def _set(path: str, value: object):
    """A mutation of a factory record: ``path`` is dotted, list indices as numbers."""

    def mutate(record: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target = record
        for key in parents:
            target = target[key]
        target[last] = value

    return mutate


BROKEN = {
    "NaN accuracy": _set("results.acc_matrix_pct.1.0", NAN),
    "infinite accuracy": _set("results.acc_matrix_pct.0.0", INF),
    "accuracy over 100": _set("results.acc_matrix_pct.1.1", 100.5),
    "negative accuracy": _set("results.task_aware_acc_matrix_pct.1.0", -1.0),
    "boolean accuracy": _set("results.acc_matrix_pct.0.0", True),
    "entry above the diagonal": _set("results.acc_matrix_pct.0.1", 50.0),
    "matrix of the wrong shape": _set(
        "results.acc_matrix_pct", [[98.0, None, None], [60.0, 90.0, None], [1.0, 2.0, 3.0]]
    ),
    "ragged matrix": _set("results.task_aware_acc_matrix_pct.1", [60.0]),
    "negative test count": _set("results.test_samples_per_task.0", -100),
    "zero test count": _set("results.test_samples_per_task.0", 0),
    "fractional test count": _set("results.test_samples_per_task.1", 99.5),
    "too few test counts": _set("results.test_samples_per_task", [100]),
    "NaN metric": _set("results.metrics.bwt_pct", NAN),
    "infinite metric": _set("results.metrics.final_acc_pct", INF),
    "NaN cost": _set("inference_cost.gflops_per_image", NAN),
    "infinite cost": _set("inference_cost.latency_ms_b1", INF),
    "negative cost": _set("inference_cost.params_millions", -1.0),
    "zero latency threads": _set("inference_cost.latency_threads", 0),
    "NaN in the framework report": _set("framework_report", {"achieved_ratio": NAN}),
    "NaN in provenance": _set("provenance.python", NAN),
    "NaN wall time": _set("timing.trial_wall_time_s", NAN),
    "negative task time": _set("timing.task_wall_time_s.0", -1.0),
    "num_tasks disagrees": _set("suite.num_tasks", 3),
    "string seed": _set("seed", "1"),
    "non-boolean debug": _set("debug", "no"),
}


def test_a_factory_record_is_valid() -> None:
    assert validate_record(make_record()) == []


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_every_number_is_checked_by_writer_validate_and_site_alike(case, tmp_path) -> None:
    record = copy.deepcopy(make_record())  # the factory shares its default matrix
    BROKEN[case](record)
    problems = validate_record(record)
    assert problems, f"{case} passed validation"
    # The writer refuses it and leaves nothing behind.
    with pytest.raises(MalformedRecordError, match="refusing to write"):
        write_record(record, tmp_path / "written")
    assert not list((tmp_path / "written").glob("**/*"))
    # Put there by hand (JSON readers accept NaN), strict and lenient loaders agree.
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "bad.json").write_text(json.dumps(record))  # allow_nan: what another tool may do
    with pytest.raises(MalformedRecordError, match="bad.json"):
        load_records(folder)
    loaded = load_records_leniently(folder)
    assert loaded.records == [] and "bad.json: skipped" in loaded.warnings[0]


def test_validate_command_fails_on_a_nan_record(tmp_path, capsys) -> None:
    record = make_record()
    record["results"]["metrics"]["final_acc_pct"] = NAN
    (tmp_path / "nan.json").write_text(json.dumps(record))
    assert main(["validate", "--results", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "nan.json" in capsys.readouterr().err


def test_validate_command_names_uncounted_ops_and_disagreeing_counters(tmp_path, capsys) -> None:
    flagged = make_record(seed=1, uncounted_ops=["aten._fft_r2c.default"])
    apart = make_record(seed=2, counter_disagreement_pct=3.5)
    clean = make_record(seed=3)
    for record in (flagged, apart, clean):
        (tmp_path / f"seed{record['seed']}-{record['run_id']}.json").write_text(json.dumps(record))
    assert main(["validate", "--results", str(tmp_path)]) == 0  # valid, but in doubt
    out = capsys.readouterr().out
    assert "3 valid record(s)" in out
    assert "lwf seed=1: ops without a FLOP formula ran in the served model: aten._fft_r2c" in out
    assert "lwf seed=2: the FLOP counters disagree by 3.50%" in out
    assert "seed=3" not in out


@pytest.mark.parametrize(
    "field, name",
    [("suite", ".."), ("label", ".."), ("label", "."), ("label", ""), ("backbone", ".."),
     ("run_id", "..")],
)  # fmt: skip
def test_record_paths_never_leave_the_results_folder(field, name, tmp_path) -> None:
    record = make_record()
    if field == "suite":
        record["suite"]["name"] = name
    elif field == "run_id":
        record["run_id"] = name
    else:
        record["method"][field] = name
    with pytest.raises(RecordPathError, match="results/"):
        record_path(tmp_path / "results", record)
    assert validate_record(record)  # so neither validate nor the site accepts it
    with pytest.raises(MalformedRecordError, match="results/|label"):
        write_record(record, tmp_path / "results")
    assert not any(tmp_path.glob("**/*.json"))


def test_slashes_in_names_stay_one_folder(tmp_path) -> None:
    record = make_record(label="../../evil", suite="a/../../b")
    path = record_path(tmp_path, record)
    assert path.resolve().is_relative_to(tmp_path.resolve())
    assert len(path.relative_to(tmp_path).parts) == 4


@pytest.mark.parametrize("where", ["label", "suite name"])
def test_a_suite_with_a_dotdot_name_or_label_is_refused(where, tmp_path, capsys) -> None:
    if where == "label":
        text = TINY_SUITE_YAML + "  - {strategy: lwf, label: ..}\n"
    else:
        text = TINY_SUITE_YAML.replace("name: tiny-3split", "name: ..")
    suite = tmp_path / "suite.yaml"
    suite.write_text(text)
    results = tmp_path / "deep" / "results"
    code = main(["run", "--suite", str(suite), "--seeds", "1", "--quick", "--no-site",
                 "--results", str(results)])  # fmt: skip
    assert code == EXIT_BAD_INPUT
    assert ".." in capsys.readouterr().err
    assert not any(tmp_path.glob("**/*.json"))


def test_duplicate_seeds_plan_one_trial_each(tmp_path) -> None:
    suite = write_tiny_suite(tmp_path)
    plan = plan_trials(suite=str(suite), methods=["lwf"], seeds=[1, 1, 2, 1], debug=True,
                       results_dir=tmp_path / "results")  # fmt: skip
    assert [s.seed for s in plan.specs] == [1, 2]
    assert len(plan.run_ids) == 2


def _race(record: dict, folder: Path, writers: int, **kwargs) -> list[object]:
    """``writers`` threads write ``record`` at once; all of them have passed the early
    existence check before any creates its file (the window a check-then-rename leaves)."""
    barrier = threading.Barrier(writers)
    real_mkstemp = record_module.tempfile.mkstemp
    outcomes: list[object] = []

    def mkstemp(*args, **kw):
        barrier.wait(timeout=60)  # a hang guard only
        return real_mkstemp(*args, **kw)

    def write() -> None:
        try:
            outcomes.append(write_record(copy.deepcopy(record), folder, **kwargs))
        except Exception as error:
            outcomes.append(error)

    record_module.tempfile.mkstemp = mkstemp
    try:
        threads = [threading.Thread(target=write) for _ in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        record_module.tempfile.mkstemp = real_mkstemp
    return outcomes


def test_two_writers_of_one_run_id_exactly_one_wins(tmp_path) -> None:
    outcomes = _race(make_record(), tmp_path, writers=4)
    wins = [o for o in outcomes if isinstance(o, Path)]
    assert len(wins) == 1, outcomes
    assert all(isinstance(o, RecordExistsError) for o in outcomes if o not in wins)
    assert [p.name for p in wins[0].parent.iterdir()] == [wins[0].name]  # no temp files left


def test_without_hard_links_a_lock_still_lets_one_writer_win(tmp_path, monkeypatch) -> None:
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(record_module.os, "link", no_links)
    outcomes = _race(make_record(), tmp_path, writers=3)
    assert sum(isinstance(o, Path) for o in outcomes) == 1, outcomes
    assert sum(isinstance(o, RecordExistsError) for o in outcomes) == 2


def test_overwriting_stays_atomic_for_readers(tmp_path) -> None:
    first = make_record(created_utc="2026-01-01T00:00:00Z")
    second = make_record(created_utc="2026-01-02T00:00:00Z")
    path = write_record(first, tmp_path)
    stop, seen, errors = threading.Event(), set(), []

    def read() -> None:
        while not stop.is_set():
            try:
                seen.add(json.loads(path.read_text())["created_utc"])
            except Exception as error:  # a partial or missing file
                errors.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(100):
        write_record(second if i % 2 else first, tmp_path, overwrite=True)
    stop.set()
    reader.join()
    assert errors == [] and seen <= {first["created_utc"], second["created_utc"]}
    assert len(list(tmp_path.glob("**/*"))) == 4  # 3 folders, the record, nothing else


def test_a_failure_record_carries_the_trials_run_id_and_is_replaced(tmp_path) -> None:
    suite = write_tiny_suite(tmp_path)
    results = tmp_path / "results"
    plan = plan_trials(suite=str(suite), methods=["lwf"], seeds=[1], debug=True,
                       results_dir=results)  # fmt: skip
    spec = plan.specs[0]
    failed = failure_record(spec, None, "stopped by SIGTERM before it finished", 0.0)
    assert failed["run_id"] == resolve_trial(spec).run_id
    assert validate_record(failed) == []
    write_record(failed, results)
    again = plan_trials(suite=str(suite), methods=["lwf"], seeds=[1], debug=True,
                        results_dir=results)  # fmt: skip
    assert again.replace == [True]  # the failed trial is retried and its record replaced
    ok = make_record(suite="tiny-3split", label="lwf", backbone="compact_cnn")
    ok["run_id"] = failed["run_id"]
    write_record(ok, results, overwrite=True)
    assert list(index_record_files(results)) == [failed["run_id"]]
    assert [r["status"] for r in load_records(results)] == ["ok"]


def test_an_unresolvable_spec_gets_a_marked_id() -> None:
    spec = TrialSpec(suite_text=TINY_SUITE_YAML, strategy="nope", framework="none",
                     backbone="compact_cnn", seed=1, label="nope")  # fmt: skip
    failed = failure_record(spec, None, RuntimeError("unknown strategy"), 0.0)
    assert failed["run_id"].startswith("unresolved-")
    assert validate_record(failed) == []


def test_the_cause_of_a_worker_death_is_kept(tmp_path) -> None:
    from ray import cloudpickle
    from ray.exceptions import ActorDiedError

    from harness.run.scheduler import _trial_error

    class DeadTrial:  # as Tune has it when it calls on_trial_error: local files, no sync yet
        pickled_error_file = str(tmp_path / "error.pkl")
        error_file = str(tmp_path / "error.txt")

        def get_pickled_error(self):
            return None

        def get_error(self):
            return None

    (tmp_path / "error.pkl").write_bytes(cloudpickle.dumps(ActorDiedError()))
    error = _trial_error(DeadTrial())
    assert isinstance(error, ActorDiedError)
    suite = write_tiny_suite(tmp_path)
    spec = plan_trials(suite=str(suite), methods=["lwf"], seeds=[1]).specs[0]
    failed = failure_record(spec, None, error, 0.0)
    assert failed["error"]["type"] == "ActorDiedError"
    assert "Ray trial failed" not in failed["error"]["message"]
    assert failed["run_id"] == resolve_trial(spec).run_id


def test_no_temp_file_is_left_when_a_write_fails(tmp_path, monkeypatch) -> None:
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(record_module.os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        write_record(make_record(), tmp_path)
    assert [p for p in tmp_path.glob("**/*") if p.is_file()] == []
    assert os.listdir(tmp_path)  # only the folders
