"""Offline pre-training of a teacher backbone on a source disjoint from the benchmark suites.

The KD framework of arXiv 2505.08327 distils from a *large pre-trained* teacher (an ImageNet
ResNet in the paper). This harness's suites are tiny and offline, so its teacher is the
``compact_cnn`` pre-trained here on a real source whose classes do not occur in the target
suite: Fashion-MNIST (clothing) downsampled to 8x8 for the ``digits-5split`` suite
(handwritten digits). ``cilbench pretrain`` runs one ``PretrainRecipe`` and writes:

- ``<out>.pt``: the backbone's plain state dict (``torch.save(backbone.state_dict())``, no
  classifier head), loadable with ``torch.load(weights_only=True)`` and by
  ``create_backbone(..., weights=path)``;
- ``<out>.json``: the recipe, the source, the checkpoint's sha256, final source accuracies,
  package versions and wall time. A suite's ``weights:`` block stores the same sha256.

Training is deterministic on CPU (fixed seeds, one thread, the harness's seeded training loop),
so rerunning a recipe on the same machine and package versions gives the same bytes; other
torch versions or CPUs may round differently and give other bytes.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from harness.api.config import ConfigError
from harness.api.registry import Registry
from harness.data.datasets import load_dataset
from harness.data.stream import Split, stratified_split_indices
from harness.data.suite import load_suite
from harness.models.backbones import BACKBONES, create_backbone
from harness.models.environment import environment
from harness.models.incremental_net import IncrementalNet
from harness.records.provenance import code_version
from harness.training.trainer import Trainer, TrainingConfig

log = logging.getLogger(__name__)

RECIPE_FORMAT = "cilbench-pretrain/1"
TRAINING_THREADS = 1  # one thread: a fixed floating-point summation order, hence fixed bytes
REPRODUCIBILITY_NOTE = (
    "Deterministic on CPU with one torch thread: rerunning this recipe on the same machine with "
    "the same package versions reproduces the checkpoint's bytes and sha256. The bytes may "
    "differ across torch versions and CPUs (kernels and floating-point summation order); a "
    "rebuilt checkpoint then needs its new sha256 in the suite's weights block."
)


@dataclass(frozen=True)
class PretrainRecipe:
    """Everything that determines a pre-trained checkpoint; written beside it as JSON."""

    # backbone: the teacher of the digits suites (harness/models/backbones/compact_cnn.py).
    backbone: str = "compact_cnn"
    # source: a registered pre-training source (``SOURCES``), disjoint from the target suite.
    source: str = "fashion-mnist-8x8"
    # resize: side of the square training images, the target suite's input size (digits: 8);
    # downsampling uses area interpolation (an average over each output pixel's footprint).
    resize: int = 8
    # normalize_like: the suite whose dataset.normalize (mean, std) the images get, so the
    # teacher sees inputs on the scale it will see in that suite.
    normalize_like: str = "digits-5split"
    # epochs, batch_size: 10 epochs of 128 over Fashion-MNIST's 60,000 training images: about
    # 2 CPU-minutes on one thread (4-5 minutes of wall time on a busy 2-core machine), for
    # 89% source test accuracy at 8x8. Chosen here to keep the build short, not tuned.
    epochs: int = 10
    batch_size: int = 128
    # lr, momentum, weight_decay: the digits suite's training budget (suites/digits-5split.yaml),
    # i.e. the harness's SGD + momentum + cosine loop, so the teacher is trained as CL models
    # are.
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0005
    # seed: initialisation and batch order.
    seed: int = 0

    def __post_init__(self) -> None:
        if self.resize < 1 or self.epochs < 1 or self.batch_size < 2:
            raise ConfigError("pretrain: need resize >= 1, epochs >= 1 and batch_size >= 2")


@dataclass(frozen=True)
class PretrainSource:
    """A source dataset for pre-training: a harness dataset, held-out split if it has no test."""

    dataset: str  # a name in harness.data.datasets.DATASETS
    description: str
    test_fraction: float = 0.2  # used only when the dataset has no official test split


SOURCES: Registry[PretrainSource] = Registry("pretrain source")
SOURCES.register("fashion-mnist-8x8")(
    PretrainSource(
        dataset="fashion-mnist",
        description="Fashion-MNIST (Xiao et al., 2017): 10 clothing classes, 60,000 train / "
        "10,000 test greyscale 28x28 images, area-downsampled; disjoint from handwritten digits",
    )
)
SOURCES.register("synthetic-blobs")(
    PretrainSource(
        dataset="synthetic-blobs",
        description=(
            "harness.data.datasets' six noisy 8x8 prototypes: for tests only, not a teacher"
        ),
    )
)


@dataclass(frozen=True)
class SourceData:
    train: Split
    test: Split
    num_classes: int
    in_channels: int


@dataclass(frozen=True)
class PretrainResult:
    checkpoint: Path
    recipe_json: Path
    sha256: str
    train_acc_pct: float
    test_acc_pct: float
    wall_time_s: float


def load_source(recipe: PretrainRecipe, data_root: Path | None = None) -> SourceData:
    """The recipe's source, resized to ``recipe.resize`` and normalised like its suite."""
    source = SOURCES.get(recipe.source)
    raw = load_dataset(source.dataset, data_root)
    if raw.test_x is None:
        train_idx, test_idx = stratified_split_indices(raw.train_y, source.test_fraction, 0)
        parts = ((raw.train_x[train_idx], raw.train_y[train_idx]),
                 (raw.train_x[test_idx], raw.train_y[test_idx]))  # fmt: skip
    else:
        parts = ((raw.train_x, raw.train_y), (raw.test_x, raw.test_y))
    spec = load_suite(recipe.normalize_like).dataset
    mean = torch.tensor(spec.normalize_mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.normalize_std).view(1, -1, 1, 1)

    def to_split(x: np.ndarray, y: np.ndarray) -> Split:
        if x.dtype == np.uint8:  # stored pixels: to [0, 1] exactly as the loaders once did
            x = x.astype(np.float32) / 255.0
        images = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if images.shape[1] != mean.shape[1]:
            raise ValueError(
                f"source {recipe.source} has {images.shape[1]} channel(s), but suite "
                f"{recipe.normalize_like} normalises {mean.shape[1]}"
            )
        if images.shape[-2:] != (recipe.resize, recipe.resize):
            images = F.interpolate(images, size=(recipe.resize, recipe.resize), mode="area")
        return Split((images - mean) / std, torch.from_numpy(np.asarray(y, dtype=np.int64)))

    train, test = (to_split(x, y) for x, y in parts)
    num_classes = int(max(train.y.max(), test.y.max())) + 1
    return SourceData(train, test, num_classes, in_channels=int(train.x.shape[1]))


