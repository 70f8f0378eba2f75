"""``cilbench pretrain``: pre-train a teacher offline on a source disjoint from the suites."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import EXIT_OK, UsageError, add_data_root, log


def add_command(commands: argparse._SubParsersAction) -> None:
    pretrain = commands.add_parser(
        "pretrain",
        help="pre-train a teacher backbone offline on a source disjoint from the suites",
        description="Train a backbone on a pre-training source with a fixed recipe (CPU, "
        "deterministic) and write its state dict plus a JSON recipe with the checkpoint's "
        "sha256, to use in a suite's weights: block.",
    )
    pretrain.add_argument("--backbone", default="compact_cnn", help="backbone to pre-train")
    pretrain.add_argument(
        "--source", default="fashion-mnist-8x8", help="pre-training source (default: %(default)s)"
    )
    pretrain.add_argument(
        "--out", type=Path, required=True, help="checkpoint file (.pt); the recipe goes beside it"
    )
    pretrain.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="recipe override, e.g. --set epochs=5 (keys: harness.models.pretrain.PretrainRecipe)",
    )
    add_data_root(pretrain)
    pretrain.add_argument(
        "--overwrite", action="store_true", help="replace an existing checkpoint at --out"
    )
    pretrain.set_defaults(handler=command_pretrain)


def command_pretrain(args: argparse.Namespace) -> int:
    from harness.api.config import resolve_config
    from harness.models.pretrain import PretrainRecipe, run_pretrain

    overrides: dict[str, str] = {"backbone": args.backbone, "source": args.source}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE (e.g. --set epochs=5)")
        overrides[key] = value
    recipe = resolve_config(PretrainRecipe, overrides, scope="pretrain")
    if args.out.exists() and not args.overwrite:
        raise UsageError(f"{args.out} exists; pass --overwrite to replace it")
    result = run_pretrain(recipe, out=args.out, data_root=args.data_root)
    log.info(
        "pretrained %s on %s in %.1f s: source train %.2f%%, test %.2f%%\n"
        "  checkpoint %s (sha256 %s)\n  recipe %s",
        recipe.backbone, recipe.source, result.wall_time_s, result.train_acc_pct,
        result.test_acc_pct, result.checkpoint, result.sha256, result.recipe_json,
    )  # fmt: skip
    return EXIT_OK
