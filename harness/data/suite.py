"""Suites are data: one YAML file each, versioned, with explicit class orders and their hashes.

Bump ``version`` on any change that can move a number. ``file_sha256`` (of the exact file
bytes) goes into every record, so a result always names the suite text it came from.
``protocol_sha256`` hashes what a trial's numbers depend on: the parsed file without the
lists of which methods, seeds and backbones the suite runs by default, and without its
description (each trial names its own method, seed and backbone). It is what a trial's run id
and the staleness of a record go by, so adding a method to a suite, or a seed, leaves every
earlier record current. The
fields are checked one by one in ``harness.data.suite_fields``; this module reads the file,
assembles the ``Suite`` and checks that its fields agree with each other.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.api.registry import UnknownNameError, did_you_mean
from harness.data.augment import Augmentation
from harness.data.suite_fields import (
    CheckpointHashError,
    DatasetSpec,
    MethodEntry,
    SuiteError,
    WeightsSpec,
    as_list,
    check_keys,
    check_seeds,
    class_order_sha256,
    description_text,
    input_shape,
    integer,
    name_text,
    parse_augmentation_block,
    parse_class_orders,
    parse_dataset,
    parse_method,
    parse_training,
    parse_weights,
    safe_name,
)
from harness.data.suite_tuning import TuningBudget, parse_tuning
from harness.records.safe_parse import UntrustedInputError, load_yaml
from harness.records.schema import METRIC_NAMES, canonical_sha256

# The suite's own vocabulary, re-exported: callers import a suite's parts from here.
__all__ = ["CheckpointHashError", "DatasetSpec", "MAX_SUITE_BYTES", "MethodEntry", "SUITE_KEYS",
           "Suite", "SuiteError", "WeightsSpec", "check_seeds", "class_order_sha256",
           "default_suites_dir", "list_suites", "load_suite", "parse_suite"]  # fmt: skip

SUITE_KEYS = {
    "name", "version", "description", "dataset", "input_shape", "num_classes",
    "classes_per_task", "class_orders", "exemplar_budget", "backbones", "seeds",
    "primary_metric", "training", "methods", "weights", "augmentation", "total_memory_bytes",
    "tuning",
}  # fmt: skip
# Suites are small data files; the largest shipped one is about 6 kB.
MAX_SUITE_BYTES = 1_000_000


@dataclass(frozen=True)
class Suite:
    name: str
    version: int
    description: str
    dataset: DatasetSpec
    input_shape: tuple[int, int, int]
    num_classes: int
    classes_per_task: tuple[int, ...]
    class_orders: tuple[tuple[int, ...], ...]
    exemplar_budget: int
    # Optional: the bytes a method may keep between tasks, exemplars and models together; the
    # exemplar budget of each trial is aligned to it (harness/run/memory_alignment.py).
    total_memory_bytes: int | None
    backbones: tuple[str, ...]
    seeds: tuple[int, ...]
    primary_metric: str
    training: dict[str, Any]
    methods: tuple[MethodEntry, ...]
    weights: dict[str, WeightsSpec]  # backbone name -> pre-trained checkpoint
    augmentation: Augmentation  # training batches only; test images are never augmented
    tuning: TuningBudget  # what every method's search may spend (``cilbench tune``)
    file_sha256: str
    protocol_sha256: str  # the file's content without the default grid (see the docstring)
    text: str  # the exact file text: trials on other machines parse this, not a path

    @property
    def num_tasks(self) -> int:
        return len(self.classes_per_task)


def default_suites_dir() -> Path:
    """``$CILBENCH_SUITES`` or the ``suites/`` folder beside the harness package."""
    env = os.environ.get("CILBENCH_SUITES")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "suites"


def list_suites(suites_dir: Path | None = None) -> list[str]:
    folder = suites_dir or default_suites_dir()
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_suite(name_or_path: str, suites_dir: Path | None = None) -> Suite:
    """Load a suite by name (``suites/<name>.yaml``) or by path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        folder = suites_dir or default_suites_dir()
        path = folder / f"{name_or_path}.yaml"
        if not path.is_file():
            valid = list_suites(folder)
            raise UnknownNameError(
                f"unknown suite {name_or_path!r}.{did_you_mean(name_or_path, valid)} "
                f"Valid suites: {', '.join(valid) or '(none in ' + str(folder) + ')'}."
            )
    if not path.is_file():
        raise SuiteError(f"suite file {path} does not exist")
    size = path.stat().st_size
    if size > MAX_SUITE_BYTES:
        raise SuiteError(f"{path}: {size} bytes; a suite file may hold {MAX_SUITE_BYTES} at most")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SuiteError(
            f"{path}: not UTF-8 text (byte {error.start}: {data[error.start : error.start + 4]!r});"
            " save the suite file as UTF-8"
        ) from None
    return parse_suite(text, source=str(path))


