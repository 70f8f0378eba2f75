"""Method cards: one page per strategy and framework on the board, and their index.

A card says what a method is: its paper, its adapter's docstring as written (the procedure and
every deviation from the paper), its config defaults with the comment that names each one's
source, the class variables the board depends on, which adapters of the other kind refuse it,
and where its code comes from, both where the site was built and as the records shown say.
Then every entry of the board that uses it.

The cards' content is read from the adapters' code, which imports torch, so it comes in as
plain data (``harness.cli.method_cards.method_cards``, passed to ``build_site(cards=...)``);
this module only lays it out. All of it is untrusted text (a plugin writes its own
docstrings): the templates escape every string, and no docstring markup becomes HTML beyond
paragraphs, lists and ``code`` spans, which are parsed here into plain pieces.

Pages: ``methods/<kind>-<name>.html`` for each card of a method with an entry on the board,
and ``methods/index.html`` listing them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.leaderboard.files import template_environment, write_page

KINDS = ("strategy", "framework")
METHODS_INDEX = "methods/index.html"
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
LIST_ITEM = re.compile(r"(?:[-*]|\d+[.)])\s+")
CODE_SPAN = re.compile(r"``(.+?)``")


def card_href(kind: str, name: str) -> str:
    """The card page of ``kind`` ("strategy" or "framework") ``name``, from the site's root."""
    if SAFE_NAME.fullmatch(name) and name not in (".", ".."):
        return f"methods/{kind}-{name}.html"
    return f"methods/{kind}-{hashlib.sha256(name.encode()).hexdigest()[:16]}.html"


def card_hrefs(cards: Mapping[str, Mapping[str, Any]] | None) -> dict[str, str]:
    """``"<kind>:<name>"`` -> card page, for every card given (none without cards)."""
    hrefs = {}
    for card in (cards or {}).values():
        kind, name = str(card["kind"]), str(card["name"])
        hrefs[f"{kind}:{name}"] = card_href(kind, name)
    return hrefs


def entry_card_links(entry: Mapping[str, Any], hrefs: Mapping[str, str]) -> dict[str, Any]:
    """The entry's strategy's and framework's card pages (None where there is no card)."""
    return {kind: hrefs.get(f"{kind}:{entry[kind]}") for kind in KINDS}


def method_uses(
    entries: Iterable[Mapping[str, Any]], *, suite: str, suite_href: str, current: bool
) -> list[dict[str, Any]]:
    """What the cards show of a suite version's entries (small: it may cross processes)."""
    uses = []
    for entry in entries:
        origins = [(r.get("method") or {}).get("origins") or {} for r in entry["records"]]
        uses.append(
            {
                "strategy": str(entry["strategy"]),
                "framework": str(entry["framework"]),
                "display": str(entry["display"]),
                "href": entry["href"],
                "suite": suite,
                "suite_href": suite_href,
                "current": current,
                "origins": {
                    kind: sorted(
                        {origin_text(o.get(kind)) for o in origins if isinstance(o, Mapping)}
                        or {origin_text(None)}
                    )
                    for kind in KINDS
                },
            }
        )
    return uses


def origin_text(origin: Any) -> str:
    """One adapter's origin (``adapter_origin``'s dict) in words, e.g. "plugin cl-foo 1.2"."""
    if not isinstance(origin, Mapping) or not origin.get("origin"):
        return "not recorded"
    kind = str(origin["origin"])
    if kind == "plugin":
        package = origin.get("package") or "an unknown package"
        version = origin.get("version")
        return f"plugin {package} {version}" if version else f"plugin {package}"
    module = origin.get("module")  # where code no distribution holds was loaded from
    return f"{kind} ({module})" if kind == "unpackaged" and module else kind


def write_method_cards(
    out_dir: Path,
    cards: Mapping[str, Mapping[str, Any]] | None,
    uses: list[dict[str, Any]],
) -> tuple[str | None, list[str]]:
    """The card pages and their index; returns the index's href (None: none) and every file.

    Without ``cards`` nothing is written. A card is written for each method with an entry on
    the board; the index also names the methods on the board without a card, and the
    registered ones with no entry yet.
    """
    if cards is None or not uses:
        return None, []
    env = template_environment()
    hrefs = card_hrefs(cards)
    by_key = {f"{card['kind']}:{card['name']}": card for card in cards.values()}
    # Current suite versions first, then archived ones.
    uses = sorted(uses, key=lambda u: (not u["current"], u["suite"], u["display"], u["href"]))
    listed: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    written = []
    on_board = {f"{kind}:{use[kind]}" for use in uses for kind in KINDS}
    pages = {key: href for key, href in hrefs.items() if key in on_board}  # what is written
    for key in sorted(on_board):
        kind, name = key.split(":", 1)
        mine = [use for use in uses if use[kind] == name]
        card = by_key.get(key)
        if card is None:
            listed[kind].append({"name": name, "href": None, "paper": "", "origin": "",
                                 "entries": len(mine)})  # fmt: skip
            continue
        page = card_page(card, mine, pages)
        write_page(env, "method_card.html.j2", out_dir / hrefs[key], root="../", card=page)
        written.append(hrefs[key])
        listed[kind].append({"name": name, "href": hrefs[key], "paper": page["paper"],
                             "origin": page["origin"], "entries": len(mine)})  # fmt: skip
    idle = [key.replace(":", " ", 1) for key in sorted(by_key) if key not in on_board]
    write_page(env, "methods_index.html.j2", out_dir / METHODS_INDEX, root="../",
               methods=listed, idle=idle)  # fmt: skip
    return METHODS_INDEX, [*written, METHODS_INDEX]


