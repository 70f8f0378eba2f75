"""Published reference points (suites/targets/): the shipped figures, strict parsing, and the
site showing them beside the ranked table and on the Pareto plots, never ranked."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from harness.api.registry import UnknownNameError
from harness.cli import EXIT_BAD_INPUT, EXIT_OK, main
from harness.data.suite import default_suites_dir, list_suites, load_suite
from harness.leaderboard.build import build_site
from harness.leaderboard.figure_style import PlotStyles
from harness.leaderboard.pareto_plot import PAPER_MARKER, pareto_figure
from harness.leaderboard.targets import (
    SuiteTargets,
    TargetsError,
    load_targets,
    load_targets_folder,
    parse_targets,
    reference_frame,
)
from tests.test_aggregate import golden_records
from tests.test_plot_labels import _check
from tests.test_site import GENERATED_AT, Page, _differences, suite_page

NONE_GIVEN = dict.fromkeys(("final_acc_pct", "bwt_pct", "avg_incremental_acc_pct",
                            "gflops_per_image", "params_millions"))  # fmt: skip
# The figures of arXiv 2505.08327 on CIFAR-100 in 10 tasks, as our secondary sources give them;
# every figure not listed must be absent (None), never filled in.
PAPER_FIGURES = {
    "ResNet-34, unpruned": {"final_acc_pct": 47.33, "gflops_per_image": 2.32,
                            "params_millions": 21.28},
    "ResNet-34, pre-pruning 40%": {"final_acc_pct": 44.33, "gflops_per_image": 1.07,
                                   "params_millions": 11.31},
    "LwF": {"final_acc_pct": 11.81, "bwt_pct": -43.60},
    "LwF+KD": {"final_acc_pct": 40.19, "bwt_pct": -0.14},
    "SS-IL+KD": {"final_acc_pct": 49.77},
    "MobileNetV2 student": {"gflops_per_image": 0.013},
}  # fmt: skip
# Reference points for the factory records' suite (digits-5split): one that would top the
# ranking and dominate the front if it were an entry, one without a cost, one on v0 only.
DIGITS_TARGETS = """\
suite: digits-5split
points:
  - label: Published LwF
    method: LwF as its paper ran it
    metrics: {final_acc_pct: 99.0, avg_incremental_acc_pct: 99.5, bwt_pct: -1.0}
    costs: {gflops_per_image: 0.1, params_millions: 0.5}
    backbone: compact_cnn
    source: {citation: A summary of Someone et al. 2024, url: https://example.org/summary}
    provenance: secondary
    suite_version: 1
  - label: Published iCaRL
    method: iCaRL as its paper ran it
    metrics: {final_acc_pct: 50.0}
    source: {citation: "Someone et al. 2024, Table 2"}
    provenance: primary
    suite_version: all
  - label: Old protocol
    method: a figure for the suite's first version
    metrics: {final_acc_pct: 10.0, avg_incremental_acc_pct: 20.0}
    costs: {gflops_per_image: 0.2}
    source: {citation: Someone et al. 2023}
    provenance: primary
    suite_version: 0
"""
PAPER_LABELS = ("Published LwF", "Published iCaRL", "Old protocol")


def digits_targets() -> dict[str, SuiteTargets]:
    """DIGITS_TARGETS, parsed. The factory's archived version is v0, below any real suite's
    (suites start at 1, and a targets file may name no other), so its point is moved there
    after parsing."""
    text = DIGITS_TARGETS.replace("suite_version: 0", "suite_version: 1")
    parsed = parse_targets(text, source="digits.yaml", suite="digits-5split", current_version=1)
    *current, old = parsed.points
    points = (*current, dataclasses.replace(old, suite_version=0))
    return {"digits-5split": SuiteTargets("digits-5split", 1, points)}


# ------------------------------------------------------------------ the shipped figures


def test_the_shipped_targets_hold_the_papers_figures_and_nothing_more() -> None:
    targets = load_targets_folder(default_suites_dir())
    assert set(targets) == {"cifar100-10split"}
    cifar = targets["cifar100-10split"]
    assert cifar.current_version == load_suite("cifar100-10split").version == 1
    assert {p.label: p.values for p in cifar.points} == {
        label: {**NONE_GIVEN, **figures} for label, figures in PAPER_FIGURES.items()
    }
    for point in cifar.points:
        assert point.provenance == "secondary", point.label  # secondary summaries only
        assert "secondary" in point.citation and "2505.08327" in point.citation
        assert point.url == "https://arxiv.org/abs/2505.08327"
        assert point.suite_version == 1
    kd = {p.label: p.backbone for p in cifar.points if p.label.endswith("+KD")}
    assert kd == dict.fromkeys(("LwF+KD", "SS-IL+KD"), "resnet34_cifar → mobilenet_v2")


def test_the_targets_folder_is_not_a_suite(tmp_path: Path) -> None:
    suites = default_suites_dir()
    assert (suites / "targets" / "cifar100-10split.yaml").is_file()
    assert list_suites() == sorted(p.stem for p in suites.glob("*.yaml"))
    assert "targets" not in list_suites()
    with pytest.raises(UnknownNameError, match="unknown suite 'targets'"):
        load_suite("targets")
    # Only the folder's own *.yaml files are suites, wherever the suites live.
    shutil.copytree(suites / "targets", tmp_path / "targets")
    shutil.copy(suites / "cifar100-10split.yaml", tmp_path)
    assert list_suites(tmp_path) == ["cifar100-10split"]
    assert set(load_targets_folder(tmp_path)) == {"cifar100-10split"}


def test_no_targets_folder_means_no_reference_points(tmp_path: Path) -> None:
    assert load_targets_folder(tmp_path) == {}


# ------------------------------------------------------------------- strict parsing

GOOD_POINT = """\
suite: digits-5split
points:
  - label: P
    method: m
    metrics: {final_acc_pct: 47.33, bwt_pct: -43.6}
    costs: {gflops_per_image: 2.32}
    source: {citation: c, url: https://arxiv.org/abs/2505.08327}
    provenance: secondary
    suite_version: 1
"""


@pytest.mark.parametrize(
    ("old", "new", "field", "problem"),
    [
        ("    method: m\n", "    method: m\n    colour: red\n", "points[0] (P).colour",
         "unknown key"),
        ("{final_acc_pct: 47.33,", "{acc: 47.33,", "points[0] (P).metrics.acc", "unknown key"),
        ("suite: digits-5split\n", "suite: digits-5split\nnote: x\n", "yaml: note",
         "unknown key"),
        ("47.33", '"47.33"', "points[0] (P).metrics.final_acc_pct", "is a string"),
        ("47.33", ".nan", "points[0] (P).metrics.final_acc_pct", "NaN is not a published"),
        ("2.32", ".inf", "points[0] (P).costs.gflops_per_image", "not a finite number"),
        ("2.32", "0", "points[0] (P).costs.gflops_per_image", "above zero"),
        ("47.33", "147.33", "points[0] (P).metrics.final_acc_pct", "outside [0, 100]"),
        ("47.33", "true", "points[0] (P).metrics.final_acc_pct", "not a number"),
        ("bwt_pct: -43.6", "final_acc_pct: 40.0", "final_acc_pct", "appears twice"),
        ("provenance: secondary", "provenance: tertiary", "points[0] (P).provenance",
         "'tertiary'"),
        ("suite_version: 1", "suite_version: 2", "points[0] (P).suite_version",
         "from 1 to its current 1"),
        ("suite_version: 1", "suite_version: latest", "points[0] (P).suite_version", "'all'"),
        ("    source: {citation: c, url: https://arxiv.org/abs/2505.08327}\n", "",
         "points[0] (P).source", "missing"),
        ("url: https://arxiv.org/abs/2505.08327", "url: arxiv 2505", "points[0] (P).source.url",
         "not an http(s) address"),
        ("    metrics: {final_acc_pct: 47.33, bwt_pct: -43.6}\n    costs: {gflops_per_image: "
         "2.32}\n", "", "points[0] (P)", "gives no metric and no cost"),
        ("suite: digits-5split", "suite: cifar100-10split", "yaml: suite", "the file is for"),
        ("    method: m\n", "    method: m\n    label: Q\n", "label", "appears twice"),
    ],
)  # fmt: skip
def test_a_malformed_targets_file_is_refused_naming_the_file_and_field(
    tmp_path: Path, old: str, new: str, field: str, problem: str
) -> None:
    path = _targets_file(tmp_path, GOOD_POINT.replace(old, new, 1))
    assert GOOD_POINT.replace(old, new, 1) != GOOD_POINT
    with pytest.raises(TargetsError) as error:
        load_targets(path)
    message = str(error.value)
    assert message.startswith(f"{path}: "), message
    assert field in message and problem in message, message
    assert isinstance(error.value, ValueError)


def test_a_label_used_twice_is_refused(tmp_path: Path) -> None:
    point = GOOD_POINT.split("points:\n")[1]
    path = _targets_file(tmp_path, GOOD_POINT + point)
    with pytest.raises(TargetsError, match=r"digits-5split.yaml: points: label 'P' appears twice"):
        load_targets(path)


def test_a_targets_file_needs_its_suite(tmp_path: Path) -> None:
    path = _targets_file(tmp_path, GOOD_POINT)
    (tmp_path / "digits-5split.yaml").unlink()
    with pytest.raises(TargetsError, match="no suite 'digits-5split'") as error:
        load_targets_folder(tmp_path)
    assert str(error.value).startswith(f"{path}: ")


def test_a_well_formed_file_parses_with_what_it_leaves_out_as_none(tmp_path: Path) -> None:
    targets = load_targets(_targets_file(tmp_path, GOOD_POINT))
    (point,) = targets.points
    assert point.values == {**NONE_GIVEN, "final_acc_pct": 47.33, "bwt_pct": -43.6,
                            "gflops_per_image": 2.32}  # fmt: skip
    assert point.backbone is None and point.applies_to(1) and not point.applies_to(2)


def _targets_file(suites: Path, text: str) -> Path:
    (suites / "targets").mkdir(exist_ok=True)
    (suites / "digits-5split.yaml").write_text("name: digits-5split\nversion: 1\n")
    path = suites / "targets" / "digits-5split.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------- the site


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The factory records' site with the digits targets and the shipped ones, and without."""
    targets = {**digits_targets(), **load_targets_folder(default_suites_dir())}
    with_targets = tmp_path_factory.mktemp("with")
    build_site(golden_records(), with_targets, generated_at=GENERATED_AT, targets=targets)
    without = tmp_path_factory.mktemp("without")
    build_site(golden_records(), without, generated_at=GENERATED_AT)
    return with_targets, without


def test_the_suite_page_lists_its_reference_points_marked_by_source(sites) -> None:
    page = suite_page(sites[0])
    assert page.tables["reference-table"][0] == [
        "reference point", "method", "backbone", "ACC %", "BWT pp", "avg. inc. acc %",
        "GFLOPs G/img", "params M", "source", "applies to",
    ]  # fmt: skip
    assert page.rows("reference-table") == [
        ["Published LwF", "LwF as its paper ran it", "compact_cnn", "99.00", "-1.00", "99.50",
         "0.1", "0.5", "A summary of Someone et al. 2024 example.org/summary secondary source",
         "v1"],
        ["Published iCaRL", "iCaRL as its paper ran it", "not stated", "50.00", "—", "—", "—",
         "—", "Someone et al. 2024, Table 2 primary source", "every version"],
    ]  # fmt: skip
    assert "Published reference points" in page.page_text
    # The version-0 point is on the v0 page only, beside the point for every version.
    old = [row[0] for row in suite_page(sites[0], version=0).rows("reference-table")]
    assert old == ["Published iCaRL", "Old protocol"]


def test_reference_points_are_never_ranked(sites) -> None:
    with_targets, without = sites
    for version in (0, 1):
        ranked = suite_page(with_targets, version).tables["leaderboard"]
        assert ranked == suite_page(without, version).tables["leaderboard"]  # fronts too
        assert not any(label in " ".join(row) for row in ranked for label in PAPER_LABELS)
    for path in (with_targets / "downloads").glob("*.*"):
        if path.suffix in (".csv", ".json"):
            text = path.read_text(encoding="utf-8")
            assert not any(label in text for label in PAPER_LABELS), path.name
    index = Page(with_targets / "index.html")
    assert "Best by avg. inc. acc: lwf 82.75" in index.page_text  # not the published 99.5


def test_the_pareto_plots_show_the_points_with_a_cost_and_the_metric(sites) -> None:
    plots = sites[0] / "plots"
    aia = (plots / "digits-5split-v1-pareto-aia.svg").read_text(encoding="utf-8")
    acc = (plots / "digits-5split-v1-pareto-acc.svg").read_text(encoding="utf-8")
    for svg in (aia, acc):
        assert "paper: Published LwF" in svg and "paper (published, not ranked)" in svg
        assert "paper: Published iCaRL" not in svg  # no cost: table only
        assert "paper: Old protocol" not in svg  # another version's point
    old = (plots / "digits-5split-v0-pareto-aia.svg").read_text(encoding="utf-8")
    assert "paper: Old protocol" in old and "Published LwF" not in old
    # Plots of a suite without targets are the same bytes as before.
    other = sites[1] / "plots" / "digits-5split-v1-plain-vs-enhanced.svg"
    assert (plots / other.name).read_bytes() == other.read_bytes()
    caption = " ".join(suite_page(sites[0]).page_text.split("Hollow black stars")[1:])
    assert "never ranked and never on the front" in caption


def test_a_reference_point_is_drawn_apart_and_never_joins_the_front() -> None:
    metric = "final_acc_pct"
    rows = pd.DataFrame([_entry("lwf", 1.0, 70.0), _entry("lwf+kd", 0.25, 55.0)])
    references = reference_frame(digits_targets()["digits-5split"].points)
    fig = pareto_figure(rows, metric=metric, title="t", styles=PlotStyles.of(rows),
                        references=references)  # fmt: skip
    ax = fig.axes[0]
    stars = [line for line in ax.lines if line.get_marker() == PAPER_MARKER]
    assert len(stars) == 1 and stars[0].get_markerfacecolor() == "none"
    # Drawn: the two points with this metric and a cost; Published iCaRL has no cost.
    assert sorted(zip(stars[0].get_xdata(), stars[0].get_ydata(), strict=True)) == [
        (0.1, 99.0), (0.2, 10.0)
    ]  # fmt: skip
    (front,) = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert sorted(front.get_xdata()) == [0.25, 1.0]  # the entries' front, as without them
    shown = pd.concat([rows, references.dropna(subset=["gflops_per_image"])], ignore_index=True)
    labels = _check(fig, shown)  # none overlaps another, each beside its own point
    assert {"paper: Published LwF", "paper: Old protocol", "lwf", "lwf+kd"} == set(labels)
    low, high = ax.get_xlim()
    assert low < 0.1 and high > 1.0  # the axis makes room for the published points


def _entry(label: str, gflops: float, acc: float) -> dict:
    return {"plot_label": label, "strategy": "lwf", "framework": "none" if gflops == 1 else "kd",
            "gflops_per_image": gflops, "final_acc_pct": acc, "final_acc_pct_std": 1.0,
            "reference": None, "gflops_in_doubt": False, "pareto_final_acc_pct": True}  # fmt: skip


def test_a_suite_with_targets_and_no_records_gets_a_page_of_them(sites) -> None:
    site = sites[0]
    page = Page(site / "suites" / "cifar100-10split-v1.html")
    assert "No trials have run on this suite yet" in page.page_text
    assert "leaderboard" not in page.tables and page.images == []
    assert "reference-points" in page.ids
    rows = {row[0]: row for row in page.rows("reference-table")}
    assert set(rows) == set(PAPER_FIGURES)
    assert rows["ResNet-34, unpruned"][3:8] == ["47.33", "—", "—", "2.32", "21.28"]
    assert rows["ResNet-34, pre-pruning 40%"][3:8] == ["44.33", "—", "—", "1.07", "11.31"]
    assert rows["LwF"][3:8] == ["11.81", "-43.60", "—", "—", "—"]
    assert rows["LwF+KD"][3:8] == ["40.19", "-0.14", "—", "—", "—"]
    assert rows["SS-IL+KD"][3:8] == ["49.77", "—", "—", "—", "—"]
    assert rows["MobileNetV2 student"][3:8] == ["—", "—", "—", "0.013", "—"]
    assert all(row[8].endswith("secondary source") for row in rows.values())
    assert all("arxiv.org/abs/2505.08327" in row[8] for row in rows.values())
    index = Page(site / "index.html")
    assert "suites/cifar100-10split-v1.html" in index.links
    assert "suites/cifar100-10split-v1.html#reference-points" in index.links
    assert "6 published reference points" in index.page_text
    manifest = json.loads((site / ".cilbench-site.json").read_text())
    assert "suites/cifar100-10split-v1.html" in manifest["files"]
    _links_resolve(site)


def test_with_no_records_at_all_the_index_still_says_so(tmp_path: Path) -> None:
    targets = load_targets_folder(default_suites_dir())
    index = Page(build_site([], tmp_path / "site", generated_at=GENERATED_AT, targets=targets))
    assert "No results yet" in index.page_text and "no-results" in index.ids
    assert "downloads" not in index.ids
    assert (tmp_path / "site" / "suites" / "cifar100-10split-v1.html").is_file()
    _links_resolve(tmp_path / "site")


def test_the_build_with_targets_is_deterministic(tmp_path: Path) -> None:
    targets = {**digits_targets(), **load_targets_folder(default_suites_dir())}
    build_site(golden_records(), tmp_path / "a", generated_at=GENERATED_AT, targets=targets)
    build_site(golden_records(), tmp_path / "b", generated_at=datetime(2027, 1, 1, tzinfo=UTC),
               targets=targets)  # fmt: skip
    build_site(golden_records(), tmp_path / "c", generated_at=GENERATED_AT, targets=targets,
               workers=2)  # fmt: skip
    assert _differences(tmp_path / "a", tmp_path / "b") == ["index.html"]
    assert _differences(tmp_path / "a", tmp_path / "c") == []


def test_a_point_for_a_version_without_a_page_is_named(tmp_path: Path, caplog) -> None:
    later = dataclasses.replace(digits_targets()["digits-5split"].points[0], suite_version=7)
    targets = {"digits-5split": SuiteTargets("digits-5split", 7, (later,))}
    with caplog.at_level(logging.WARNING):
        build_site(golden_records(), tmp_path, generated_at=GENERATED_AT, targets=targets)
    assert "'Published LwF' of digits-5split applies to v7, which has no page" in caplog.text


def _links_resolve(site: Path) -> None:
    """The index's and the reference-only page's links (``test_site`` checks the others)."""
    for path in (site / "index.html", site / "suites" / "cifar100-10split-v1.html"):
        page = Page(path)
        for reference in page.links + page.images:
            target = reference.partition("#")[0]
            assert "://" not in reference and (not target or (path.parent / target).is_file())
        assert "https://" not in path.read_text(encoding="utf-8")  # nothing leaves the site


# ------------------------------------------------------------------------ the command line


def test_the_command_line_shows_the_shipped_targets(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("CILBENCH_SUITES", raising=False)
    code = main(["site", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "s")])
    assert code == EXIT_OK
    assert (tmp_path / "s" / "suites" / "cifar100-10split-v1.html").is_file()


def test_the_command_line_refuses_a_malformed_targets_file(tmp_path: Path, monkeypatch,
                                                          capsys) -> None:  # fmt: skip
    path = _targets_file(tmp_path, GOOD_POINT.replace("47.33", ".nan"))
    monkeypatch.setenv("CILBENCH_SUITES", str(tmp_path))
    code = main(["site", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "s")])
    assert code == EXIT_BAD_INPUT
    assert f"{path}: points[0] (P).metrics.final_acc_pct: NaN" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
