"""Suites are data: one YAML file each, versioned, with explicit class orders and their hashes.

Bump ``version`` on any change that can move a number. ``file_sha256`` (of the exact file
bytes) goes into every record, so a result always names the suite text it came from.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.augment import Augmentation, AugmentationError, parse_augmentation
from harness.metrics import METRIC_NAMES
from harness.registry import UnknownNameError, did_you_mean

SUITE_KEYS = {
    "name", "version", "description", "dataset", "input_shape", "num_classes",
    "classes_per_task", "class_orders", "exemplar_budget", "backbones", "seeds",
    "primary_metric", "training", "methods", "weights", "augmentation",
}  # fmt: skip
DATASET_KEYS = {"name", "val_fraction", "test_fraction", "split_seed", "max_train_per_class",
                "normalize", "image_size"}  # fmt: skip
TORCHVISION_PREFIX = "torchvision:"
METHOD_KEYS = {"strategy", "framework", "label", "backbone", "config"}


class SuiteError(ValueError):
    """A suite file that is malformed or inconsistent; the message says what to fix."""


class CheckpointHashError(RuntimeError):
    """A suite's pre-trained checkpoint is missing or its bytes do not match its sha256."""


@dataclass(frozen=True)
class MethodEntry:
    """One method a suite runs by default: a strategy under a framework, with overrides."""

    strategy: str
    framework: str = "none"
    label: str | None = None
    backbone: str | None = None
    config: dict[str, dict[str, Any]] = field(default_factory=dict)  # strategy/framework/training


@dataclass(frozen=True)
class WeightsSpec:
    """Pre-trained weights a backbone starts from in this suite.

    Either a checkpoint this project ships (``path`` + ``sha256``, checked before any trial)
    or torchvision's published weights by enum name (``torchvision: IMAGENET1K_V1``), loaded
    offline from torch's hub cache; the sha256 of the file actually loaded goes into every
    record either way.
    """

    path: str | None = None  # relative to the repository root, or absolute
    sha256: str | None = None
    torchvision: str | None = None  # a weights enum name, e.g. IMAGENET1K_V1

    @property
    def spec(self) -> str:
        """The weights string ``create_backbone`` takes (the path only once its hash matches)."""
        if self.torchvision is not None:
            return f"{TORCHVISION_PREFIX}{self.torchvision}"
        return self.verified_path()

    def resolved_path(self) -> Path:
        assert self.path is not None
        path = Path(self.path)
        return path if path.is_absolute() else Path(__file__).resolve().parents[1] / path

    def verified_path(self) -> str:
        """The checkpoint's path once its bytes match the stored sha256 (else a clear error)."""
        path = self.resolved_path()
        if not path.is_file():
            raise CheckpointHashError(
                f"pre-trained checkpoint {path} is missing: restore the committed file or "
                "rebuild it with `cilbench pretrain`"
            )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != self.sha256:
            raise CheckpointHashError(
                f"{path} has sha256 {digest}, but the suite expects {self.sha256}: restore the "
                "committed file, or rebuild it with `cilbench pretrain` and store the new hash"
            )
        return str(path)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    split_seed: int
    val_fraction: float
    test_fraction: float | None  # None: the dataset's official test split is used
    max_train_per_class: int | None
    normalize_mean: tuple[float, ...]
    normalize_std: tuple[float, ...]
    image_size: int | None = None  # stored square size of folder (JPEG) datasets, decoded once


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
    backbones: tuple[str, ...]
    seeds: tuple[int, ...]
    primary_metric: str
    training: dict[str, Any]
    methods: tuple[MethodEntry, ...]
    weights: dict[str, WeightsSpec]  # backbone name -> pre-trained checkpoint
    augmentation: Augmentation  # training batches only; test images are never augmented
    file_sha256: str
    text: str  # the exact file text: trials on other machines parse this, not a path

    @property
    def num_tasks(self) -> int:
        return len(self.classes_per_task)


def class_order_sha256(order: list[int] | tuple[int, ...]) -> str:
    """The hash stored beside each class order: sha256 of the comma-joined integers."""
    return hashlib.sha256(",".join(str(int(c)) for c in order).encode()).hexdigest()


def default_suites_dir() -> Path:
    """``$CILBENCH_SUITES`` or the ``suites/`` folder beside the harness package."""
    env = os.environ.get("CILBENCH_SUITES")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "suites"


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
    return parse_suite(path.read_text(), source=str(path))


