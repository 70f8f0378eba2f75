"""The ``memory`` section of a record: the bytes a trial keeps between tasks, exemplars and
models apart. Torch-free."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from harness.records.quantities import is_int


@dataclass(frozen=True)
class KeptAfterTask:
    """What a trial keeps between tasks, after task ``task`` (1-based), in bytes.

    ``exemplar_bytes``: the exemplar memory's stored samples (and any per-sample extras);
    ``model_bytes``: every distinct parameter, buffer and tensor the method keeps (the model
    it trains and serves, old copies it distils from, teachers, extra branches), measured
    by the harness from the method's objects, not declared by it (Zhou et al., ICLR 2023:
    methods that keep old models must pay for their bytes too).
    """

    task: int
    exemplars: int
    exemplar_bytes: int
    model_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.exemplar_bytes + self.model_bytes


@dataclass(frozen=True)
class KeptMemory:
    """One ``KeptAfterTask`` per task; the record also carries the last one's figures."""

    after_task: tuple[KeptAfterTask, ...]

    def to_json(self) -> dict[str, Any]:
        last = self.after_task[-1]
        return {
            "after_task": [{**asdict(p), "total_bytes": p.total_bytes} for p in self.after_task],
            "exemplar_bytes": last.exemplar_bytes,
            "model_bytes": last.model_bytes,
            "total_bytes": last.total_bytes,
        }

    @staticmethod
    def problems(raw: Any, tasks: int) -> list[str]:
        where = "memory"
        if not isinstance(raw, dict) or not isinstance(raw.get("after_task"), list):
            return [f"{where} must be an object with after_task for an ok record"]
        keys = ("exemplars", "exemplar_bytes", "model_bytes", "total_bytes")
        points = raw["after_task"]
        problems = []
        if [p.get("task") if isinstance(p, dict) else None for p in points] != list(
            range(1, tasks + 1)
        ):
            problems.append(f"{where}.after_task does not list tasks 1..{tasks} in order")
        for i, point in enumerate(points):
            if not isinstance(point, dict) or not all(
                is_int(point.get(k)) and point[k] >= 0 for k in keys
            ):
                problems.append(f"{where}.after_task[{i}] needs integer {', '.join(keys)} >= 0")
            elif point["total_bytes"] != point["exemplar_bytes"] + point["model_bytes"]:
                problems.append(f"{where}.after_task[{i}].total_bytes is not their sum")
        if not problems and points:
            for key in keys[1:]:
                if raw.get(key) != points[-1][key]:
                    problems.append(f"{where}.{key} is not after_task[-1].{key}")
        return problems
