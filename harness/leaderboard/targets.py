"""Published reference points: figures a paper or toolbox reports for a suite's protocol, shown
on that suite's page beside the ranked table and on its Pareto plots, never ranked.

One file per suite, ``suites/targets/<suite>.yaml``, versioned with the suites (the folder is
not a suite: ``list_suites`` reads only ``suites/*.yaml``). Its shape, every key checked::

    suite: cifar100-10split          # the file's own stem; suites/<suite>.yaml must exist
    points:
      - label: LwF+KD                # unique in the file; the plots say "paper: LwF+KD"
        method: LwF under the paper's KD framework (ResNet-34 teacher, MobileNetV2 student)
        metrics: {final_acc_pct: 40.19, bwt_pct: -0.14}    # avg_incremental_acc_pct too
        costs: {gflops_per_image: null, params_millions: null}   # null or absent: not given
        backbone: resnet34_cifar     # or null where the source does not say
        source: {citation: "...", url: https://arxiv.org/abs/2505.08327}   # url may be null
        provenance: secondary        # primary: read in the source itself; secondary: quoted
        suite_version: 1             # the suite version it applies to, or ``all``

A figure the source does not give is left out (or null), never filled in; every number must
be finite and in its record-schema range (a cost also above zero). Anything else, an unknown
key, a string for a number, NaN or a repeated key included, is refused with a
``TargetsError`` naming the file and the field.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.leaderboard.columns import COLUMN_BY_KEY, Column, format_mean_std
from harness.leaderboard.usable import VALUE_RANGES, out_of_range
from harness.records.safe_parse import UntrustedInputError, load_yaml

TARGETS_FOLDER = "targets"  # inside the suites folder
MAX_TARGETS_BYTES = 200_000  # a hand-written list of figures; the shipped one is about 5 kB
METRIC_KEYS = ("final_acc_pct", "bwt_pct", "avg_incremental_acc_pct")
COST_KEYS = ("gflops_per_image", "params_millions")
PROVENANCES = ("primary", "secondary")
ALL_VERSIONS = "all"
FILE_KEYS = ("suite", "points")
POINT_KEYS = ("label", "method", "metrics", "costs", "backbone", "source", "provenance",
              "suite_version")  # fmt: skip
OPTIONAL_POINT_KEYS = ("metrics", "costs", "backbone")
SOURCE_KEYS = ("citation", "url")
PLOT_PREFIX = "paper: "
# The table's columns: the leaderboard's own headers, units and number formats.
REFERENCE_COLUMNS: tuple[Column, ...] = tuple(COLUMN_BY_KEY[k] for k in METRIC_KEYS + COST_KEYS)


class TargetsError(ValueError):
    """A targets file that cannot be shown: ``"<file>: <field>: <problem>"``."""


@dataclass(frozen=True)
class ReferencePoint:
    """One published figure set: what was run, what it scored and cost, and who says so."""

    label: str
    method: str
    backbone: str | None
    values: dict[str, float | None]  # every METRIC_KEYS and COST_KEYS; None: not given
    citation: str
    url: str | None
    provenance: str  # "primary" or "secondary"
    suite_version: int | None  # None: every version of the suite

    def applies_to(self, version: int) -> bool:
        return self.suite_version is None or self.suite_version == version


@dataclass(frozen=True)
class SuiteTargets:
    """A suite's reference points, and its version now (for a page before any trial ran)."""

    suite: str
    current_version: int
    points: tuple[ReferencePoint, ...]

    def for_version(self, version: int) -> tuple[ReferencePoint, ...]:
        return tuple(p for p in self.points if p.applies_to(version))


# ------------------------------------------------------------------------------ reading


def load_targets_folder(suites_dir: Path) -> dict[str, SuiteTargets]:
    """Every ``<suites_dir>/targets/*.yaml``, by suite name; none when there is no folder."""
    folder = Path(suites_dir) / TARGETS_FOLDER
    if not folder.is_dir():
        return {}
    loaded = (load_targets(path) for path in sorted(folder.glob("*.yaml")))
    return {targets.suite: targets for targets in loaded}


