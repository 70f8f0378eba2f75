"""The static site: build into tmp_path, parse the HTML with the stdlib and check what it says."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

from harness.site import _set_flops_axis, build_site, format_mean_std
from tests.record_factory import make_record
from tests.test_aggregate import golden_records

GENERATED_AT = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HEADERS = [
    "method",
    "backbone",
    "ACC (final, %)",
    "avg. incremental acc (%)",
    "BWT (%)",
    "forgetting (%)",
    "task-aware final acc (%) †",
    "GFLOPs/image",
    "params (M)",
    "latency ms (batch 1)",
    "seeds",
    "Pareto front",
]


class PageParser(HTMLParser):
    """Collects sections (by data-suite), their table headers/rows, images and left-out lines."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[dict] = []
        self.images: list[str] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._row_attrs: dict = {}
        self._left_out = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "section":
            self.sections.append({"attrs": attributes, "headers": [], "rows": [], "left_out": ""})
        elif tag == "tr":
            self._row, self._row_attrs = [], attributes
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attributes["src"])
        elif tag == "p" and attributes.get("class") == "left-out":
            self._left_out = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            section = self.sections[-1]
            if section["headers"]:
                section["rows"].append({"cells": self._row, "attrs": self._row_attrs})
            else:
                section["headers"] = self._row
            self._row = None
        elif tag == "p":
            self._left_out = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._left_out:
            self.sections[-1]["left_out"] += data.strip()

    def section(self, suite: str, version: int = 1) -> dict:
        matches = [
            s
            for s in self.sections
            if s["attrs"].get("data-suite") == suite
            and s["attrs"].get("data-suite-version") == str(version)
        ]
        assert len(matches) == 1, f"expected one section for {suite} v{version}"
        return matches[0]

    @property
    def page_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def parse(index: Path) -> PageParser:
    parser = PageParser()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def golden_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    return build_site(golden_records(), out, generated_at=GENERATED_AT)


def test_table_rows_sorted_by_primary_metric_with_exact_values(golden_site: Path) -> None:
    section = parse(golden_site).section("digits-5split")
    assert section["headers"] == HEADERS
    assert [row["cells"] for row in section["rows"]] == [
        [
            "joint upper bound",
            "compact_cnn",
            "96.50",
            "97.25",
            "-2.00",
            "2.00",
            "96.50",
            "1",
            "1",
            "2",
            "1",
            "",
        ],
        [
            "lwf",
            "compact_cnn",
            "73.50 ± 4.95",
            "82.75 ± 3.89",
            "-27.00 ± 4.24",
            "27.00 ± 4.24",
            "73.50 ± 4.95",
            "1",
            "1",
            "3 ± 1.41",
            "2",
            "yes",
        ],
        [
            "lwf+kd",
            "compact_cnn",
            "55.00",
            "75.50",
            "-56.00",
            "56.00",
            "55.00",
            "0.25",
            "1",
            "2",
            "1",
            "yes",
        ],
    ]


def test_reference_rows_are_marked(golden_site: Path) -> None:
    rows = parse(golden_site).section("digits-5split")["rows"]
    assert [row["attrs"].get("class") for row in rows] == ["reference", None, None]


def test_left_out_records_are_reported_per_suite(golden_site: Path) -> None:
    page = parse(golden_site)
    assert page.section("digits-5split")["left_out"] == (
        "Left out 3 records: 1 failed, 2 debug (made with test-only shortcuts)."
    )
    other = page.section("other-suite")
    assert other["rows"] == []
    assert other["left_out"] == (
        "Left out 1 record: 1 failed, 0 debug (made with test-only shortcuts)."
    )
    assert "Generated 2026-11-29 04:00 UTC from 8 records (4 trials shown, 4 left out)" in (
        page.page_text
    )


def test_header_explains_the_numbers(golden_site: Path) -> None:
    text = parse(golden_site).page_text
    for phrase in (
        "2 × MACs",
        "batch 1",
        "all classes seen, after the last task",
        "Backward transfer",
        "Diagnostic only",
    ):
        assert phrase in text


