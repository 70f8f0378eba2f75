"""The leaderboard's numeric columns: what each metric means, and how its numbers are shown.

A ``Column`` per summary metric (a mean and its ``<key>_std``) carries the legend the suite
pages print; ``Cell`` and ``HeatCell`` are what the templates render: the text a person reads
and the exact value the browser sorts by.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any, NamedTuple


@dataclass(frozen=True)
class Column:
    """One numeric column: a summary mean (``key``) and its ``<key>_std``, and its legend."""

    key: str
    header: str
    unit: str
    short_unit: str  # under the table header
    definition: str
    measured: str
    spec: str  # format spec for mean and std
    # Accuracies show "± 0.00" when seeds agree exactly (that is news); costs that do not vary
    # across seeds (FLOPs, params) would only add noise, so they show a std only when it is > 0.
    always_std: bool = True
    better: str = "higher"  # the first click on its header sorts best first


ACCURACY_MEASURED = (
    "top-1 on the suite's fixed test split, without a task id, evaluated by the harness after "
    "every task (the accuracy matrix in each record); mean ± sample std over seeds"
)
# "g" for costs: they range from 1e-4 GFLOPs (tiny test CNNs) to tens (ImageNet backbones).
COLUMNS: tuple[Column, ...] = (
    Column(
        key="final_acc_pct",
        header="ACC",
        unit="%",
        short_unit="%",
        definition="accuracy over all classes seen, after the last task",
        measured=ACCURACY_MEASURED,
        spec=".2f",
    ),
    Column(
        key="avg_incremental_acc_pct",
        header="avg. inc. acc",
        unit="%",
        short_unit="%",
        definition="mean over tasks of the accuracy on all classes seen so far, after each task",
        measured=ACCURACY_MEASURED,
        spec=".2f",
    ),
    Column(
        key="bwt_pct",
        header="BWT",
        unit="percentage points",
        short_unit="pp",
        definition="backward transfer: mean over the tasks before the last of (final accuracy "
        "on the task − its accuracy right after it was learned); negative means forgetting",
        measured=ACCURACY_MEASURED,
        spec=".2f",
    ),
    Column(
        key="avg_forgetting_pct",
        header="forgetting",
        unit="percentage points",
        short_unit="pp",
        definition="mean over the tasks before the last of (best earlier accuracy on the task − "
        "final accuracy on it)",
        measured=ACCURACY_MEASURED,
        spec=".2f",
        better="lower",
    ),
    Column(
        key="gflops_per_image",
        header="GFLOPs",
        unit="GFLOPs per image",
        short_unit="G/img",
        definition="floating-point operations (2 × multiply-accumulates) of the whole inference "
        "path: every forward pass and the classifier the method predicts with",
        measured="torch FlopCounterMode over every aten op at batch 1, cross-checked by ptflops",
        spec=".4g",
        always_std=False,
        better="lower",
    ),
    Column(
        key="params_millions",
        header="params",
        unit="millions",
        short_unit="M",
        definition="parameters of the model that serves inference, classifier head included",
        measured="counted on the inference module after the last task",
        spec=".4g",
        always_std=False,
        better="lower",
    ),
    Column(
        key="latency_ms_b1",
        header="latency",
        unit="ms per image",
        short_unit="ms",
        definition="wall-clock time of one batch-1 prediction",
        measured="median of repeated calls after warm-up, on the device and torch thread count "
        "stored in each record; compare only entries measured on one machine",
        spec=".3g",
        always_std=False,
        better="lower",
    ),
)
TASK_AWARE = Column(
    key="final_task_aware_acc_pct",
    header="task-aware ACC †",
    unit="%",
    short_unit="%",
    definition="diagnostic only: argmax restricted to each task's own classes, i.e. the task id "
    "is given at test time, which class-incremental learning forbids; never used for ranking",
    measured="as ACC, with the task id given",
    spec=".2f",
)
COLUMN_BY_KEY = {column.key: column for column in (*COLUMNS, TASK_AWARE)}


def format_mean_std(mean: float, std: float, *, spec: str, always_std: bool = True) -> str:
    """``"71.50 ± 1.20"``; a single seed (std NaN) shows the mean alone, a missing value "—".

    A non-finite value is shown as missing, never as "inf" or "nan".
    """
    if not _finite(mean):
        return "—"
    text = _format_number(mean, spec)
    if _finite(std) and (always_std or std > 0):
        text += f" ± {_format_number(std, spec)}"
    return text


def _format_number(value: float, spec: str) -> str:
    text = format(value, spec)
    return text.lstrip("-") if float(text) == 0 else text  # no "-0.00" from rounding noise


def _finite(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


class Cell(NamedTuple):
    """A number as shown, and as the browser sorts it ("" when missing).

    Tuples rather than dicts in the hot paths of the templates: Jinja tries an attribute
    before an item, and a dict's failed attribute lookup costs an exception per cell.
    """

    text: str
    value: str


class HeatCell(NamedTuple):
    text: str
    spread: str
    colour: str
    ink: str


def _cell(row: Mapping[str, Any], column: Column) -> Cell:
    """A summary cell; says over how many seeds when some lacked the value ("(2 of 3 seeds)")."""
    mean = row[column.key]
    text = format_mean_std(
        mean, row[f"{column.key}_std"], spec=column.spec, always_std=column.always_std
    )
    count, seeds = row.get(f"{column.key}_count"), row.get("seeds")
    if _finite(mean) and count is not None and seeds is not None and count < seeds:
        text += f" ({int(count)} of {int(seeds)} seeds)"
    return Cell(text, repr(float(mean)) if _finite(mean) else "")


def _single(value: Any, column: Column) -> Cell:
    number = float(value) if _finite(value) else math.nan
    return _cell({column.key: number, f"{column.key}_std": math.nan}, column)
