"""Benchmark: CPU time to refuse hostile nesting in each kind of file a user hands in.

    python benchmarks/hostile_input.py [--repeat 5]

Each case goes through the public entry point the command line uses: a suite file through
``parse_suite`` (a 64 kB suite whose description opens 60,000 flow brackets, one opening 30,000
block sequences, one opening 15,000 flow mappings), a results folder holding one good record
and the 200,000-deep ``{"a": [[[...]]]}`` record through ``load_records_leniently`` (what
``cilbench site`` and ``validate`` read), and a 200,000-bracket config value through
``resolve_config`` (what ``--set`` parses; tuned-config files will be read the same way).
Prints the median CPU time (``time.process_time``, so other load on the machine does not
count) and the outcome of each. Target: every refusal under 0.1 s of CPU. The entry points
exist since before the limits, so the script also measures an older checkout (run it there).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: harness/ and tests/ importable

from harness.api.config import resolve_config  # noqa: E402
from harness.api.testing import TINY_SUITE_YAML  # noqa: E402
from harness.data.suite import parse_suite  # noqa: E402
from harness.records.store import LoadedRecords, load_records_leniently  # noqa: E402
from harness.training.trainer import TrainingConfig  # noqa: E402
from tests.record_factory import make_record, write_records  # noqa: E402

TARGET_CPU_S = 0.1
DEEP_RECORD = 200_000


def _suite_with(extra: str) -> str:
    text = TINY_SUITE_YAML + extra
    return text + " " * max(0, 64 * 1024 - len(text) - 1) + "\n"  # 64 kB, as in the issue


def _summary(loaded: LoadedRecords) -> str:
    return f"{len(loaded.records)} record(s) read, {len(loaded.warnings)} file(s) left out"


def _outcome(call: Callable[[], object]) -> str:
    try:
        result = call()
    except Exception as error:  # the benchmark reports every outcome, a crash included
        return f"{type(error).__name__}: {str(error).splitlines()[0][:90]}"
    return result if isinstance(result, str) else f"returned {type(result).__name__}"


def _cpu_seconds(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        _outcome(call)
        times.append(time.process_time() - start)
    return statistics.median(times)


def _cases(folder: Path) -> dict[str, Callable[[], object]]:
    results = folder / "results"
    write_records([make_record()], results)
    (results / "seed1-hostile.json").write_text(
        '{"a": ' + "[" * DEEP_RECORD + "]" * DEEP_RECORD + "}"
    )
    suites = {
        "suite, flow sequences": _suite_with("extra: " + "[" * 60_000),
        "suite, block sequences": _suite_with("extra:\n  " + "- " * 30_000 + "1"),
        "suite, flow mappings": _suite_with("extra: " + "{a: " * 15_000),
    }
    cases: dict[str, Callable[[], object]] = {
        name: (lambda text=text: parse_suite(text, source="hostile.yaml"))
        for name, text in suites.items()
    }
    cases["record, 200,000 deep"] = lambda: _summary(load_records_leniently(results))
    cases["config value, 200,000 deep"] = lambda: resolve_config(
        TrainingConfig, {"lr": "[" * DEEP_RECORD}, scope="training"
    )
    return cases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    worst = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for name, call in _cases(Path(folder)).items():
            seconds = _cpu_seconds(call, args.repeat)
            worst = max(worst, seconds)
            print(f"{name:28s} {seconds * 1000:9.2f} ms CPU  {_outcome(call)}")
    verdict = "meets" if worst < TARGET_CPU_S else "MISSES"
    print(f"worst refusal: {worst * 1000:.2f} ms CPU; {verdict} the {TARGET_CPU_S} s target")
    return 0 if worst < TARGET_CPU_S else 1


if __name__ == "__main__":
    sys.exit(main())
