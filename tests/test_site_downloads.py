"""The site's downloads: each suite version's table as CSV and JSON, every record as one zip.

Built from the factory's golden records (as ``test_site``), then read back with the standard
library: the files must say what the suite pages' tables say, and the archive must hold what
``records/`` holds, byte for byte.
"""

from __future__ import annotations

import csv
import json
import statistics
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.leaderboard.build import build_site
from harness.leaderboard.downloads import ARCHIVE, ARCHIVE_TIME, IDENTITY, size_text
from harness.leaderboard.entries import REFERENCE_NAMES
from harness.leaderboard.files import MANIFEST
from tests.record_factory import latency, make_record
from tests.test_aggregate import golden_records
from tests.test_site import GENERATED_AT, Page, suite_page

SUITE = "digits-5split"
CURRENT_FILES = [
    "downloads/digits-5split-v1.csv",
    "downloads/digits-5split-v1.json",
    "downloads/other-suite-v1.csv",
    "downloads/other-suite-v1.json",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    return build_site(golden_records(), out, generated_at=GENERATED_AT).parent


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        return list(reader.fieldnames or []), list(reader)


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def read_json(path: Path) -> list[dict[str, Any]]:
    """Strictly: NaN and Infinity, which Python's json reads by default, fail."""
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse)


def table(site: Path, version: int = 1) -> Path:
    return site / "downloads" / f"{SUITE}-v{version}.csv"


def mean_keys(fields: list[str]) -> list[str]:
    """The table columns' keys: after who the entry is, before the Pareto flags."""
    first_flag = next(i for i, f in enumerate(fields) if f.startswith("pareto_"))
    return [f for f in fields[len(IDENTITY) : first_flag] if not f.endswith("_std")]


def number(text: str) -> float | None:
    return float(text) if text else None


@pytest.mark.parametrize("version", [1, 0])
def test_csv_has_the_suite_tables_rows_in_order_with_its_numbers(site: Path, version: int) -> None:
    page = suite_page(site, version)
    fields, rows = read_csv(table(site, version))
    shown = page.rows("leaderboard")
    assert len(rows) == len(shown) > 0
    for row, cells, attrs in zip(rows, shown, page.cell_attrs["leaderboard"][1:], strict=True):
        tag = REFERENCE_NAMES.get(row["reference"], "")
        assert cells[0] == f"{row['entry']} {tag}".strip()
        assert cells[1:4] == [row["strategy"], row["framework"], row["backbone"]]
        # Every number the table sorts by, column for column, then the seeds.
        values = [number(a["data-value"]) for a in attrs if "data-value" in a]
        assert [number(row[key]) for key in mean_keys(fields)] == values[:-1]
        assert int(row["seeds"]) == values[-1]
    headers = page.tables["leaderboard"][0]
    fronts = {"front ACC": "pareto_final_acc_pct", "front AIA": "pareto_avg_incremental_acc_pct",
              "front ACC·memory": "pareto_memory_final_acc_pct"}  # fmt: skip
    for header, key in fronts.items():
        if header in headers:
            on_page = [cells[headers.index(header)] == "front" for cells in shown]
            assert [row[key] == "true" for row in rows] == on_page


def test_csv_numbers_are_the_records_means_and_stds(site: Path) -> None:
    _, rows = read_csv(table(site))
    lwf = next(row for row in rows if row["entry"] == "lwf")
    lwf_v1 = [r for r in golden_records()
              if r["method"]["label"] == "lwf" and r["suite"]["version"] == 1]  # fmt: skip
    records = [r for r in lwf_v1 if r["status"] == "ok" and not r["debug"]]  # as the page
    assert len(records) == 2 < len(lwf_v1)
    finals = [r["results"]["metrics"]["final_acc_pct"] for r in records]
    assert finals == [70.0, 77.0]  # by hand from the matrices (see golden_records)
    assert float(lwf["final_acc_pct"]) == statistics.mean(finals) == 73.5
    assert float(lwf["final_acc_pct_std"]) == pytest.approx(statistics.stdev(finals))  # 4.95
    assert float(lwf["latency-cpu-b1-1-thr"]) == 3.0  # 2 ms and 4 ms
    assert float(lwf["latency-cpu-b1-1-thr_std"]) == pytest.approx(2**0.5)
    # Stored units, not the page's: bytes where the page shows MB.
    assert float(lwf["param_bytes"]) == records[0]["inference_cost"]["param_bytes"] == 4e6
    assert lwf["run_ids"].split() == [r["run_id"] for r in records]
    assert (lwf["seeds"], lwf["provisional"], lwf["reference"]) == ("2", "true", "")
    joint = next(row for row in rows if row["entry"] == "joint")
    # A single seed has no std: NaN in the summary, an empty cell here.
    assert joint["reference"] == "upper_bound" and joint["final_acc_pct_std"] == ""
    assert float(joint["final_acc_pct"]) == 96.5


def _as_csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(value)
    return str(value)


