"""Benchmark: build the leaderboard site from N synthetic records (not part of pytest's run).

    python benchmarks/site_build.py --records 10000

Writes the records as the harness lays them out into a temporary ``results/``, then times the
two steps of ``cilbench site``: loading (with validation) and building. Target: under 15 s for
10,000 records on 2 cores. ``--check-determinism`` builds twice and compares every file.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: tests/ and harness/ importable

from harness.leaderboard.build import build_site  # noqa: E402
from harness.records.layout import record_path  # noqa: E402
from harness.records.store import load_records_leniently  # noqa: E402
from tests.record_factory import synthetic_records  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000, help="how many records")
    parser.add_argument("--out", type=Path, help="keep the site here (default: a temp folder)")
    parser.add_argument("--workers", type=int, help="plot processes (default: the CPUs)")
    parser.add_argument("--check-determinism", action="store_true", help="build twice, compare")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="cilbench-bench-") as tmp:
        results = Path(tmp) / "results"
        started = time.perf_counter()
        records = synthetic_records(args.records)
        for record in records:
            path = record_path(results, record)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record, indent=1) + "\n")
        print(
            f"generated and wrote {len(records)} records in {time.perf_counter() - started:.1f} s"
        )
        out = args.out or Path(tmp) / "site"
        seconds = _build(results, out, args.workers)
        if args.check_determinism:
            again = Path(tmp) / "site-again"
            _build(results, again, args.workers)
            differing = _differences(out, again)
            print(
                "deterministic: every file identical except index.html's build stamp"
                if set(differing) <= {"index.html"}
                else f"NOT deterministic: {differing}"
            )
    return 0 if seconds < 15 else 1


def _cpu_seconds() -> float:
    """CPU time of this process and its finished workers: wall time lies on a shared machine."""
    own, workers = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                          resource.RUSAGE_CHILDREN))  # fmt: skip
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def _build(results: Path, out: Path, workers: int | None) -> float:
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    loaded = load_records_leniently(results)
    loaded_at, cpu_loaded = time.perf_counter(), _cpu_seconds()
    build_site(
        loaded.records, out, skipped=loaded.warnings, sources=loaded.sources, workers=workers
    )
    done, cpu_done = time.perf_counter(), _cpu_seconds()
    files = sum(1 for p in out.rglob("*") if p.is_file())
    total = done - started
    print(
        f"load {loaded_at - started:.1f} s + build {done - loaded_at:.1f} s = {total:.1f} s "
        f"({len(loaded.records)} records, {len(loaded.warnings)} warnings, {files} files)"
    )
    print(f"CPU time: load {cpu_loaded - cpu_started:.1f} s + build {cpu_done - cpu_loaded:.1f} s")
    return total


def _differences(first: Path, second: Path) -> list[str]:
    names = sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.is_file())
    _, mismatch, errors = filecmp.cmpfiles(first, second, names, shallow=False)
    return sorted(mismatch + errors)


if __name__ == "__main__":
    sys.exit(main())
