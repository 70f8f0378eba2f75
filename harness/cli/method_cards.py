"""What the site's method cards say of each registered adapter, read from its code.

The leaderboard must not import torch, and the adapters do, so the command that builds the
site reads the cards here and hands them to ``build_site(cards=...)`` as plain data: for
every registered strategy and framework, its paper (the first paragraph of its module's
docstring), its class docstring as written (the procedure and every deviation from the
paper), its ``Config`` fields with their defaults and the comment above each in the source
(where the default comes from), the class variables the board depends on, which adapters of
the other kind refuse to compose with it (``Framework.refusal``), and where its code comes
from (``adapter_origin``, as records carry it under ``method.origins``).

A plugin's class is only read, never instantiated; what cannot be read (no source, a
``refusal`` that raises) is said on its card instead of failing the build.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import json
import logging
import sys
import textwrap
import tokenize
import typing
from typing import Any

from harness.api.adapters import (
    ENTRY_POINT_GROUPS,
    FRAMEWORKS,
    STRATEGIES,
    Framework,
    Strategy,
    load_adapters,
)
from harness.api.config import declared_choices, declared_range
from harness.records.provenance import adapter_origin

logger = logging.getLogger(__name__)

# The class variables that change what the board shows or allows, and what each value means.
STRATEGY_FACTS: dict[str, dict[Any, str]] = {
    "network_growth": {
        None: "keeps its network's shape after task 1 (beyond the growing head)",
        "expands": "adds a branch per task and serves them all: its cost grows with the tasks",
        "rebuilds": "replaces its network each task",
    },
    "reference": {
        None: "a method, ranked with the others",
        "lower_bound": "a reference bound (lower), not a method",
        "upper_bound": "a reference bound (upper), not a method",
    },
    "unbounded_memory": {
        False: "keeps at most the suite's exemplar budget",
        True: "keeps every past training image (allowed only for reference strategies)",
    },
}
FRAMEWORK_FACTS: dict[str, dict[Any, str]] = {
    "compresses": {
        False: "serves a model as costly as the plain strategy's",
        True: "promises a cheaper inference model than the plain strategy's (contract-tested)",
    },
}


def method_cards() -> dict[str, dict[str, Any]]:
    """Every registered strategy and framework's card, keyed ``"<kind>:<name>"`` (JSON-able)."""
    load_adapters()
    strategies = {name: STRATEGIES.get(name) for name in STRATEGIES.names()}
    frameworks = {name: FRAMEWORKS.get(name) for name in FRAMEWORKS.names()}
    refusals = {
        (s, f): _refusal(framework, strategy)
        for s, strategy in strategies.items()
        for f, framework in frameworks.items()
    }
    cards = {}
    for name, cls in strategies.items():
        refused = [{"kind": "framework", "name": f, "reason": refusals[(name, f)]}
                   for f in frameworks if refusals[(name, f)]]  # fmt: skip
        cards[f"strategy:{name}"] = adapter_card("strategy", name, cls, refusals=refused)
    for name, cls in frameworks.items():
        refused = [{"kind": "strategy", "name": s, "reason": refusals[(s, name)]}
                   for s in strategies if refusals[(s, name)]]  # fmt: skip
        cards[f"framework:{name}"] = adapter_card("framework", name, cls, refusals=refused)
    return cards


def adapter_card(
    kind: str, name: str, cls: type, *, refusals: list[dict[str, str]]
) -> dict[str, Any]:
    """One adapter's card; ``refusals``: the adapters of the other kind it cannot compose with."""
    facts = STRATEGY_FACTS if kind == "strategy" else FRAMEWORK_FACTS
    module = sys.modules.get(cls.__module__)
    description = inspect.cleandoc(cls.__doc__) if isinstance(cls.__doc__, str) else ""
    return {
        "kind": kind,
        "name": name,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "paper": first_paragraph(getattr(module, "__doc__", None)) or first_paragraph(description),
        "description": description,
        "config": config_fields(getattr(cls, "Config", None)),
        # What cilbench tune searches (harness.api.search_space), field -> distribution.
        "search_space": {
            field: domain.to_dict()
            for field, domain in sorted((getattr(cls, "search_space", None) or {}).items())
        },
        "class_vars": [
            {
                "name": var,
                "value": _json_text(getattr(cls, var, None)),
                "meaning": meanings.get(getattr(cls, var, None), ""),
            }
            for var, meanings in facts.items()
        ],  # fmt: skip
        "refusals": refusals,
        "origin": adapter_origin(cls, entry_point_groups=ENTRY_POINT_GROUPS),
    }


