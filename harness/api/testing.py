"""Shared test fixtures: a tiny in-memory suite that contributors' adapter tests can reuse.

``tiny_suite()`` runs any registered strategy x framework end to end on a CPU in about a
second: 6 synthetic classes in 3 tasks, the compact CNN, five short epochs per task.
"""

from __future__ import annotations

from pathlib import Path

from harness.data.suite import Suite, class_order_sha256, parse_suite

TINY_CLASS_ORDER = [3, 0, 5, 1, 4, 2]

TINY_SUITE_YAML = f"""\
name: tiny-3split
version: 1
description: Synthetic blobs for tests; not a benchmark.
dataset:
  name: synthetic-blobs
  split_seed: 0
  test_fraction: 0.25
  val_fraction: 0.1
input_shape: [1, 8, 8]
num_classes: 6
classes_per_task: [2, 2, 2]
class_orders:
  - order: {TINY_CLASS_ORDER}
    sha256: {class_order_sha256(TINY_CLASS_ORDER)}
exemplar_budget: 12
backbones: [compact_cnn]
seeds: [1, 2]
primary_metric: final_acc_pct
training:
  epochs: 5
  batch_size: 16
  lr: 0.05
methods:
  - strategy: finetune
  - strategy: lwf
"""


def tiny_suite() -> Suite:
    return parse_suite(TINY_SUITE_YAML, source="harness.api.testing.TINY_SUITE_YAML")


def write_tiny_suite(folder: Path) -> Path:
    """Write the tiny suite as ``folder/tiny-3split.yaml`` (for command-line tests)."""
    path = Path(folder) / "tiny-3split.yaml"
    path.write_text(TINY_SUITE_YAML)
    return path
