"""The parts of a suite file and how each field is checked: types, ranges and safe names,
every error naming the file and the key to fix (``SuiteError``).

``harness.data.suite`` assembles a ``Suite`` from these; this module knows one field at a time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.api.config import ConfigError, check_range, resolve_config
from harness.api.registry import did_you_mean
from harness.data.augment import Augmentation, AugmentationError, parse_augmentation
from harness.training.trainer import TrainingConfig

DATASET_KEYS = {"name", "val_fraction", "test_fraction", "split_seed", "max_train_per_class",
                "normalize", "image_size"}  # fmt: skip
TORCHVISION_PREFIX = "torchvision:"
TIMM_PREFIX = "timm:"
METHOD_KEYS = {"strategy", "framework", "label", "backbone", "config"}
SEED_LIMIT = 2**32  # numpy's RandomState takes seeds in [0, 2**32)
# Records go to results/<suite name>/<method label>/..., so both become folder names.
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
SAFE_LABEL = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._+@=-]{0,99}")


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
    timm: str | None = None  # a timm pretrained tag of a timm:<model> backbone, or "default"

    @property
    def spec(self) -> str:
        """The weights string ``create_backbone`` takes (the path only once its hash matches)."""
        if self.torchvision is not None:
            return f"{TORCHVISION_PREFIX}{self.torchvision}"
        if self.timm is not None:
            return f"{TIMM_PREFIX}{self.timm}"
        return self.verified_path()

    def resolved_path(self) -> Path:
        assert self.path is not None
        path = Path(self.path)
        return path if path.is_absolute() else Path(__file__).resolve().parents[2] / path

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


def class_order_sha256(order: list[int] | tuple[int, ...]) -> str:
    """The hash stored beside each class order: sha256 of the comma-joined integers."""
    return hashlib.sha256(",".join(str(int(c)) for c in order).encode()).hexdigest()


def check_seeds(seeds: Sequence[Any], *, where: str = "seeds") -> list[int]:
    """The seeds as a list, if they are a non-empty list of distinct integers in [0, 2**32).

    For a suite's ``seeds:`` and the command line's ``--seeds``; raises ``SuiteError``.
    """
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence) or not seeds:
        raise SuiteError(f"{where}: expected a non-empty list of integer seeds, got {seeds!r}")
    seen: set[int] = set()
    for seed in seeds:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise SuiteError(f"{where}: seed {seed!r} is not an integer")
        if not 0 <= seed < SEED_LIMIT:
            raise SuiteError(f"{where}: seed {seed} is out of range: it must be in [0, 2**32)")
        if seed in seen:
            raise SuiteError(f"{where}: seed {seed} is listed twice")
        seen.add(seed)
    return list(seeds)


def check_keys(raw: Any, allowed: set[str], where: str, *, required: set[str]) -> None:
    if not isinstance(raw, dict):
        raise SuiteError(f"{where}: expected a mapping, got {raw!r:.80}")
    for key in raw:
        if key not in allowed:
            raise SuiteError(
                f"{where}: unknown key {key!r}.{did_you_mean(str(key), sorted(allowed))} "
                f"Valid keys: {', '.join(sorted(allowed))}."
            )
    missing = sorted(required - set(raw))
    if missing:
        raise SuiteError(f"{where}: missing required key(s): {', '.join(missing)}")


def number(value: Any, source: str, key: str, **bounds: Any) -> Any:
    """``value`` if it is a finite number within ``bounds`` (see ``check_range``)."""
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    try:
        check_range(key, value, **bounds)
    except ConfigError as error:
        raise SuiteError(f"{source}: {error}") from None
    return value


def integer(value: Any, source: str, key: str, **bounds: Any) -> Any:
    try:
        check_range(key, value, integer=True, **bounds)
    except ConfigError as error:
        raise SuiteError(f"{source}: {error}") from None
    return value


def as_list(value: Any, source: str, key: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise SuiteError(f"{source}: {key} must be a non-empty list, got {value!r:.80}")
    return value


def name_text(value: Any, source: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SuiteError(f"{source}: {key} must be a non-empty string, got {value!r:.80}")
    return value


def safe_name(value: Any, source: str) -> str:
    name = name_text(value, source, "name")
    if not SAFE_NAME.fullmatch(name) or ".." in name:
        raise SuiteError(
            f"{source}: name {name!r} cannot name the suite's results folder: use letters, "
            "digits, '.', '_' and '-' (at most 100, not starting with '.', no '..'), e.g. "
            "digits-5split"
        )
    return name


def description_text(value: Any, source: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SuiteError(f"{source}: description must be text, got {value!r:.80}")
    return value.strip()


def input_shape(value: Any, source: str) -> tuple[int, int, int]:
    if not isinstance(value, list) or len(value) != 3:
        raise SuiteError(
            f"{source}: input_shape must be [channels, height, width], got {value!r:.80}"
        )
    c, h, w = (integer(v, source, "input_shape entry", at_least=1) for v in value)
    return (c, h, w)


def parse_training(raw: Any, source: str) -> dict[str, Any]:
    """The suite's training budget, checked as ``TrainingConfig`` checks it (every field
    stands on its own, so method entries and ``--set`` may still override it)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SuiteError(f"{source}: training must be a mapping of TrainingConfig keys")
    try:
        resolve_config(TrainingConfig, raw, scope="training")
    except ConfigError as error:
        raise SuiteError(f"{source}: {error}") from None
    return dict(raw)