def load_targets(path: Path) -> SuiteTargets:
    """One targets file; its suite's current version is read from ``suites/<suite>.yaml``."""
    path = Path(path)
    suite_file = path.parent.parent / f"{path.stem}.yaml"
    if not suite_file.is_file():
        raise TargetsError(f"{path}: no suite {path.stem!r}: {suite_file} does not exist "
                           "(name the targets file after its suite)")  # fmt: skip
    suite = _read_mapping(suite_file)
    if suite.get("name") != path.stem:
        raise TargetsError(f"{suite_file}: name: {suite.get('name')!r}, not {path.stem!r}")
    version = suite.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise TargetsError(f"{suite_file}: version: {version!r} is not a suite version")
    return parse_targets(
        _read_text(path), source=str(path), suite=path.stem, current_version=version
    )


def parse_targets(text: str, *, source: str, suite: str, current_version: int) -> SuiteTargets:
    """Check a targets file's text strictly; ``suite`` is the suite it must name."""
    raw = _parse_yaml(text, source)
    _check_keys(raw, source, "", FILE_KEYS, required=FILE_KEYS)
    if raw["suite"] != suite:
        raise TargetsError(f"{source}: suite: {raw['suite']!r}, but the file is for {suite!r}")
    if not isinstance(raw["points"], list) or not raw["points"]:
        raise TargetsError(f"{source}: points: must be a non-empty list of reference points")
    points = tuple(
        _point(item, source, f"points[{i}]", current_version)
        for i, item in enumerate(raw["points"])
    )
    labels = [p.label for p in points]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise TargetsError(f"{source}: points: label {repeated[0]!r} appears twice")
    return SuiteTargets(suite=suite, current_version=current_version, points=points)


