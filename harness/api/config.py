"""Resolve frozen config dataclasses from defaults and overrides, refusing unknown keys.

Values flow: dataclass defaults <- suite / method entry <- command-line ``--set`` overrides.
Command-line values arrive as strings and are parsed by the field's declared type. Each config
dataclass checks the range of every value in ``__post_init__`` (with ``check_range``), so a
nonsense value (``training.epochs=0``, ``framework.ratio=NaN``) fails when the trial is
resolved, before anything runs, not inside a trial or, worse, as an "ok" record.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from harness.api.registry import did_you_mean
from harness.records.safe_parse import UntrustedInputError, load_json


class ConfigError(ValueError):
    """A config key or value that does not fit the adapter's config dataclass."""


def resolve_config(config_cls: type, overrides: Mapping[str, Any], *, scope: str) -> Any:
    """Build ``config_cls`` from its defaults updated by ``overrides`` (keys are field names)."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    values = {}
    for key, value in overrides.items():
        if key not in fields:
            valid = sorted(fields)
            raise ConfigError(
                f"unknown {scope} config key {key!r}.{did_you_mean(key, valid)} "
                f"Valid keys: {', '.join(valid) or '(none: this adapter has no hyperparameters)'}."
            )
        values[key] = _coerce(value, hints[key], f"{scope}.{key}")
    try:
        return config_cls(**values)
    except ConfigError:
        raise
    except (ValueError, TypeError) as error:  # a config's own check that is not a ConfigError
        raise ConfigError(f"{scope} config: {error}") from error


def check_range(
    name: str,
    value: Any,
    *,
    at_least: float | None = None,
    above: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
    integer: bool = False,
    optional: bool = False,
) -> None:
    """Refuse ``value`` unless it is a finite number (an integer if ``integer``) within the
    bounds given (``optional``: None is allowed too); the error names the key, the value and
    the allowed range. NaN and infinities are always refused."""
    if optional and value is None:
        return
    allowed = _describe_range(at_least, above, below, at_most, integer, optional)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or (integer and not isinstance(value, int)) or not math.isfinite(value):
        raise ConfigError(f"{name}={value!r} is not allowed: it must be {allowed}")
    inside = (
        (at_least is None or value >= at_least)
        and (above is None or value > above)
        and (below is None or value < below)
        and (at_most is None or value <= at_most)
    )
    if not inside:
        raise ConfigError(f"{name}={value!r} is out of range: it must be {allowed}")


def _describe_range(
    at_least: float | None,
    above: float | None,
    below: float | None,
    at_most: float | None,
    integer: bool,
    optional: bool,
) -> str:
    kind = "an integer" if integer else "a finite number"
    low = f"[{at_least}" if at_least is not None else f"({above}" if above is not None else None
    high = f"{below})" if below is not None else f"{at_most}]" if at_most is not None else None
    if low and high:
        bounds = f" in {low}, {high}"
    elif low:
        bounds = f" >= {at_least}" if at_least is not None else f" > {above}"
    elif high:
        bounds = f" < {below}" if below is not None else f" <= {at_most}"
    else:
        bounds = ""
    return f"{kind}{bounds}" + (" or null" if optional else "")


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    """Parse strings from the command line; check the type of everything else."""
    target = _concrete_type(annotation)
    if isinstance(value, str) and target is not str:
        try:
            value = load_json(value, source=name)
        except UntrustedInputError as error:
            shown = value if len(value) <= 60 else value[:60] + "..."
            raise ConfigError(
                f"{name}={shown!r} is not a valid {target.__name__} ({error.problem})"
            ) from None
    if value is None and type(None) in typing.get_args(annotation):
        return None
    if target is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if target in (list, tuple) and isinstance(value, list | tuple):
        return target(value)
    if not isinstance(value, target) or (target is int and isinstance(value, bool)):
        raise ConfigError(f"{name}={value!r} should be a {target.__name__}")
    return value


def _concrete_type(annotation: Any) -> Any:
    """``float`` for ``float``; the first non-None member for ``X | None``; origin for generics."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _concrete_type(members[0])
    return origin or annotation
