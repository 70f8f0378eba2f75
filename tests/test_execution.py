"""Where and how trials run: device selection, precision, Ray resources, the record's fields.

CUDA-only tests are marked ``gpu`` and skip cleanly on machines without one.
"""

from __future__ import annotations

import pytest
import torch

from harness.api.testing import TINY_SUITE_YAML
from harness.cli import EXIT_BAD_INPUT, main
from harness.models.execution import Execution, ExecutionError, ExecutionOptions
from harness.run.checks import gpus_per_trial
from harness.run.trial import TrialSpec, run_trial

CUDA = torch.cuda.is_available()


def _spec(**execution: object) -> TrialSpec:
    return TrialSpec(
        suite_text=TINY_SUITE_YAML, strategy="lwf", framework="none", backbone="compact_cnn",
        seed=1, label="lwf", debug=True, overrides={"training": {"epochs": 1}},
        execution=ExecutionOptions(**execution),  # type: ignore[arg-type]
    )  # fmt: skip


def test_cpu_execution_changes_nothing() -> None:
    execution = Execution(ExecutionOptions(device="cpu"))
    assert execution.device.type == "cpu" and execution.precision == "fp32"
    assert not execution.channels_last and not execution.compile
    x = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    assert execution.batch(x) is x or torch.equal(execution.batch(x), x)
    with execution.autocast():
        assert not torch.is_autocast_enabled("cpu")


@pytest.mark.skipif(CUDA, reason="checks the no-GPU path")
def test_auto_falls_back_to_the_cpu_and_cuda_without_a_gpu_says_why() -> None:
    assert Execution(ExecutionOptions()).device.type == "cpu"
    with pytest.raises(ExecutionError, match="--gpus-per-trial"):
        Execution(ExecutionOptions(device="cuda"))


def test_unknown_devices_and_precisions_are_refused() -> None:
    with pytest.raises(ExecutionError, match="auto, cpu, cuda"):
        ExecutionOptions(device="tpu")
    with pytest.raises(ExecutionError, match="auto, fp32, bf16"):
        ExecutionOptions(precision="fp16")


def test_bf16_autocast_keeps_fp32_master_weights() -> None:
    execution = Execution(ExecutionOptions(device="cpu", precision="bf16"))
    layer = torch.nn.Linear(4, 3)
    with execution.autocast():
        out = layer(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16 and layer.weight.dtype == torch.float32


def test_the_record_says_where_and_how_the_trial_ran() -> None:
    record = run_trial(_spec(device="cpu"))
    assert record["status"] == "ok", record["error"]
    execution = record["execution"]
    assert execution["device"] == "cpu" and execution["precision"] == "fp32"
    assert execution["master_weights"] == "float32" and execution["compile"] is False
    assert execution["nondeterministic_ops"] == []
    assert record["provenance"]["device"] == "cpu"


def test_execution_is_not_part_of_a_trials_identity() -> None:
    from harness.run.trial import resolve_trial

    fp32, bf16 = (resolve_trial(_spec(precision=p)).run_id for p in ("fp32", "bf16"))
    assert fp32 == bf16


@pytest.mark.skipif(CUDA, reason="checks the no-GPU default")
def test_gpus_per_trial_defaults_and_checks() -> None:
    assert gpus_per_trial("auto", None) == 0.0  # no GPU here
    assert gpus_per_trial("auto", 0.25) == 0.25
    assert gpus_per_trial("cpu", None) == 0.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "cuda", "--gpus-per-trial", "0"], "Ray hides the GPUs"),
        (["--device", "cpu", "--gpus-per-trial", "1"], "unused"),
        (["--gpus-per-trial", "-1"], "[0, 64]"),
    ],
)
def test_device_and_gpu_options_are_checked_before_ray_starts(
    args: list[str], message: str, capsys, tmp_path
) -> None:
    code = main(["run", "--suite", "digits-5split", "--method", "lwf", "--seeds", "1",
                 "--results", str(tmp_path / "r"), "--no-site", *args])  # fmt: skip
    assert code == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err


def test_ray_reserves_gpu_fractions_only_when_asked() -> None:
    from harness.run.scheduler import SchedulerOptions, trial_resources

    assert trial_resources(SchedulerOptions(cpus_per_trial=2)) == {"cpu": 2}
    packed = SchedulerOptions(cpus_per_trial=4, gpus_per_trial=0.25)
    assert trial_resources(packed) == {"cpu": 4, "gpu": 0.25}


@pytest.mark.slow
def test_compiled_training_learns_the_same_and_reports_compile_time() -> None:
    plain, compiled = run_trial(_spec(device="cpu")), run_trial(_spec(device="cpu", compile=True))
    assert compiled["status"] == "ok", compiled["error"]
    assert compiled["execution"]["compile"] is True
    assert compiled["execution"]["compile_first_steps_s"] > 0
    assert compiled["results"]["acc_matrix_pct"] == plain["results"]["acc_matrix_pct"]


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_a_cuda_trial_runs_in_bf16_with_resident_data() -> None:
    record = run_trial(_spec(device="cuda"))
    assert record["status"] == "ok", record["error"]
    execution = record["execution"]
    assert execution["device"].startswith("cuda") and execution["precision"] == "bf16"
    assert execution["channels_last"] and execution["nondeterministic_ops"]
    assert record["provenance"]["device"] == torch.cuda.get_device_name(0)
    assert record["inference_cost"]["gflops_per_image"] > 0  # costed on a CPU copy
