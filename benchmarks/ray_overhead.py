"""What Ray Tune costs: the same small grid of real trials through Ray and in-process, interleaved.

    python benchmarks/ray_overhead.py                     # digits-5split, 2 rounds
    python benchmarks/ray_overhead.py --rounds 3 --methods lwf,icarl --json /tmp/overhead.json

Each round runs the grid three ways, one after another: through Ray Tune one trial at a time
(``run_grid`` with ``--max-concurrent``, default 1, so that only Ray's own cost differs), in
this process as a plain sequential loop of ``run_trial``, and through Ray again at the
machine's core count (``--parallel``) for the concurrency gain. Trials are planned as
``cilbench run`` plans them; records stay in memory (nothing is written under results/).

Printed per round and as medians: Ray's start cost, Ray's wall time, the sequential wall time,
Ray's overhead per trial with and without its start, that overhead as a % of the sequential
grid's wall time, and the concurrency gain. Every trial must end "ok" (exit 1 otherwise: no
speed is reported for broken trials) and each trial's accuracy matrices must be identical in
every pass and round (exit 3 otherwise).

Wall times depend on what else the machine runs: the load average before and after each pass
is printed beside the figures. Trials run on the CPU in every pass (a GPU would be hidden from
a Ray trial that asks for none, and the passes would not compare). The in-process loop pays
the driver's first-use costs (lazy imports) in round 1 only; a Ray worker pays them every grid,
which is part of what Ray costs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: harness/ importable

log = logging.getLogger("ray_overhead")

DEFAULT_METHODS = ["finetune", "lwf", "icarl", "lwf+kd"]  # 7 trials of digits-5split per seed
OVERHEAD_GOAL_PCT = 10.0  # issue 20: Ray's overhead under 10% of the grid's wall time
EXIT_OK, EXIT_TRIALS_FAILED, EXIT_DISAGREE = 0, 1, 3
MATRIX_KEYS = ("acc_matrix_pct", "task_aware_acc_matrix_pct")


# ---- arguments ----


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text}")
        return value

    return parse


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated names, e.g. lwf,icarl")
    return names


def _seeds(text: str) -> list[int]:
    try:
        return [int(seed) for seed in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text}") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="digits-5split", help="suite name or YAML path")
    parser.add_argument("--methods", type=_names, default=list(DEFAULT_METHODS),
                        help="comma-separated method labels, as cilbench run --method takes "
                        f"them (default: {','.join(DEFAULT_METHODS)})")  # fmt: skip
    parser.add_argument("--seeds", type=_seeds, default=[1], help="comma-separated (default: 1)")
    parser.add_argument("--rounds", type=_at_least(1), default=2,
                        help="interleaved rounds of Ray and sequential (default: 2)")  # fmt: skip
    parser.add_argument("--max-concurrent", type=_at_least(1), default=1,
                        help="Ray's trials at once in the overhead pass (default: 1)")  # fmt: skip
    parser.add_argument("--parallel", type=_at_least(0), default=os.cpu_count() or 1,
                        help="Ray's trials at once in the concurrency pass (default: this "
                        "machine's cores; 0 skips the pass)")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="one epoch per task (debug trials, for tests)")  # fmt: skip
    parser.add_argument("--limit-per-class", type=_at_least(1), metavar="N",
                        help="at most N images per class and split (debug trials)")  # fmt: skip
    parser.add_argument("--data-root", type=Path, help="where datasets live (as cilbench run)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    return parser.parse_args(argv)


# ---- the figures (pure arithmetic on timings) ----


@dataclass
class Timing:
    """One pass over the grid: its wall time, Ray's start within it (0 in-process), and each
    trial's own wall time as its record gives it."""

    wall_s: float
    start_s: float = 0.0
    trial_wall_s: list[float] = field(default_factory=list)
    tune_s: float | None = None  # Tune's fit alone (start and shutdown excluded); Ray only


def round_figures(ray: Timing, sequential: Timing, parallel: Timing | None) -> dict[str, float]:
    """One round's figures: Ray at ``--max-concurrent`` against the in-process loop."""
    trials = len(sequential.trial_wall_s)
    extra = ray.wall_s - sequential.wall_s
    extra_after_start = extra - ray.start_s
    figures = {
        "ray_start_s": ray.start_s,
        "ray_wall_s": ray.wall_s,
        "ray_tune_s": ray.wall_s if ray.tune_s is None else ray.tune_s,
        "sequential_wall_s": sequential.wall_s,
        "ray_trials_sum_s": sum(ray.trial_wall_s),
        "sequential_trials_sum_s": sum(sequential.trial_wall_s),
        "overhead_per_trial_s": extra / trials,
        "overhead_per_trial_without_start_s": extra_after_start / trials,
        "overhead_pct": 100.0 * extra / sequential.wall_s,
        "overhead_without_start_pct": 100.0 * extra_after_start / sequential.wall_s,
    }
    if parallel is not None:
        figures |= {
            "parallel_ray_start_s": parallel.start_s,
            "parallel_ray_wall_s": parallel.wall_s,
            "concurrency_gain": sequential.wall_s / parallel.wall_s,
        }
    return figures