def train_backbone(recipe: PretrainRecipe, data: SourceData) -> tuple[IncrementalNet, float, float]:
    """Train ``recipe.backbone`` plus a linear head on ``data``; return the model and the final
    train and test accuracies (%). Deterministic on CPU: seeded, one thread."""
    with _deterministic_cpu():
        torch.manual_seed(recipe.seed)
        built = create_backbone(
            recipe.backbone, in_channels=data.in_channels, input_size=recipe.resize
        )
        model = IncrementalNet(built.module, built.feature_dim)
        model.add_classes(data.num_classes)
        config = TrainingConfig(
            epochs=recipe.epochs,
            batch_size=recipe.batch_size,
            lr=recipe.lr,
            momentum=recipe.momentum,
            weight_decay=recipe.weight_decay,
        )
        trainer = Trainer(config, seed=recipe.seed)  # CPU, fp32: the recipe is deterministic
        trainer.fit(model, data.train, lambda m, x, y: F.cross_entropy(m(x), y))
        return model, _accuracy_pct(model, data.train), _accuracy_pct(model, data.test)


def save_backbone(model: IncrementalNet, path: Path) -> str:
    """Write the backbone's plain state dict (no head) to ``path``; return its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.backbone.state_dict(), path)
    return sha256_of(path)


def run_pretrain(
    recipe: PretrainRecipe,
    *,
    out: Path,
    data_root: Path | None = None,
    data: SourceData | None = None,
) -> PretrainResult:
    """Load the source (unless ``data`` is given), train, write ``out`` and ``out.json``."""
    out = Path(out)
    BACKBONES.get(recipe.backbone), SOURCES.get(recipe.source)  # unknown names fail before loading
    started = time.perf_counter()
    data = data if data is not None else load_source(recipe, data_root)
    log.info("pretrain %s on %s: %d train / %d test images, %d epochs", recipe.backbone,
             recipe.source, len(data.train), len(data.test), recipe.epochs)  # fmt: skip
    model, train_acc, test_acc = train_backbone(recipe, data)
    digest = save_backbone(model, out)
    wall = time.perf_counter() - started
    recipe_json = out.with_suffix(".json")
    document = _recipe_document(recipe, data, out, digest, train_acc, test_acc, wall)
    recipe_json.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    return PretrainResult(out, recipe_json, digest, train_acc, test_acc, wall)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _recipe_document(
    recipe: PretrainRecipe,
    data: SourceData,
    out: Path,
    digest: str,
    train_acc: float,
    test_acc: float,
    wall: float,
) -> dict[str, Any]:
    source = SOURCES.get(recipe.source)
    spec = load_suite(recipe.normalize_like).dataset
    return {
        "format": RECIPE_FORMAT,
        "recipe": dataclasses.asdict(recipe),
        "source": {
            "name": recipe.source,
            "dataset": source.dataset,
            "description": source.description,
            "train_images": len(data.train),
            "test_images": len(data.test),
            "num_classes": data.num_classes,
            "image_shape": list(data.train.x.shape[1:]),
            "resize_mode": "area",
            "normalize": {"mean": list(spec.normalize_mean), "std": list(spec.normalize_std)},
        },
        "checkpoint": {
            "file": out.name,
            "sha256": digest,
            "bytes": out.stat().st_size,
            "content": "torch.save(backbone.state_dict()): backbone only, no classifier head; "
            "load with torch.load(path, weights_only=True)",
        },
        "final_source_train_acc_pct": train_acc,
        "final_source_test_acc_pct": test_acc,
        "wall_time_s": wall,
        "created_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reproducibility": REPRODUCIBILITY_NOTE,
        "training": {"torch_threads": TRAINING_THREADS, "deterministic_algorithms": True},
        "code": code_version(),
        "environment": environment(device="cpu"),  # pre-training always runs on the CPU
    }


def _accuracy_pct(model: IncrementalNet, data: Split, batch_size: int = 1024) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            logits = model(data.x[start : start + batch_size])
            correct += int((logits.argmax(1) == data.y[start : start + batch_size]).sum())
    return 100.0 * correct / len(data)


@contextmanager
def _deterministic_cpu() -> Iterator[None]:
    """One torch thread and deterministic algorithms, restored afterwards."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(TRAINING_THREADS)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)
