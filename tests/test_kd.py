"""The KD framework (arXiv 2505.08327): a teacher learns, a compact student serves inference."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from harness.api.config import ConfigError
from harness.api.testing import tiny_suite
from harness.run.trial import TrialSpec, resolve_trial, run_trial
from harness.training.distillation import distillation_kl
from tests.contract_trials import tiny_record


def _run(
    strategy: str, framework: str, backbone: str, overrides: dict | None = None
) -> dict[str, Any]:
    if not overrides:  # a trial other test files run too: once per session
        record = tiny_record(strategy, framework, backbone=backbone)
        assert record["status"] == "ok", record["error"]
        return record
    suite = tiny_suite()
    record = run_trial(
        TrialSpec(
            suite_text=suite.text,
            strategy=strategy,
            framework=framework,
            backbone=backbone,
            seed=1,
            label=f"{strategy}+{framework}",
            overrides=overrides or {},
            debug=True,
        )
    )
    assert record["status"] == "ok", record["error"]
    return record


@pytest.fixture(scope="module")
def lwf_kd() -> dict[str, Any]:
    return _run("lwf", "kd", "compact_cnn")


def test_kd_serves_the_student_and_reports_the_teacher(lwf_kd: dict[str, Any]) -> None:
    plain_student = _run("lwf", "none", "compact_cnn_small")["inference_cost"]
    plain_teacher = _run("lwf", "none", "compact_cnn")["inference_cost"]
    cost, report = lwf_kd["inference_cost"], lwf_kd["framework_report"]
    assert lwf_kd["method"]["inference_backbone"] == "compact_cnn_small"
    assert cost["gflops_per_image"] == plain_student["gflops_per_image"]
    assert cost["params_millions"] == plain_student["params_millions"]
    assert cost["gflops_per_image"] < report["teacher_gflops_per_image"]
    assert report["teacher_gflops_per_image"] == pytest.approx(plain_teacher["gflops_per_image"])
    assert report["teacher_params_millions"] == pytest.approx(plain_teacher["params_millions"])
    assert report["student_backbone"] == "compact_cnn_small"
    assert "teacher_backbone" in report
    num_tasks = len(lwf_kd["results"]["acc_matrix_pct"])
    assert len(report["teacher_train_time_s_per_task"]) == num_tasks
    assert all(t > 0 for t in report["teacher_train_time_s_per_task"])
    assert report["teacher_train_time_s_total"] == pytest.approx(
        sum(report["teacher_train_time_s_per_task"])
    )


def test_previous_teacher_mode_distils_only_from_task_two(lwf_kd: dict[str, Any]) -> None:
    losses = lwf_kd["framework_report"]["distillation_loss_mean_per_task"]
    assert lwf_kd["framework_report"]["mode"] == "previous_teacher"
    assert losses[0] == 0.0
    assert all(loss > 0 for loss in losses[1:])


def test_current_teacher_mode_runs_and_distils_from_task_one() -> None:
    record = _run("lwf", "kd", "compact_cnn", {"framework": {"mode": "current_teacher"}})
    report = record["framework_report"]
    assert report["mode"] == "current_teacher"
    assert all(loss > 0 for loss in report["distillation_loss_mean_per_task"])


def test_unknown_mode_is_a_config_error() -> None:
    suite = tiny_suite()
    spec = TrialSpec(suite_text=suite.text, strategy="lwf", framework="kd",
                     backbone="compact_cnn", seed=1, label="x",
                     overrides={"framework": {"mode": "teacher_of_teachers"}})  # fmt: skip
    with pytest.raises(ConfigError, match="previous_teacher"):
        resolve_trial(spec)


def test_distillation_kl_is_zero_on_equal_logits_and_scales_with_t_squared() -> None:
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    assert float(distillation_kl(logits, logits, 2.0)) == pytest.approx(0.0, abs=1e-7)
    other = torch.tensor([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]])
    p = torch.softmax(other / 4.0, dim=1)
    q = torch.log_softmax(logits / 4.0, dim=1)
    by_hand = 16.0 * (p * (p.log() - q)).sum(dim=1).mean()
    assert float(distillation_kl(logits, other, 4.0)) == pytest.approx(float(by_hand), rel=1e-5)