def parse_suite(text: str, *, source: str = "<suite>") -> Suite:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SuiteError(f"{source}: not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise SuiteError(f"{source}: a suite file must be a mapping of keys")
    _check_keys(raw, SUITE_KEYS, source,
                required=SUITE_KEYS - {"description", "training", "weights",
                                       "augmentation"})  # fmt: skip
    _check_keys(raw["dataset"], DATASET_KEYS, f"{source}: dataset", required={"name"})
    dataset = _parse_dataset(raw["dataset"], source)
    suite = Suite(
        name=str(raw["name"]),
        version=int(raw["version"]),
        description=str(raw.get("description", "")).strip(),
        dataset=dataset,
        input_shape=tuple(int(v) for v in raw["input_shape"]),  # type: ignore[arg-type]
        num_classes=int(raw["num_classes"]),
        classes_per_task=tuple(int(v) for v in raw["classes_per_task"]),
        class_orders=_parse_class_orders(raw["class_orders"], int(raw["num_classes"]), source),
        exemplar_budget=int(raw["exemplar_budget"]),
        backbones=tuple(str(b) for b in raw["backbones"]),
        seeds=tuple(int(s) for s in raw["seeds"]),
        primary_metric=str(raw["primary_metric"]),
        training=dict(raw.get("training") or {}),
        methods=tuple(_parse_method(m, source) for m in raw["methods"]),
        weights=_parse_weights(raw.get("weights") or {}, source),
        augmentation=_parse_augmentation(raw.get("augmentation"), source),
        file_sha256=hashlib.sha256(text.encode()).hexdigest(),
        text=text,
    )
    _check_consistency(suite, source)
    return suite


def _check_keys(raw: Any, allowed: set[str], where: str, *, required: set[str]) -> None:
    if not isinstance(raw, dict):
        raise SuiteError(f"{where}: expected a mapping")
    for key in raw:
        if key not in allowed:
            raise SuiteError(
                f"{where}: unknown key {key!r}.{did_you_mean(key, sorted(allowed))} "
                f"Valid keys: {', '.join(sorted(allowed))}."
            )
    missing = sorted(required - set(raw))
    if missing:
        raise SuiteError(f"{where}: missing required key(s): {', '.join(missing)}")


def _parse_dataset(raw: dict[str, Any], source: str) -> DatasetSpec:
    normalize = raw.get("normalize") or {"mean": [0.0], "std": [1.0]}
    test_fraction = raw.get("test_fraction")
    cap = raw.get("max_train_per_class")
    image_size = raw.get("image_size")
    return DatasetSpec(
        name=str(raw["name"]),
        split_seed=int(raw.get("split_seed", 0)),
        val_fraction=float(raw.get("val_fraction", 0.1)),
        test_fraction=None if test_fraction is None else float(test_fraction),
        max_train_per_class=None if cap is None else int(cap),
        normalize_mean=tuple(float(v) for v in normalize["mean"]),
        normalize_std=tuple(float(v) for v in normalize["std"]),
        image_size=None if image_size is None else int(image_size),
    )


def _parse_class_orders(raw: Any, num_classes: int, source: str) -> tuple[tuple[int, ...], ...]:
    """Each entry is ``{order: [...], sha256: ...}``; both the permutation and hash are checked."""
    if not isinstance(raw, list) or not raw:
        raise SuiteError(f"{source}: class_orders must be a non-empty list of {{order, sha256}}")
    orders = []
    for index, entry in enumerate(raw):
        order = [int(c) for c in entry["order"]]
        if sorted(order) != list(range(num_classes)):
            raise SuiteError(
                f"{source}: class order {index} is not a permutation of 0..{num_classes - 1}"
            )
        expected = class_order_sha256(order)
        if entry.get("sha256") != expected:
            raise SuiteError(
                f"{source}: class order {index} has sha256 {entry.get('sha256')!r} but its list "
                f"hashes to {expected!r}. If the order was changed on purpose, store the new hash "
                "and bump the suite version."
            )
        orders.append(tuple(order))
    return tuple(orders)


def _parse_weights(raw: Any, source: str) -> dict[str, WeightsSpec]:
    """``{backbone: {path, sha256} | {torchvision: ENUM}}``; checked when the run starts."""
    if not isinstance(raw, dict):
        raise SuiteError(
            f"{source}: weights must map backbone names to {{path, sha256}} or {{torchvision}}"
        )
    weights = {}
    for backbone, entry in raw.items():
        where = f"{source}: weights.{backbone}"
        if isinstance(entry, dict) and "torchvision" in entry:
            _check_keys(entry, {"torchvision"}, where, required={"torchvision"})
            weights[str(backbone)] = WeightsSpec(torchvision=str(entry["torchvision"]))
            continue
        _check_keys(entry, {"path", "sha256"}, where, required={"path", "sha256"})
        weights[str(backbone)] = WeightsSpec(path=str(entry["path"]), sha256=str(entry["sha256"]))
    return weights


def _parse_augmentation(raw: Any, source: str) -> Augmentation:
    try:
        return parse_augmentation(raw)
    except AugmentationError as error:
        raise SuiteError(f"{source}: {error}") from error


def _parse_method(raw: Any, source: str) -> MethodEntry:
    if isinstance(raw, str):
        raw = {"strategy": raw}
    _check_keys(raw, METHOD_KEYS, f"{source}: methods entry", required={"strategy"})
    config = raw.get("config") or {}
    _check_keys(config, {"strategy", "framework", "training"}, f"{source}: method config",
                required=set())  # fmt: skip
    return MethodEntry(
        strategy=str(raw["strategy"]),
        framework=str(raw.get("framework", "none")),
        label=raw.get("label"),
        backbone=raw.get("backbone"),
        config={k: dict(v or {}) for k, v in config.items()},
    )


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
    if not suite.seeds or not suite.backbones or not suite.methods:
        raise SuiteError(f"{source}: seeds, backbones and methods must each list at least one")
    channels = suite.input_shape[0]
    if (
        len(suite.dataset.normalize_mean) != channels
        or len(suite.dataset.normalize_std) != channels
    ):
        raise SuiteError(f"{source}: dataset.normalize needs one mean and std per input channel")
    if any(std <= 0 for std in suite.dataset.normalize_std):
        raise SuiteError(f"{source}: dataset.normalize std values must be > 0")
    size = suite.dataset.image_size
    if size is not None and tuple(suite.input_shape[1:]) != (size, size):
        raise SuiteError(
            f"{source}: dataset.image_size {size} must match input_shape {list(suite.input_shape)}"
            " (images are stored at the size the model reads; augmentations keep the size)"
        )
