"""A trial's identity is what it runs, not what it is called: two labels for the same suite,
adapters, backbone, configs and seed are one trial, one run id and one record."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from harness import cli
from harness.api.testing import TINY_SUITE_YAML
from harness.cli import run as run_command
from harness.run.grid import plan_trials
from harness.run.trial import TrialSpec, resolve_trial

SUITE = "digits-5split"  # its lwf+postpruning@0.4 entry is lwf+postpruning with ratio 0.4


def test_the_label_is_not_part_of_the_run_id() -> None:
    def run_id(label: str) -> str:
        spec = TrialSpec(suite_text=TINY_SUITE_YAML, strategy="lwf", framework="none",
                         backbone="compact_cnn", seed=1, label=label)  # fmt: skip
        return resolve_trial(spec).run_id

    assert run_id("lwf") == run_id("my-lwf") == run_id("lwf+none")


def _planned(methods: list[str], **options: object) -> list[tuple[str, str, str]]:
    plan = plan_trials(suite=SUITE, methods=methods, seeds=[1], **options)  # type: ignore[arg-type]
    return [(t.spec.label, t.spec.backbone, t.run_id) for t in plan.resolved]


def test_a_method_named_by_its_adapters_takes_the_suite_entrys_label(tmp_path: Path) -> None:
    by_adapters = _planned(["lwf+postpruning"], results_dir=tmp_path)
    by_label = _planned(["lwf+postpruning@0.4"], results_dir=tmp_path)
    assert by_adapters == by_label
    assert by_adapters[0][0] == "lwf+postpruning@0.4"
    # Asked for under both names at once: one trial.
    assert _planned(["lwf+postpruning", "lwf+postpruning@0.4"], results_dir=tmp_path) == by_label


def test_a_method_that_differs_from_every_entry_keeps_its_own_label(tmp_path: Path) -> None:
    (other,) = _planned(
        ["lwf+postpruning"], results_dir=tmp_path, overrides={"framework": {"ratio": "0.6"}}
    )
    (suite_entry,) = _planned(["lwf+postpruning@0.4"], results_dir=tmp_path)
    assert other[0] == "lwf+postpruning" and other[2] != suite_entry[2]


def test_the_command_line_finds_the_suite_entrys_record_and_skips_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "results"
    ((label, backbone, run_id),) = _planned(["lwf+postpruning@0.4"], results_dir=results)
    committed = results / SUITE / label / backbone / f"seed1-{run_id}.json"
    committed.parent.mkdir(parents=True)
    committed.write_text(json.dumps({"status": "ok", "run_id": run_id}))

    def no_run(*args: object) -> int:
        raise AssertionError("the trial was planned again instead of being skipped")

    monkeypatch.setattr(run_command, "_run_plan", no_run)
    argv = ["run", "--suite", SUITE, "--method", "lwf+postpruning", "--seeds", "1",
            "--results", str(results), "--no-site"]  # fmt: skip
    with caplog.at_level(logging.DEBUG, logger="cilbench"):
        assert cli.main(argv) == cli.EXIT_OK
    out = caplog.text
    assert "skipped 1 trial(s) that already have a record" in out  # one line at INFO
    assert f"skip {label} ({backbone}) seed=1: {committed}" in out  # each at DEBUG
    assert "nothing to run" in out
    assert [p.name for p in results.rglob("*.json")] == [committed.name]
