"""Resolve frozen config dataclasses from defaults and overrides, refusing unknown keys.

Values flow: dataclass defaults <- suite / method entry <- command-line ``--set`` overrides.
Command-line values arrive as strings and are parsed by the field's declared type.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any

from harness.registry import did_you_mean


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
    return config_cls(**values)


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    """Parse strings from the command line; check the type of everything else."""
    target = _concrete_type(annotation)
    if isinstance(value, str) and target is not str:
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{name}={value!r} is not a valid {target.__name__}") from error
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
