"""``harness.api`` is the adapter author's one import surface, and the contract is typed."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import harness.api as api
from harness.api.registry import Registry


def test_every_name_of_the_surface_resolves_to_its_defining_module() -> None:
    assert len(api.__all__) > 20
    for name in api.__all__:
        module = importlib.import_module(api._MODULE_OF[name])
        assert getattr(api, name) is getattr(module, name), name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Stratgy'"):
        api.Stratgy  # noqa: B018


def test_config_and_registry_import_without_torch() -> None:
    code = "import sys, harness.api.config, harness.api.registry; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip
    assert out.strip() == "False"


def test_a_registry_with_a_base_refuses_what_does_not_subclass_it() -> None:
    class Base:
        pass

    class Good(Base):
        pass

    registry: Registry[type[Base]] = Registry("widget", base=Base)
    assert registry.register("good")(Good) is Good
    with pytest.raises(TypeError, match="widget 'bad'.*must be a subclass of .*Base"):
        registry.register("bad")(object)
    with pytest.raises(TypeError, match="must be a subclass"):
        registry.register("function")(lambda: Good())
    assert registry.names() == ["good"]


def test_the_adapter_registries_check_their_bases() -> None:
    assert api.STRATEGIES.base is api.Strategy and api.FRAMEWORKS.base is api.Framework
    with pytest.raises(TypeError, match="harness.api.adapters.Strategy"):
        api.STRATEGIES.register("not_a_strategy")(api.Framework)


def test_a_framework_declares_what_serves_and_refuses_to_serve_before_learning() -> None:
    framework = api.Framework(None, context=None)  # type: ignore[arg-type]
    assert framework.served is None
    with pytest.raises(RuntimeError, match="no task learned yet"):
        framework.serving()
