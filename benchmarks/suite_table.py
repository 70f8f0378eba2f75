"""A suite's committed records as one Markdown table: the figures an issue note reports.

    python benchmarks/suite_table.py --suite digits-5split [--results results]

One row per entry (label and backbone), means over its seeds (± sample std for accuracies):
final ACC, average incremental ACC, BWT, GFLOPs after task 1 and after the last task,
parameters, exemplar-memory bytes and all kept bytes after the last task, and training
samples. Only current-version, non-debug, ok records count, read through the leaderboard's
own loader and checks, so the table says what the site says.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.leaderboard.aggregate import current_versions
from harness.leaderboard.usable import drop_unusable_records, is_leaderboard_record
from harness.records.store import load_records_leniently

HEADER = ("entry", "backbone", "seeds", "ACC %", "avg. inc. ACC %", "BWT pp",
          "GFLOPs task 1", "GFLOPs task T", "params M", "exemplar kB", "kept kB",
          "training M samples")  # fmt: skip


def _mean_std(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def _mean(values: Sequence[float], spec: str) -> str:
    return format(statistics.mean(values), spec)


def row(label: str, backbone: str, records: Sequence[Mapping[str, Any]]) -> list[str]:
    metrics = [r["results"]["metrics"] for r in records]
    costs = [r["inference_cost"] for r in records]
    memory = [r["memory"] for r in records]
    return [
        label,
        backbone,
        str(len(records)),
        _mean_std([m["final_acc_pct"] for m in metrics]),
        _mean_std([m["avg_incremental_acc_pct"] for m in metrics]),
        _mean_std([m["bwt_pct"] for m in metrics]),
        _mean([c["after_task"][0]["gflops_per_image"] for c in costs], ".3g"),
        _mean([c["gflops_per_image"] for c in costs], ".3g"),
        _mean([c["params_millions"] for c in costs], ".4f"),
        _mean([m["exemplar_bytes"] / 1e3 for m in memory], ".1f"),
        _mean([m["total_bytes"] / 1e3 for m in memory], ".0f"),
        _mean([r["training_budget"]["total_samples"] / 1e6 for r in records], ".3f"),
    ]


def suite_table(results: Path, suite: str) -> str:
    records, _ = drop_unusable_records(load_records_leniently(results / suite).records)
    records = [r for r in records if is_leaderboard_record(r)]
    version = current_versions(records).get(suite)
    entries: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        if record["suite"]["version"] == version:
            method = record["method"]
            entries[(method["label"], method["backbone"])].append(record)
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for (label, backbone), group in sorted(entries.items()):
        lines.append("| " + " | ".join(row(label, backbone, group)) + " |")
    return f"{suite} v{version}, {sum(map(len, entries.values()))} trials\n\n" + "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", required=True)
    parser.add_argument("--results", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    print(suite_table(args.results, args.suite))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