def first_paragraph(docstring: str | None) -> str:
    """The docstring's first paragraph on one line (a module's: the method and its paper)."""
    if not isinstance(docstring, str):
        return ""
    paragraph = inspect.cleandoc(docstring).split("\n\n", 1)[0]
    return " ".join(paragraph.split())


def config_fields(config: Any) -> dict[str, Any]:
    """The config dataclass's fields: name, type, default, and the comment saying its source.

    A field's comment is the run of comment lines right above it (and any comment after it on
    its line) in the class that declares it, so an inherited field keeps its base's comment.
    """
    if config is None or not dataclasses.is_dataclass(config):
        return {"class": getattr(config, "__qualname__", ""), "fields": [],
                "note": "its Config is not a dataclass: no fields to show"}  # fmt: skip
    comments: dict[str, tuple[str, str]] = {}
    for owner in reversed(config.__mro__):  # the subclass's own comment wins
        if dataclasses.is_dataclass(owner):
            for field, text in _field_comments(owner).items():
                comments[field] = (text, owner.__qualname__)
    fields = []
    hints = _type_hints(config)
    for field in dataclasses.fields(config):
        comment, declared_in = comments.get(field.name, ("", ""))
        fields.append(
            {
                "name": field.name,
                "type": field.type if isinstance(field.type, str) else _type_name(field.type),
                "default": _default_text(field),
                "range": _range_text(field, hints.get(field.name)),
                "comment": comment,
                "declared_in": declared_in,
            }
        )
    return {"class": config.__qualname__, "fields": fields, "note": ""}


def _field_comments(owner: type) -> dict[str, str]:
    """Field name -> its comment lines as written (without ``#``), for one class's own body."""
    try:
        source = textwrap.dedent(inspect.getsource(owner))
        body = ast.parse(source).body[0]
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (OSError, TypeError, SyntaxError, IndexError, tokenize.TokenError) as error:
        logger.warning("no source comments for %s: %s", owner.__qualname__, error)
        return {}
    lines = source.splitlines()
    own_line: dict[int, str] = {}  # line number -> a comment alone on its line
    trailing: dict[int, str] = {}  # line number -> a comment after code
    for token in tokens:
        if token.type == tokenize.COMMENT:
            text = token.string[1:].strip()
            row = token.start[0]
            alone = lines[row - 1].lstrip().startswith("#")
            (own_line if alone else trailing)[row] = text
    found: dict[str, str] = {}
    group, group_ends = "", -1  # the comment above the last field, and that field's last line
    for node in getattr(body, "body", []):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above, row = [], node.lineno - 1
        while row in own_line:
            above.insert(0, own_line[row])
            row -= 1
        if not above and group and group_ends == row:
            above = [group]  # "# a / b: ..." above two fields in a row documents both
        group, group_ends = "\n".join(above), node.end_lineno or node.lineno
        if node.lineno in trailing:
            above.append(trailing[node.lineno])
        found[node.target.id] = "\n".join(above)
    return found


def _type_hints(config: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(config)
    except Exception as error:  # a plugin's unresolvable annotation: no ranges, no crash
        logger.warning("no type hints for %s: %s", config.__qualname__, error)
        return {}


def _range_text(field: dataclasses.Field, annotation: Any) -> str:
    """The values ``resolve_config`` accepts, in words: the declared range, else "any finite
    number" for a float (never NaN or infinite), else "" (the type alone says it)."""
    optional = type(None) in typing.get_args(annotation)
    values = declared_choices(field)
    if values is not None:
        return "one of " + ", ".join(values)
    bounds = declared_range(field)
    if bounds is not None:
        return bounds.text(optional=optional)
    if annotation is float or float in typing.get_args(annotation):
        return "a finite number" + (" or null" if optional else "")
    return ""


def _default_text(field: dataclasses.Field) -> str:
    """The default as the command line's ``--set`` takes it (JSON), or "required"."""
    if field.default is not dataclasses.MISSING:
        return _json_text(field.default)
    if field.default_factory is not dataclasses.MISSING:
        return _json_text(field.default_factory())
    return "required"


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__qualname__", None) or repr(annotation)


def _refusal(framework: type[Framework], strategy: type[Strategy]) -> str | None:
    """``framework.refusal(strategy)`` on one line; a refusal that raises is said, not raised."""
    try:
        reason = framework.refusal(strategy)
    except Exception as error:  # a plugin's bug must not stop the site from building
        logger.warning("%s.refusal(%s) raised %r", framework.__qualname__,
                       strategy.__qualname__, error)  # fmt: skip
        return f"could not be checked: {framework.__qualname__}.refusal raised {error!r}"
    return " ".join(str(reason).split()) if reason else None
