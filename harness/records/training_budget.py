"""The ``training_budget`` section of a record: the epochs each model was declared to train per
task, and what the harness's training loop counted. Torch-free."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from harness.records.quantities import is_int


@dataclass(frozen=True)
class SpentTraining:
    """What one model (``role``) trained on one task (1-based)."""

    task: int
    role: str
    epochs: int
    optimizer_steps: int
    samples: int


@dataclass(frozen=True)
class TrainingBudget:
    """Declared epochs per task and role, and what the harness's training loop counted."""

    declared_epochs: list[dict[str, int]]
    spent: tuple[SpentTraining, ...]

    @property
    def total_optimizer_steps(self) -> int:
        return sum(s.optimizer_steps for s in self.spent)

    @property
    def total_samples(self) -> int:
        return sum(s.samples for s in self.spent)

    @staticmethod
    def samples_millions(raw: Any) -> float | None:
        """``training_samples_millions`` of a record's ``training_budget`` (None: absent)."""
        total = raw.get("total_samples") if isinstance(raw, dict) else None
        return total / 1e6 if is_int(total) else None

    def to_json(self) -> dict[str, Any]:
        return {
            "declared_epochs": [dict(row) for row in self.declared_epochs],
            "spent": [asdict(s) for s in self.spent],
            "total_optimizer_steps": self.total_optimizer_steps,
            "total_samples": self.total_samples,
        }

    @staticmethod
    def problems(raw: Any) -> list[str]:
        where = "training_budget"
        if not isinstance(raw, dict):
            return [f"{where}={raw!r} must be an object for an ok record"]
        problems = []
        declared = raw.get("declared_epochs")
        if not isinstance(declared, list) or not all(
            isinstance(row, dict) and all(is_int(e) and e >= 0 for e in row.values())
            for row in declared
        ):
            problems.append(f"{where}.declared_epochs must be a list of {{role: epochs}}")
        spent = raw.get("spent")
        names = [f.name for f in fields(SpentTraining)]
        if not isinstance(spent, list) or not all(
            isinstance(row, dict) and set(row) == set(names) for row in spent
        ):
            return [*problems, f"{where}.spent must be a list of objects with {names}"]
        for key in ("total_optimizer_steps", "total_samples"):
            column = key.removeprefix("total_")
            if not is_int(raw.get(key)) or raw[key] != sum(row[column] for row in spent):
                problems.append(f"{where}.{key}={raw.get(key)!r} is not the sum of spent {column}")
        return problems
