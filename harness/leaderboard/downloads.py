"""The site's downloads: each suite version's table as CSV and JSON, every record as one archive.

Files, from the site's root:

    downloads/<suite>-v<N>.csv    one row per entry of the suite page's table, ranked as there
    downloads/<suite>-v<N>.json   the same rows as a list of objects, each with ``suite`` and
                                  ``suite_version`` too
    downloads/records.zip         every record the site publishes, byte for byte as in records/

Columns: who the entry is (``entry``, the name the page shows; ``label``, ``strategy``,
``framework``, ``backbone``, ``inference_backbone`` (the one that serves), ``config_sha256``,
``reference`` (``upper_bound``, ``lower_bound`` or empty), ``seeds``, ``provisional``); then,
per column of the page's table, its key (the mean over seeds: the number the page shows and
sorts by) and ``<key>_std`` (sample std over seeds; none for a figure that compares an entry
with another); the Pareto-front flags; ``run_ids`` (in CSV separated by spaces). Numbers are
plain and in the stored unit, as the key names say (``param_bytes`` in bytes where the page
shows MB; the suite page's legend gives every unit). A missing number (NaN) is an empty CSV
cell and a JSON ``null``; flags are ``true``/``false``.

Same records, same bytes: rows in the page's order, columns in the table's, no dates; the
archive's entries sorted, each with one fixed timestamp and mode. A zip rather than a tar.gz:
the standard library reads and writes it, every desktop opens it without tools, and a reader
can take one record out without inflating the rest; pinning a tar.gz takes as much care
(gzip's header mtime, tar's owners, modes and times) for none of that.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from harness.leaderboard import aggregate
from harness.leaderboard.columns import Column, is_finite_number, latency_statistic
from harness.leaderboard.fronts import MEMORY_FRONT
from harness.leaderboard.suite_page import SuiteJob, SuitePage

FOLDER = "downloads"
ARCHIVE = f"{FOLDER}/records.zip"
# zip's earliest date: the archive must not carry the build's date, or rebuilding changes it.
ARCHIVE_TIME = (1980, 1, 1, 0, 0, 0)
ARCHIVE_MODE = 0o644 << 16  # rw-r--r--, in the high bits where zip keeps Unix permissions
UNIX = 3  # zip's "made by" system; else it would follow the OS that built the site
IDENTITY = ("entry", "label", "strategy", "framework", "backbone", "inference_backbone",
            "config_sha256", "reference", "seeds", "provisional")  # fmt: skip


class Download(NamedTuple):
    """A file to download: what the link says, where it is (from the site's root), its size."""

    label: str
    href: str
    num_bytes: int

    @property
    def size(self) -> str:
        return size_text(self.num_bytes)


def size_text(num_bytes: int) -> str:
    """ "812 B", "4.2 kB", "1.3 MB": decimal units, as the site's MB (10⁶ bytes)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{num_bytes} B"


def write_suite_downloads(suite: SuitePage, job: SuiteJob, out_dir: Path) -> list[Download]:
    """Write the suite version's table as CSV and JSON under ``out_dir``; return both files."""
    fields = table_fields(suite, job)
    rows = table_rows(suite, job)
    csv_href, json_href = f"{FOLDER}/{suite.slug}.csv", f"{FOLDER}/{suite.slug}.json"
    (out_dir / FOLDER).mkdir(parents=True, exist_ok=True)
    text = io.StringIO(newline="")
    writer = csv.writer(text)  # RFC 4180: quoted where needed, CRLF line ends
    writer.writerow(fields)
    writer.writerows([_csv_text(row[field]) for field in fields] for row in rows)
    (out_dir / csv_href).write_bytes(text.getvalue().encode("utf-8"))
    objects = [{"suite": suite.name, "suite_version": suite.version, **row} for row in rows]
    # allow_nan=False: a NaN that slipped through fails the build instead of writing bad JSON.
    data = json.dumps(objects, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    (out_dir / json_href).write_bytes(data.encode("utf-8"))
    return [
        Download("CSV", csv_href, (out_dir / csv_href).stat().st_size),
        Download("JSON", json_href, (out_dir / json_href).stat().st_size),
    ]


def table_fields(suite: SuitePage, job: SuiteJob) -> list[str]:
    """The columns of a suite version's download, in order."""
    fields = list(IDENTITY)
    for column in suite.columns:
        fields += [column.key] + ([f"{column.key}_std"] if _has_std(column, job) else [])
    fields += [f"pareto_{metric}" for metric in aggregate.ACCURACY_METRICS]
    if suite.with_memory_front:
        fields.append(MEMORY_FRONT)
    fields.append("run_ids")
    clashes = sorted({f for f in fields if fields.count(f) > 1})
    if clashes:
        raise ValueError(
            f"suite {suite.name} v{suite.version}: the downloads would have two columns named "
            f"{', '.join(clashes)}; give the table column another key"
        )
    return fields


def table_rows(suite: SuitePage, job: SuiteJob) -> list[dict[str, Any]]:
    """One dict per entry of the suite page's table, in its order, keyed by ``table_fields``.

    Each mean is the entry's cell value, the very number the page sorts by, so the download
    cannot drift from the table whatever its columns; the page has no cell for the std, which
    comes from the same summary rows the page was built from.
    """
    key_of = aggregate.row_key
    summary = {key_of(row): row for row in job.rows.to_dict("records")}
    latencies = {(key_of(row), row["setting"]): row for row in job.latencies.to_dict("records")}
    rows = []
    for entry in suite.entries:
        key = aggregate.entry_key(entry["records"][0])
        row: dict[str, Any] = _identity(entry, summary[key])
        for column, cell in zip(suite.columns, entry["cells"], strict=True):
            row[column.key] = float(cell.value) if cell.value else None
            if not _has_std(column, job):
                continue
            latency = column.latency
            found = summary[key] if latency is None else latencies.get((key, latency), {})
            row[f"{column.key}_std"] = _std(column, found)
        row.update({f"pareto_{m}": bool(on) for m, on in entry["pareto"].items()})
        if suite.with_memory_front:
            row[MEMORY_FRONT] = bool(entry["memory_front"])
        row["run_ids"] = [str(trial["run_id"]) for trial in entry["trials"]]
        rows.append(row)
    return rows


def _identity(entry: Mapping[str, Any], summary_row: Mapping[str, Any]) -> dict[str, Any]:
    names = ("label", "strategy", "framework", "backbone", "inference_backbone", "config_sha256")
    reference = summary_row["reference"]  # the record's word ("upper_bound"), not the page's
    return {
        "entry": str(entry["display"]),
        **{name: str(entry[name]) for name in names},
        "reference": reference if isinstance(reference, str) else None,
        "seeds": int(entry["seeds"]),
        "provisional": bool(entry["provisional"]),
    }


def _has_std(column: Column, job: SuiteJob) -> bool:
    """Whether a column has a spread over seeds (a figure compared across entries has none)."""
    return column.latency is not None or f"{column.key}_std" in job.rows.columns


def _std(column: Column, found: Mapping[str, Any]) -> float | None:
    """A column's std over seeds, from its summary row (a latency: its setting's row)."""
    name = column.key if column.latency is None else latency_statistic(column)
    value = found.get(f"{name}_std", math.nan)
    return float(value) if is_finite_number(value) else None


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float
    if isinstance(value, list):
        return " ".join(value)
    return str(value)


def write_records_archive(out_dir: Path, published: Iterable[str]) -> Download:
    """Zip the published records (paths from the site's root, e.g. ``records/<run id>.json``)
    into ``downloads/records.zip``, byte for byte, under the same paths."""
    target = out_dir / ARCHIVE
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as archive:
        for name in sorted(set(published)):
            info = zipfile.ZipInfo(name, date_time=ARCHIVE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = UNIX
            info.external_attr = ARCHIVE_MODE
            # Level 1: records are repetitive JSON (most of the gain at a third of the time of
            # the default level, which the 10,000-record build budget notices).
            archive.writestr(info, (out_dir / name).read_bytes(), compresslevel=1)
    return Download(Path(ARCHIVE).name, ARCHIVE, target.stat().st_size)
