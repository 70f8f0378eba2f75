"""JSON and YAML that users hand in, parsed so that a hostile shape costs no more than its size.

Suites, records, dataset and site manifests and command-line config values all come through
here, so one set of limits holds for every file a user can put in front of the harness:

- nesting deeper than ``MAX_DEPTH`` levels is refused by a flat scan *before* anything that
  recurses sees the text (PyYAML's composer and constructor, ``json``'s decoder, and the
  recursive checks that run on a parsed record all recurse once per level: 20 kB of ``[`` used
  to cost a second of CPU and end in ``RecursionError``);
- YAML anchors and aliases are refused (nine levels of ten aliases turn kilobytes into
  gigabytes: "billion laughs"), and so is a key repeated in one mapping (YAML keeps the last
  value silently).

The YAML scan reads libyaml's event stream where PyYAML was built with it (every PyPI wheel
is) and PyYAML's pure-Python parser otherwise (the same refusals; about 0.2 s for the worst
flow nesting instead of about 1 ms). Torch- and Ray-free: the records and leaderboard side use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Hashable
from typing import Any

import yaml

# The deepest file the harness writes or ships nests 6 levels (a suite's methods' configs);
# 32 leaves room for any honest file and keeps every recursive reader far from Python's limit.
MAX_DEPTH = 32

_EVENT_PARSER = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
# A JSON string (to skip: brackets inside strings do not nest) or a bracket. An unterminated
# string runs to the end of the text, so the scan stays linear on any input; json.loads
# rejects such a text afterwards anyway.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\Z)|[\[{]|[\]}]', re.DOTALL)
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_INNERMOST_PAIR = re.compile(r"\[\]|\{\}")


class UntrustedInputError(ValueError):
    """Text that is not valid JSON/YAML or has a refused shape: ``"<source>: <problem>"``, the
    source being a file name or a flag, the problem saying what to change."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.problem = problem


def load_json(text: str, *, source: str) -> Any:
    """``json.loads`` with nesting beyond ``MAX_DEPTH`` refused before the decoder recurses."""
    if not _shallow(text):
        _refuse_deep_json(text, source)
    try:
        return json.loads(text)
    except RecursionError:  # unreachable after the scan; no traceback escapes if it is not
        raise UntrustedInputError(source, "not valid JSON: nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, and integers of more digits than Python reads
        raise UntrustedInputError(source, f"not valid JSON: {error}") from None


def _shallow(text: str) -> bool:
    """True when ``text``'s brackets pair up within ``MAX_DEPTH`` levels. Fast (every step is
    a C loop; a records folder is read at once): drop the strings and all but the brackets,
    then strip the innermost pairs once per level. False says only "look closer"."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    for _ in range(MAX_DEPTH):
        if not brackets:
            return True
        brackets = _INNERMOST_PAIR.sub("", brackets)  # one level, whichever the bracket
    return not brackets


def _refuse_deep_json(text: str, source: str) -> None:
    """The exact scan, token by token: refuses nesting beyond ``MAX_DEPTH`` at the character
    where it starts (unpaired brackets are left to the decoder's own error)."""
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise UntrustedInputError(
                    source,
                    f"not valid JSON: nested more than {MAX_DEPTH} levels deep "
                    f"(at character {token.start()}); no file the harness reads nests that deep",
                )
        elif bracket in "]}":
            depth -= 1


def load_yaml(text: str, *, source: str) -> Any:
    """``yaml.safe_load`` without anchors, aliases, duplicate keys or nesting beyond
    ``MAX_DEPTH``; the first two and the depth are refused from the flat event stream."""
    try:
        _refuse_hostile_events(text)
        return yaml.load(text, Loader=_NoDuplicateKeysLoader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as error:
        raise UntrustedInputError(source, f"not valid YAML: {error}") from None
    except RecursionError:  # unreachable after the scan; no traceback escapes if it is not
        raise UntrustedInputError(source, "not valid YAML: nested too deeply") from None
    except ValueError as error:  # e.g. an integer of more digits than Python converts
        raise UntrustedInputError(source, f"not valid YAML: {error}") from None


def _refuse_hostile_events(text: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=_EVENT_PARSER):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "YAML anchors and aliases (&name, *name) are not allowed here; "
                "write the values out", event.start_mark,
            )  # fmt: skip
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep; no file the "
                    "harness reads nests that deep", event.start_mark,
                )  # fmt: skip
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


class _NoDuplicateKeysLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key repeated in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # ``<<:`` merges are checked by flatten_mapping
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, Hashable) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                    )
                if isinstance(key, Hashable):
                    seen.add(key)
        return super().construct_mapping(node, deep=deep)