def medians(rounds: list[dict[str, float]]) -> dict[str, float]:
    keys = [key for key in rounds[0] if all(key in figures for figures in rounds)]
    return {key: statistics.median(figures[key] for figures in rounds) for key in keys}


# ---- checks on the records ----


def failures(records: list[dict[str, Any]], names: list[str]) -> list[str]:
    """Each trial whose record is not "ok", with its error."""
    failed = []
    for name, record in zip(names, records, strict=True):
        if record.get("status") != "ok":
            error = record.get("error") or {}
            failed.append(f"{name}: {record.get('status')}: {error.get('type')}: "
                          f"{error.get('message')}")  # fmt: skip
    return failed


def disagreements(runs: dict[str, list[dict[str, Any]]], names: list[str]) -> list[str]:
    """Every trial's accuracy matrices in every run, against the first run's."""
    (first_run, reference), *others = runs.items()
    found = []
    for run, records in others:
        for name, ref, record in zip(names, reference, records, strict=True):
            for key in MATRIX_KEYS:
                if record["results"][key] != ref["results"][key]:
                    found.append(f"{name}: {key} of {run} differs from {first_run}")
    return found


# ---- running ----


@dataclass
class Pass:
    timing: Timing
    records: list[dict[str, Any]]
    load_before: float
    load_after: float


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("nan")


def plan_specs(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """The grid as ``cilbench run`` plans it (checked, data and weights preflighted), against an
    empty records folder so that no trial is skipped; CPU only (see the module docstring)."""
    from harness.models.execution import ExecutionOptions
    from harness.run.grid import plan_trials, preflight

    with tempfile.TemporaryDirectory(prefix="ray-overhead-") as empty:
        plan = plan_trials(
            suite=args.suite,
            methods=args.methods,
            seeds=args.seeds,
            data_root=args.data_root,
            debug=args.quick,
            results_dir=Path(empty),
            limit_per_class=args.limit_per_class,
            execution=ExecutionOptions(device="cpu"),
        )
    preflight(plan, args.data_root)
    return plan.suite, plan.specs


def run_ray(specs: list[Any], *, max_concurrent: int, names: list[str]) -> Pass:
    from harness.run.scheduler import SchedulerOptions, run_grid

    def on_record(index: int, record: dict[str, Any]) -> None:
        log.info("  Ray: %s %s", names[index], record["status"])

    options = SchedulerOptions(max_concurrent=max_concurrent, num_cpus=os.cpu_count() or 1)
    load_before, start = _load(), time.perf_counter()
    outcome = run_grid(specs, options, on_record=on_record, on_task=lambda index, event: None)
    wall = time.perf_counter() - start
    if outcome.interrupted_by:
        raise KeyboardInterrupt(f"Ray's grid stopped by {outcome.interrupted_by}")
    timing = Timing(wall, outcome.ray_start_s, list(outcome.trial_wall_s), outcome.tune_wall_s)
    return Pass(timing, outcome.records, load_before, _load())


def run_sequential(specs: list[Any], *, names: list[str]) -> Pass:
    from harness.run.trial import run_trial

    records = []
    load_before, start = _load(), time.perf_counter()
    for name, spec in zip(names, specs, strict=True):
        records.append(run_trial(spec))
        log.info("  in-process: %s %s", name, records[-1]["status"])
    wall = time.perf_counter() - start
    trial_wall = [record["timing"]["trial_wall_time_s"] for record in records]
    return Pass(Timing(wall, 0.0, trial_wall), records, load_before, _load())


class TrialsFailed(RuntimeError):
    pass


def run_round(specs: list[Any], args: argparse.Namespace, names: list[str]) -> dict[str, Pass]:
    """Ray at --max-concurrent, the in-process loop, then Ray at --parallel (if asked)."""
    plan = [("ray", args.max_concurrent), ("sequential", None)]
    if args.parallel:
        plan.append(("parallel", args.parallel))
    passes = {}
    for kind, concurrency in plan:
        log.info("%s pass%s", kind, f" ({concurrency} at once)" if concurrency else "")
        done = (run_sequential(specs, names=names) if concurrency is None
                else run_ray(specs, max_concurrent=concurrency, names=names))  # fmt: skip
        failed = failures(done.records, names)
        if failed:
            raise TrialsFailed(f"{len(failed)} trial(s) failed in the {kind} pass:\n  "
                               + "\n  ".join(failed))  # fmt: skip
        passes[kind] = done
    return passes


# ---- the report ----


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    processor = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                processor = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "processor": processor, "system": platform.platform(),
            "python": platform.python_version(), "torch": version("torch"),
            "ray": version("ray"), "load_average_1min_at_start": _load()}  # fmt: skip


