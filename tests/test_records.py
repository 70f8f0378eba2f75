"""Records: validated, written once and atomically, never overwritten silently."""

from __future__ import annotations

import copy
import json

import pytest

from harness.api.adapters import STRATEGIES, load_adapters
from harness.api.testing import tiny_suite
from harness.records.store import (
    MalformedRecordError,
    RecordExistsError,
    find_record,
    load_records,
    write_record,
)
from harness.records.validation import validate_record
from harness.run.trial import TrialSpec, run_trial

load_adapters()


@pytest.fixture(scope="module")
def record() -> dict:
    suite = tiny_suite()
    spec = TrialSpec(suite_text=suite.text, strategy="lwf", framework="none",
                     backbone="compact_cnn_small", seed=1, label="lwf", debug=True)  # fmt: skip
    result = run_trial(spec)
    assert result["status"] == "ok", result["error"]
    return result


def test_record_is_self_describing(record) -> None:
    assert record["schema_version"] == 3 and record["debug"] is True
    assert record["suite"]["name"] == "tiny-3split" and len(record["suite"]["file_sha256"]) == 64
    assert record["method"]["config"]["strategy"] == {
        "lambda_kd": 1.0,
        "temperature": 2.0,
        "ce_scope": "seen",
    }
    assert record["method"]["config"]["training"]["epochs"] == 5  # from the suite file
    assert len(record["timing"]["task_wall_time_s"]) == 3
    assert record["provenance"]["packages"]["torch"]
    assert set(record["inference_cost"]) >= {"gflops_per_image", "latency_ms_b1"}


def test_write_is_atomic_and_refuses_to_overwrite(record, tmp_path) -> None:
    path = write_record(record, tmp_path)
    assert path.name == f"seed1-{record['run_id']}.json"
    assert path.relative_to(tmp_path).parts[:3] == ("tiny-3split", "lwf", "compact_cnn_small")
    assert find_record(tmp_path, record["run_id"]) == path
    with pytest.raises(RecordExistsError, match="--overwrite"):
        write_record(record, tmp_path)
    write_record(record, tmp_path, overwrite=True)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left
    assert load_records(tmp_path) == [json.loads(path.read_text())]


def test_metrics_must_agree_with_the_matrix(record) -> None:
    tampered = copy.deepcopy(record)
    tampered["results"]["metrics"]["final_acc_pct"] += 1.0
    assert any("final_acc_pct" in p for p in validate_record(tampered))
    with pytest.raises(MalformedRecordError):
        write_record(tampered, "/nonexistent")


def test_malformed_files_are_named_and_left_alone(record, tmp_path) -> None:
    write_record(record, tmp_path)
    bad = tmp_path / "tiny-3split" / "broken.json"
    bad.write_text("{not json")
    old_schema = copy.deepcopy(record)
    old_schema["schema_version"] = 0
    (tmp_path / "old.json").write_text(json.dumps(old_schema))
    with pytest.raises(MalformedRecordError) as info:
        load_records(tmp_path)
    assert "broken.json" in str(info.value) and "old.json" in str(info.value)
    assert bad.read_text() == "{not json"


def test_a_crashing_adapter_gives_a_failure_record(monkeypatch) -> None:
    def explode(self, model, task):
        raise RuntimeError("boom in begin_task")

    monkeypatch.setattr(STRATEGIES.get("finetune"), "begin_task", explode)
    suite = tiny_suite()
    spec = TrialSpec(suite_text=suite.text, strategy="finetune", framework="none",
                     backbone="compact_cnn_small", seed=1, label="finetune")  # fmt: skip
    failed = run_trial(spec)
    assert failed["status"] == "failed" and failed["results"] is None
    assert failed["error"]["message"] == "boom in begin_task"
    assert "Traceback" in failed["error"]["traceback"]
    assert validate_record(failed) == []
