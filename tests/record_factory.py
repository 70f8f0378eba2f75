"""Build schema-version-2 trial records in memory, for tests of anything that reads records.

A plain module (not a conftest) so any test can ``from tests.record_factory import make_record``.
Summary metrics are derived from the accuracy matrix with the harness's definitions, so a
factory record is self-consistent; pass ``metrics=`` to override them (e.g. to build a record
that validation must reject).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.records.schema import (
    InferenceCost,
    KeptAfterTask,
    KeptMemory,
    Latency,
    Results,
    SpentTraining,
    TrainingBudget,
    TrialRecord,
)

Matrix = list[list[float | None]]

DEFAULT_ACC: Matrix = [[98.0, None], [60.0, 90.0]]


def _weighted_mean(values: list[float], weights: list[int]) -> float:
    return sum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights)


def derive_metrics(acc: Matrix, samples: list[int]) -> dict[str, float]:
    """Class-incremental metrics of a lower-triangular ``acc[i][j]`` (task j after task i).

    Accuracy "over all classes seen" weights each task by its number of test samples; BWT and
    forgetting average over the tasks before the last one.
    """
    last = len(acc) - 1
    seen = [_weighted_mean(acc[i][: i + 1], samples[: i + 1]) for i in range(last + 1)]
    old = range(last)
    bwt = sum(acc[last][j] - acc[j][j] for j in old) / last if last else 0.0
    forgetting = (
        sum(max(acc[i][j] for i in range(j, last)) - acc[last][j] for j in old) / last
        if last
        else 0.0
    )
    return {
        "final": seen[-1],
        "avg_incremental": sum(seen) / len(seen),
        "bwt": bwt,
        "forgetting": forgetting,
    }


def _metrics_block(acc: Matrix, task_aware: Matrix, samples: list[int]) -> dict[str, float]:
    cil, til = derive_metrics(acc, samples), derive_metrics(task_aware, samples)
    return {
        "final_acc_pct": cil["final"],
        "avg_incremental_acc_pct": cil["avg_incremental"],
        "bwt_pct": cil["bwt"],
        "avg_forgetting_pct": cil["forgetting"],
        "final_task_aware_acc_pct": til["final"],
        "avg_incremental_task_aware_acc_pct": til["avg_incremental"],
    }


def _sha256(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def make_record(
    *,
    suite: str = "digits-5split",
    suite_version: int = 1,
    primary_metric: str = "avg_incremental_acc_pct",
    label: str = "lwf",
    strategy: str | None = None,
    framework: str = "none",
    backbone: str = "compact_cnn",
    config: dict[str, Any] | None = None,
    reference: str | None = None,
    seed: int = 1,
    order_index: int = 0,
    acc: Matrix | None = None,
    task_aware_acc: Matrix | None = None,
    samples: list[int] | None = None,
    metrics: dict[str, float] | None = None,
    gflops: float = 0.5,
    params_millions: float = 1.0,
    latency_ms: float = 2.0,
    status: str = "ok",
    debug: bool = False,
    framework_report: dict[str, Any] | None = None,
    created_utc: str = "2026-11-29T03:50:00Z",
    **newer_cost: Any,
) -> dict[str, Any]:
    """A complete record; ``status="failed"`` gives null results/cost and an error block.

    ``newer_cost``: inference-cost fields of newer records, added as given (older records lack
    them): ``uncounted_ops``, ``counter_disagreement_pct``, ``param_bytes``, ``param_dtypes``,
    ``nonzero_params_millions``, ``sparsity_pct``, ``latencies`` (see ``latency``).
    """
    unknown = set(newer_cost) - set(NEWER_COST_KEYS)
    if unknown:
        raise TypeError(f"make_record() got unexpected keyword arguments {sorted(unknown)}")
    acc = acc if acc is not None else DEFAULT_ACC
    task_aware_acc = task_aware_acc if task_aware_acc is not None else acc
    samples = samples if samples is not None else [100] * len(acc)
    config = config if config is not None else {"strategy": {}, "framework": {}, "training": {}}
    class_order = list(range(2 * len(acc)))
    spec = [suite, suite_version, label, backbone, config, seed, order_index]
    ok = status == "ok"
    record = TrialRecord(
        run_id=_sha256(spec)[:12],
        status=status,
        debug=debug,
        created_utc=created_utc,
        suite={
            "name": suite,
            "version": suite_version,
            "file_sha256": _sha256([suite, suite_version]),
            "class_order": class_order,
            "class_order_sha256": _sha256(class_order),
            "order_index": order_index,
            "num_tasks": len(acc),
            "classes_per_task": 2,
            "primary_metric": primary_metric,
        },
        method={
            "label": label,
            "strategy": strategy or label,
            "framework": framework,
            "backbone": backbone,
            "config": config,
            "config_sha256": _sha256(config),
            "reference": reference,
        },
        seed=seed,
        results=_results_block(acc, task_aware_acc, samples, metrics) if ok else None,
        inference_cost=_cost_block(gflops, params_millions, latency_ms) if ok else None,
        training_budget=_budget_block(len(acc)) if ok else None,
        timing={"task_wall_time_s": [1.0] * len(acc), "trial_wall_time_s": 1.0 * len(acc)},
        provenance={
            "git_commit": "0" * 40,
            "git_dirty": False,
            "python": "3.11.7",
            "packages": {"torch": "2.14.1"},
            "device": "cpu",
        },
        error=None if ok else {"type": "RuntimeError", "message": "boom", "traceback": "..."},
        framework_report=framework_report,
    ).to_json()
    if ok:
        cost = record["inference_cost"]
        cost.update(newer_cost)
        cost["after_task"] = _cost_curve(cost, len(acc))
        record["memory"] = _memory_block(len(acc), cost["param_bytes"])
    return record


def _cost_curve(cost: dict[str, Any], tasks: int) -> list[dict[str, Any]]:
    """A flat cost curve: every task's point is the final figures (the last must be)."""
    keys = ("gflops_per_image", "params_millions", "param_bytes")
    return [{"task": t + 1, **{key: cost[key] for key in keys}} for t in range(tasks)]


