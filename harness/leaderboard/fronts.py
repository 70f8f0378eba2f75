"""Pareto fronts of a suite version's entries: accuracy against GFLOPs per image (who is best
at equal inference cost) and final accuracy against the memory kept between tasks (who is best
at equal total memory)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from harness.records.schema import ACCURACY_METRICS


def pareto_front(summary_rows: pd.DataFrame, *, x: str = "gflops_per_image", y: str) -> pd.Series:
    """Boolean Series (aligned to ``summary_rows``): rows on the lower-x / higher-y front.

    A row is on the front unless another row is at least as good on both axes and strictly
    better on one. Rows with identical (x, y) therefore do not knock each other off: both stay
    on the front. Rows missing x or y are neither on the front nor allowed to dominate others.
    Callers decide which rows compete (the site leaves out upper/lower-bound references).
    """
    xs = summary_rows[x].astype(float).to_numpy()
    ys = summary_rows[y].astype(float).to_numpy()
    valid = np.isfinite(xs) & np.isfinite(ys) & (xs >= 0) & (ys >= 0) & (ys <= 100)
    # dominated[i, j]: row j is no worse than row i on both axes and better on one.
    no_worse = (xs[None, :] <= xs[:, None]) & (ys[None, :] >= ys[:, None])
    better = (xs[None, :] < xs[:, None]) | (ys[None, :] > ys[:, None])
    dominated = (no_worse & better & valid[None, :]).any(axis=1)
    on_front = valid & ~dominated
    return pd.Series(on_front, index=summary_rows.index, dtype=bool, name="pareto_front")


def add_pareto_columns(
    summary: pd.DataFrame, *, metrics: Iterable[str] = ACCURACY_METRICS
) -> pd.DataFrame:
    """``summary`` plus ``pareto_<metric>``: on that suite version's front of accuracy vs GFLOPs.

    Fronts are per suite version (versions are never mixed), over non-reference entries only:
    an upper bound such as joint training frames the results, it does not compete.
    """
    summary = summary.copy()
    for metric in metrics:
        if metric not in ACCURACY_METRICS:
            raise ValueError(f"Pareto fronts use one of {ACCURACY_METRICS}, not {metric!r}")
        column = pd.Series(False, index=summary.index, dtype=bool)
        competing = summary[summary["reference"].isna()]
        for _, rows in competing.groupby(["suite", "suite_version"], sort=True):
            column.loc[rows.index] = pareto_front(rows, y=metric)
        summary[f"pareto_{metric}"] = column
    return summary


MEMORY_FRONT = "pareto_memory_final_acc_pct"


def add_memory_front(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` plus ``pareto_memory_final_acc_pct``: on its suite version's front of final
    accuracy vs the memory kept between tasks (exemplars and models, Zhou et al., ICLR 2023),
    over non-reference entries that measured it: who is best at equal total memory."""
    summary = summary.copy()
    column = pd.Series(False, index=summary.index, dtype=bool)
    if "kept_memory_megabytes" in summary:
        competing = summary[summary["reference"].isna()]
        for _, rows in competing.groupby(["suite", "suite_version"], sort=True):
            column.loc[rows.index] = pareto_front(
                rows, x="kept_memory_megabytes", y="final_acc_pct"
            )
    summary[MEMORY_FRONT] = column
    return summary


def suite_front(summary: pd.DataFrame, *, suite: str, version: int, metric: str) -> pd.DataFrame:
    """The Pareto-front entries of one suite version on ``metric``, cheapest first."""
    rows = add_pareto_columns(summary, metrics=[metric])
    rows = rows[(rows["suite"] == suite) & (rows["suite_version"] == version)]
    front = rows[rows[f"pareto_{metric}"]]
    return front.sort_values(["gflops_per_image", metric], ascending=[True, False])
