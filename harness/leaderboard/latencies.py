"""Latency per measurement setting: a device, precision, batch size and CPU thread count each,
never mixed in one figure; the per-trial list from each record and the means per entry."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.leaderboard.aggregate import GROUP_KEYS, TRIAL_KEYS, trial_key
from harness.leaderboard.usable import (
    is_count,
    is_leaderboard_record,
    out_of_range,
    unusable_reason,
)


@dataclass(frozen=True)
class LatencySetting:
    """Where and how a latency was measured; figures of two settings are never averaged.

    ``threads`` is the CPU thread count (None on a GPU, where it does not set the speed, and
    on records that did not say).
    """

    device: str  # "cpu" or "cuda"
    device_name: str  # the CPU model or the GPU's name
    precision: str  # "fp32", "bf16", ...
    batch_size: int
    threads: int | None

    def sort_key(self) -> tuple[Any, ...]:
        """CPU first, then by device, precision, batch size and thread count."""
        return (self.device != "cpu", self.device, self.device_name, self.precision,
                self.batch_size, self.threads or 0)  # fmt: skip


@dataclass(frozen=True)
class Latency:
    """One measurement of a trial: milliseconds per batch and images per second."""

    setting: LatencySetting
    ms_per_batch: float
    images_per_s: float


LATENCY_STATISTICS: tuple[str, ...] = ("ms_per_batch", "images_per_s")


def trial_latencies(record: Mapping[str, Any]) -> list[Latency]:
    """Every latency a record measured, one per setting (the first where a setting repeats).

    From ``inference_cost.latencies`` where the record has it; an older record has only
    ``latency_ms_b1``, measured on a CPU copy of the served model at batch 1 with
    ``latency_threads`` threads on the machine its provenance names. Call on records that
    ``unusable_reason`` accepts.
    """
    cost = record.get("inference_cost") or {}
    listed = cost.get("latencies")
    if isinstance(listed, list):
        found = [_listed_latency(item) for item in listed]
    else:
        found = _legacy_latency(record, cost)
    unique: dict[LatencySetting, Latency] = {}
    for latency in found:
        unique.setdefault(latency.setting, latency)
    return list(unique.values())


def _listed_latency(item: Mapping[str, Any]) -> Latency:
    device = str(item["device"])
    threads = item.get("threads") if device == "cpu" else None
    setting = LatencySetting(
        device=device,
        device_name=str(item["device_name"]),
        precision=str(item["precision"]),
        batch_size=int(item["batch_size"]),
        threads=None if threads is None else int(threads),
    )
    return Latency(setting, float(item["ms_per_batch"]), float(item["images_per_s"]))


def _legacy_latency(record: Mapping[str, Any], cost: Mapping[str, Any]) -> list[Latency]:
    ms = cost.get("latency_ms_b1")
    if out_of_range(ms, (0.0, math.inf)):
        return []
    threads = cost.get("latency_threads")
    provenance = record.get("provenance")
    processor = provenance.get("processor") if isinstance(provenance, Mapping) else None
    setting = LatencySetting(
        device="cpu",
        device_name=str(processor) if processor else "cpu",
        precision="fp32",
        batch_size=1,
        threads=int(threads) if is_count(threads) and threads > 0 else None,
    )
    return [Latency(setting, float(ms), 1000.0 / ms if ms > 0 else math.nan)]


LATENCY_FRAME_COLUMNS: tuple[str, ...] = (
    GROUP_KEYS + TRIAL_KEYS + ("run_id", "setting") + LATENCY_STATISTICS
)


def latency_frame(records: Iterable[Mapping[str, Any]], *, checked: bool = False) -> pd.DataFrame:
    """One row per measurement of every trial ``records_to_frame`` keeps, long format
    (``checked``: as there, the records are known usable).

    Columns: GROUP_KEYS, TRIAL_KEYS, ``run_id``, ``setting`` (a ``LatencySetting``),
    ``ms_per_batch`` and ``images_per_s``.
    """
    rows = []
    for record in records:
        if not is_leaderboard_record(record) or (not checked and unusable_reason(record)):
            continue
        trial = dict(zip(GROUP_KEYS + TRIAL_KEYS, trial_key(record), strict=True))
        for latency in trial_latencies(record):
            rows.append({**trial, "run_id": record["run_id"], "setting": latency.setting,
                         "ms_per_batch": latency.ms_per_batch,
                         "images_per_s": latency.images_per_s})  # fmt: skip
    return pd.DataFrame(rows, columns=list(LATENCY_FRAME_COLUMNS))


def summarize_latencies(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std and count of each statistic per entry and setting.

    Columns: GROUP_KEYS, ``setting``, then ``<statistic>``, ``<statistic>_std`` and
    ``<statistic>_count`` for ``ms_per_batch`` and ``images_per_s``, as in ``summarize``
    (an exact 0 std when every trial measured the same value; NaN for one trial). Rows sorted
    by GROUP_KEYS, then setting. Trials with different thread counts are different settings,
    so they never share a mean.
    """
    columns = list(GROUP_KEYS) + ["setting"]
    for name in LATENCY_STATISTICS:
        columns += [name, f"{name}_std", f"{name}_count"]
    measured: dict[tuple[Any, ...], dict[str, list[float]]] = {}
    for row in frame.to_dict("records"):
        key = tuple(row[k] for k in GROUP_KEYS) + (row["setting"],)
        values = measured.setdefault(key, {name: [] for name in LATENCY_STATISTICS})
        for name in LATENCY_STATISTICS:
            if math.isfinite(row[name]):
                values[name].append(float(row[name]))
    rows = []
    for key in sorted(measured, key=lambda k: (*k[:-1], k[-1].sort_key())):
        row = dict(zip([*GROUP_KEYS, "setting"], key, strict=True))
        for name, values in measured[key].items():
            row[name], row[f"{name}_std"] = _mean_and_std(values)
            row[f"{name}_count"] = len(values)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def _mean_and_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    mean = float(np.mean(values))
    if len(values) == 1:
        return mean, math.nan
    return mean, 0.0 if min(values) == max(values) else float(np.std(values, ddof=1))
