"""The static site: build into tmp_path, parse every page with the stdlib and check what it says."""

from __future__ import annotations

import ast
import filecmp
import json
import shutil
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

import pandas as pd
import pytest
from matplotlib.figure import Figure

from harness.leaderboard import build as build_module
from harness.leaderboard import files as files_module
from harness.leaderboard.build import build_site
from harness.leaderboard.columns import COLUMNS, format_mean_std
from harness.leaderboard.figure_style import set_flops_axis
from harness.leaderboard.files import SiteFolderError
from harness.leaderboard.reproduction import reproduce_command
from harness.records.layout import record_path
from harness.records.store import load_records_leniently
from tests.record_factory import make_record, with_hardware
from tests.test_aggregate import golden_records

GENERATED_AT = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SUITE_HEADERS = ["entry", "strategy", "framework", "backbone", "ACC %", "avg. inc. acc %",
                 "BWT pp", "forgetting pp", "GFLOPs G/img", "params M", "ΔACC pp", "ΔAIA pp",
                 "fewer GFLOPs ×", "fewer params ×", "size MB",
                 "training M samples", "kept memory MB",
                 "latency ms CPU b1 (1 thr)", "seeds", "front ACC", "front AIA",
                 "front ACC·memory"]  # fmt: skip
FACTORY_HARDWARE = "cpu (model not recorded)"  # make_record's provenance names no CPU model
EVIL_LABEL = "<script>window.__pwned=1</script><b>bold</b>"
EVIL_VALUE = '<img src=x onerror="window.__pwned=2">'


