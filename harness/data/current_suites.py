"""The current suite files, as the staleness of records is judged against them.

Each ``*.yaml`` of the suites folder (``$CILBENCH_SUITES`` or ``suites/``), parsed and checked
like any suite, reduced to what a record is compared with
(``harness.records.staleness.CurrentSuite``: name, version, file and protocol sha256). The
command line reads them and hands them to ``cilbench validate`` and the site's build, which
never read suite files themselves.
"""

from __future__ import annotations

from pathlib import Path

from harness.data.suite import SuiteError, default_suites_dir, load_suite
from harness.records.staleness import CurrentSuite


def read_current_suites(folder: Path | None = None) -> dict[str, CurrentSuite]:
    """Suite name -> its current file, for every ``*.yaml`` in ``folder``.

    Raises ``SuiteError`` naming a file that is not a valid suite, or that names the same
    suite as another file (which of the two is current would be a guess)."""
    suites: dict[str, CurrentSuite] = {}
    for path in sorted((folder or default_suites_dir()).glob("*.yaml")):
        suite = current_suite(path)
        if suite.name in suites:
            raise SuiteError(
                f"{path} and {suites[suite.name].path} both define suite {suite.name!r}: give "
                "each suite file its own name, or move the older one out of the suites folder"
            )
        suites[suite.name] = suite
    return suites


def current_suite(path: Path) -> CurrentSuite:
    """What records of the suite file at ``path`` are compared with."""
    suite = load_suite(str(path))
    return CurrentSuite(
        name=suite.name,
        version=suite.version,
        file_sha256=suite.file_sha256,
        protocol_sha256=suite.protocol_sha256,
        path=path,
    )
