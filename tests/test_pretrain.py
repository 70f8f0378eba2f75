"""Offline teacher pre-training (harness/models/pretrain.py) and the committed checkpoint."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.data.datasets import DEBIAN_FASHION_MNIST
from harness.models.backbones import create_backbone
from harness.models.pretrain import (
    PretrainRecipe,
    load_source,
    run_pretrain,
    save_backbone,
    sha256_of,
    train_backbone,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = REPO_ROOT / "checkpoints" / "compact_cnn-fmnist8.pt"
BLOBS = PretrainRecipe(source="synthetic-blobs", epochs=2, batch_size=32)


def test_a_saved_backbone_loads_through_create_backbone_unchanged(tmp_path: Path) -> None:
    data = load_source(BLOBS)
    trained, _, _ = train_backbone(BLOBS, data)
    out = tmp_path / "blobs.pt"
    digest = save_backbone(trained, out)

    assert digest == sha256_of(out)
    state = torch.load(out, weights_only=True)
    assert not any(key.startswith(("head.", "fc.")) for key in state)
    loaded = create_backbone("compact_cnn", in_channels=1, input_size=8, weights=str(out)).module
    loaded.eval()
    with torch.no_grad():
        assert torch.equal(loaded(data.test.x), trained.backbone(data.test.x))


def test_pretrain_writes_its_recipe_with_the_sha256_and_is_deterministic(tmp_path: Path) -> None:
    data = load_source(BLOBS)
    first = run_pretrain(BLOBS, out=tmp_path / "a" / "blobs.pt", data=data)
    second = run_pretrain(BLOBS, out=tmp_path / "b" / "blobs.pt", data=data)
    assert first.sha256 == second.sha256

    recipe = json.loads(first.recipe_json.read_text())
    assert first.recipe_json == tmp_path / "a" / "blobs.json"
    assert recipe["checkpoint"]["sha256"] == sha256_of(first.checkpoint) == first.sha256
    assert recipe["recipe"] == dataclasses.asdict(BLOBS)
    assert recipe["final_source_test_acc_pct"] == first.test_acc_pct
    assert recipe["environment"]["packages"]["torch"] == torch.__version__.split("+")[0]
    assert "torch versions" in recipe["reproducibility"]


def test_pretrain_command_refuses_to_overwrite_and_unknown_keys(tmp_path: Path) -> None:
    out = tmp_path / "blobs.pt"
    args = ["pretrain", "--source", "synthetic-blobs", "--out", str(out), "--set", "epochs=1"]
    assert main(args) == 0 and out.is_file()
    assert main(args) == 2
    assert main([*args[:-1], "epoks=1"]) == 2


def test_committed_checkpoint_matches_its_recipe() -> None:
    recipe = json.loads(CHECKPOINT.with_suffix(".json").read_text())
    assert sha256_of(CHECKPOINT) == recipe["checkpoint"]["sha256"]
    assert CHECKPOINT.stat().st_size < 1024**2
    assert recipe["recipe"]["backbone"] == "compact_cnn"
    assert recipe["recipe"]["source"] == "fashion-mnist-8x8"
    state = torch.load(CHECKPOINT, weights_only=True)
    module = create_backbone("compact_cnn", in_channels=1, input_size=8).module
    module.load_state_dict(state, strict=True)


@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(), reason=f"Fashion-MNIST not in {DEBIAN_FASHION_MNIST}"
)
def test_fashion_mnist_source_is_8x8_and_normalised_like_digits() -> None:
    data = load_source(PretrainRecipe())
    assert data.train.x.shape[1:] == (1, 8, 8) and data.num_classes == 10
    assert len(data.train) == 60_000 and len(data.test) == 10_000
    # Normalised with the digits suite's statistics, not its own: near, not at, zero / one.
    assert abs(float(data.train.x.mean())) < 0.3
    assert 0.5 < float(data.train.x.std()) < 1.5