class Page(HTMLParser):
    """One page: its tables (by id), links, images, scripts, element ids and text."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.tables: dict[str, list[list[str]]] = {}
        self.row_attrs: dict[str, list[dict]] = {}
        self.cell_attrs: dict[str, list[list[dict]]] = {}
        self.links: list[str] = []
        self.images: list[str] = []
        self.scripts: list[dict] = []
        self.ids: set[str] = set()
        self.text: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.add(attributes["id"] or "")
        if tag == "table":
            self._table = attributes.get("id") or f"table{len(self.tables)}"
            self.tables[self._table], self.row_attrs[self._table] = [], []
            self.cell_attrs[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
            self.row_attrs[self._table].append(attributes)
            self.cell_attrs[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []
            self.cell_attrs[self._table][-1].append(attributes)
        elif tag == "a" and "href" in attributes:
            self.links.append(attributes["href"] or "")
        elif tag == "img":
            self.images.append(attributes["src"] or "")
        elif tag == "script":
            self.scripts.append(attributes)
        elif tag == "link":
            self.links.append(attributes.get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def page_text(self) -> str:
        return " ".join(" ".join(self.text).split())

    def rows(self, table: str) -> list[list[str]]:
        return self.tables[table][1:]

    def link_to(self, text_in_href: str) -> Path:
        matches = [h for h in self.links if text_in_href in h]
        assert matches, f"no link containing {text_in_href!r} on {self.path}"
        return (self.path.parent / matches[0].split("#")[0]).resolve()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    return build_site(golden_records(), out, generated_at=GENERATED_AT).parent


def suite_page(site: Path, version: int = 1) -> Page:
    return Page(site / "suites" / f"digits-5split-v{version}.html")


def entry_page(site: Path, label: str) -> Page:
    suite = suite_page(site)
    row = next(i for i, row in enumerate(suite.rows("leaderboard")) if row[0].startswith(label))
    hrefs = [h for h in suite.links if h.startswith("../entries/")]
    return Page((suite.path.parent / hrefs[row]).resolve())


def test_index_shows_suites_best_entries_thumbnails_and_archives(site: Path) -> None:
    index = Page(site / "index.html")
    text = index.page_text
    assert "Built 2026-11-29 04:00 UTC from 12 records (8 trials shown, 4 left out" in text
    assert "digits-5split v1" in text and "2 tasks of 2 classes (4 in all)" in text
    # The suite ranks by average incremental accuracy; joint is a reference, so lwf is best.
    assert "Best by avg. inc. acc: lwf 82.75 ± 3.89 % at 1 GFLOPs provisional" in text
    # The thumbnail is drawn inline at the size it shows (a legible front), not a raster.
    assert index.images == []
    assert index.path.read_text().count('class="task-front"') == 1
    # Version 0 is archived, listed apart, and links to its own page.
    assert index.tables["archived-table"][1] == ["digits-5split", "v0", "v1", "1", "1"]
    assert "suites/digits-5split-v0.html" in index.links
    # other-suite only failed: it has a card that says so, and no plot.
    assert "other-suite v1" in text and "No usable trials for this suite version yet." in text


def test_suite_table_has_the_golden_rows_best_first(site: Path) -> None:
    page = suite_page(site)
    assert page.tables["leaderboard"][0] == SUITE_HEADERS
    # One kind of hardware for every trial: said once above the table, not in a column.
    assert f"every trial: {FACTORY_HARDWARE}" in page.page_text
    assert page.rows("leaderboard") == [
        ["joint upper bound", "joint", "none", "compact_cnn", "96.50", "97.25", "-2.00", "2.00",
         "1", "1", "—", "—", "—", "—", "4", "0.000128", "4.001", "2", "1 provisional", "", "",
         ""],
        ["lwf", "lwf", "none", "compact_cnn", "73.50 ± 4.95", "82.75 ± 3.89", "-27.00 ± 4.24",
         "27.00 ± 4.24", "1", "1", "—", "—", "—", "—", "4", "0.000128", "4.001", "3 ± 1.4",
         "2 provisional", "front", "front", "front"],
        # Against plain lwf by hand: 63.00 - 73.50, 77.50 - 82.75, 1 / 0.36 GFLOPs and params.
        ["lwf+prepruning@0.4", "lwf", "prepruning", "compact_cnn", "63.00 ± 3.00",
         "77.50 ± 2.50", "-40.00 ± 0.00", "40.00 ± 0.00", "0.36", "0.36", "-10.50", "-5.25",
         "2.78", "2.78", "1.44", "0.000128", "1.441", "2", "3", "front", "front", "front"],
        # 55.00 - 73.50, 75.50 - 82.75, 1 / 0.25 GFLOPs and the same params (the factory's 1 M).
        # lwf keeps as much memory as lwf+kd (4.001 MB) for more accuracy: kd is off that front.
        ["lwf+kd", "lwf", "kd", "compact_cnn", "55.00", "75.50", "-56.00", "56.00", "0.25", "1",
         "-18.50", "-7.25", "4", "1", "4", "0.000128", "4.001", "2", "1 provisional", "front",
         "front", ""],
    ]  # fmt: skip
    assert [r.get("class") for r in page.row_attrs["leaderboard"][1:]] == [
        "reference",
        None,
        None,
        None,
    ]


def test_table_needs_no_javascript(site: Path) -> None:
    html = suite_page(site).path.read_text(encoding="utf-8")
    # The filter box appears only when the script runs; the table is plain, pre-sorted HTML.
    assert '<p class="controls" hidden>' in html
    assert html.index('<table id="leaderboard"') < html.index("</table>")


def test_numeric_cells_carry_the_exact_mean_for_sorting(site: Path) -> None:
    page = suite_page(site)
    lwf_cells = page.cell_attrs["leaderboard"][2]
    assert float(lwf_cells[4]["data-value"]) == pytest.approx(73.5)  # ACC
    assert float(lwf_cells[17]["data-value"]) == pytest.approx(3.0)  # latency
    assert lwf_cells[10]["data-value"] == ""  # plain: no comparison, sorted last
    kd_cells = page.cell_attrs["leaderboard"][4]
    assert float(kd_cells[10]["data-value"]) == pytest.approx(55.0 - 73.5)  # ΔACC, exact
    headers = page.cell_attrs["leaderboard"][0]
    assert [h.get("data-better") for h in headers[4:15]] == [
        *(c.better for c in COLUMNS),
        "higher",
        "higher",
        "higher",
        "higher",
        "lower",
    ]


def test_archived_version_is_labelled_and_links_to_the_current_one(site: Path) -> None:
    page = suite_page(site, version=0)
    assert "archived" in page.page_text and "this suite has a newer version, v1" in page.page_text
    assert page.rows("leaderboard")[0][:5] == ["lwf", "lwf", "none", "compact_cnn", "40.00"]
    assert page.link_to("digits-5split-v1.html").is_file()


def test_legend_defines_every_metric_unit_and_measurement(site: Path) -> None:
    page = suite_page(site)
    text = page.page_text
    for column in COLUMNS:
        assert f"metric-{column.key}" in page.ids
        assert column.definition[:40] in text.lower() or column.definition[:40].capitalize() in text
        assert f"({column.unit})" in text
    for phrase in ("2 × multiply-accumulates", "batch 1", "after the last task", "Backward",
                   "Diagnostic only", "provisional", "Pareto front", "Measured:"):  # fmt: skip
        assert phrase in text


def test_plots_svg_on_the_page_png_to_share(site: Path) -> None:
    page = suite_page(site)
    assert page.images == [
        "../plots/digits-5split-v1-pareto-aia.svg",
        "../plots/digits-5split-v1-pareto-acc.svg",
        "../plots/digits-5split-v1-bwt.svg",  # forgetting against GFLOPs, without a front
        "../plots/digits-5split-v1-pareto-params.svg",  # the primary metric vs parameters
        "../plots/digits-5split-v1-pareto-memory.svg",  # and vs the memory kept
        "../plots/digits-5split-v1-pareto-latency-cpu-b1-1-thr.svg",  # vs latency, per device
        "../plots/digits-5split-v1-plain-vs-enhanced.svg",
    ]
    assert "../plots/digits-5split-v1-pareto-aia.png" in page.links
    for src in page.images:
        svg = (page.path.parent / src).read_text(encoding="utf-8")
        assert svg.startswith("<?xml") and "<dc:date>" not in svg and "<script" not in svg
    png = site / "plots" / "digits-5split-v1-pareto-aia.png"
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_entry_page_has_config_provenance_seeds_curves_and_heatmap(site: Path) -> None:
    page = entry_page(site, "lwf+prepruning@0.4")
    text = page.page_text
    assert "lwf+prepruning@0.4 on digits-5split v1" in text
    assert ["framework", "ratio", "0.4"] in page.tables["config-table"]
    seeds = page.rows("per-seed")
    assert [row[0] for row in seeds] == ["1", "2", "3"]
    assert [row[2] for row in seeds] == ["60.00", "63.00", "66.00"]  # ACC per seed
    assert "Accuracy after each task" in text and "Means: 92.00, 63.00 %" in text
    heat = page.tables["heatmap"]
    assert heat[1] == ["task 1", "92.0 ± 2.0", ""] and heat[2] == [
        "task 2",
        "52.0 ± 2.0",
        "74.0 ± 4.0",
    ]
    provenance = dict((row[0], row[1:]) for row in page.tables["provenance-table"][1:])
    assert provenance["git_commit"] == ["0" * 40] and provenance["package torch"] == ["2.14.1"]
    assert "Pareto front (avg. inc. acc)" in text


def test_framework_report_is_shown_when_present(site: Path) -> None:
    page = entry_page(site, "lwf+kd")
    assert "Framework report" in page.page_text
    assert ["teacher_gflops_per_image", "1"] in page.tables["report-table"]


def test_each_seed_has_an_exact_reproduce_command(site: Path) -> None:
    page = entry_page(site, "lwf+prepruning@0.4")
    command = (
        "cilbench run --suite digits-5split \\\n  --method lwf+prepruning \\\n"
        "  --backbone compact_cnn \\\n  --seeds 2 \\\n  --set framework.ratio=0.4"
    )
    html = page.path.read_text(encoding="utf-8")
    assert f"<pre><code>git checkout {'0' * 40}\n{command}</code></pre>" in html
    assert html.count("<pre><code>") == 3


def test_reproduce_command_quotes_and_passes_every_config_value() -> None:
    config = {"strategy": {"lambda_kd": 2.0, "note": "a b"}, "training": {"milestones": [1, 2]}}
    record = make_record(label="lwf", config=config, seed=7)
    assert reproduce_command(record).split(" \\\n  ") == [
        "cilbench run --suite digits-5split",
        "--method lwf+none",
        "--backbone compact_cnn",
        "--seeds 7",
        "--set strategy.lambda_kd=2.0",
        "--set 'strategy.note=a b'",
        "--set 'training.milestones=[1, 2]'",
    ]


def test_a_plugin_entrys_reproduce_steps_install_its_package_first() -> None:
    from harness.leaderboard.reproduction import plugin_installs

    record = make_record(label="replay")
    record["method"]["origins"] = {
        "strategy": {"origin": "plugin", "package": "cilbench-replay", "version": "0.2.0",
                     "module": "replay.strategy", "entry_point": "cilbench.strategies:replay"},
        "framework": {"origin": "built-in", "module": "methods.frameworks.none"},
    }  # fmt: skip
    assert plugin_installs(record) == ["pip install cilbench-replay==0.2.0"]
    assert plugin_installs(make_record(label="lwf")) == []  # built-in adapters: nothing


def test_raw_records_are_published_next_to_the_pages(site: Path) -> None:
    page = entry_page(site, "lwf+kd")
    record = next(r for r in golden_records() if r["method"]["label"] == "lwf+kd")
    published = page.link_to("records/")
    # Written as write_record lays a record out, so a harness file comes back byte for byte.
    assert published.read_text(encoding="utf-8") == json.dumps(record, indent=1) + "\n"


def test_every_link_and_image_resolves_and_nothing_leaves_the_site(site: Path) -> None:
    pages = {path.resolve(): Page(path) for path in site.rglob("*.html")}
    # index, three suite versions, the compare pages of the two with entries, five entries
    assert len(pages) == 1 + 3 + 2 + 5
    for page in pages.values():
        for reference in page.links + page.images + [s.get("src") or "" for s in page.scripts]:
            assert "://" not in reference and not reference.startswith("/"), reference
            target, _, fragment = reference.partition("#")
            resolved = (page.path.parent / target).resolve() if target else page.path.resolve()
            assert resolved.is_file(), f"{page.path}: broken link {reference}"
            if fragment and resolved.suffix == ".html":
                assert fragment in pages[resolved].ids, f"{page.path}: no #{fragment}"
    for path in site.rglob("*"):
        if path.suffix in (".html", ".css", ".js"):
            text = path.read_text(encoding="utf-8").lower()
            text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")
            assert "http://" not in text and "https://" not in text and "@import" not in text


def test_scripts_and_html_in_records_are_escaped(tmp_path: Path) -> None:
    config = {"strategy": {"note": EVIL_VALUE}, "framework": {}, "training": {}}
    records = [make_record(label=EVIL_LABEL, config=config, seed=s) for s in (1, 2)]
    site = build_site(records, tmp_path, generated_at=GENERATED_AT).parent
    for path in site.rglob("*"):
        if path.suffix in (".html", ".svg"):
            raw = path.read_text(encoding="utf-8")
            assert "<script>window" not in raw and "<img src=x" not in raw and "<b>bold" not in raw
            assert raw.count("<script") == (1 if path.suffix == ".html" else 0)
    suite = Page(site / "suites" / "digits-5split-v1.html")
    assert suite.rows("leaderboard")[0][0] == EVIL_LABEL
    entry = Page(suite.link_to("../entries/"))
    assert ["strategy", "note", EVIL_VALUE] in entry.tables["config-table"]


def test_build_is_deterministic_apart_from_the_stamp(tmp_path: Path) -> None:
    build_site(golden_records(), tmp_path / "a", generated_at=GENERATED_AT)
    build_site(golden_records(), tmp_path / "b", generated_at=datetime(2027, 1, 1, tzinfo=UTC))
    build_site(golden_records(), tmp_path / "c", generated_at=GENERATED_AT, workers=2)
    assert _differences(tmp_path / "a", tmp_path / "b") == ["index.html"]
    assert _differences(tmp_path / "a", tmp_path / "c") == []


def _differences(first: Path, second: Path) -> list[str]:
    names = sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(second)) for p in second.rglob("*") if p.is_file())
    _, mismatch, errors = filecmp.cmpfiles(first, second, names, shallow=False)
    return sorted(mismatch + errors)


def test_rebuild_drops_stale_files_and_never_writes_into_results(tmp_path: Path) -> None:
    results, out = tmp_path / "results", tmp_path / "site"
    for record in golden_records():
        path = record_path(results, record)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1) + "\n")
    loaded = load_records_leniently(results)
    build_site(loaded.records, out, sources=loaded.sources)
    mine = out / "notes.txt"
    mine.write_text("not the builder's")
    before = {p: p.read_bytes() for p in results.rglob("*.json")}
    # Rebuild from in-memory records that differ: published files are replaced, not written
    # through (they may be hard links to results/), and pages of vanished entries go away.
    changed = [r for r in golden_records() if r["method"]["label"] != "lwf+kd"]
    for record in changed:
        record["created_utc"] = "2030-01-01T00:00:00Z"
    build_site(changed, out)
    assert {p: p.read_bytes() for p in results.rglob("*.json")} == before
    assert not any("lwf+kd" in p.name for p in (out / "entries").rglob("*.html"))
    assert len(list((out / "records").glob("*.json"))) == 7
    assert mine.read_text() == "not the builder's"


def test_empty_results_give_a_helpful_page(tmp_path: Path) -> None:
    index = Page(build_site([], tmp_path / "new" / "site", generated_at=GENERATED_AT))
    assert "No results yet" in index.page_text and "make suite" in index.page_text
    assert index.images == [] and "no-results" in index.ids


def test_skipped_files_are_listed_on_the_index(tmp_path: Path) -> None:
    warnings = ["results/x/broken.json: skipped: not readable JSON"]
    index = Page(build_site([make_record()], tmp_path, skipped=warnings))
    assert "1 record file left out" in index.page_text
    assert "results/x/broken.json: skipped: not readable JSON" in index.page_text


def test_same_label_with_two_configs_is_told_apart(tmp_path: Path) -> None:
    records = [
        make_record(label="lwf", seed=1, config={"strategy": {"lambda": 1}}),
        make_record(label="lwf", seed=1, config={"strategy": {"lambda": 2}}),
    ]
    page = Page(build_site(records, tmp_path).parent / "suites" / "digits-5split-v1.html")
    methods = [row[0] for row in page.rows("leaderboard")]
    assert len(set(methods)) == 2 and all(m.startswith("lwf [") for m in methods)


def test_no_comparison_plot_without_an_enhanced_entry(tmp_path: Path) -> None:
    records = [make_record(label="lwf", seed=1), make_record(label="finetune", seed=1)]
    page = Page(build_site(records, tmp_path).parent / "suites" / "digits-5split-v1.html")
    assert "no plain-vs-enhanced comparison" in page.page_text
    assert not any("plain-vs-enhanced" in src for src in page.images)


@pytest.mark.parametrize(("gflops", "scale"), [((0.01, 0.5), "log"), ((0.3, 0.5), "log"),
                                               ((0.0, 5.0), "linear")])  # fmt: skip
def test_flops_axis_is_logarithmic_when_it_can_be(gflops: tuple[float, ...], scale: str) -> None:
    ax = Figure().add_subplot()
    set_flops_axis(ax, pd.Series(gflops))
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


LEADERBOARD = Path(__file__).resolve().parents[1] / "harness" / "leaderboard"
# The torch- and Ray-free fence of the leaderboard is checked in tests/test_fences.py.


@pytest.mark.parametrize("path", sorted(LEADERBOARD.glob("*.py")), ids=lambda p: p.name)
def test_leaderboard_modules_share_only_public_names_and_no_type_only_imports(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("harness"):
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, f"{path.name}:{node.lineno} imports private {private}"
        if isinstance(node, ast.If):
            test = ast.unparse(node.test)
            assert "TYPE_CHECKING" not in test, f"{path.name}:{node.lineno}: a type-only import"


def test_a_model_served_by_another_backbone_is_named(tmp_path: Path) -> None:
    """A KD entry runs on the teacher's backbone but serves (and is costed on) the student."""
    records = [make_record(label="lwf+kd", framework="kd", seed=s) for s in (1, 2, 3)]
    for record in records:
        record["method"]["inference_backbone"] = "compact_cnn_small"
    site = build_site(records, tmp_path, generated_at=GENERATED_AT).parent
    suite = Page(site / "suites" / "digits-5split-v1.html")
    row = suite.rows("leaderboard")[0]
    assert "compact_cnn → compact_cnn_small" in row
    entry = suite.link_to("../entries/").read_text(encoding="utf-8")
    assert "served by: compact_cnn_small" in entry