def card_page(
    card: Mapping[str, Any], uses: list[dict[str, Any]], pages: Mapping[str, str]
) -> dict[str, Any]:
    """One card as ``method_card.html.j2`` shows it: every field present, every text a string.

    ``uses``: the entries on the board that use the method; ``pages``: the other card pages
    written (``"<kind>:<name>"`` -> href), which its refusals link to.
    """
    kind, name = str(card["kind"]), str(card["name"])
    config = card.get("config") or {}
    config_class = str(config.get("class") or "")
    return {
        "kind": kind,
        "name": name,
        "class": str(card.get("class") or ""),
        "paper": str(card.get("paper") or ""),
        "blocks": docstring_blocks(str(card.get("description") or "")),
        "config_class": config_class,
        "config_note": str(config.get("note") or ""),
        "fields": [_field_row(field, config_class) for field in config.get("fields") or ()],
        "class_vars": [
            {key: str(var.get(key) or "") for key in ("name", "value", "meaning")}
            for var in card.get("class_vars") or ()
        ],
        "refusals": [
            {
                "kind": str(refusal.get("kind") or ""),
                "name": str(refusal.get("name") or ""),
                "href": pages.get(f"{refusal.get('kind')}:{refusal.get('name')}"),
                "reason": segments(str(refusal.get("reason") or "")),
            }
            for refusal in card.get("refusals") or ()
        ],
        "origin": origin_text(card.get("origin")),
        "recorded_origins": sorted({text for use in uses for text in use["origins"][kind]}),
        "entries": uses,
    }


def _field_row(field: Mapping[str, Any], config_class: str) -> dict[str, Any]:
    name = str(field.get("name") or "")
    comment = " ".join(str(field.get("comment") or "").split())
    # "temperature: 2.0 for ..." above ``temperature``: the name is in its own column.
    comment = re.sub(rf"^{re.escape(name)}\s*:\s*", "", comment) if name else comment
    declared_in = str(field.get("declared_in") or "")
    return {
        "name": name,
        "type": str(field.get("type") or ""),
        "default": _text(field.get("default")),
        "source": segments(comment),
        "declared_in": declared_in if declared_in != config_class else "",
    }


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=repr)


def docstring_blocks(text: str) -> list[dict[str, Any]]:
    """A docstring as paragraphs and lists ("- ", "* ", "1. " items, indented continuations).

    Each block is ``{"kind": "p", "segments": ...}`` or ``{"kind": "ul" | "ol", "items":
    [segments, ...]}``; ``segments`` (see ``segments``) keep ````code```` spans apart.
    """
    paragraphs = re.split(r"\n[ \t]*\n", text.strip()) if text.strip() else []
    return [block for paragraph in paragraphs for block in _paragraph_blocks(paragraph)]


def _paragraph_blocks(paragraph: str) -> list[dict[str, Any]]:
    """One paragraph of a docstring: its text lines, and list items, in order."""
    blocks: list[dict[str, Any]] = []
    lines: list[str] = []
    items: list[list[str]] = []
    ordered = False

    def flush() -> None:
        if lines:
            blocks.append({"kind": "p", "segments": segments(" ".join(lines))})
        if items:
            blocks.append({"kind": "ol" if ordered else "ul",
                           "items": [segments(" ".join(item)) for item in items]})  # fmt: skip
        lines.clear()
        items.clear()

    for line in paragraph.splitlines():
        marker = LIST_ITEM.match(line)
        if marker:
            if not items:
                flush()
                ordered = marker.group()[0].isdigit()
            items.append([line[marker.end() :]])
        elif items and line[:1].isspace():
            items[-1].append(line)  # an item's continuation line
        else:
            if items:
                flush()
            lines.append(line)
    flush()
    return blocks


def segments(text: str) -> list[tuple[str, bool]]:
    """``text`` with its whitespace collapsed, in pieces: (piece, whether it is ``code``)."""
    pieces = CODE_SPAN.split(" ".join(text.split()))
    return [(piece, k % 2 == 1) for k, piece in enumerate(pieces) if piece]