def _read_text(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_TARGETS_BYTES:
        raise TargetsError(f"{path}: {size} bytes; a targets file may hold {MAX_TARGETS_BYTES}")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise TargetsError(f"{path}: not UTF-8 text (byte {error.start})") from None


def _read_mapping(path: Path) -> dict[str, Any]:
    raw = _parse_yaml(_read_text(path), str(path))
    if not isinstance(raw, dict):
        raise TargetsError(f"{path}: not a mapping of keys")
    return raw


def _parse_yaml(text: str, source: str) -> Any:
    try:
        return load_yaml(text, source=source)  # refuses repeated keys, anchors, deep nesting
    except UntrustedInputError as error:
        raise TargetsError(str(error)) from None


# ------------------------------------------------------------------------------ checking


def _point(raw: Any, source: str, where: str, current_version: int) -> ReferencePoint:
    if isinstance(raw, dict) and isinstance(raw.get("label"), str):
        where = f"{where} ({raw['label']})"  # a message names the point as its file does
    required = tuple(k for k in POINT_KEYS if k not in OPTIONAL_POINT_KEYS)
    _check_keys(raw, source, where, POINT_KEYS, required=required)
    label = _text(raw["label"], source, f"{where}.label")
    values = {
        **_numbers(raw.get("metrics"), source, f"{where}.metrics", METRIC_KEYS),
        **_numbers(raw.get("costs"), source, f"{where}.costs", COST_KEYS),
    }
    if all(value is None for value in values.values()):
        raise TargetsError(f"{source}: {where}: gives no metric and no cost; nothing to show")
    _check_keys(raw["source"], source, f"{where}.source", SOURCE_KEYS, required=("citation",))
    url = raw["source"].get("url")
    provenance = raw["provenance"]
    if provenance not in PROVENANCES:
        raise TargetsError(f"{source}: {where}.provenance: {provenance!r}; write "
                           f"{' or '.join(PROVENANCES)}")  # fmt: skip
    return ReferencePoint(
        label=label,
        method=_text(raw["method"], source, f"{where}.method"),
        backbone=None
        if raw.get("backbone") is None
        else _text(raw["backbone"], source, f"{where}.backbone"),
        values=values,
        citation=_text(raw["source"]["citation"], source, f"{where}.source.citation"),
        url=None if url is None else _url(url, source, f"{where}.source.url"),
        provenance=provenance,
        suite_version=_version(
            raw["suite_version"], source, f"{where}.suite_version", current_version
        ),
    )


def _check_keys(
    raw: Any, source: str, where: str, allowed: Sequence[str], *, required: Iterable[str]
) -> None:
    """``where``: the mapping's field ("points[0] (label).metrics"); "" for the file itself."""
    if not isinstance(raw, dict):
        raise TargetsError(f"{source}: {where or 'the file'}: must be a mapping of keys, "
                           f"not {raw!r}")  # fmt: skip
    prefix = f"{where}." if where else ""
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise TargetsError(f"{source}: {prefix}{unknown[0]}: unknown key; "
                           f"allowed: {', '.join(allowed)}")  # fmt: skip
    missing = [k for k in required if k not in raw]
    if missing:
        raise TargetsError(f"{source}: {prefix}{missing[0]}: missing")


def _numbers(raw: Any, source: str, where: str, keys: Sequence[str]) -> dict[str, float | None]:
    raw = {} if raw is None else raw
    _check_keys(raw, source, where, keys, required=())
    return {key: _number(raw.get(key), source, f"{where}.{key}", key) for key in keys}


def _number(value: Any, source: str, where: str, key: str) -> float | None:
    if value is None:
        return None  # not given by the source: shown as "—", never drawn
    if isinstance(value, str):
        raise TargetsError(f"{source}: {where}: {value!r} is a string; write the number "
                           "unquoted, or null where the source gives none")  # fmt: skip
    if isinstance(value, float) and math.isnan(value):
        raise TargetsError(f"{source}: {where}: NaN is not a published figure; write null "
                           "where the source gives none")  # fmt: skip
    problem = out_of_range(value, VALUE_RANGES[key])
    if problem:
        raise TargetsError(f"{source}: {where}: {problem}")
    if key in COST_KEYS and not value > 0:
        raise TargetsError(f"{source}: {where}: {value!r}; a published cost is above zero")
    return float(value)


def _text(value: Any, source: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TargetsError(f"{source}: {where}: must be non-empty text, not {value!r}")
    return " ".join(value.split())


def _url(value: Any, source: str, where: str) -> str:
    text = _text(value, source, where)
    if not text.startswith(("https://", "http://")) or " " in text:
        raise TargetsError(f"{source}: {where}: {text!r} is not an http(s) address")
    return text


def _version(value: Any, source: str, where: str, current: int) -> int | None:
    if value == ALL_VERSIONS:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= current:
        raise TargetsError(f"{source}: {where}: {value!r}; write {ALL_VERSIONS!r} or a version "
                           f"of the suite from 1 to its current {current}")  # fmt: skip
    return value


# ------------------------------------------------------------------------------ showing


def reference_table(points: Sequence[ReferencePoint]) -> dict[str, Any] | None:
    """What a suite page's "Published reference points" table shows; None without points."""
    if not points:
        return None
    rows = [
        {
            "label": p.label,
            "method": p.method,
            "backbone": p.backbone or "not stated",
            "cells": [
                format_mean_std(_nan(p.values[c.key]), math.nan, spec=c.spec)
                for c in REFERENCE_COLUMNS
            ],
            "citation": p.citation,
            # The address as text, not a link: the site links only to its own files.
            "address": p.url.split("://", 1)[1] if p.url else "",
            "secondary": p.provenance == "secondary",
            "versions": "every version" if p.suite_version is None else f"v{p.suite_version}",
        }
        for p in points
    ]
    return {"columns": REFERENCE_COLUMNS, "rows": rows}


def reference_frame(points: Sequence[ReferencePoint]) -> pd.DataFrame:
    """The points as plot rows: ``plot_label`` "paper: …", ``reference`` "paper", NaN where a
    figure is not given (such a point is left off the plots that need it)."""
    records: list[Mapping[str, Any]] = [
        {"plot_label": PLOT_PREFIX + p.label, "reference": "paper",
         **{key: _nan(value) for key, value in p.values.items()}}
        for p in points
    ]  # fmt: skip
    columns = ["plot_label", "reference", *METRIC_KEYS, *COST_KEYS]
    return pd.DataFrame(records, columns=columns)


def _nan(value: float | None) -> float:
    return math.nan if value is None else value