def _load_yaml(text: str, source: str) -> Any:
    if len(text) > MAX_SUITE_BYTES:
        raise SuiteError(f"{source}: a suite file may hold {MAX_SUITE_BYTES} bytes at most")
    try:
        return load_yaml(text, source=source)
    except UntrustedInputError as error:
        raise SuiteError(str(error)) from None


# What the suite runs by default and what it says of itself: no trial's numbers depend on them.
# The tuning budget neither: it decides which configs are tried, and each tried config is its
# own trial with its own id.
NOT_PROTOCOL = frozenset({"methods", "seeds", "backbones", "description", "tuning"})


def parse_suite(text: str, *, source: str = "<suite>") -> Suite:
    raw = _load_yaml(text, source)
    if not isinstance(raw, dict):
        raise SuiteError(f"{source}: a suite file must be a mapping of keys")
    check_keys(raw, SUITE_KEYS, source,
                required=SUITE_KEYS - {"description", "training", "weights", "augmentation",
                                       "total_memory_bytes", "tuning"})  # fmt: skip
    num_classes = integer(raw["num_classes"], source, "num_classes", at_least=1)
    suite = Suite(
        name=safe_name(raw["name"], source),
        version=integer(raw["version"], source, "version", at_least=1),
        description=description_text(raw.get("description"), source),
        dataset=parse_dataset(raw["dataset"], source),
        input_shape=input_shape(raw["input_shape"], source),
        num_classes=num_classes,
        classes_per_task=tuple(
            integer(v, source, "classes_per_task entry", at_least=1)
            for v in as_list(raw["classes_per_task"], source, "classes_per_task")
        ),
        class_orders=parse_class_orders(raw["class_orders"], num_classes, source),
        exemplar_budget=integer(raw["exemplar_budget"], source, "exemplar_budget", at_least=0),
        total_memory_bytes=None
        if raw.get("total_memory_bytes") is None
        else integer(raw["total_memory_bytes"], source, "total_memory_bytes", at_least=1),
        backbones=tuple(
            name_text(b, source, "backbones entry")
            for b in as_list(raw["backbones"], source, "backbones")
        ),
        seeds=tuple(check_seeds(raw["seeds"], where=f"{source}: seeds")),
        primary_metric=name_text(raw["primary_metric"], source, "primary_metric"),
        training=parse_training(raw.get("training"), source),
        methods=tuple(parse_method(m, source) for m in as_list(raw["methods"], source, "methods")),
        weights=parse_weights(raw.get("weights") or {}, source),
        augmentation=parse_augmentation_block(raw.get("augmentation"), source),
        # classes_per_task is checked above (arguments are evaluated in order).
        tuning=parse_tuning(raw.get("tuning"), source, num_tasks=len(raw["classes_per_task"])),
        file_sha256=hashlib.sha256(text.encode()).hexdigest(),
        protocol_sha256=canonical_sha256({k: v for k, v in raw.items() if k not in NOT_PROTOCOL}),
        text=text,
    )
    _check_consistency(suite, source)
    return suite


def _check_consistency(suite: Suite, source: str) -> None:
    if sum(suite.classes_per_task) != suite.num_classes:
        raise SuiteError(
            f"{source}: classes_per_task sums to {sum(suite.classes_per_task)}, "
            f"not num_classes={suite.num_classes}"
        )
    if suite.primary_metric not in METRIC_NAMES:
        raise SuiteError(
            f"{source}: unknown primary_metric {suite.primary_metric!r}."
            f"{did_you_mean(suite.primary_metric, list(METRIC_NAMES))} "
            f"Valid: {', '.join(METRIC_NAMES)}."
        )
    channels = suite.input_shape[0]
    if (
        len(suite.dataset.normalize_mean) != channels
        or len(suite.dataset.normalize_std) != channels
    ):
        raise SuiteError(f"{source}: dataset.normalize needs one mean and std per input channel")
    size = suite.dataset.image_size
    if size is not None and tuple(suite.input_shape[1:]) != (size, size):
        raise SuiteError(
            f"{source}: dataset.image_size {size} must match input_shape {list(suite.input_shape)}"
            " (images are stored at the size the model reads; augmentations keep the size)"
        )
