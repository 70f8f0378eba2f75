"""The leaderboard's numeric columns: what each metric means, and how its numbers are shown.

A ``Column`` per summary metric (a mean and its ``<key>_std``) carries the legend the suite
pages print; ``Cell`` and ``HeatCell`` are what the templates render: the text a person reads,
the exact value the browser sorts by and any warning marks. Every suite table has ``COLUMNS``;
``suite_columns`` adds the model size when records carry it and one latency column per
measurement setting (device, precision, batch size, CPU threads) found in the suite.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any, NamedTuple

from harness.evaluation.metrics import METRIC_BY_NAME, METRICS, Metric
from harness.leaderboard.aggregate import COUNTER_DISAGREEMENT_LIMIT_PCT
from harness.leaderboard.latencies import LatencySetting

# A suite whose costs are all below this many GFLOPs reads them in MFLOPs ("2.987", not "0.002987").
MFLOPS_BELOW = 0.1


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
    scale: float = 1.0  # shown value = stored value x scale (bytes shown as MB)
    qualifier: str = ""  # a second header line: where a latency was measured
    latency: LatencySetting | None = None  # a latency column's setting; None for the others


ACCURACY_MEASURED = (
    "top-1 on the suite's fixed test split, without a task id, evaluated by the harness after "
    "every task (the accuracy matrix in each record); mean ± sample std over seeds"
)


def metric_column(metric: Metric) -> Column:
    """A metric's column, from its one definition in ``harness.evaluation.metrics``."""
    return Column(
        key=metric.name,
        header=metric.header,
        unit=metric.unit,
        short_unit=metric.short_unit,
        definition=metric.definition,
        measured=metric.measured or ACCURACY_MEASURED,
        spec=".2f",
        better=metric.better,
    )


# "g" for costs: they range from 1e-4 GFLOPs (tiny test CNNs) to tens (ImageNet backbones).
COLUMNS: tuple[Column, ...] = (
    *(metric_column(m) for m in METRICS if m.column),
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
)
TASK_AWARE = metric_column(METRIC_BY_NAME["final_task_aware_acc_pct"])
SIZE = Column(
    key="param_bytes",
    header="size",
    unit="MB (10⁶ bytes) of parameters",
    short_unit="MB",
    definition="storage of every parameter of the model that serves inference, in its own "
    "dtype: quantized and packed weights count at their stored size",
    measured="summed over the inference module's parameters after the last task; each entry's "
    "page lists the parameters per dtype",
    spec=".4g",
    always_std=False,
    better="lower",
    scale=1e-6,
)
TRAINING_COMPUTE = Column(
    key="training_samples_millions",
    header="training",
    unit="millions of samples seen in training",
    short_unit="M samples",
    definition="samples seen by every model the method trained (teacher, student, pruned "
    "copies), over all tasks: the training compute spent to reach this inference cost",
    measured="counted by the harness's training loop and checked against what the framework "
    "declared (a mismatch fails the trial)",
    spec=".4g",
    always_std=False,
    better="lower",
)
KEPT_MEMORY = Column(
    key="kept_memory_megabytes",
    header="kept memory",
    unit="MB (10⁶ bytes) kept between tasks",
    short_unit="MB",
    definition="what the method keeps from one task to the next, after the last: its exemplars "
    "and every model it holds (the one it serves, old copies it distils from, teachers, extra "
    "branches); compare methods at equal memory as well as at equal inference cost",
    measured="measured by the harness from the method's objects after every task, each tensor "
    "once (Zhou et al., ICLR 2023)",
    spec=".4g",
    always_std=False,
    better="lower",
)
FIRST_TASK_GFLOPS = Column(
    key="gflops_after_first_task",
    header="GFLOPs task 1 → T",
    unit="GFLOPs per image",
    short_unit="G/img",
    definition="GFLOPs of the module that served after the first task, then after the last "
    "(the ranking GFLOPs), with a small line of the cost after every task: a network that "
    "grows per task (DER, MEMO) climbs, one that compresses itself (FOSTER) stays flat. "
    "Sorts by the cost after task 1. Shown when some entry's cost changed",
    measured="as GFLOPs, on what served after each task",
    spec=".4g",
    always_std=False,
    better="lower",
)
# Shown on each entry's page where records carry them; not table columns.
DETAIL_COLUMNS: tuple[Column, ...] = (
    Column(
        key="nonzero_params_millions",
        header="non-zero params",
        unit="millions",
        short_unit="M",
        definition="parameters of the serving model that are not zero: what unstructured "
        "sparsity leaves (dense FLOPs do not drop with it)",
        measured="counted on the inference module after the last task",
        spec=".4g",
        always_std=False,
        better="lower",
    ),
    Column(
        key="sparsity_pct",
        header="sparsity",
        unit="% of parameters that are zero",
        short_unit="%",
        definition="share of the serving model's parameters that are exactly zero",
        measured="counted on the inference module after the last task",
        spec=".3g",
        always_std=False,
    ),
)
COLUMN_BY_KEY = {
    column.key: column
    for column in (
        *COLUMNS,
        TASK_AWARE,
        SIZE,
        TRAINING_COMPUTE,
        KEPT_MEMORY,
        FIRST_TASK_GFLOPS,
        *DETAIL_COLUMNS,
    )
}
LATENCY_MEASURED = (
    "median of repeated calls after warm-up, on a copy of the served model on that device; "
    "entries are comparable only within one column"
)