ROWS = [  # (label, key, format)
    ("Ray start (s)", "ray_start_s", "{:.1f}"),
    ("Ray wall, {c} at once (s)", "ray_wall_s", "{:.1f}"),
    ("  in Tune's fit (s)", "ray_tune_s", "{:.1f}"),
    ("  in its trials, summed (s)", "ray_trials_sum_s", "{:.1f}"),
    ("sequential wall, in-process (s)", "sequential_wall_s", "{:.1f}"),
    ("  in its trials, summed (s)", "sequential_trials_sum_s", "{:.1f}"),
    ("Ray overhead per trial (s)", "overhead_per_trial_s", "{:+.2f}"),
    ("  without Ray's start (s)", "overhead_per_trial_without_start_s", "{:+.2f}"),
    ("Ray overhead, % of sequential wall", "overhead_pct", "{:+.1f}"),
    ("  without Ray's start (%)", "overhead_without_start_pct", "{:+.1f}"),
    ("Ray start, {p} at once (s)", "parallel_ray_start_s", "{:.1f}"),
    ("Ray wall, {p} at once (s)", "parallel_ray_wall_s", "{:.1f}"),
    ("concurrency gain (sequential / Ray at {p})", "concurrency_gain", "{:.2f}x"),
    ("load average before/after Ray", "load_ray", "{}"),
    ("load average before/after sequential", "load_sequential", "{}"),
]


def format_report(result: dict[str, Any]) -> str:
    m, grid, args = result["machine"], result["grid"], result["options"]
    lines = [
        f"machine: {m['cores']} cores, {m['processor']}; {m['system']}; Python {m['python']}, "
        f"torch {m['torch']}, Ray {m['ray']}; load average (1 min) at start "
        f"{m['load_average_1min_at_start']:.2f}",
        f"grid: {grid['suite']} v{grid['version']}, {grid['trials']} trials "
        f"({', '.join(grid['names'])}), CPU, {args['rounds']} round(s)",
    ]
    rounds, median = result["rounds"], result["median"]
    header = "".join(f"{f'round {i + 1}':>10}" for i in range(len(rounds))) + f"{'median':>10}"
    lines.append(f"{'':44}{header}")
    for label, key, fmt in ROWS:
        if key not in rounds[0]:
            continue
        cells = [fmt.format(figures[key]) for figures in rounds]
        cells.append(fmt.format(median[key]) if key in median else "")
        name = label.format(c=args["max_concurrent"], p=args["parallel"])
        lines.append(f"{name:44}" + "".join(f"{cell:>10}" for cell in cells))
    agree = result["agreement"]
    lines.append(f"agreement: {agree['trials']} trials x {agree['runs']} runs: accuracy matrices "
                 + ("identical" if not agree["differences"] else "DIFFER"))  # fmt: skip
    pct = median["overhead_pct"]
    lines.append(f"goal (issue 20): Ray's overhead under {OVERHEAD_GOAL_PCT:.0f}% of the grid's "
                 f"wall time: {'met' if pct < OVERHEAD_GOAL_PCT else 'NOT met'} "
                 f"(median {pct:+.1f}%)")  # fmt: skip
    return "\n".join(lines)


def _with_loads(figures: dict[str, float], passes: dict[str, Pass]) -> dict[str, Any]:
    loads = {f"load_{kind}": f"{p.load_before:.1f}/{p.load_after:.1f}"
             for kind, p in passes.items() if kind != "parallel"}  # fmt: skip
    return {**figures, **loads}


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Plan, run every round, check the records; the figures and checks as one dict."""
    suite, specs = plan_specs(args)
    names = [f"{s.label} ({s.backbone}) seed={s.seed}" for s in specs]
    log.info("%d trials of %s v%d: %s", len(specs), suite.name, suite.version, "; ".join(names))
    about = machine()
    rounds, runs = [], {}
    for index in range(args.rounds):
        log.info("round %d of %d", index + 1, args.rounds)
        passes = run_round(specs, args, names)
        parallel = passes["parallel"].timing if "parallel" in passes else None
        figures = round_figures(passes["ray"].timing, passes["sequential"].timing, parallel)
        rounds.append(_with_loads(figures, passes))
        runs |= {f"{kind} round {index + 1}": p.records for kind, p in passes.items()}
    numeric = [{k: v for k, v in r.items() if not k.startswith("load_")} for r in rounds]
    return {
        "machine": about,
        "grid": {
            "suite": suite.name,
            "version": suite.version,
            "trials": len(specs),
            "names": names,
        },  # fmt: skip
        "options": {
            key: str(value) if isinstance(value, Path) else value
            for key, value in vars(args).items()
        },  # fmt: skip
        "rounds": rounds,
        "median": medians(numeric),
        "timings": {
            run: [r["timing"]["trial_wall_time_s"] for r in records]
            for run, records in runs.items()
        },  # fmt: skip
        "agreement": {
            "trials": len(specs),
            "runs": len(runs),
            "differences": disagreements(runs, names),
        },  # fmt: skip
    }


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    args = parse_args(argv)
    try:
        result = benchmark(args)
    except TrialsFailed as error:
        log.error("%s\nno figures reported: the benchmark times working trials only", error)
        return EXIT_TRIALS_FAILED
    print(format_report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        log.info("figures written to %s", args.json)
    if result["agreement"]["differences"]:
        log.error("accuracy matrices differ between runs:\n  %s",
                  "\n  ".join(result["agreement"]["differences"]))  # fmt: skip
        return EXIT_DISAGREE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
