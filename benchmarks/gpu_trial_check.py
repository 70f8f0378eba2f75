"""cifar100-10split-shaped trials through the in-process trial runner (no Ray), timed.

Writes CIFAR-100-format data with random content (full size: 50,000 train and 10,000 test
images; no machine needs the real files for a timing), then runs lwf under the frameworks
``none``, ``kd`` (ResNet-34 -> MobileNetV2) and ``prepruning@0.4`` with a short budget,
random initial weights (no download) and the suite's execution for the device (bf16 autocast
and channels-last on CUDA). For each trial it prints the wall time and the time per task,
and extrapolates the time of the same trial at the suite's full
budget (first_task_epochs and epochs) from the measured seconds per image-epoch.

    python benchmarks/gpu_trial_check.py --json trials.json                 # on a GPU
    python benchmarks/gpu_trial_check.py --device cpu --quick               # smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.data.fake_datasets import trust_generated_cifar100, write_fake_cifar100  # noqa: E402
from harness.data.suite import load_suite  # noqa: E402
from harness.models.execution import ExecutionOptions  # noqa: E402
from harness.run.grid import plan_trials  # noqa: E402
from harness.run.trial import run_trial  # noqa: E402

METHODS = ("lwf", "lwf+kd", "lwf+prepruning@0.4")


def epochs_in_run(config: dict[str, Any], tasks: int) -> list[int]:
    first = config["first_task_epochs"] or config["epochs"]
    return [first] + [config["epochs"]] * (tasks - 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu", "auto"])
    parser.add_argument("--epochs", type=int, default=2, help="epochs per task in this check")
    parser.add_argument("--per-class", type=int, default=500, help="train images per class")
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.per_class, args.test_per_class = 1, 3, 1
    suite = load_suite("cifar100-10split")
    full_budget = epochs_in_run(
        {"first_task_epochs": suite.training.get("first_task_epochs"), **suite.training},
        suite.num_tasks,
    )
    summary: dict[str, Any] = {"check_epochs_per_task": args.epochs, "trials": []}
    with tempfile.TemporaryDirectory(prefix="cilbench-gpu-check-") as root:
        started = time.perf_counter()
        write_fake_cifar100(Path(root), train_per_class=args.per_class,
                            test_per_class=args.test_per_class)  # fmt: skip
        trust_generated_cifar100(Path(root))
        summary["data_write_s"] = time.perf_counter() - started
        plan = plan_trials(
            suite="cifar100-10split",
            methods=args.methods.split(","),
            backbones=None,
            seeds=[1],
            overrides={"training": {"epochs": args.epochs, "first_task_epochs": args.epochs}},
            data_root=Path(root),
            results_dir=Path(root) / "no-results",
            weights={"resnet34_cifar": "none", "mobilenet_v2": "none"},  # nothing to download
            execution=ExecutionOptions(device=args.device, compile=args.compile),
        )
        for spec in plan.specs:
            record = run_trial(spec)
            if record["status"] != "ok":
                print(f"{spec.label} ({spec.backbone}) FAILED: {record['error']['message']}")
                summary["trials"].append({"label": spec.label, "error": record["error"]})
                continue
            summary["trials"].append(_summarise(record, args, full_budget))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if all("error" not in t for t in summary["trials"]) else 1


def _summarise(record: dict[str, Any], args: argparse.Namespace, full_budget: list[int]) -> dict:
    """Per-trial figures, and the full-budget time extrapolated per task from this run."""
    task_s = record["timing"]["task_wall_time_s"]
    check_epochs = [args.epochs] * len(task_s)
    # Each task's time scales with its epochs; evaluation (after each task) is included in
    # neither, so the extrapolation is a lower bound by the evaluation time.
    extrapolated = sum(s * full / run for s, full, run in zip(task_s, full_budget, check_epochs,
                                                               strict=True))  # fmt: skip
    row = {
        "label": record["method"]["label"],
        "backbone": record["method"]["backbone"],
        "serves": record["method"]["inference_backbone"],
        "device": record["execution"]["device_name"],
        "precision": record["execution"]["precision"],
        "trial_wall_s": record["timing"]["trial_wall_time_s"],
        "task_wall_s": task_s,
        "final_acc_pct": record["results"]["metrics"]["final_acc_pct"],
        "gflops_served": record["inference_cost"]["gflops_per_image"],
        "full_budget_epochs": full_budget,
        "full_budget_learning_s_extrapolated": extrapolated,
    }
    print(
        f"{row['label']} ({row['backbone']} -> {row['serves']}) {row['device']} "
        f"{row['precision']}: trial {row['trial_wall_s']:.1f} s "
        f"({args.epochs} epoch(s)/task), tasks {', '.join(f'{s:.1f}' for s in task_s)} s; "
        f"full budget ~{extrapolated / 60:.1f} min",
        flush=True,
    )
    return row


if __name__ == "__main__":
    sys.exit(main())
