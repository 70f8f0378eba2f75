"""CONTRIBUTING.md's plugin path, as a newcomer follows it, for both templates: copy, install,
``cilbench check-adapter``, run ``digits-5split`` with one seed, ``cilbench validate``,
``cilbench site``, and find the new entries on the suite's page.

Slow (two check-adapter runs, then a Ray run of two full-budget digits trials: about 70 s on
two busy cores); ``make test-all`` runs it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.plugin_install import ROOT, cilbench, install_plugins

pytestmark = pytest.mark.slow
TEMPLATES = ROOT / "templates"


def test_both_templates_go_from_a_copy_to_the_leaderboard(tmp_path: Path) -> None:
    env = install_plugins([TEMPLATES / "strategy", TEMPLATES / "framework"], tmp_path / "lib")
    for name in ("my_strategy", "my_framework"):
        started = time.perf_counter()
        checked = cilbench("check-adapter", name, env=env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        print(f"check-adapter {name}: {time.perf_counter() - started:.1f} s")
    results, site = tmp_path / "results", tmp_path / "site"
    methods = ("my_strategy", "lwf+my_framework")
    started = time.perf_counter()
    ran = cilbench("run", "--suite", "digits-5split", "--method", methods[0], "--method",
                   methods[1], "--seeds", "1", "--results", str(results), "--no-site",
                   env=env)  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    print(f"cilbench run: {time.perf_counter() - started:.1f} s")
    validated = cilbench("validate", "--results", str(results), env=env)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    built = cilbench("site", "--results", str(results), "--out", str(site), env=env)
    assert built.returncode == 0, built.stdout + built.stderr
    pages = (site / "suites").glob("digits-5split-v*.html")
    (page,) = [p for p in pages if re.fullmatch(r"digits-5split-v\d+\.html", p.name)]
    html = page.read_text()
    for method in methods:
        entry = re.search(rf'href="[./]*(entries/[^"]*{re.escape(method)}[^"]*\.html)"', html)
        assert entry, f"no entry of {method} on {page.name}"
        assert method in (site / entry.group(1)).read_text()


def test_a_strategy_added_in_tree_and_run_leaves_the_projects_tests_green(tmp_path) -> None:
    """README's in-tree path on a fresh clone: the template's module copied into
    methods/strategies/, run with one seed into results/ (uncommitted, as a researcher's own
    records are), then the project's tests that a new method and new records could break:
    the committed-results checks, the contract tests of the new strategy, every config's NaN
    refusal and the method cards."""
    import os
    import shutil
    import subprocess
    import sys

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=300)
    shutil.copy(TEMPLATES / "strategy" / "my_strategy.py", clone / "methods" / "strategies")
    env = {**os.environ, "PYTHONPATH": str(clone)}

    def in_clone(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *argv], cwd=clone, env=env, capture_output=True,
                              text=True, timeout=900)  # fmt: skip

    ran = in_clone("-m", "harness.cli", "run", "--suite", "digits-5split", "--method",
                   "my_strategy", "--seeds", "1", "--no-site")  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert list((clone / "results" / "digits-5split" / "my_strategy").glob("*/seed1-*.json"))
    tests = in_clone("-m", "pytest", "-q", "-p", "no:cacheprovider", "-k",
                     "my_strategy or committed or nan or card",
                     "tests/test_committed_results.py", "tests/test_adapter_contract.py",
                     "tests/test_input_validation.py", "tests/test_method_cards.py")  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "my_strategy" in in_clone("-m", "harness.cli", "list", "strategies").stdout
