"""Config resolution and registries: unknown names and keys fail with "did you mean"."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from harness.api.adapters import FRAMEWORKS, STRATEGIES, load_adapters
from harness.api.config import ConfigError, resolve_config
from harness.api.registry import Registry, UnknownNameError


@dataclass(frozen=True)
class Example:
    rate: float = 0.1
    steps: int = 3
    name: str = "a"
    cap: int | None = None


def test_defaults_and_overrides() -> None:
    assert resolve_config(Example, {}, scope="s") == Example()
    got = resolve_config(Example, {"rate": "0.5", "steps": "7", "name": "b", "cap": "4"}, scope="s")
    assert got == Example(rate=0.5, steps=7, name="b", cap=4)
    assert resolve_config(Example, {"rate": 2}, scope="s").rate == 2.0
    assert resolve_config(Example, {"cap": "null"}, scope="s").cap is None


def test_unknown_key_suggests_the_close_one() -> None:
    with pytest.raises(ConfigError, match='Did you mean "steps"'):
        resolve_config(Example, {"stesp": 3}, scope="strategy")


@pytest.mark.parametrize("key, value", [("steps", "1.5"), ("steps", True), ("rate", "fast")])
def test_wrong_types_are_refused(key, value) -> None:
    with pytest.raises(ConfigError, match=key):
        resolve_config(Example, {key: value}, scope="s")


def test_registry_lists_valid_names_and_refuses_duplicates() -> None:
    registry: Registry[object] = Registry("widget")
    registry.register("alpha")(object)
    with pytest.raises(UnknownNameError, match='Did you mean "alpha".*Valid widgets: alpha'):
        registry.get("alpah")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("alpha")(int)


def test_adapters_are_discovered_without_a_central_list() -> None:
    load_adapters()
    assert {"finetune", "joint", "lwf"} <= set(STRATEGIES.names())
    assert "none" in FRAMEWORKS.names()