def _memory_block(tasks: int, model_bytes: int) -> dict[str, Any]:
    points = tuple(KeptAfterTask(t + 1, 10 * (t + 1), 640 * (t + 1), model_bytes)
                   for t in range(tasks))  # fmt: skip
    return KeptMemory(points).to_json()


NEWER_COST_KEYS = ("uncounted_ops", "counter_disagreement_pct", "param_bytes", "param_dtypes",
                   "nonzero_params_millions", "sparsity_pct", "latencies")  # fmt: skip


def latency(
    ms_per_batch: float,
    *,
    device: str = "cpu",
    device_name: str = "cpu",
    precision: str = "fp32",
    batch_size: int = 1,
    threads: int | None = 1,
) -> dict[str, Any]:
    """One entry of ``inference_cost.latencies``; images per second follow from the time."""
    return Latency(device, device_name, precision, batch_size, threads, ms_per_batch).to_json()


def _results_block(
    acc: Matrix, task_aware: Matrix, samples: list[int], metrics: dict[str, float] | None
) -> Results:
    return Results(
        acc_matrix_pct=acc,
        task_aware_acc_matrix_pct=task_aware,
        test_samples_per_task=samples,
        metrics=metrics if metrics is not None else _metrics_block(acc, task_aware, samples),
    )


def _cost_block(gflops: float, params_millions: float, latency_ms: float) -> InferenceCost:
    """The cost of a dense fp32 model, every figure the writer fills."""
    return InferenceCost(
        gflops_per_image=gflops,
        gflops_per_image_torch=gflops,
        gflops_per_image_ptflops=gflops,
        counter_disagreement_pct=0.0,
        uncounted_ops=(),
        params_millions=params_millions,
        params_millions_without_head=params_millions * 0.9,
        nonzero_params_millions=params_millions,
        sparsity_pct=0.0,
        param_bytes=round(params_millions * 4e6),
        param_dtypes={"float32": round(params_millions * 1e6)},
        latency_ms_b1=latency_ms,
        latency_threads=1,
        latencies=(Latency("cpu", "cpu", "fp32", 1, 1, latency_ms),),
        input_shape=(1, 1, 8, 8),
    )


def _budget_block(tasks: int) -> TrainingBudget:
    spent = tuple(SpentTraining(t + 1, "model", 1, 2, 64) for t in range(tasks))
    return TrainingBudget(declared_epochs=[{"model": 1}] * tasks, spent=spent)


def write_records(records: list[dict[str, Any]], results_dir: Path) -> list[Path]:
    """Write records the way the harness lays them out: results/<suite>/<label>/<run_id>.json."""
    paths = []
    for record in records:
        path = results_dir / record["suite"]["name"] / record["method"]["label"]
        path = path / f"{record['run_id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2, sort_keys=True))
        paths.append(path)
    return paths


