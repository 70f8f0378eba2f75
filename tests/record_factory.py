"""Build schema-version-1 trial records in memory, for tests of anything that reads records.

A plain module (not a conftest) so any test can ``from tests.record_factory import make_record``.
Summary metrics are derived from the accuracy matrix with the harness's definitions, so a
factory record is self-consistent; pass ``metrics=`` to override them (e.g. to build a record
that validation must reject).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

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
) -> dict[str, Any]:
    """A complete record; ``status="failed"`` gives null results/cost and an error block."""
    acc = acc if acc is not None else DEFAULT_ACC
    task_aware_acc = task_aware_acc if task_aware_acc is not None else acc
    samples = samples if samples is not None else [100] * len(acc)
    config = config if config is not None else {"strategy": {}, "framework": {}, "training": {}}
    class_order = list(range(2 * len(acc)))
    spec = [suite, suite_version, label, backbone, config, seed, order_index]
    ok = status == "ok"
    return {
        "schema_version": 1,
        "run_id": _sha256(spec)[:12],
        "status": status,
        "debug": debug,
        "created_utc": "2026-11-29T03:50:00Z",
        "suite": {
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
        "method": {
            "label": label,
            "strategy": strategy or label,
            "framework": framework,
            "backbone": backbone,
            "config": config,
            "config_sha256": _sha256(config),
            "reference": reference,
        },
        "seed": seed,
        "results": _results_block(acc, task_aware_acc, samples, metrics) if ok else None,
        "inference_cost": _cost_block(gflops, params_millions, latency_ms) if ok else None,
        "timing": {"task_wall_time_s": [1.0] * len(acc), "trial_wall_time_s": 1.0 * len(acc)},
        "provenance": {
            "git_commit": "0" * 40,
            "git_dirty": False,
            "python": "3.11.7",
            "packages": {"torch": "2.14.1"},
            "device": "cpu",
        },
        "error": None if ok else {"type": "RuntimeError", "message": "boom", "traceback": "..."},
    }


def _results_block(
    acc: Matrix, task_aware: Matrix, samples: list[int], metrics: dict[str, float] | None
) -> dict[str, Any]:
    return {
        "acc_matrix_pct": acc,
        "task_aware_acc_matrix_pct": task_aware,
        "test_samples_per_task": samples,
        "metrics": metrics if metrics is not None else _metrics_block(acc, task_aware, samples),
    }


def _cost_block(gflops: float, params_millions: float, latency_ms: float) -> dict[str, Any]:
    return {
        "gflops_per_image": gflops,
        "gflops_per_image_ptflops": gflops,
        "gflops_per_image_torch": gflops,
        "params_millions": params_millions,
        "params_millions_without_head": params_millions * 0.9,
        "latency_ms_b1": latency_ms,
        "latency_threads": 1,
        "input_shape": [1, 1, 8, 8],
    }


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