@pytest.mark.parametrize("version", [1, 0])
def test_json_parses_strictly_and_says_what_the_csv_says(site: Path, version: int) -> None:
    path = table(site, version)
    fields, rows = read_csv(path)
    objects = read_json(path.with_suffix(".json"))
    assert len(objects) == len(rows)
    for obj, row in zip(objects, rows, strict=True):
        assert list(obj) == ["suite", "suite_version", *fields]
        assert (obj["suite"], obj["suite_version"]) == (SUITE, version)
        for key in fields:
            if isinstance(obj[key], float):
                assert float(row[key]) == obj[key], key
            else:
                assert _as_csv(obj[key]) == row[key], key
        assert isinstance(obj["run_ids"], list) and isinstance(obj["seeds"], int)
    if version == 1:  # the joint reference ran one seed: its stds are null
        assert objects[0]["entry"] == "joint" and objects[0]["final_acc_pct_std"] is None


def test_a_missing_number_is_empty_or_null_and_odd_labels_survive(tmp_path: Path) -> None:
    odd = 'lwf, "quoted" label'
    gpu = latency(0.4, device="cuda", device_name="NVIDIA H200", precision="bf16", threads=None)
    records = [make_record(label=odd, seed=s) for s in (1, 2)]
    records += [make_record(label="gpu-only", seed=s, latencies=[gpu]) for s in (1, 2)]
    site = build_site(records, tmp_path / "site", generated_at=GENERATED_AT).parent
    fields, rows = read_csv(table(site))
    objects = read_json(table(site).with_suffix(".json"))
    cpu = next(f for f in fields if f.startswith("latency-cpu") and not f.endswith("_std"))
    by_entry = {row["entry"]: row for row in rows}
    assert set(by_entry) == {odd, "gpu-only"}
    assert by_entry["gpu-only"][cpu] == "" and by_entry[odd][cpu] == "2.0"
    gpu_only = next(obj for obj in objects if obj["entry"] == "gpu-only")
    assert gpu_only[cpu] is None and gpu_only[f"{cpu}_std"] is None
    text = table(site).with_suffix(".json").read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text


def test_a_suite_version_without_usable_trials_gets_empty_files(site: Path) -> None:
    fields, rows = read_csv(site / "downloads" / "other-suite-v1.csv")
    assert rows == [] and fields[: len(IDENTITY)] == list(IDENTITY)
    assert read_json(site / "downloads" / "other-suite-v1.json") == []


def test_the_archive_holds_exactly_the_published_records(site: Path) -> None:
    published = sorted(f"records/{p.name}" for p in (site / "records").iterdir())
    shown = [r for r in golden_records() if r["status"] == "ok" and not r["debug"]]
    assert published == sorted(f"records/{r['run_id']}.json" for r in shown)
    with zipfile.ZipFile(site / ARCHIVE) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == published  # sorted, nothing else
        for info in archive.infolist():
            assert archive.read(info) == (site / info.filename).read_bytes()
            assert info.date_time == ARCHIVE_TIME


def test_building_again_gives_the_same_download_bytes(site: Path, tmp_path: Path) -> None:
    # Another order of records, another stamp, worker processes: none may change a byte.
    again = build_site(list(reversed(golden_records())), tmp_path / "site",
                       generated_at=datetime(2027, 1, 1, tzinfo=UTC), workers=2).parent  # fmt: skip
    names = sorted(p.name for p in (site / "downloads").iterdir())
    assert names == sorted(p.name for p in (again / "downloads").iterdir())
    assert len(names) == 7  # three suite versions' CSV and JSON, and the archive
    for name in names:
        assert (site / "downloads" / name).read_bytes() == (again / "downloads" / name).read_bytes()


def test_the_index_links_every_current_table_and_the_archive_with_sizes(site: Path) -> None:
    index = Page(site / "index.html")
    assert "downloads" in index.ids
    links = [h for h in index.links if h.startswith("downloads/")]
    assert links == [*CURRENT_FILES, ARCHIVE]  # the archived v0 is linked from its own page
    text = index.page_text
    for href in links:
        target = index.link_to(href)
        assert target.is_file() and target.is_relative_to(site.resolve())
        kind = "records.zip" if href == ARCHIVE else target.suffix[1:].upper()
        assert f"{kind} ({size_text(target.stat().st_size)})" in text
    owned = json.loads((site / MANIFEST).read_text(encoding="utf-8"))["files"]
    written = {f"downloads/{p.name}" for p in (site / "downloads").iterdir()}
    assert written <= set(owned)


@pytest.mark.parametrize("version", [1, 0])
def test_each_suite_page_links_its_own_two_files(site: Path, version: int) -> None:
    page = suite_page(site, version)
    links = [h for h in page.links if "downloads/" in h]
    stem = f"../downloads/{SUITE}-v{version}"
    assert links == [f"{stem}.csv", f"{stem}.json"]
    for href in links:
        assert page.link_to(href) == (site / "downloads" / Path(href).name).resolve()
        assert page.link_to(href).is_file()
