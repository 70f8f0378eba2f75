"""Each compressed entry against its own baseline: what the compression cost in accuracy, and
how many times cheaper it serves.

The leaderboard's question is how much inference compute a continual learner can shed and what
accuracy that costs. For every entry whose framework is not ``none`` (pre-pruning,
post-pruning, KD, any plugin framework), its baseline is the plain entry of the same strategy
on the same backbone (for KD: the teacher) in the same suite version; the columns below give
the accuracy differences in points (entry minus baseline, over the seeds' means) and the cost
ratios (baseline over entry: "4x" means a quarter of the baseline's GFLOPs). An entry whose
baseline is missing, or ambiguous (two plain entries of that strategy and backbone, e.g.
variants with other configs), gets no comparison rather than a guess.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.leaderboard import aggregate
from harness.leaderboard.columns import Column

PLAIN_FRAMEWORK = "none"
BASELINE_KEYS = ("suite", "suite_version", "strategy", "backbone")
# (comparison column, summary column it compares, "difference" or "ratio")
COMPARED = (
    ("delta_final_acc_pct", "final_acc_pct", "difference"),
    ("delta_avg_incremental_acc_pct", "avg_incremental_acc_pct", "difference"),
    ("gflops_ratio", "gflops_per_image", "ratio"),
    ("params_ratio", "params_millions", "ratio"),
    ("param_bytes_ratio", "param_bytes", "ratio"),
)
BASELINE_LABEL = "baseline_label"

_AGAINST = "against the plain entry of the same strategy on the same backbone (for KD, the "
_AGAINST += "teacher) in this suite version, from the means over seeds"


def _difference(key: str, header: str, metric: str) -> Column:
    return Column(
        key=key,
        header=header,
        unit="points vs plain",
        short_unit="pp",
        definition=f"{metric} of this entry minus its plain baseline's: what the compression "
        "cost (negative) or gained",
        measured=_AGAINST,
        spec="+.2f",
        always_std=False,
    )


def _ratio(key: str, header: str, cost: str) -> Column:
    return Column(
        key=key,
        header=header,
        unit=f"times fewer {cost} than plain",
        short_unit="×",
        definition=f"the plain baseline's {cost} over this entry's: 4 means the entry serves "
        f"with a quarter of them",
        measured=_AGAINST,
        spec=".3g",
        always_std=False,
    )


# In the suite table (sortable); the size ratio shows on the entry's page.
COMPARISON_COLUMNS: tuple[Column, ...] = (
    _difference("delta_final_acc_pct", "ΔACC", "final accuracy"),
    _difference("delta_avg_incremental_acc_pct", "ΔAIA", "average incremental accuracy"),
    _ratio("gflops_ratio", "fewer GFLOPs", "GFLOPs per image"),
    _ratio("params_ratio", "fewer params", "parameters"),
)
SIZE_RATIO = _ratio("param_bytes_ratio", "smaller", "parameter bytes")
COMPARISON_KEYS = frozenset(c.key for c in (*COMPARISON_COLUMNS, SIZE_RATIO))


def add_baseline_comparison(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` plus the COMPARED columns and ``baseline_label`` (NaN / None where an
    entry is plain, a reference, or has no unambiguous baseline)."""
    keys = list(BASELINE_KEYS)
    values = [value for _, value, _ in COMPARED if value in summary]
    plain = summary[(summary["framework"] == PLAIN_FRAMEWORK) & summary["reference"].isna()]
    plain = plain[~plain.duplicated(keys, keep=False)]  # two candidates: no guess
    named = aggregate.entry_names(summary).loc[plain.index]  # as the table names it
    base = (
        plain[[*keys, *values]]
        .assign(**{BASELINE_LABEL: named})
        .rename(columns={v: f"{v}__base" for v in values})
    )
    compared = (summary["framework"] != PLAIN_FRAMEWORK) & summary["reference"].isna()
    merged = summary[keys].assign(compared=compared.to_numpy()).merge(base, on=keys, how="left")
    merged.index = summary.index
    out = summary.copy()
    mask = merged["compared"].to_numpy(dtype=bool)
    for column, value, kind in COMPARED:
        result = pd.Series(np.nan, index=summary.index)
        if value in summary:
            mine = summary[value].astype(float)
            theirs = merged[f"{value}__base"].astype(float)
            if kind == "difference":
                result = mine - theirs
            else:
                result = (theirs / mine).where((mine > 0) & np.isfinite(theirs))
        out[column] = result.where(mask)
    labels = merged[BASELINE_LABEL].astype(object)
    out[BASELINE_LABEL] = labels.where(mask & labels.notna().to_numpy(), None)
    return out