def latency_column(setting: LatencySetting, *, key: str, qualifier: str = "") -> Column:
    """The column of one measurement setting: ms per batch at batch 1, else images per s.

    ``qualifier``: the header's device line (default ``device_text(setting)``); the legend
    always names the device in full.
    """
    where = device_text(setting, full=True)
    qualifier = qualifier or device_text(setting)
    if setting.batch_size == 1:
        return Column(
            key=key,
            header="latency",
            unit=f"ms per image, {where}",
            short_unit="ms",
            definition=f"wall-clock time of one batch-1 prediction, {where}",
            measured=LATENCY_MEASURED,
            spec=".3g",
            always_std=False,
            better="lower",
            qualifier=qualifier,
            latency=setting,
        )
    return Column(
        key=key,
        header="throughput",
        unit=f"images per second, {where}",
        short_unit="img/s",
        definition=f"images predicted per second at batch {setting.batch_size}, {where}",
        measured=LATENCY_MEASURED,
        spec=".4g",
        always_std=False,
        better="higher",
        qualifier=qualifier,
        latency=setting,
    )


def latency_statistic(column: Column) -> str:
    """Which ``latencies.Latency`` figure a latency column shows."""
    assert column.latency is not None, f"{column.key} is not a latency column"
    return "ms_per_batch" if column.latency.batch_size == 1 else "images_per_s"


def device_text(setting: LatencySetting, *, full: bool = False) -> str:
    """ "CPU b1 (2 thr)", "CPU Intel Xeon Gold 6338 b1 (1 thr)", "NVIDIA H200 bf16 b256".

    fp32 goes unsaid on a CPU (the default there); a GPU always names its precision. A CPU
    model is shortened (``short_cpu_name``) unless ``full``.
    """
    if setting.device == "cpu":
        name = setting.device_name.strip()
        if name.lower() in ("cpu", "unknown"):
            name = ""
        parts = ["CPU"] + ([name if full else short_cpu_name(name)] if name else [])
        if setting.precision != "fp32":
            parts.append(setting.precision)
    else:
        parts = [setting.device_name or setting.device, setting.precision]
    parts.append(f"b{setting.batch_size}")
    text = " ".join(parts)
    if setting.device == "cpu":
        text += f" ({setting.threads} thr)" if setting.threads else " (threads not recorded)"
    return text


def short_cpu_name(name: str) -> str:
    """ "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz" -> "Intel Xeon Gold 6338" (for headers)."""
    text = re.sub(r"\((R|TM)\)", "", name, flags=re.IGNORECASE)
    text = re.sub(r"\b(CPU|Processor)\b|@.*$", "", text)
    return " ".join(text.split()) or name


def suite_columns(
    settings: Iterable[LatencySetting],
    *,
    with_size: bool,
    with_training: bool = False,
    with_memory: bool = False,
    with_curve: bool = False,
    comparison: Sequence[Column] = (),
) -> tuple[Column, ...]:
    """A suite table's columns: COLUMNS; ``comparison`` (each entry against its baseline,
    ``harness.leaderboard.baselines``); SIZE, TRAINING_COMPUTE and KEPT_MEMORY when any entry
    has them; FIRST_TASK_GFLOPS when any entry's cost changed over the tasks; one per latency
    setting.

    Column keys (and the legend's anchors) come from the setting, so a link to one stays
    valid when another device is added. Headers name a CPU model shortly unless two settings
    would then read alike.
    """
    ordered = sorted(set(settings), key=LatencySetting.sort_key)
    short = [device_text(s) for s in ordered]
    latency, used = [], {c.key for c in COLUMN_BY_KEY.values()}
    for setting, text in zip(ordered, short, strict=True):
        if short.count(text) > 1:
            text = device_text(setting, full=True)
        base = "latency-" + re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
        key, n = base, 1
        while key in used:
            n += 1
            key = f"{base}-{n}"
        used.add(key)
        latency.append(latency_column(setting, key=key, qualifier=text))
    wanted = ((FIRST_TASK_GFLOPS, with_curve), (SIZE, with_size),
              (TRAINING_COMPUTE, with_training), (KEPT_MEMORY, with_memory))  # fmt: skip
    return (*COLUMNS, *comparison, *(column for column, on in wanted if on), *latency)


