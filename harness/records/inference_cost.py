"""The ``inference_cost`` section of a record: what one prediction of the served module costs
(FLOPs by two counters, parameters, bytes, latencies per device) and the cost of what served
after every task. Torch-free."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from harness.records.quantities import COSTS, COUNTER_DISAGREEMENT, is_int, is_number

LATENCY_DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Latency:
    """One latency measurement of the served model."""

    device: str  # "cpu" or "cuda"
    device_name: str  # the CPU model or GPU name
    precision: str  # "fp32" or "bf16" (autocast, fp32 weights)
    batch_size: int
    threads: int | None  # torch's intra-op threads on a CPU; None on a GPU
    ms_per_batch: float  # median over the repeats

    @property
    def images_per_s(self) -> float:
        return 1e3 * self.batch_size / self.ms_per_batch if self.ms_per_batch > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "images_per_s": self.images_per_s}

    @staticmethod
    def problems(raw: Any, where: str) -> list[str]:
        if not isinstance(raw, dict):
            return [f"{where} is not an object"]
        problems = []
        if raw.get("device") not in LATENCY_DEVICES:
            problems.append(
                f"{where}.device={raw.get('device')!r} is not one of {', '.join(LATENCY_DEVICES)}"
            )
        for key in ("device_name", "precision"):
            if not isinstance(raw.get(key), str) or not raw.get(key):
                problems.append(f"{where}.{key}={raw.get(key)!r} is not a name")
        if not is_int(raw.get("batch_size")) or raw["batch_size"] < 1:
            problems.append(f"{where}.batch_size={raw.get('batch_size')!r} is not >= 1")
        threads = raw.get("threads")
        if threads is not None and (not is_int(threads) or threads < 1):
            problems.append(f"{where}.threads={threads!r} is not a positive integer")
        for key in ("ms_per_batch", "images_per_s"):
            if not is_number(raw.get(key)) or raw[key] < 0:
                problems.append(f"{where}.{key}={raw.get(key)!r} is not a number >= 0")
        return problems


@dataclass(frozen=True)
class CostAfterTask:
    """What the module serving after task ``task`` (1-based) costs: counted, not timed, so a
    method whose network grows or shrinks shows a curve (latency stays final-only)."""

    task: int
    gflops_per_image: float
    params_millions: float
    param_bytes: int

    @staticmethod
    def problems(raw: Any, where: str) -> list[str]:
        if not isinstance(raw, dict) or set(raw) != {f.name for f in fields(CostAfterTask)}:
            return [f"{where} is not an object of {[f.name for f in fields(CostAfterTask)]}"]
        problems = [] if is_int(raw["task"]) and raw["task"] >= 1 else [f"{where}.task is not >= 1"]
        for key in ("gflops_per_image", "params_millions", "param_bytes"):
            if (
                not is_number(raw[key])
                or raw[key] < 0
                or (key == "param_bytes" and not is_int(raw[key]))
            ):
                problems.append(f"{where}.{key}={raw[key]!r} is not a number >= 0")
        return problems


@dataclass(frozen=True)
class InferenceCost:
    """Cost of one prediction of the served model at batch 1; units are part of every name."""

    gflops_per_image: float  # primary: torch's counter, sees every aten op of the path
    gflops_per_image_torch: float
    gflops_per_image_ptflops: float  # 2 x ptflops MACs / 1e9, a cross-check
    counter_disagreement_pct: float  # |torch - ptflops| / torch, in percent
    uncounted_ops: tuple[str, ...]  # ops that computed without a FLOP formula
    params_millions: float  # every weight, whatever its storage
    params_millions_without_head: float
    nonzero_params_millions: float  # beside the dense count: zeros still cost dense FLOPs
    sparsity_pct: float
    param_bytes: int
    param_dtypes: dict[str, int]  # dtype -> number of parameters stored in it
    latency_ms_b1: float  # on the CPU, at batch 1 (latencies[0])
    latency_threads: int
    latencies: tuple[Latency, ...]  # CPU batch 1 first, then any GPU measurements
    input_shape: tuple[int, ...]  # with the batch dimension, which is 1
    # What served after each task, the last being this cost's own figures (they rank).
    after_task: tuple[CostAfterTask, ...] = ()

    def with_latencies(self, extra: tuple[Latency, ...] | list[Latency]) -> InferenceCost:
        return replace(self, latencies=(*self.latencies, *extra))

    def to_json(self) -> dict[str, Any]:
        raw = {f.name: getattr(self, f.name) for f in fields(self)}
        raw["uncounted_ops"] = list(self.uncounted_ops)
        raw["param_dtypes"] = dict(self.param_dtypes)
        raw["latencies"] = [latency.to_json() for latency in self.latencies]
        raw["input_shape"] = list(self.input_shape)
        raw["after_task"] = [asdict(point) for point in self.after_task]
        return raw

    @staticmethod
    def problems(raw: Any) -> list[str]:
        where = "inference_cost"
        if not isinstance(raw, dict):
            return [f"{where} must be an object for an ok record"]
        problems = [p for q in (*COSTS, COUNTER_DISAGREEMENT)
                    if (p := q.problem(raw.get(q.name), where))]  # fmt: skip
        threads = raw.get("latency_threads")
        if not is_int(threads) or threads < 1:
            problems.append(f"{where}.latency_threads={threads!r} is not a positive integer")
        ops = raw.get("uncounted_ops")
        if not isinstance(ops, list) or not all(isinstance(op, str) and op for op in ops):
            problems.append(f"{where}.uncounted_ops={ops!r} is not a list of op names")
        dtypes = raw.get("param_dtypes")
        if not isinstance(dtypes, dict) or not all(
            isinstance(k, str) and is_int(v) and v >= 0 for k, v in dtypes.items()
        ):
            problems.append(f"{where}.param_dtypes={dtypes!r} is not {{dtype: count}}")
        latencies = raw.get("latencies")
        if not isinstance(latencies, list) or not latencies:
            problems.append(f"{where}.latencies={latencies!r} is not a non-empty list")
        else:
            for i, item in enumerate(latencies):
                problems += Latency.problems(item, f"{where}.latencies[{i}]")
        return problems + _curve_problems(raw, where)


def _curve_problems(raw: dict[str, Any], where: str) -> list[str]:
    """``after_task`` is one point per task, in order, ending at the final (ranked) figures."""
    curve = raw.get("after_task")
    if not isinstance(curve, list) or not curve:
        return [f"{where}.after_task={curve!r} is not a non-empty list"]
    problems = [p for i, point in enumerate(curve)
                for p in CostAfterTask.problems(point, f"{where}.after_task[{i}]")]  # fmt: skip
    if problems:
        return problems
    if [point["task"] for point in curve] != list(range(1, len(curve) + 1)):
        problems.append(f"{where}.after_task does not list tasks 1..{len(curve)} in order")
    for key in ("gflops_per_image", "params_millions", "param_bytes"):
        if curve[-1][key] != raw.get(key):
            problems.append(f"{where}.after_task[-1].{key}={curve[-1][key]!r} is not the "
                            f"final {key}={raw.get(key)!r}")  # fmt: skip
    return problems
