"""Stale records: made from a suite file that is not the current one. ``cilbench validate``
names them (still valid: exit 0); the site lists them apart and never ranks them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from harness.cli import EXIT_BAD_INPUT, EXIT_OK, main
from harness.data.current_suites import read_current_suites
from harness.data.suite import SuiteError, default_suites_dir
from harness.leaderboard.build import build_site
from harness.records.layout import record_path
from harness.records.staleness import CurrentSuite, stale_reason
from tests.record_factory import make_record
from tests.test_site import GENERATED_AT, Page

CURRENT_SHA = "c" * 64
OLD_SHA = "0" * 64
PROTOCOL_SHA = "p" * 64
SUITES = {"digits-5split": CurrentSuite("digits-5split", 5, CURRENT_SHA, PROTOCOL_SHA,
                                        Path("suites/digits-5split.yaml"))}  # fmt: skip


def _record(*, sha: str, version: int = 5, suite: str = "digits-5split", **fields) -> dict:
    record = make_record(suite=suite, suite_version=version, **fields)
    record["suite"]["file_sha256"] = sha
    return record


def site_records() -> list[dict]:
    current = [_record(sha=CURRENT_SHA, label="lwf", seed=s, acc=[[90.0, None], [60.0, 80.0]])
               for s in (1, 2)]  # fmt: skip
    # The same trial as lwf seed 1 but from the old file, and newer: it must not displace it.
    old_lwf = _record(sha=OLD_SHA, label="lwf", seed=1, acc=[[99.0, None], [99.0, 99.0]],
                      created_utc="2026-12-01T00:00:00Z")  # fmt: skip
    old_lwf["run_id"] = "stalelwf0001"
    old_icarl = _record(sha=OLD_SHA, label="icarl", seed=1, acc=[[99.0, None], [99.0, 99.0]])
    archived = _record(sha=OLD_SHA, version=4, label="lwf", seed=1)
    gone = _record(sha=OLD_SHA, suite="gone-5split", version=1, label="lwf", seed=1)
    return [*current, old_lwf, old_icarl, archived, gone]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    return build_site(site_records(), out, generated_at=GENERATED_AT, suites=SUITES).parent


def test_stale_records_are_never_ranked_with_current_ones(site: Path) -> None:
    page = Page(site / "suites" / "digits-5split-v5.html")
    [row] = page.rows("leaderboard")
    assert row[0] == "lwf"
    seeds = page.tables["leaderboard"][0].index("seeds")
    assert row[seeds] == "2 provisional"  # seeds 1 and 2 of the current file, not the old
    assert row[page.tables["leaderboard"][0].index("ACC %")] == "70.00 ± 0.00"


def test_the_suite_page_lists_its_stale_records_and_why(site: Path) -> None:
    page = Page(site / "suites" / "digits-5split-v5.html")
    stale = page.rows("stale-table")
    assert [(r[0], r[2], r[3]) for r in stale] == [("icarl", "1", stale[0][3]),
                                                   ("lwf", "1", "stalelwf0001")]  # fmt: skip
    assert all(r[4] == OLD_SHA[:12] for r in stale)
    assert all("the suite changed without a version bump" in r[5] for r in stale)
    assert "cilbench run --suite digits-5split" in page.page_text


def test_the_index_says_how_many_are_stale(site: Path) -> None:
    index = Page(site / "index.html")
    assert "digits-5split-v5.html#stale-records" in " ".join(index.links)
    assert "2 stale records" in index.page_text


def test_an_older_version_stays_an_archived_page_not_stale(site: Path) -> None:
    page = Page(site / "suites" / "digits-5split-v4.html")
    assert [r[0] for r in page.rows("leaderboard")] == ["lwf"]
    assert "stale-table" not in page.tables and "archived" in page.page_text


def test_a_suite_without_a_current_file_gets_a_page_of_stale_records(site: Path) -> None:
    page = Page(site / "suites" / "gone-5split-v1.html")
    assert "leaderboard" not in page.tables and "no-current-trials" in page.ids
    [row] = page.rows("stale-table")
    assert row[0] == "lwf" and "no current suite file is named 'gone-5split'" in row[5]


def test_every_link_of_a_site_with_stale_records_resolves(site: Path) -> None:
    for path in site.rglob("*.html"):
        page = Page(path)
        for link in page.links:
            target = link.partition("#")[0]
            if target and "://" not in target:
                assert (path.parent / target).resolve().is_file(), f"{path}: {link}"


def test_without_the_current_suites_nothing_is_judged_stale(tmp_path: Path) -> None:
    site = build_site(site_records(), tmp_path / "s", generated_at=GENERATED_AT).parent
    page = Page(site / "suites" / "digits-5split-v5.html")
    assert sorted(r[0] for r in page.rows("leaderboard")) == ["icarl", "lwf"]
    assert "stale-table" not in page.tables


def test_stale_reasons() -> None:
    assert stale_reason(_record(sha=CURRENT_SHA), SUITES) is None
    assert "the current file digits-5split.yaml is v5" in stale_reason(
        _record(sha=CURRENT_SHA, version=6), SUITES
    )
    assert "predates protocol hashes" in stale_reason(_record(sha=OLD_SHA), SUITES)
    failed_early = make_record(status="failed")
    failed_early["suite"]["version"] = None  # failed before its suite was read
    assert stale_reason(failed_early, SUITES) is None


def test_a_record_with_a_protocol_hash_goes_by_it() -> None:
    """A method or seed added to the suite file changes its bytes, not its protocol."""
    record = _record(sha=OLD_SHA)
    record["suite"]["protocol_sha256"] = PROTOCOL_SHA
    assert stale_reason(record, SUITES) is None
    record["suite"]["protocol_sha256"] = "q" * 64
    reason = stale_reason(record, SUITES)
    assert reason.startswith("made with another digits-5split v5 protocol (sha256 qqqqqqqqqqqq)")


def test_two_files_of_one_suite_are_a_clear_error(tmp_path: Path) -> None:
    text = (default_suites_dir() / "digits-5split.yaml").read_text()
    (tmp_path / "digits-5split.yaml").write_text(text)
    (tmp_path / "digits-copy.yaml").write_text(text)
    with pytest.raises(SuiteError, match="both define suite 'digits-5split'"):
        read_current_suites(tmp_path)


def _write(results: Path, records: list[dict]) -> None:
    for record in records:
        path = record_path(results, record)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1))


def test_validate_names_the_stale_records_and_the_fix_and_exits_0(tmp_path, capsys) -> None:
    now = read_current_suites()["digits-5split"]
    current = _record(sha=now.file_sha256, version=now.version, label="lwf", seed=1)
    stale = _record(sha=OLD_SHA, version=now.version, label="icarl", seed=1)
    older = _record(sha=OLD_SHA, version=now.version - 1, label="lwf", seed=2)
    _write(tmp_path / "results", [current, stale, older])
    assert main(["validate", "--results", str(tmp_path / "results")]) == EXIT_OK
    out = capsys.readouterr().out
    assert "3 valid record(s)" in out
    lines = [line for line in out.splitlines() if " stale record(s) of " in line]
    assert len(lines) == 2  # one per suite version and reason
    assert any(f"1 stale record(s) of digits-5split v{now.version} (run ids {stale['run_id']})"
               in ln and "without a version bump" in ln for ln in lines)  # fmt: skip
    assert any(f"of digits-5split v{now.version - 1} (run ids {older['run_id']})" in ln
               and f"is v{now.version}" in ln for ln in lines)  # fmt: skip
    assert current["run_id"] not in out
    assert all("Fix: rerun them with `cilbench run --suite digits-5split`" in ln for ln in lines)


def test_cilbench_site_judges_staleness_by_the_current_suite_files(tmp_path) -> None:
    now = read_current_suites()["digits-5split"]
    records = [_record(sha=now.file_sha256, version=now.version, label="lwf", seed=1),
               _record(sha=OLD_SHA, version=now.version, label="icarl", seed=1)]  # fmt: skip
    _write(tmp_path / "results", records)
    args = ["site", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "site")]
    assert main(args) == EXIT_OK
    page = Page(tmp_path / "site" / "suites" / f"digits-5split-v{now.version}.html")
    assert [r[0] for r in page.rows("leaderboard")] == ["lwf"]
    assert [r[0] for r in page.rows("stale-table")] == ["icarl"]


def test_cilbench_site_refuses_a_suite_file_it_cannot_read(tmp_path, monkeypatch, capsys):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "broken.yaml").write_text("name: broken\nversion: one\n")
    monkeypatch.setenv("CILBENCH_SUITES", str(tmp_path / "suites"))
    args = ["site", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "site")]
    assert main(args) == EXIT_BAD_INPUT
    assert "broken.yaml" in capsys.readouterr().err
    assert not (tmp_path / "site").exists()


def test_the_site_after_a_run_from_a_suite_file_elsewhere_ranks_its_records(tmp_path) -> None:
    from harness.api.testing import TINY_SUITE_YAML, tiny_suite
    from harness.cli.site import build_site_after_run

    suite = tiny_suite()  # not in suites/: without the run's file its records would be stale
    (tmp_path / "tiny.yaml").write_text(TINY_SUITE_YAML)
    record = _record(sha=suite.file_sha256, suite=suite.name, version=suite.version, label="lwf")
    _write(tmp_path / "results", [record])
    args = argparse.Namespace(results=tmp_path / "results", site=tmp_path / "site",
                              no_site=False, suite=str(tmp_path / "tiny.yaml"))  # fmt: skip
    assert build_site_after_run(args, EXIT_OK) == EXIT_OK
    page = Page(tmp_path / "site" / "suites" / f"{suite.name}-v{suite.version}.html")
    assert [r[0] for r in page.rows("leaderboard")] == ["lwf"]
    assert "stale-table" not in page.tables
