"""``cilbench list``: the registered suites, strategies, frameworks, backbones and datasets;
``--verbose``: each strategy's and framework's origin (built-in, or plugin package and
version), paper, and config keys with their defaults and allowed values."""

from __future__ import annotations

import argparse

from harness.cli.common import EXIT_OK

KINDS = ["suites", "strategies", "frameworks", "backbones", "datasets"]


def add_command(commands: argparse._SubParsersAction) -> None:
    lister = commands.add_parser("list", help="list suites, strategies, frameworks, backbones")
    lister.add_argument("what", nargs="?", default="all", choices=["all", *KINDS])
    lister.add_argument(
        "--verbose", "-v", action="store_true",
        help="each strategy and framework: origin, paper, config keys, defaults and ranges",
    )  # fmt: skip
    lister.set_defaults(handler=command_list)


def command_list(args: argparse.Namespace) -> int:
    from harness.api.adapters import FRAMEWORKS, STRATEGIES, load_adapters
    from harness.data.datasets import DATASETS
    from harness.data.suite import list_suites
    from harness.models.backbones import BACKBONES

    load_adapters()
    listings = {
        "suites": list_suites(),
        "strategies": STRATEGIES.names(),
        "frameworks": FRAMEWORKS.names(),
        "backbones": BACKBONES.names(),
        "datasets": DATASETS.names(),
    }
    for what, names in listings.items():
        if args.what not in ("all", what):
            continue
        if args.verbose and what in ADAPTER_KINDS:
            print(f"{what}:")
            for name in names:
                print(adapter_details(ADAPTER_KINDS[what], name))
        else:
            print(f"{what}: {', '.join(names)}")
    return EXIT_OK


ADAPTER_KINDS = {"strategies": "strategy", "frameworks": "framework"}


def adapter_details(kind: str, name: str) -> str:
    """An adapter's block of ``list --verbose``: what its method card says, as text."""
    from harness.cli.method_cards import adapter_card

    registry = _registry(kind)
    card = adapter_card(kind, name, registry.get(name), refusals=[])
    origin = card["origin"]
    where = (
        "built-in"
        if origin["origin"] == "built-in"
        else f"plugin {origin.get('package') or origin.get('module')} {origin.get('version') or ''}"
    ).strip()
    lines = [f"  {name}  ({where}; {card['class']})"]
    if card["paper"]:
        lines.append(f"    paper: {card['paper']}")
    config = card["config"]
    if not config["fields"]:
        lines.append(f"    config: none{' (' + config['note'] + ')' if config['note'] else ''}")
    for field in config["fields"]:
        allowed = f"; {field['range']}" if field["range"] else ""
        lines.append(f"    {kind}.{field['name']}: {field['type']} = {field['default']}{allowed}")
        # The field's comment: where its default comes from, and each choice's source.
        lines += [f"        # {line}" for line in field["comment"].splitlines() if line]
    for field, domain in card["search_space"].items():
        shape = domain.get("values") or f"{domain['low']:g} to {domain['high']:g}"
        lines.append(f"    tunable: {kind}.{field} ~ {domain['kind']} {shape} (cilbench tune)")
    return "\n".join(lines)


def _registry(kind: str):  # noqa: ANN202 (a Registry of adapter classes)
    from harness.api.adapters import FRAMEWORKS, STRATEGIES

    return STRATEGIES if kind == "strategy" else FRAMEWORKS
