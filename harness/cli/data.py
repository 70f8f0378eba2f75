"""``cilbench data``: which datasets are here and in what state; verify or fetch one.

    cilbench data                          table: dataset, status, files, cache entries, location
    cilbench data --verify [NAME]          re-hash every file (official md5s included)
    cilbench data --fetch NAME             download with torchvision (needs internet)

Bad or missing data raises ``DatasetUnavailableError``: the CLI prints it and exits 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import EXIT_OK

ALL = "all"


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """Register ``data`` on the cilbench subparsers (handler returns an exit code)."""
    data = subparsers.add_parser(
        "data",
        help="show the state of every dataset; verify or fetch one",
        description=(
            "Without options: a table of every registered dataset (ok / missing / corrupt / not "
            "verified), where it is looked for, its file count and its decoded-image caches. "
            "Only --fetch touches the network."
        ),
    )
    action = data.add_mutually_exclusive_group()
    action.add_argument("--fetch", metavar="NAME", help="download NAME into the data root")
    action.add_argument(
        "--verify",
        metavar="NAME",
        nargs="?",
        const=ALL,
        help="re-hash every file of NAME (default: of every dataset that is present)",
    )
    data.add_argument(
        "--data-root",
        type=Path,
        help="where datasets live or download to "
        "(default: $CILBENCH_DATA or ~/.cache/cilbench/data)",
    )
    data.set_defaults(handler=command_data)


def command_data(args: argparse.Namespace) -> int:
    if args.fetch:
        return _fetch(args.fetch, args.data_root)
    if args.verify:
        return _verify(args.verify, args.data_root)
    return _table(args.data_root)


def _root(data_root: Path | None) -> Path:
    from harness.data.datasets import default_data_root

    return Path(data_root).expanduser() if data_root else default_data_root()


def _table(data_root: Path | None) -> int:
    from harness.data.datasets import DATASETS, dataset_status

    root = _root(data_root)
    rows = [dataset_status(name, root) for name in DATASETS.names()]
    print(f"data root: {root}")
    header = ("dataset", "status", "files", "caches", "location")
    cells = [header] + [(r.name, r.state, str(r.file_count), str(r.cache_entries), r.location)
                        for r in rows]  # fmt: skip
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    for row, status in zip(cells, [None, *rows], strict=True):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
        if status is not None and status.detail:
            print(f"    {status.detail.splitlines()[0]}")
    if any(r.state == "not verified" for r in rows):
        print("not verified: files present, no manifest yet; `cilbench data --verify NAME` "
              "hashes them once (a run does it by itself).")  # fmt: skip
    return EXIT_OK


def _verify(name: str, data_root: Path | None) -> int:
    from harness.data.datasets import (
        DATASETS,
        DatasetUnavailableError,
        check_dataset,
        dataset_status,
    )

    root = _root(data_root)
    names = DATASETS.names() if name == ALL else [DATASETS.get(name).name]
    failures = []
    for each in names:
        if name == ALL and dataset_status(each, root).state == "missing":
            print(f"{each}: missing (skipped)")
            continue
        try:
            check_dataset(each, root, full=True)
        except DatasetUnavailableError as error:
            print(f"{each}: FAILED")
            failures.append(str(error))
            continue
        print(f"{each}: ok")
    if failures:
        raise DatasetUnavailableError("\n\n".join(failures))
    return EXIT_OK


def _fetch(name: str, data_root: Path | None) -> int:
    from harness.data.datasets import dataset_status, fetch_dataset

    root = _root(data_root)
    fetch_dataset(name, root)
    status = dataset_status(name, root)
    print(f"{name}: {status.state} in {status.location} ({status.file_count} files)")
    return EXIT_OK