# ------------------------------------------------------- the output folder is the user's too


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _leftovers(folder: Path) -> list[str]:
    """Build or swap folders the builder left beside the site."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


def test_rebuild_keeps_every_file_the_builder_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_site(golden_records(), out, generated_at=GENERATED_AT)
    mine = {
        "my-photo.png": b"\x89PNG mine",
        "notes.html": b"<p>my notes</p>",
        "plots/my-figure.svg": b"<svg>mine</svg>",
        "plots/digits-5split-v1-pareto-acc-draft.png": b"mine too",
        "records/my-record.json": b'{"mine": true}',
        "suites/my-suite.html": b"mine",
        "entries/my-entry.html": b"mine",
        "deep/er/data.json": b"[]",
    }
    for name, content in mine.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(content)
    (out / "empty-folder").mkdir()
    changed = [r for r in golden_records() if r["method"]["label"] != "lwf+kd"]
    build_site(changed, out, generated_at=GENERATED_AT)
    assert {name: (out / name).read_bytes() for name in mine} == mine
    assert (out / "empty-folder").is_dir()
    manifest = json.loads((out / ".cilbench-site.json").read_text())
    assert not set(mine) & set(manifest["files"]) and "index.html" in manifest["files"]
    assert not any("lwf+kd" in p.name for p in (out / "entries").rglob("*.html"))
    assert _leftovers(out) == []


@pytest.mark.parametrize(
    "files",
    [
        {"index.html": "<p>my own home page</p>"},
        {"photo.png": "x", "README.md": "mine"},
        {"plots/figure.svg": "<svg/>"},
    ],  # fmt: skip
)
def test_a_folder_with_foreign_files_and_no_manifest_is_refused(
    tmp_path: Path, files: dict[str, str]
) -> None:
    out = tmp_path / "mine"
    for name, content in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(content)
    with pytest.raises(SiteFolderError, match="refusing to build the site into .*mine") as error:
        build_site(golden_records(), out)
    assert isinstance(error.value, ValueError)  # the CLI maps ValueError to exit 2
    assert _snapshot(out) == {name: content.encode() for name, content in files.items()}
    assert _leftovers(out) == []


def test_a_folder_with_only_the_shipped_readme_is_built_into(tmp_path: Path) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "README.md").write_text("# site/\n")
    build_site(golden_records(), out)
    assert (out / "README.md").read_text() == "# site/\n" and (out / "index.html").is_file()


def _as_an_older_build_left_it(out: Path) -> None:
    """No manifest, and none of the files builds without one never wrote: downloads, compare
    pages, accuracy against parameters, memory and latency, BWT."""
    (out / ".cilbench-site.json").unlink()
    shutil.rmtree(out / "downloads")
    for newer in [*(out / "plots").glob("*-pareto-params.svg"),
                  *(out / "plots").glob("*-pareto-memory.svg"),
                  *(out / "plots").glob("*-pareto-latency-*.svg"),
                  *(out / "plots").glob("*-bwt.svg"),
                  *(out / "suites").glob("*-compare.html")]:  # fmt: skip
        newer.unlink()


def test_a_site_of_an_older_build_without_a_manifest_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_site(golden_records(), out)
    _as_an_older_build_left_it(out)
    (out / "README.md").write_text("shipped")
    build_site(golden_records()[:2], out)
    assert (out / "README.md").read_text() == "shipped"
    assert len(list((out / "records").glob("*.json"))) == 2
    _as_an_older_build_left_it(out)
    (out / "plots" / "my-own.png").write_text("mine")  # not a file an older build writes
    with pytest.raises(SiteFolderError, match="plots/my-own.png"):
        build_site(golden_records(), out)


def test_a_manifest_never_lets_the_build_replace_a_foreign_file(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_site(golden_records()[:2], out)
    suite = out / "suites" / "digits-5split-v1.html"
    manifest = json.loads((out / ".cilbench-site.json").read_text())
    manifest["files"].remove("suites/digits-5split-v1.html")  # the page is not the builder's
    (out / ".cilbench-site.json").write_text(json.dumps(manifest))
    before = _snapshot(out)
    with pytest.raises(SiteFolderError, match="suites/digits-5split-v1.html"):
        build_site(golden_records(), out)
    assert _snapshot(out) == before and suite.is_file()


@pytest.mark.parametrize("writer", ["publish_record", "write_page", "draw_plot", "swap"])
def test_a_failure_part_way_leaves_the_previous_site_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    out = tmp_path / "site"
    build_site(golden_records(), out, generated_at=GENERATED_AT)
    (out / "mine.txt").write_text("mine")
    before = _snapshot(out)
    calls = []

    def disk_full(*args: object, **kwargs: object) -> None:
        calls.append(args)
        if len(calls) == 3 or writer == "swap":
            for arg in args:  # leave what a full disk leaves: a truncated file
                if isinstance(arg, Path) and arg.suffix in (".html", ".json"):
                    arg.parent.mkdir(parents=True, exist_ok=True)
                    arg.write_bytes(b"")
            raise OSError(28, "No space left on device")
        return original(*args, **kwargs)

    if writer == "swap":
        original = files_module.exchange_folders
        monkeypatch.setattr(files_module, "exchange_folders", disk_full)
        monkeypatch.setattr(files_module.os, "rename", disk_full)
    else:
        original = getattr(build_module, writer)
        monkeypatch.setattr(build_module, writer, disk_full)
    changed = [dict(r, created_utc="2030-01-01T00:00:00Z") for r in golden_records()[:4]]
    with pytest.raises(OSError, match="No space left"):
        build_site(changed, out, generated_at=datetime(2030, 1, 1, tzinfo=UTC))
    monkeypatch.undo()
    assert _snapshot(out) == before
    assert _leftovers(out) == []


def test_without_an_atomic_exchange_the_swap_falls_back_to_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(*_: object) -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(files_module, "exchange_folders", unsupported)
    out = tmp_path / "site"
    build_site(golden_records(), out)
    (out / "mine.txt").write_text("mine")
    build_site(golden_records()[:2], out)
    assert (out / "mine.txt").read_text() == "mine"
    assert len(list((out / "records").glob("*.json"))) == 2 and _leftovers(out) == []


# ------------------------------------------------------------ impossible numbers, odd names


def test_impossible_numbers_are_left_out_named_and_never_ranked(tmp_path: Path) -> None:
    good = [make_record(label="lwf", seed=s) for s in (1, 2)]
    nan_seed = make_record(label="lwf", seed=3)
    nan_seed["results"]["metrics"]["final_acc_pct"] = float("nan")
    huge = [make_record(label="cheat", seed=s, gflops=0.01) for s in (1, 2)]
    for record in huge:
        record["results"]["metrics"]["avg_incremental_acc_pct"] = 1_000_000.0
    endless = make_record(label="endless", seed=1, gflops=float("inf"))
    broken_matrix = make_record(label="matrix", seed=1, acc=[[90.0, None], [60.0, 80.0]])
    broken_matrix["results"]["acc_matrix_pct"][1][0] = float("-inf")
    records = [*good, nan_seed, *huge, endless, broken_matrix]
    index = build_site(records, tmp_path / "site", generated_at=GENERATED_AT)
    page = suite_page(index.parent)
    rows = page.rows("leaderboard")
    # Only lwf's two finite seeds are shown, and the row says two.
    assert [(row[0], row[14]) for row in rows] == [("lwf", "2 provisional")]
    assert rows[0][5] == "86.50 ± 0.00" and rows[0][15:17] == ["front", "front"]
    text = Page(index).page_text
    assert "from 7 records (2 trials shown, 5 left out" in text
    for problem in ("final_acc_pct is nan", "avg_incremental_acc_pct is 1000000.0",
                    "gflops_per_image is inf", "acc_matrix_pct [1][0] is -inf"):  # fmt: skip
        assert problem in text
    for path in index.parent.rglob("*.html"):
        words = path.read_text(encoding="utf-8").split()
        assert not {"inf", "nan", "NaN", "Infinity"} & set(words), path


def test_cells_count_the_seeds_a_value_was_averaged_over(tmp_path: Path) -> None:
    records = [make_record(label="lwf", seed=s, latency_ms=2.0) for s in (1, 2, 3)]
    del records[2]["inference_cost"]["latency_ms_b1"]  # an older record without a latency
    del records[2]["inference_cost"]["latencies"]
    page = suite_page(build_site(records, tmp_path / "site").parent)
    assert page.rows("leaderboard")[0][13] == "2 (2 of 3 seeds)"


ODD_NAMES = ["$x^2$", "$\\foo$ and $x^$", "back\\slash", "under_score", "100% done",
             "<script>alert(1)</script>"]  # fmt: skip


@pytest.mark.parametrize("name", ODD_NAMES)
def test_names_on_plots_are_plain_text(tmp_path: Path, name: str) -> None:
    records = [
        *(make_record(suite=f"s {name}", label=f"lwf {name}", strategy="lwf", seed=s)
          for s in (1, 2)),
        make_record(suite=f"s {name}", label=f"lwf+kd {name}", strategy="lwf", framework="kd",
                    seed=1, gflops=0.1),
        make_record(suite=f"s {name}", label=f"{name}", strategy=name, framework=name, seed=1,
                    gflops=0.2),
    ]  # fmt: skip
    site = build_site(records, tmp_path / "site", generated_at=GENERATED_AT).parent
    svgs = sorted((site / "plots").glob("*.svg"))
    assert [p.name.split("-v1-")[1] for p in svgs] == [
        "bwt.svg", "pareto-acc.svg", "pareto-aia.svg", "pareto-latency-cpu-b1-1-thr.svg",
        "pareto-memory.svg", "pareto-params.svg", "plain-vs-enhanced.svg",
    ]  # fmt: skip
    escaped = xml_escape(name)
    for svg in svgs:
        text = svg.read_text(encoding="utf-8")
        # The title and labels carry the name verbatim, as one run of text, never as math.
        assert f"s {escaped} v1: " in text, svg.name
        assert "<script" not in text
    pareto = (site / "plots").glob("*-pareto-acc.svg").__next__().read_text(encoding="utf-8")
    assert f"lwf+kd {escaped}" in pareto and f">{escaped}<" in pareto  # label and legend


# ------------------------------------------------------------------------------ hardware

XEON = "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"


def test_each_entry_shows_its_hardware_and_mixed_hardware_is_marked(tmp_path: Path) -> None:
    same = [
        with_hardware(make_record(label="lwf", seed=s), processor=XEON, torch_threads=4,
                      device_name="NVIDIA H200", precision="bf16")
        for s in (1, 2)
    ]  # fmt: skip
    mixed = [
        with_hardware(make_record(label="icarl", seed=1, gflops=0.2), processor=XEON,
                      torch_threads=1),
        with_hardware(make_record(label="icarl", seed=2, gflops=0.2), processor="AMD EPYC 9654",
                      torch_threads=8),
    ]  # fmt: skip
    site = build_site(same + mixed, tmp_path / "site").parent
    suite = suite_page(site)
    hardware = {row[0]: row[-1] for row in suite.rows("leaderboard")}
    h200 = f"NVIDIA H200 · {XEON} · 4 torch threads · bf16"
    assert hardware["lwf"] == h200
    assert hardware["icarl"] == (
        f"mixed: 2 kinds AMD EPYC 9654 · 8 torch threads · fp32; {XEON} · 1 torch thread · fp32"
    )
    lwf, icarl = entry_page(site, "lwf"), entry_page(site, "icarl")
    assert f"Hardware (every seed): {h200}" in lwf.page_text
    assert [row[-1] for row in lwf.rows("per-seed")] == [h200, h200]
    assert "Mixed hardware: these seeds ran on 2 different setups" in icarl.page_text
    assert [row[-1] for row in icarl.rows("per-seed")] == [
        f"{XEON} · 1 torch thread · fp32",
        "AMD EPYC 9654 · 8 torch threads · fp32",
    ]
    provenance = {row[0]: row[1:] for row in icarl.tables["provenance-table"][1:]}
    assert provenance["processor"] == [XEON, "AMD EPYC 9654"]
    assert provenance["torch_threads"] == ["1", "8"]
    assert provenance["execution precision"] == ["fp32", "fp32"]


def test_an_entry_page_names_the_baseline_its_comparison_is_against(site: Path) -> None:
    pruned = entry_page(site, "lwf+prepruning@0.4")
    assert "compared with its plain baseline: lwf" in pruned.page_text
    summary = {row[0]: row[1] for row in pruned.rows("summary-table")}
    assert summary["ΔACC"] == "-10.50" and summary["fewer GFLOPs"] == "2.78"
    assert not any("ΔACC" in header for header in pruned.tables["per-seed"][0])  # per seed: none
    assert "compared with its plain baseline" not in entry_page(site, "lwf").page_text


def test_one_label_on_two_backbones_gets_two_names(tmp_path: Path) -> None:
    records = [make_record(label="icarl", backbone=b, seed=s)
               for b in ("compact_cnn", "compact_cnn_small") for s in (1, 2, 3)]  # fmt: skip
    page = suite_page(build_site(records, tmp_path, generated_at=GENERATED_AT).parent)
    names = sorted(row[0] for row in page.rows("leaderboard"))
    assert names == ["icarl · compact_cnn", "icarl · compact_cnn_small"]


def test_a_suite_of_tiny_costs_reads_them_in_mflops(tmp_path: Path) -> None:
    records = [make_record(label="lwf", seed=s, gflops=0.002986) for s in (1, 2, 3)]
    page = suite_page(build_site(records, tmp_path, generated_at=GENERATED_AT).parent)
    headers = page.tables["leaderboard"][0]
    assert "MFLOPs M/img" in headers and "GFLOPs G/img" not in headers
    row = page.rows("leaderboard")[0]
    assert row[headers.index("MFLOPs M/img")] == "2.986"
    cell = page.cell_attrs["leaderboard"][1][headers.index("MFLOPs M/img")]
    assert float(cell["data-value"]) == pytest.approx(0.002986)  # sorts by the stored GFLOPs


def test_the_index_card_answers_the_question_in_words(site: Path) -> None:
    """By hand from the golden records: lwf+kd serves with 1/4 of plain lwf's GFLOPs (0.25
    against 1) for 75.50 % avg. inc. acc against 82.75; nothing is 10x cheaper."""
    text = Page(site / "index.html").page_text
    assert (
        "Best at ≤ 1/4 of its plain baseline's GFLOPs: lwf+kd , 75.50 % at 0.25 GFLOPs "
        "(4× fewer), -7.25 points against lwf"
    ) in text
    assert "≤ 1/10" not in text


def test_one_entry_answering_both_folds_is_named_once(tmp_path: Path) -> None:
    records = [make_record(label="lwf", seed=s) for s in (1, 2, 3)] + [
        make_record(label="lwf+kd", framework="kd", strategy="lwf", seed=s, gflops=0.05)
        for s in (1, 2, 3)
    ]
    text = Page(build_site(records, tmp_path, generated_at=GENERATED_AT)).page_text
    assert text.count("Best at ≤") == 1 and "≤ 1/4 of its plain baseline's GFLOPs: lwf+kd" in text


def test_the_plain_vs_enhanced_bars_carry_their_values(site: Path) -> None:
    """By hand from the golden records (ranked by avg. inc. acc): lwf 82.75, lwf+prepruning
    77.50 (-5.25 against plain, 1 / 0.36 GFLOPs), lwf+kd 75.50 (-7.25, 4x fewer GFLOPs)."""
    svg = (site / "plots" / "digits-5split-v1-plain-vs-enhanced.svg").read_text(encoding="utf-8")
    for text in ("82.8", "77.5 (-5.2)", "75.5 (-7.2)", "2.8×", "4×"):
        assert f">{text}<" in svg, text
