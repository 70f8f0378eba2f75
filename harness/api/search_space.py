"""What an adapter may be tuned over, declared beside its config: ``cilbench tune`` searches it.

A strategy or framework lists its tunable config fields with their distributions::

    class LwF(Strategy):
        Config = LwFConfig
        search_space = {"lambda_kd": loguniform(0.1, 10.0), "temperature": uniform(1.0, 4.0)}

The names mirror Ray Tune's sampling primitives (``tune.loguniform``, ``tune.uniform``,
``tune.randint``, ``tune.choice``) and ``harness.tuning.space`` turns them into those. They are
our own small values rather than Ray's objects so that declaring a space imports nothing heavy
(``cilbench list`` and the leaderboard stay Ray-free), a space is checked against the config's
declared ranges before any trial runs, and a tuned config's provenance can state the space as
plain JSON.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.api.config import ConfigError, declared_choices, resolve_config


@dataclass(frozen=True)
class Domain:
    """One field's distribution: ``kind`` is the Ray Tune primitive it becomes."""

    kind: str  # "uniform", "loguniform", "randint" (upper bound excluded) or "choice"
    low: float | None = None
    high: float | None = None
    values: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "choice":
            return {"kind": "choice", "values": list(self.values)}
        return {"kind": self.kind, "low": self.low, "high": self.high}

    def extremes(self) -> tuple[Any, ...]:
        """The values a sample can come closest to: checked against the field's range."""
        if self.kind == "choice":
            return self.values
        top = self.high - 1 if self.kind == "randint" else self.high
        return (self.low, top)


def uniform(low: float, high: float) -> Domain:
    _check_bounds(low, high, "uniform")
    return Domain("uniform", float(low), float(high))


def loguniform(low: float, high: float) -> Domain:
    _check_bounds(low, high, "loguniform")
    if low <= 0:
        raise ValueError(f"loguniform needs 0 < low, got {low}")
    return Domain("loguniform", float(low), float(high))


def randint(low: int, high: int) -> Domain:
    """An integer in [low, high), as ``tune.randint``."""
    _check_bounds(low, high, "randint")
    return Domain("randint", int(low), int(high))


def choice(values: tuple[Any, ...] | list[Any]) -> Domain:
    if not values:
        raise ValueError("choice needs at least one value")
    return Domain("choice", values=tuple(values))


def _check_bounds(low: float, high: float, kind: str) -> None:
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{kind} needs finite low < high, got {low}, {high}")


def check_search_space(space: Mapping[str, Domain], config_cls: type, *, scope: str) -> None:
    """Refuse a space that names no field of the config, or that can sample a value the
    config would refuse (outside a declared range or choice): the tuner must never spend its
    budget on trials that cannot start."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)} if space else {}
    for name, domain in space.items():
        key = f"{scope}.{name}"
        if not isinstance(domain, Domain):
            raise ConfigError(f"search space {key}: {domain!r} is not a search-space domain "
                              "(use harness.api.search_space: uniform, loguniform, randint, "
                              "choice)")  # fmt: skip
        if name not in fields:
            raise ConfigError(f"search space {key}: the config has no field {name!r}; its "
                              f"fields are {', '.join(sorted(fields)) or 'none'}")  # fmt: skip
        allowed = declared_choices(fields[name])
        for value in domain.extremes():
            if allowed is not None and value not in allowed:
                raise ConfigError(f"search space {key} can sample {value!r}, which is not one "
                                  f"of the field's choices {', '.join(allowed)}")  # fmt: skip
            try:
                resolve_config(config_cls, {name: value}, scope=scope)
            except ConfigError as error:
                raise ConfigError(f"search space {key} can sample {value!r}, which the config "
                                  f"refuses: {error}") from None  # fmt: skip
