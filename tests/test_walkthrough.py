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
