"""Does a rerun agree with its record? The accuracy matrix, the cost, and what may explain a
difference (hardware, kernels, code, packages).

Where the record's hardware and kernels match the rerun's (processor, device, torch version,
thread count, precision, math kernels: see README, "Records"), the same seed gives the same
matrix bit for bit, so every cell must be identical. Elsewhere kernels sum in another order
and the numbers move within seed noise, so every cell must lie within a stated two-sided
tolerance (in percentage points). FLOPs and parameters do not depend on the hardware: they
must match to a tight relative tolerance either way. Torch-free: it compares two records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TOLERANCE_PP = 1.0  # per cell, two-sided, where hardware or kernels differ
# Counted, not timed: the same model gives the same count; room for a float's last bits.
COST_RTOL = 1e-6
COST_FIELDS = ("gflops_per_image", "gflops_per_image_ptflops", "params_millions", "param_bytes")
MATRIX = "acc_matrix_pct"


@dataclass(frozen=True)
class CellDifference:
    task_after: int  # i: after learning task i (0-based, as the record's matrix)
    task: int  # j: accuracy on task j
    recorded: float
    rerun: float

    @property
    def points(self) -> float:
        return abs(self.rerun - self.recorded)

    def __str__(self) -> str:
        return (f"{MATRIX}[{self.task_after}][{self.task}]: recorded {self.recorded!r}, "
                f"rerun {self.rerun!r} ({self.points:.4g} points)")  # fmt: skip


@dataclass
class Agreement:
    """How a rerun compares with its record, and the verdict."""

    hardware_differences: list[str]  # empty: bit-identical matrices required
    cells: list[CellDifference]  # every cell not identical
    compared_cells: int
    tolerance_pp: float
    cost_problems: list[str]
    code_warnings: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not self.hardware_differences

    @property
    def largest_points(self) -> float:
        return max((c.points for c in self.cells), default=0.0)

    @property
    def failing_cells(self) -> list[CellDifference]:
        if self.exact:
            return self.cells
        return [c for c in self.cells if not c.points <= self.tolerance_pp]

    @property
    def holds(self) -> bool:
        return not self.failing_cells and not self.cost_problems

    def verdict(self) -> str:
        """One line: holds or differs, by which rule, and the largest difference measured."""
        rule = (
            "same hardware and kernels, so bit-identical required"
            if self.exact
            else f"hardware or kernels differ, so within ±{self.tolerance_pp:g} points per cell"
        )
        measured = (
            f"largest difference {self.largest_points:.4g} points over {self.compared_cells} cells"
        )
        if self.holds:
            return f"HOLDS: accuracy matrix {measured} ({rule}); GFLOPs and parameters match"
        parts = [str(c) for c in self.failing_cells[:3]] + self.cost_problems
        more = len(self.failing_cells) - 3
        tail = f" and {more} more cell(s)" if more > 0 else ""
        return f"DIFFERS: {'; '.join(parts)}{tail} ({measured}; {rule})"


def compare(
    record: dict[str, Any], rerun: dict[str, Any], *, tolerance_pp: float = DEFAULT_TOLERANCE_PP
) -> Agreement:
    """Compare the ok ``rerun`` record with the ``record`` it reproduces."""
    recorded_matrix = record["results"][MATRIX]
    rerun_matrix = rerun["results"][MATRIX]
    if len(recorded_matrix) != len(rerun_matrix):
        raise ValueError(
            f"the rerun has {len(rerun_matrix)} tasks, the record {len(recorded_matrix)}"
        )
    cells = [
        CellDifference(i, j, recorded_matrix[i][j], rerun_matrix[i][j])
        for i in range(len(recorded_matrix))
        for j in range(i + 1)
        if recorded_matrix[i][j] != rerun_matrix[i][j]
    ]
    tasks = len(recorded_matrix)
    return Agreement(
        hardware_differences=hardware_differences(record, rerun),
        cells=cells,
        compared_cells=tasks * (tasks + 1) // 2,
        tolerance_pp=tolerance_pp,
        cost_problems=cost_problems(record["inference_cost"], rerun["inference_cost"]),
        code_warnings=code_warnings(record, rerun),
    )


def hardware_differences(record: dict[str, Any], rerun: dict[str, Any]) -> list[str]:
    """What decides bit-identity and differs between the two (or the record does not say)."""
    recorded, here = _hardware(record), _hardware(rerun)
    return [
        f"{name}: recorded {recorded[name]!r}, here {here[name]!r}"
        if recorded[name] is not None
        else f"{name}: not recorded"
        for name in recorded
        if recorded[name] is None or recorded[name] != here[name]
    ]


def _hardware(record: dict[str, Any]) -> dict[str, Any]:
    provenance, execution = record["provenance"], record.get("execution") or {}
    kernels = provenance.get("math_kernels")
    if isinstance(kernels, dict):  # numpy's BLAS thread count is where it ran, not a kernel
        blas = [{k: v for k, v in b.items() if k != "num_threads"}
                for b in kernels.get("numpy_blas") or []]  # fmt: skip
        kernels = {**kernels, "numpy_blas": blas}
    return {
        "processor": provenance.get("processor"),
        "device": execution.get("device_name") or provenance.get("device"),
        "torch version": (provenance.get("packages") or {}).get("torch"),
        "torch threads": provenance.get("torch_threads"),
        "precision": execution.get("precision"),
        "math kernels": kernels,
    }


def cost_problems(recorded: dict[str, Any], rerun: dict[str, Any]) -> list[str]:
    """Counted costs that differ by more than ``COST_RTOL`` (relative)."""
    problems = []
    for name in COST_FIELDS:
        a, b = recorded.get(name), rerun.get(name)
        if a is None:
            continue  # an older record without the figure: nothing to compare
        if b is None or not math.isclose(a, b, rel_tol=COST_RTOL, abs_tol=0.0):
            problems.append(f"inference_cost.{name}: recorded {a!r}, rerun {b!r}")
    return problems


def code_warnings(record: dict[str, Any], rerun: dict[str, Any]) -> list[str]:
    """Code and packages that differ from the record's: they may explain a difference."""
    old, new = record["provenance"], rerun["provenance"]
    warnings = []
    if old.get("git_commit") != new.get("git_commit"):
        warnings.append(f"git commit: recorded {old.get('git_commit')}, this checkout "
                        f"{new.get('git_commit')}")  # fmt: skip
    if old.get("git_dirty"):
        warnings.append("the record was made from a checkout with uncommitted changes")
    if new.get("git_dirty"):
        warnings.append("this checkout has uncommitted changes")
    if old.get("python") != new.get("python"):
        warnings.append(f"python: recorded {old.get('python')}, here {new.get('python')}")
    packages, here = old.get("packages") or {}, new.get("packages") or {}
    for name in sorted(set(packages) | set(here)):
        if packages.get(name) != here.get(name):
            warnings.append(f"package {name}: recorded {packages.get(name)}, here {here.get(name)}")
    origins, now = record["method"].get("origins"), rerun["method"].get("origins")
    if origins is not None and origins != now:
        warnings.append(f"adapters' origins: recorded {origins}, here {now}")
    return warnings
