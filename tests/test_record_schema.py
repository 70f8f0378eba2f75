"""The record schema is one torch-free module that every writer and reader takes fields from."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import pytest

from harness.evaluation.metrics import compute_metrics
from harness.leaderboard import aggregate, usable
from harness.records import schema as schema
from harness.records.validation import validate_record
from tests.record_factory import make_record


def test_the_schema_imports_neither_torch_nor_anything_of_the_engine() -> None:
    code = (
        "import sys, harness.records.schema; "
        "print(' '.join(m for m in sys.modules if m == 'torch' or m.startswith('harness')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()  # fmt: skip
    # The record's own modules and the metric definitions it names, nothing else.
    allowed = ("harness.records", "harness.evaluation.metrics", "harness.evaluation")
    assert "torch" not in loaded and "harness.records.schema" in loaded
    assert all(m == "harness" or m.startswith(allowed) for m in loaded), loaded


def test_every_metric_is_computed_and_every_cost_is_a_field() -> None:
    computed = compute_metrics([[90.0, None], [50.0, 80.0]], [[90.0, None], [70.0, 85.0]], [10, 10])
    assert set(computed) == set(schema.METRIC_NAMES)
    cost_fields = {f.name for f in fields(schema.InferenceCost)}
    assert {q.name for q in schema.COSTS} | {schema.COUNTER_DISAGREEMENT.name} <= cost_fields


def test_the_aggregation_takes_its_lists_from_the_schema() -> None:
    assert aggregate.METRICS == schema.METRIC_NAMES
    assert aggregate.COSTS == tuple(q.name for q in schema.COSTS)
    assert usable.VALUE_RANGES is schema.VALUE_RANGES
    assert aggregate.COUNTER_DISAGREEMENT_LIMIT_PCT == schema.COUNTER_TOLERANCE_PCT


@pytest.mark.parametrize("key", schema.REQUIRED_KEYS)
def test_a_record_without_a_required_key_is_refused(key: str) -> None:
    record = make_record()
    assert validate_record(record) == []
    del record[key]
    assert validate_record(record) == [f"missing key(s): {key}"]


def test_a_failed_record_carries_every_required_key_and_no_budget() -> None:
    failed = make_record(status="failed")
    assert validate_record(failed) == []
    assert set(schema.REQUIRED_KEYS) <= set(failed) and "training_budget" not in failed
    assert failed["results"] is None and failed["inference_cost"] is None


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (("inference_cost", "sparsity_pct"), 100.5, "sparsity_pct=100.5 lies outside"),
        (("inference_cost", "param_bytes"), 1.5, "param_bytes=1.5 is not an integer"),
        (("inference_cost", "uncounted_ops"), "aten.mm", "is not a list of op names"),
        (("inference_cost", "latencies"), [], "is not a non-empty list"),
        (("training_budget", "total_samples"), 1, "total_samples=1 is not the sum"),
    ],
)
def test_typed_sections_are_checked(path: tuple[str, str], value, problem: str) -> None:
    record = make_record()
    record[path[0]][path[1]] = value
    assert any(problem in p for p in validate_record(record)), validate_record(record)


def test_a_latency_on_an_unknown_device_is_refused() -> None:
    record = make_record()
    record["inference_cost"]["latencies"][0]["device"] = "tpu"
    assert any("device='tpu' is not one of cpu, cuda" in p for p in validate_record(record))
