"""Total-memory alignment (Zhou et al., ICLR 2023): under a suite's total_memory_bytes, the
models a method keeps take their bytes out of its exemplar budget."""

from __future__ import annotations

import dataclasses

import pytest

from harness.api.testing import TINY_SUITE_YAML
from harness.data.suite import SuiteError, parse_suite
from harness.run.trial import run_trial
from tests.contract_trials import tiny_record, tiny_spec

TINY_IMAGE_BYTES = 256  # one 8x8 float32 image of the tiny suite


def _aligned_spec(strategy: str, total_bytes: int):
    text = TINY_SUITE_YAML.replace(
        "exemplar_budget: 12\n", f"exemplar_budget: 12\ntotal_memory_bytes: {total_bytes}\n"
    )
    return dataclasses.replace(tiny_spec(strategy, "none"), suite_text=text)


def _kept(record: dict) -> list[tuple[int, int]]:
    return [(m["exemplars"], m["total_bytes"]) for m in record["memory"]["after_task"]]


def test_a_growing_network_pays_for_its_branches_in_exemplars() -> None:
    """Unaligned, DER and iCaRL both keep 12 exemplars; under a total that leaves DER room for
    9 once its third backbone exists, DER is cut to 1 per class (6) while iCaRL, which keeps
    one old model, still fits 12. Both stay within the total after every task."""
    der_model_bytes = tiny_record("der", "none")["memory"]["after_task"][-1]["model_bytes"]
    total = der_model_bytes + 9 * TINY_IMAGE_BYTES
    der = run_trial(_aligned_spec("der", total))
    icarl = run_trial(_aligned_spec("icarl", total))
    assert der["status"] == icarl["status"] == "ok", (der["error"], icarl["error"])
    assert [n for n, _ in _kept(der)] == [12, 12, 6]
    assert [n for n, _ in _kept(icarl)] == [12, 12, 12]
    assert all(total_bytes <= total for _, total_bytes in _kept(der) + _kept(icarl))
    assert der["suite"]["total_memory_bytes"] == total


def test_models_that_leave_no_room_for_one_exemplar_per_class_fail_the_trial() -> None:
    record = run_trial(_aligned_spec("icarl", 300_000))  # iCaRL keeps two models: ~526 kB
    assert record["status"] == "failed"
    assert "raise the suite's total_memory_bytes" in record["error"]["message"]


def test_without_a_total_nothing_changes() -> None:
    record = tiny_record("der", "none")
    assert "total_memory_bytes" not in record["suite"]
    assert [n for n, _ in _kept(record)] == [12, 12, 12]


@pytest.mark.parametrize("value", [0, -5, 1.5, "lots"])
def test_a_bad_total_is_refused_with_its_name(value) -> None:
    text = TINY_SUITE_YAML.replace(
        "exemplar_budget: 12\n", f"exemplar_budget: 12\ntotal_memory_bytes: {value}\n"
    )
    with pytest.raises(SuiteError, match="total_memory_bytes"):
        parse_suite(text)