# A leaderboard-sized grid for the site benchmark: suites (a current and an archived version
# each) x strategies x compression variants x backbones x seeds, in that order.
SYNTHETIC_SUITES = (
    ("cifar100-10split", 10),
    ("imagenet-subset-10split", 10),
    ("tinyimagenet-10split", 10),
    ("digits-5split", 5),
    ("fmnist-5split", 5),
)
SYNTHETIC_STRATEGIES = {
    "finetune": "lower_bound",
    "joint": "upper_bound",
    "lwf": None,
    "icarl": None,
    "ssil": None,
}
SYNTHETIC_VARIANTS = (
    ("none", None),
    *(("prepruning", r) for r in (0.2, 0.4, 0.6, 0.8)),
    *(("postpruning", r) for r in (0.2, 0.4, 0.6, 0.8)),
    ("kd", 0.75),
)
SYNTHETIC_BACKBONES = {
    "resnet18": 0.56,
    "resnet32": 0.07,
    "mobilenet_v2": 0.3,
    "compact_cnn": 0.003,
}
SYNTHETIC_SEEDS = (1, 2, 3, 4, 5)


def synthetic_records(count: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` plausible, self-consistent records; about 1 in 60 failed and 1 in 80 debug."""
    rng = random.Random(seed)
    records = []
    for spec in _synthetic_grid():
        if len(records) == count:
            break
        records.append(_synthetic_record(rng, index=len(records), **spec))
    return records


def _synthetic_grid() -> Iterator[dict[str, Any]]:
    """Endless: after the grid, further suite versions of the same shape."""
    for version in itertools.count(1):
        for suite, tasks in SYNTHETIC_SUITES:
            for strategy, reference in SYNTHETIC_STRATEGIES.items():
                for (framework, ratio), backbone in itertools.product(
                    SYNTHETIC_VARIANTS, SYNTHETIC_BACKBONES
                ):
                    for seed in SYNTHETIC_SEEDS:
                        yield {
                            "suite": suite,
                            "version": version,
                            "tasks": tasks,
                            "strategy": strategy,
                            "reference": reference,
                            "framework": framework,
                            "ratio": ratio,
                            "backbone": backbone,
                            "seed": seed,
                        }


def _synthetic_record(
    rng: random.Random,
    *,
    index: int,
    suite: str,
    version: int,
    tasks: int,
    strategy: str,
    reference: str | None,
    framework: str,
    ratio: float | None,
    backbone: str,
    seed: int,
) -> dict[str, Any]:
    label = strategy if framework == "none" else f"{strategy}+{framework}@{ratio}"
    keep = 1.0 if ratio is None else (1.0 - ratio) ** 2 if framework != "kd" else 1.0 - ratio
    retention = {"finetune": 0.05, "joint": 0.97, "lwf": 0.55, "icarl": 0.7, "ssil": 0.72}
    acc = _synthetic_matrix(rng, tasks, retention[strategy] * (0.85 + 0.15 * keep))
    gflops = SYNTHETIC_BACKBONES[backbone] * keep
    config = {
        "strategy": {"lambda_kd": 1.0, "temperature": 2.0} if strategy != "finetune" else {},
        "framework": {} if ratio is None else {"ratio": ratio},
        "training": {"epochs": 30, "batch_size": 64, "lr": 0.05},
    }
    report = (
        {"teacher_gflops_per_image": SYNTHETIC_BACKBONES[backbone]} if framework == "kd" else None
    )
    return make_record(
        suite=suite,
        suite_version=version,
        primary_metric="final_acc_pct",
        label=label,
        strategy=strategy,
        framework=framework,
        backbone=backbone,
        config=config,
        reference=reference,
        seed=seed,
        acc=acc,
        gflops=gflops,
        params_millions=11.2 * keep * SYNTHETIC_BACKBONES[backbone] / 0.56,
        latency_ms=1.0 + 20 * gflops * rng.uniform(0.9, 1.1),
        status="failed" if index % 60 == 59 else "ok",
        debug=index % 80 == 79,
        framework_report=report,
        created_utc=f"2026-11-{1 + index % 28:02d}T12:00:00Z",
    )


def _synthetic_matrix(rng: random.Random, tasks: int, retention: float) -> Matrix:
    """Lower-triangular accuracies: high on the newest task, decaying on old ones."""
    acc: Matrix = []
    for i in range(tasks):
        row: list[float | None] = []
        for j in range(tasks):
            if j > i:
                row.append(None)
                continue
            fresh = rng.uniform(85.0, 98.0)
            row.append(round(fresh * retention ** ((i - j) / max(tasks - 1, 1)), 3))
        acc.append(row)
    return acc


def with_hardware(
    record: dict[str, Any],
    *,
    processor: str,
    torch_threads: int,
    device_name: str = "cpu",
    precision: str = "fp32",
) -> dict[str, Any]:
    """``record`` as a trial made on this machine: provenance and an ``execution`` block."""
    record["provenance"].update(
        processor=processor, device=device_name, torch_threads=torch_threads
    )
    device = "cpu" if device_name == "cpu" else "cuda"
    record["execution"] = {"device": device, "device_name": device_name, "precision": precision}
    return record
