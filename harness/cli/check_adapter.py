"""``cilbench check-adapter NAME``: the adapter contract on the shipped tiny suite.

Runs the strategy's or framework's trials through ``run_trial`` (the harness's own path, in
this process, on the CPU with one thread, so the same seed gives the same matrix), applies
``harness.api.conformance``'s checks and prints one line per check: pass, or FAIL with what
is wrong and the fix. Exit 0 only when every check holds, 1 when any fails, 2 for a name
no registry knows (the valid ones are listed).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.cli.common import EXIT_OK, EXIT_TRIALS_FAILED, log

if TYPE_CHECKING:
    from harness.api.conformance import ConformanceReport


def add_command(commands: argparse._SubParsersAction) -> None:
    checker = commands.add_parser(
        "check-adapter",
        help="check a strategy or framework against the adapter contract (tiny suite, CPU)",
        description="Run a registered strategy or framework (built in, or installed through "
        "its package's entry point) on the tiny synthetic suite and check the adapter "
        "contract: no test data while learning, no task id at inference, scores over all "
        "seen classes, same seed same matrix, memory and training budgets, a measurable "
        "inference cost (lower, for a compressing framework) and a config that refuses NaN.",
    )
    checker.add_argument("name", metavar="NAME", help="the registered strategy or framework")
    checker.set_defaults(handler=command_check_adapter)


def command_check_adapter(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    report = check_adapter(args.name)
    width = max(len(result.check) for result in report.results)
    for result in report.results:
        print(f"  {result.status:<11} {result.check:<{width}}  {result.explained()}")
    seconds = time.perf_counter() - started
    failed = report.failures()
    if report.holds:
        print(f"{args.name}: the contract holds ({len(report.results)} checks, {seconds:.0f} s)")
        return EXIT_OK
    print(f"{args.name}: the contract does not hold ({len(failed)} of {len(report.results)} "
          f"checks failed or could not run, {seconds:.0f} s): apply the fixes above, then run "
          f"`cilbench check-adapter {args.name}` again")  # fmt: skip
    return EXIT_TRIALS_FAILED


def check_adapter(name: str) -> ConformanceReport:
    """The ``ConformanceReport`` of ``name``, from fresh trials (what a plugin's own test
    calls: ``assert check_adapter("my_strategy").holds``)."""
    from harness.api.adapters import ENTRY_POINT_GROUPS, FRAMEWORKS, STRATEGIES, load_adapters
    from harness.api.conformance import adapter_kinds
    from harness.api.conformance import check_adapter as run_checks
    from harness.records.provenance import adapter_origin

    load_adapters()
    for kind in adapter_kinds(name):
        adapter = (STRATEGIES if kind == "strategy" else FRAMEWORKS).get(name)
        origin = adapter_origin(adapter, entry_point_groups=ENTRY_POINT_GROUPS)
        log.info("%s: %s %s (%s)", name, kind, adapter.__qualname__, _origin_text(origin))
    return run_checks(name, FreshTrials())


def _origin_text(origin: Mapping[str, Any]) -> str:
    if origin.get("package"):
        return f"plugin {origin['package']} {origin.get('version') or ''}".rstrip()
    return f"{origin['origin']}, module {origin.get('module')}"


class FreshTrials:
    """The ``TrialSource`` of the command: each trial of the tiny suite runs once through
    ``run_trial`` (``fresh``: once more), logging a line as it starts."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str, int], dict[str, Any]] = {}

    def __call__(
        self, strategy: str, framework: str, *, seed: int = 1, fresh: bool = False
    ) -> dict[str, Any]:
        from harness.api.testing import tiny_suite
        from harness.models.execution import ExecutionOptions
        from harness.run.trial import TrialSpec, run_trial

        key = (strategy, framework, seed)
        if key in self._records and not fresh:
            return self._records[key]
        suite = tiny_suite()
        log.info("  running %s+%s, seed %d%s", strategy, framework, seed, " (again)" * fresh)
        record = run_trial(TrialSpec(
            suite_text=suite.text, strategy=strategy, framework=framework,
            backbone=suite.backbones[0], seed=seed, label=f"{strategy}+{framework}",
            debug=True, execution=ExecutionOptions(device="cpu"),
        ))  # fmt: skip
        if not fresh:
            self._records[key] = record
        return record
