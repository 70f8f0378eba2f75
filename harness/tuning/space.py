"""A method's search space: its strategy's and framework's declared spaces, keyed by scope."""

from __future__ import annotations

from typing import Any

from harness.api.adapters import FRAMEWORKS, STRATEGIES
from harness.api.config import ConfigError
from harness.api.search_space import Domain, check_search_space


class NothingToTuneError(ConfigError):
    """The method declares no search space: there is nothing to tune."""


def method_space(strategy: str, framework: str) -> dict[str, Domain]:
    """``{"strategy.lambda_kd": Domain, "framework.temperature": Domain, ...}``, each checked
    against its config (a space that could sample a refused value fails here, at once)."""
    space: dict[str, Domain] = {}
    for scope, cls in (("strategy", STRATEGIES.get(strategy)),
                       ("framework", FRAMEWORKS.get(framework))):  # fmt: skip
        declared = getattr(cls, "search_space", {}) or {}
        check_search_space(declared, cls.Config, scope=scope)
        space.update({f"{scope}.{name}": domain for name, domain in declared.items()})
    if not space:
        raise NothingToTuneError(
            f"{strategy}+{framework} declares no search space (search_space = {{...}} on the "
            "strategy or framework class, see harness/api/search_space.py): nothing to tune"
        )
    return space


def space_to_json(space: dict[str, Domain]) -> dict[str, Any]:
    return {key: domain.to_dict() for key, domain in sorted(space.items())}


def with_sampled(
    overrides: dict[str, dict[str, Any]], sampled: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The entry's config overrides with the sampled values laid over them."""
    merged = {scope: dict(values) for scope, values in overrides.items()}
    for key, value in sampled.items():
        scope, _, name = key.partition(".")
        merged.setdefault(scope, {})[name] = value
    return merged


def plain_values(sampled: dict[str, Any]) -> dict[str, Any]:
    """Numpy scalars (what Ray samples) as Python numbers, for JSON and configs."""
    return {key: value.item() if hasattr(value, "item") else value
            for key, value in sorted(sampled.items())}  # fmt: skip