def format_mean_std(mean: float, std: float, *, spec: str, always_std: bool = True) -> str:
    """``"71.50 ± 1.20"``; one seed (std NaN): the mean alone; missing or non-finite: "—"."""
    if not is_finite_number(mean):
        return "—"
    text = _format_number(mean, spec)
    if is_finite_number(std) and (always_std or std > 0):  # costs ("g"): 2 digits of spread
        text += f" ± {_format_number(std, '.2g' if spec.endswith('g') else spec)}"
    return text


def _format_number(value: float, spec: str) -> str:
    text = format(value, spec)
    return text.lstrip("-") if float(text) == 0 else text  # no "-0.00" from rounding noise


def is_finite_number(value: Any) -> bool:
    """A real, finite number (not a bool)."""
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


class Flag(NamedTuple):
    """A warning mark beside a number: short text on the page, the details on hover."""

    mark: str
    detail: str


class Cell(NamedTuple):
    """A number as shown, and as the browser sorts it ("" when missing), with its warnings.

    Tuples rather than dicts in the hot paths of the templates: Jinja tries an attribute
    before an item, and a dict's failed attribute lookup costs an exception per cell.
    """

    text: str
    value: str
    flags: tuple[Flag, ...] = ()
    spark: str = ""  # SVG polyline points of a small line drawn beside the text, if any


class HeatCell(NamedTuple):
    text: str
    spread: str
    colour: str
    ink: str


def summary_cell(row: Mapping[str, Any], column: Column) -> Cell:
    """A summary cell; says over how many seeds when some lacked the value ("(2 of 3 seeds)").

    A column missing from ``row`` altogether (no entry of the suite measured it) shows "—".
    """
    mean, std = row.get(column.key, math.nan), row.get(f"{column.key}_std", math.nan)
    if column.scale != 1.0:
        mean = mean * column.scale if is_finite_number(mean) else math.nan
        std = std * column.scale if is_finite_number(std) else math.nan
    text = format_mean_std(mean, std, spec=column.spec, always_std=column.always_std)
    count, seeds = row.get(f"{column.key}_count"), row.get("seeds")
    if is_finite_number(mean) and count is not None and seeds is not None and count < seeds:
        text += f" ({int(count)} of {int(seeds)} seeds)"
    value = row.get(column.key)
    return Cell(text, repr(float(value)) if is_finite_number(value) else "")


def single_cell(value: Any, column: Column) -> Cell:
    """One trial's value in ``column``'s format ("—" when missing)."""
    number = float(value) if is_finite_number(value) else math.nan
    return summary_cell({column.key: number, f"{column.key}_std": math.nan}, column)


def gflops_flags(ops: Sequence[str] | None, disagreement_pct: Any) -> tuple[Flag, ...]:
    """The warnings a GFLOPs figure carries: ops nobody counted, counters that disagree.

    ``ops``: the uncounted aten ops (None or empty: nothing to flag); ``disagreement_pct``:
    the worst |torch - ptflops| / torch x 100 (flagged above COUNTER_DISAGREEMENT_LIMIT_PCT).
    """
    flags = []
    if ops:
        flags.append(
            Flag(
                "⚠ uncounted ops",
                "the served model runs ops without a FLOP formula, counted as zero (the GFLOPs "
                "are a lower bound): " + ", ".join(ops),
            )
        )
    if is_finite_number(disagreement_pct) and disagreement_pct > COUNTER_DISAGREEMENT_LIMIT_PCT:
        flags.append(
            Flag(
                f"⚠ counters {disagreement_pct:.3g}% apart",
                f"torch's FlopCounterMode and ptflops disagree by {disagreement_pct:.3g}% "
                f"(more than {COUNTER_DISAGREEMENT_LIMIT_PCT:g}%); see the entry's page",
            )
        )
    return tuple(flags)


def format_bytes(value: Any) -> str:
    """Bytes as MB (10⁶), "—" when missing."""
    return format_mean_std(float(value) * 1e-6 if is_finite_number(value) else math.nan, math.nan,
                           spec=".4g")  # fmt: skip