def test_plots_exist_and_are_referenced_relatively(golden_site: Path) -> None:
    images = parse(golden_site).images
    # other-suite has no usable trial, so it gets no plot.
    assert images == ["plots/digits-5split-v1.png"]
    for src in images:
        assert not Path(src).is_absolute()
        assert (golden_site.parent / src).read_bytes().startswith(PNG_MAGIC)


def test_page_is_static(golden_site: Path) -> None:
    html = golden_site.read_text(encoding="utf-8").lower()
    for forbidden in ("<script", "<link", "http://", "https://", "@import"):
        assert forbidden not in html


def test_empty_results_give_a_helpful_page(tmp_path: Path) -> None:
    page = parse(build_site([], tmp_path, generated_at=GENERATED_AT))
    assert "No results yet" in page.page_text
    assert "make suite" in page.page_text
    assert page.images == []
    assert [s["attrs"].get("id") for s in page.sections] == ["no-results"]


def test_build_is_deterministic_and_drops_stale_plots(tmp_path: Path) -> None:
    first = build_site(golden_records(), tmp_path / "a", generated_at=GENERATED_AT)
    stale = tmp_path / "b" / "plots" / "removed-suite-v1.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(PNG_MAGIC)
    second = build_site(golden_records(), tmp_path / "b", generated_at=GENERATED_AT)
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in (tmp_path / "b" / "plots").iterdir()) == ["digits-5split-v1.png"]
    plot = "plots/digits-5split-v1.png"
    assert (tmp_path / "a" / plot).read_bytes() == (tmp_path / "b" / plot).read_bytes()


def test_labels_are_escaped(tmp_path: Path) -> None:
    records = [make_record(label="<b>evil</b>", seed=1)]
    index = build_site(records, tmp_path, generated_at=GENERATED_AT)
    assert "<b>evil</b>" not in index.read_text(encoding="utf-8")
    assert parse(index).section("digits-5split")["rows"][0]["cells"][0] == "<b>evil</b>"


def test_same_label_with_two_configs_is_told_apart(tmp_path: Path) -> None:
    records = [
        make_record(label="lwf", seed=1, config={"strategy": {"lambda": 1}}),
        make_record(label="lwf", seed=1, config={"strategy": {"lambda": 2}}),
    ]
    rows = parse(build_site(records, tmp_path)).section("digits-5split")["rows"]
    methods = [row["cells"][0] for row in rows]
    assert len(set(methods)) == 2 and all(m.startswith("lwf [") for m in methods)


@pytest.mark.parametrize(
    ("gflops", "scale"), [((0.01, 0.5), "log"), ((0.1, 0.5), "linear"), ((0.0, 5.0), "linear")]
)
def test_flops_axis_goes_log_beyond_tenfold_span(gflops: tuple[float, ...], scale: str) -> None:
    ax = Figure().add_subplot()
    _set_flops_axis(ax, pd.Series(gflops))
    assert ax.get_xscale() == scale


@pytest.mark.parametrize(
    ("mean", "std", "always_std", "expected"),
    [
        (71.5, 1.2, True, "71.50 ± 1.20"),
        (71.5, float("nan"), True, "71.50"),
        (71.5, 0.0, True, "71.50 ± 0.00"),
        (0.5, 0.0, False, "0.50"),
        (float("nan"), float("nan"), True, "—"),
        (-0.001, 0.0, True, "0.00 ± 0.00"),
    ],
)
def test_format_mean_std(mean: float, std: float, always_std: bool, expected: str) -> None:
    assert format_mean_std(mean, std, spec=".2f", always_std=always_std) == expected


def test_site_and_aggregate_import_neither_torch_nor_ray() -> None:
    code = (
        "import harness.site, harness.aggregate, sys; "
        "assert 'torch' not in sys.modules and 'ray' not in sys.modules, "
        "sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ray'))"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
