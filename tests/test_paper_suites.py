"""The paper's suites from the command line, on generated data in CIFAR-100's real format.

Missing data and missing weights stop a run at once with exit 2 and how to fix it; a
debug run of ``cifar100-10split`` (at most one image per class and split) goes through Ray
Tune with the suite's real teacher and student (KD, and pre-pruning of the ResNet-34), and
the leaderboard leaves its records out. That run takes about 50 s on 2 cores and is marked
``slow`` (``make test-all``); the missing-data and missing-weights checks run by default.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

from harness.data.datasets import check_dataset
from harness.data.fake_datasets import trust_generated_cifar100, write_fake_cifar100


def _cilbench(*args: str, cwd: Path, torch_home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0",
           "TORCH_HOME": str(torch_home)}  # fmt: skip
    env.pop("RAY_ADDRESS", None)
    env.pop("CILBENCH_DATA", None)
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, Path]:
    """Generated CIFAR-100 files (2 train / 2 test images per class, checked once here),
    an empty torch hub cache, and a ResNet-34 state dict standing in for ImageNet weights."""
    folder = tmp_path_factory.mktemp("paper")
    data = folder / "data"
    write_fake_cifar100(data, train_per_class=2, test_per_class=2)
    trust_generated_cifar100(data)  # the manifest the driver's preflight checks against
    check_dataset("cifar100", data)
    teacher = folder / "resnet34-generated.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), teacher)
    torch_home = folder / "torch-home"
    torch_home.mkdir()
    return {"folder": folder, "data": data, "teacher": teacher, "torch_home": torch_home}


def test_missing_data_stops_at_once_with_how_to_get_it(workspace, tmp_path) -> None:
    empty = tmp_path / "no-data"
    run = _cilbench("run", "--suite", "cifar100-10split", "--data-root", str(empty), "--no-site",
                    "--results", str(tmp_path / "results"), cwd=tmp_path,
                    torch_home=workspace["torch_home"])  # fmt: skip
    # "At once" is counted, not timed (no network, no wait: test_dataset_manifest.py checks
    # the same check_dataset in process); the subprocess timeout only catches a hang.
    assert run.returncode == 2, run.stdout + run.stderr
    message = run.stderr
    assert "Traceback" not in message
    for part in ("cifar-100-python", "--data-root", "CILBENCH_DATA", str(empty),
                 "cilbench data --fetch cifar100", "cs.toronto.edu"):  # fmt: skip
        assert part in message, f"{part!r} missing from: {message}"
    assert not (tmp_path / "results").exists()


def test_missing_weights_name_the_file_and_the_command(workspace, tmp_path) -> None:
    run = _cilbench("run", "--suite", "cifar100-10split", "--data-root", str(workspace["data"]),
                    "--method", "lwf", "--no-site", "--results", str(tmp_path / "results"),
                    cwd=tmp_path, torch_home=workspace["torch_home"])  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    expected = workspace["torch_home"] / "hub" / "checkpoints" / "resnet34-b627a593.pth"
    assert str(expected) in run.stderr
    assert "IMAGENET1K_V1" in run.stderr and "python -c" in run.stderr


@pytest.fixture(scope="module")
def debug_run(workspace) -> tuple[Path, subprocess.CompletedProcess]:
    folder = workspace["folder"]
    run = _cilbench(
        "run", "--suite", "cifar100-10split", "--data-root", str(workspace["data"]),
        "--method", "finetune+kd", "--method", "lwf+prepruning@0.4",
        "--seeds", "1", "--quick", "--limit-per-class", "1",
        "--weights", f"resnet34_cifar={workspace['teacher']}", "--weights", "mobilenet_v2=none",
        "--results", "results", "--site", "site", cwd=folder,
        torch_home=workspace["torch_home"],
    )  # fmt: skip
    return folder, run


@pytest.mark.slow  # the debug run: ~50 s through Ray on 2 cores
def test_debug_run_of_cifar100_goes_through_ray_with_the_paper_models(debug_run) -> None:
    folder, run = debug_run
    assert run.returncode == 0, run.stdout + run.stderr
    records = [json.loads(p.read_text()) for p in (folder / "results").glob("**/*.json")]
    assert {r["method"]["label"] for r in records} == {"finetune+kd", "lwf+prepruning@0.4"}
    for record in records:
        assert record["status"] == "ok" and record["debug"] is True
        assert record["suite"]["name"] == "cifar100-10split"
        assert record["suite"]["class_order"][:3] == [68, 56, 78]
        assert record["suite"]["train_augmentation"][0] == {"random_crop": {"padding": 4}}
        assert len(record["results"]["acc_matrix_pct"]) == 10
        # One test image per class under the debug cap: 10 per task.
        assert record["results"]["test_samples_per_task"] == [10] * 10
        teacher = record["method"]["weights"]["resnet34_cifar"]
        assert teacher["sha256"] and teacher["path"].endswith("resnet34-generated.pth")
    kd = next(r for r in records if r["method"]["label"] == "finetune+kd")
    assert kd["method"]["inference_backbone"] == "mobilenet_v2"
    assert kd["method"]["weights"]["mobilenet_v2"] is None  # --weights mobilenet_v2=none
    assert kd["inference_cost"]["gflops_per_image"] == pytest.approx(0.0125, rel=0.01)
    # Pre-pruning removes 40% of the teacher's channels: structurally, on the real ResNet-34.
    pruned = next(r for r in records if r["method"]["label"] == "lwf+prepruning@0.4")
    report = pruned["framework_report"]["pruning"]
    assert report["gflops_per_image_before"] == pytest.approx(2.32, abs=0.01)
    assert 0.5 < pruned["inference_cost"]["gflops_per_image"] < 1.2


@pytest.mark.slow  # the debug run: ~50 s through Ray on 2 cores
def test_the_leaderboard_leaves_debug_records_out(debug_run) -> None:
    folder, run = debug_run
    assert (folder / "site" / "index.html").is_file()
    assert "debug" in run.stdout  # each debug record is named in a warning
    assert "0 entries" in run.stdout
    assert not list((folder / "site").glob("entries/**/*.html"))
