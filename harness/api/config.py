"""Resolve frozen config dataclasses from defaults and overrides, refusing unknown keys.

Values flow: dataclass defaults <- suite / method entry <- command-line ``--set`` overrides.
Command-line values arrive as strings and are parsed by the field's declared type. A field
declares its allowed range where it is declared (``lr: float = ranged(0.1, above=0)``), and
``resolve_config`` checks every field: its declared range, and for any float field, declared
or not, that it is finite. So a plain annotated dataclass is validated with no hand-written
check, and a nonsense value (``training.epochs=0``, ``framework.ratio=NaN``) fails when the
trial is resolved, before anything runs, not inside a trial or, worse, as an "ok" record.
Checks that relate two fields stay in the dataclass's ``__post_init__`` (with ``check_range``).
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
        config = config_cls(**values)
    except ConfigError:
        raise
    except (ValueError, TypeError) as error:  # a config's own check that is not a ConfigError
        raise ConfigError(f"{scope} config: {error}") from error
    check_fields(config, scope=scope)
    return config


RANGE = "cilbench.range"  # the key of a field's declared Range in its metadata
# The key of when a field was added to a config that already had records (e.g. "issue 23").
ADDED = "cilbench.added"


@dataclasses.dataclass(frozen=True)
class Range:
    """A config field's allowed values (``check_range``'s bounds); None: no such bound."""

    at_least: float | None = None
    above: float | None = None
    below: float | None = None
    at_most: float | None = None
    integer: bool = False

    def text(self, *, optional: bool = False) -> str:
        """In words, as errors and ``cilbench list --verbose`` say it."""
        return _describe_range(self.at_least, self.above, self.below, self.at_most,
                               self.integer, optional)  # fmt: skip


def ranged(
    default: Any,
    *,
    at_least: float | None = None,
    above: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
    integer: bool = False,
    added: str | None = None,
) -> Any:
    """A config field with its range declared: ``temperature: float = ranged(2.0, above=0)``.

    ``resolve_config`` refuses a value outside it (a ``None`` too, unless the field is
    annotated ``X | None``), naming the key, the value and the range. ``added``: see
    ``config_to_dict``."""
    bounds = Range(at_least, above, below, at_most, integer)
    return dataclasses.field(default=default, metadata={RANGE: bounds, ADDED: added})


def declared_range(field: dataclasses.Field) -> Range | None:
    return field.metadata.get(RANGE)


CHOICES = "cilbench.choices"  # the key of a field's allowed values in its metadata


def choice(default: str, values: tuple[str, ...], *, added: str | None = None) -> Any:
    """A config field that takes one of ``values``, e.g. a protocol detail on which reference
    implementations differ: ``ce_scope: str = choice("seen", ("seen", "new"))``. ``added``:
    see ``config_to_dict``."""
    if default not in values:
        raise ValueError(f"default {default!r} is not one of {values}")
    return dataclasses.field(default=default, metadata={CHOICES: tuple(values), ADDED: added})


def declared_choices(field: dataclasses.Field) -> tuple[str, ...] | None:
    return field.metadata.get(CHOICES)


def check_fields(config: Any, *, scope: str) -> None:
    """Every field of ``config`` within its declared range or among its declared choices,
    and every float finite."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        name, value = f"{scope}.{field.name}", getattr(config, field.name)
        optional = type(None) in typing.get_args(hints[field.name])
        bounds, values = declared_range(field), declared_choices(field)
        if values is not None and value not in values:
            raise ConfigError(f"{name}={value!r} is not allowed: it must be one of "
                              f"{', '.join(values)}")  # fmt: skip
        if bounds is not None:
            check_range(name, value, at_least=bounds.at_least, above=bounds.above,
                        below=bounds.below, at_most=bounds.at_most, integer=bounds.integer,
                        optional=optional)  # fmt: skip
        elif isinstance(value, float) and not math.isfinite(value):
            check_range(name, value)  # says: it must be a finite number


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
    """The config as records store it, and as its hash and the run id read it.

    A field declared with ``added=`` (a choice added to an adapter that already has records)
    is left out while it holds its default. The records made before it existed then keep their
    run ids and config hashes, and still say exactly what ran: the default is what they ran.
    Set to anything else, the field is written, so the config names every choice it changes."""
    values = dataclasses.asdict(config)
    for field in dataclasses.fields(config):
        if field.metadata.get(ADDED) and values[field.name] == field.default:
            del values[field.name]
    return values


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
