"""``cilbench list``: the registered suites, strategies, frameworks, backbones and datasets."""

from __future__ import annotations

import argparse

from harness.cli.common import EXIT_OK

KINDS = ["suites", "strategies", "frameworks", "backbones", "datasets"]


def add_command(commands: argparse._SubParsersAction) -> None:
    lister = commands.add_parser("list", help="list suites, strategies, frameworks, backbones")
    lister.add_argument("what", nargs="?", default="all", choices=["all", *KINDS])
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
        if args.what in ("all", what):
            print(f"{what}: {', '.join(names)}")
    return EXIT_OK
