"""Compare two results folders trial by trial: did a change alter what the trials compute?

    python benchmarks/compare_runs.py results/ /tmp/rerun/

Pairs records by run id and compares everything a trial computes: both accuracy matrices, the
summary metrics, FLOPs, parameters, model size, the training budget spent and the framework's
report. Wall-clock figures (latency, timing) and provenance are left out: they differ between
any two runs. Exits 0 when every shared run id matches exactly and both folders hold the same
run ids; prints each difference otherwise. Records of any schema version are read (fields a
version lacks compare as missing). For refactors ("a pure refactor computes the same
numbers") and for checking that a regeneration moved only what it should.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: harness/ importable

from harness.records.safe_parse import load_json  # noqa: E402

COST_KEYS = ("gflops_per_image", "gflops_per_image_torch", "gflops_per_image_ptflops",
             "params_millions", "params_millions_without_head", "param_bytes",
             "nonzero_params_millions", "uncounted_ops")  # fmt: skip


def computed(record: dict[str, Any]) -> dict[str, Any]:
    """What the trial computed, without wall-clock figures or provenance."""
    cost = record.get("inference_cost") or {}
    budget = record.get("training_budget") or {}
    return {
        "status": record["status"],
        "results": record.get("results"),
        "cost": {key: cost.get(key) for key in COST_KEYS},
        "training_spent": budget.get("spent"),
        "framework_report": _without_times(record.get("framework_report")),
        "inference_backbone": record["method"].get("inference_backbone"),
    }


def _without_times(report: Any) -> Any:
    """A framework report less its wall-clock entries (e.g. the KD teacher's training time)."""
    if not isinstance(report, dict):
        return report
    return {k: v for k, v in report.items() if "time_s" not in k}


def differences(a: dict[str, Any], b: dict[str, Any], where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys for d in differences(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in differences(x, y, f"{where}[{i}]")]  # fmt: skip
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def read_records(folder: Path, *, by: str = "run_id") -> dict[str, dict[str, Any]]:
    """Every record file under ``folder`` by run id (or, ``by="trial"``, by suite, version,
    label, backbone, class order and seed: for a change of how run ids are made), whatever its
    schema version: comparing a regeneration with the records it replaces is what this script
    is for."""
    records = {}
    for path in sorted(folder.glob("**/*.json")):
        record = load_json(path.read_text(encoding="utf-8"), source=str(path))
        if isinstance(record, dict) and "run_id" in record:
            records[record["run_id"] if by == "run_id" else trial_name(record)] = record
    return records


def trial_name(record: dict[str, Any]) -> str:
    suite, method = record["suite"], record["method"]
    return (f"{suite['name']} v{suite['version']} {method['label']} {method['backbone']} "
            f"order {suite.get('order_index', 0)} seed {record['seed']}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--by", choices=["run_id", "trial"], default="run_id",
                        help="pair records by run id (default) or by trial (label, backbone, "
                        "seed...), when run ids are made differently")  # fmt: skip
    args = parser.parse_args()
    first, second = read_records(args.first, by=args.by), read_records(args.second, by=args.by)
    only = sorted(set(first) ^ set(second))
    differing = 0
    for run_id in sorted(set(first) & set(second)):
        found = differences(computed(first[run_id]), computed(second[run_id]))
        if found:
            differing += 1
            label = first[run_id]["method"]["label"]
            print(f"{label} seed={first[run_id]['seed']} ({run_id}):\n  " + "\n  ".join(found))
    for run_id in only:
        print(f"only in {args.first if run_id in first else args.second}: {run_id}")
    shared = len(set(first) & set(second))
    print(f"{shared} shared {'run id' if args.by == 'run_id' else 'trial'}(s): "
          f"{shared - differing} identical, {differing} differ; "
          f"{len(only)} in one folder only")  # fmt: skip
    return 0 if differing == 0 and not only else 1


if __name__ == "__main__":
    sys.exit(main())
