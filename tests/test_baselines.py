"""Each compressed entry against its plain baseline (harness/leaderboard/baselines.py), on
summary rows whose figures are checked by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from harness.leaderboard.baselines import BASELINE_LABEL, add_baseline_comparison


def _row(label: str, framework: str, acc: float, gflops: float, **other) -> dict:
    return {
        "suite": "s", "suite_version": 1, "strategy": other.pop("strategy", "icarl"),
        "backbone": other.pop("backbone", "teacher"), "framework": framework, "label": label,
        "reference": other.pop("reference", None), "final_acc_pct": acc,
        "avg_incremental_acc_pct": acc + 5, "gflops_per_image": gflops,
        "params_millions": other.pop("params", 2.0), "param_bytes": 8.0e6, **other,
    }  # fmt: skip


def test_deltas_and_ratios_against_the_plain_entry_of_the_same_strategy_and_teacher() -> None:
    rows = pd.DataFrame([
        _row("icarl", "none", 98.0, 3.0),
        _row("icarl+prepruning@0.4", "prepruning", 95.0, 0.75, params=0.5),
        _row("icarl+kd", "kd", 93.9, 0.2),
        _row("icarl", "none", 93.9, 0.2, backbone="student"),  # plain, on another backbone
    ])  # fmt: skip
    out = add_baseline_comparison(rows).set_index("label", append=True)
    pruned = out.xs("icarl+prepruning@0.4", level="label").iloc[0]
    assert pruned["delta_final_acc_pct"] == pytest.approx(-3.0)
    assert pruned["delta_avg_incremental_acc_pct"] == pytest.approx(-3.0)
    assert pruned["gflops_ratio"] == pytest.approx(4.0)  # 3.0 / 0.75
    assert pruned["params_ratio"] == pytest.approx(4.0)  # 2.0 / 0.5
    assert pruned["param_bytes_ratio"] == pytest.approx(1.0)
    assert pruned[BASELINE_LABEL] == "icarl · teacher"  # named as the table names it
    kd = out.xs("icarl+kd", level="label").iloc[0]
    assert kd["delta_final_acc_pct"] == pytest.approx(93.9 - 98.0)
    assert kd["gflops_ratio"] == pytest.approx(15.0)  # against the teacher's plain entry
    plain = out.xs("icarl", level="label")
    assert plain["delta_final_acc_pct"].isna().all() and plain[BASELINE_LABEL].isna().all()


def test_no_baseline_or_two_candidates_give_no_comparison_rather_than_a_guess() -> None:
    rows = pd.DataFrame([
        _row("lwf+kd", "kd", 50.0, 0.2, strategy="lwf"),  # no plain lwf on the teacher
        _row("wa", "none", 70.0, 3.0, strategy="wa"),
        _row("wa (other config)", "none", 72.0, 3.0, strategy="wa"),
        _row("wa+kd", "kd", 60.0, 0.2, strategy="wa"),
        _row("joint", "none", 99.0, 3.0, strategy="joint", reference="upper_bound"),
        _row("joint+kd", "kd", 90.0, 0.2, strategy="joint"),  # a reference is no baseline
    ])  # fmt: skip
    out = add_baseline_comparison(rows)
    assert out["delta_final_acc_pct"].isna().all()
    assert out[BASELINE_LABEL].tolist() == [None] * len(rows)  # None, not NaN: pages test it


def test_a_zero_cost_entry_has_no_ratio() -> None:
    rows = pd.DataFrame([_row("icarl", "none", 98.0, 3.0), _row("x", "kd", 90.0, 0.0)])
    ratio = add_baseline_comparison(rows)["gflops_ratio"].iloc[1]
    assert math.isnan(ratio)