def parse_dataset(raw: Any, source: str) -> DatasetSpec:
    where = f"{source}: dataset"
    check_keys(raw, DATASET_KEYS, where, required={"name"})
    normalize = raw.get("normalize") or {"mean": [0.0], "std": [1.0]}
    check_keys(normalize, {"mean", "std"}, f"{where}.normalize", required={"mean", "std"})
    test_fraction = raw.get("test_fraction")
    cap = raw.get("max_train_per_class")
    image_size = raw.get("image_size")
    key = "dataset."
    return DatasetSpec(
        name=name_text(raw["name"], source, "dataset.name"),
        # Seeds split_seed..split_seed + 3 draw the splits (numpy: below 2**32).
        split_seed=integer(
            raw.get("split_seed", 0), source, f"{key}split_seed", at_least=0, at_most=SEED_LIMIT - 4
        ),  # fmt: skip
        val_fraction=float(
            number(raw.get("val_fraction", 0.1), source, f"{key}val_fraction", at_least=0, below=1)
        ),  # fmt: skip
        # 0 would leave no test images to evaluate on.
        test_fraction=None
        if test_fraction is None
        else float(number(test_fraction, source, f"{key}test_fraction", above=0, below=1)),
        max_train_per_class=None
        if cap is None
        else integer(cap, source, f"{key}max_train_per_class", at_least=1),
        normalize_mean=tuple(
            float(number(v, source, f"{key}normalize.mean entry"))
            for v in as_list(normalize["mean"], source, f"{key}normalize.mean")
        ),
        normalize_std=tuple(
            float(number(v, source, f"{key}normalize.std entry", above=0))
            for v in as_list(normalize["std"], source, f"{key}normalize.std")
        ),
        image_size=None
        if image_size is None
        else integer(image_size, source, f"{key}image_size", at_least=1),
    )


def parse_class_orders(raw: Any, num_classes: int, source: str) -> tuple[tuple[int, ...], ...]:
    """Each entry is ``{order: [...], sha256: ...}``; both the permutation and hash are checked."""
    if not isinstance(raw, list) or not raw:
        raise SuiteError(f"{source}: class_orders must be a non-empty list of {{order, sha256}}")
    orders = []
    for index, entry in enumerate(raw):
        where = f"{source}: class_orders[{index}]"
        if not isinstance(entry, dict):
            raise SuiteError(
                f"{where} must be a mapping {{order: [...], sha256: ...}} (the list and its "
                f"hash), got {entry!r:.80}"
            )
        check_keys(entry, {"order", "sha256"}, where, required={"order", "sha256"})
        order = [
            integer(c, source, f"class_orders[{index}] entry", at_least=0)
            for c in as_list(entry["order"], source, f"class_orders[{index}].order")
        ]
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


def parse_weights(raw: Any, source: str) -> dict[str, WeightsSpec]:
    """``{backbone: {path, sha256} | {torchvision: ENUM} | {timm: TAG}}``; checked when the
    run starts."""
    if not isinstance(raw, dict):
        raise SuiteError(
            f"{source}: weights must map backbone names to {{path, sha256}}, {{torchvision}} "
            "or {timm}"
        )
    weights = {}
    for backbone, entry in raw.items():
        where = f"{source}: weights.{backbone}"
        if isinstance(entry, dict) and "timm" in entry:
            check_keys(entry, {"timm"}, where, required={"timm"})
            weights[str(backbone)] = WeightsSpec(
                timm=name_text(entry["timm"], source, f"weights.{backbone}.timm")
            )
            continue
        if isinstance(entry, dict) and "torchvision" in entry:
            check_keys(entry, {"torchvision"}, where, required={"torchvision"})
            weights[str(backbone)] = WeightsSpec(
                torchvision=name_text(
                    entry["torchvision"], source, f"weights.{backbone}.torchvision"
                )
            )
            continue
        check_keys(entry, {"path", "sha256"}, where, required={"path", "sha256"})
        weights[str(backbone)] = WeightsSpec(
            path=name_text(entry["path"], source, f"weights.{backbone}.path"),
            sha256=name_text(entry["sha256"], source, f"weights.{backbone}.sha256"),
        )
    return weights


def parse_augmentation_block(raw: Any, source: str) -> Augmentation:
    try:
        return parse_augmentation(raw)
    except AugmentationError as error:
        raise SuiteError(f"{source}: {error}") from error


def parse_method(raw: Any, source: str) -> MethodEntry:
    if isinstance(raw, str):
        raw = {"strategy": raw}
    where = f"{source}: methods entry"
    check_keys(raw, METHOD_KEYS, where, required={"strategy"})
    config = raw.get("config") or {}
    check_keys(config, {"strategy", "framework", "training"}, f"{source}: method config",
                required=set())  # fmt: skip
    for scope, values in config.items():
        if values is not None and not isinstance(values, dict):
            raise SuiteError(f"{where}: config.{scope} must be a mapping of config keys")
    label = raw.get("label")
    if label is not None and (not isinstance(label, str) or not SAFE_LABEL.fullmatch(label)
                              or ".." in label):  # fmt: skip
        raise SuiteError(
            f"{where}: label {label!r} cannot name a results folder: use letters, digits and "
            "'.', '_', '-', '+', '@', '=' (not starting with '.', no '..'), e.g. lwf+kd"
        )
    backbone = raw.get("backbone")
    return MethodEntry(
        strategy=name_text(raw["strategy"], source, "methods entry strategy"),
        framework=name_text(raw.get("framework", "none"), source, "methods entry framework"),
        label=label,
        backbone=None
        if backbone is None
        else name_text(backbone, source, "methods entry backbone"),
        config={k: dict(v or {}) for k, v in config.items()},
    )
