"""Suite files: every class order is a permutation with a matching hash; errors name the fix."""

from __future__ import annotations

import pytest
import yaml

from harness.api.registry import UnknownNameError
from harness.api.testing import TINY_SUITE_YAML
from harness.data.suite import (
    SuiteError,
    class_order_sha256,
    default_suites_dir,
    list_suites,
    load_suite,
    parse_suite,
)

SUITES = list_suites()


def test_the_offline_suites_exist() -> None:
    assert {"digits-5split", "fmnist-5split"} <= set(SUITES)


@pytest.mark.parametrize("name", SUITES)
def test_class_orders_are_permutations_with_matching_hashes(name: str) -> None:
    raw = yaml.safe_load((default_suites_dir() / f"{name}.yaml").read_text())
    suite = load_suite(name)
    assert suite.name == name
    for entry in raw["class_orders"]:
        assert sorted(entry["order"]) == list(range(raw["num_classes"]))
        assert entry["sha256"] == class_order_sha256(entry["order"])
    assert sum(suite.classes_per_task) == suite.num_classes


def test_class_order_hash_is_of_the_comma_joined_list() -> None:
    import hashlib

    assert class_order_sha256([2, 0, 1]) == hashlib.sha256(b"2,0,1").hexdigest()


def _edit(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


def test_a_tampered_class_order_is_refused_with_the_right_hash() -> None:
    text = _edit(TINY_SUITE_YAML, "order: [3, 0, 5, 1, 4, 2]", "order: [0, 3, 5, 1, 4, 2]")
    with pytest.raises(SuiteError, match=class_order_sha256([0, 3, 5, 1, 4, 2])):
        parse_suite(text)


def test_an_order_that_is_not_a_permutation_is_refused() -> None:
    text = _edit(TINY_SUITE_YAML, "order: [3, 0, 5, 1, 4, 2]", "order: [3, 3, 5, 1, 4, 2]")
    with pytest.raises(SuiteError, match="not a permutation"):
        parse_suite(text)


def test_unknown_keys_get_a_did_you_mean() -> None:
    text = _edit(TINY_SUITE_YAML, "exemplar_budget:", "exemplar_buget:")
    with pytest.raises(SuiteError, match='Did you mean "exemplar_budget"'):
        parse_suite(text)


def test_tasks_must_cover_all_classes() -> None:
    text = _edit(TINY_SUITE_YAML, "classes_per_task: [2, 2, 2]", "classes_per_task: [2, 2]")
    with pytest.raises(SuiteError, match="sums to 4"):
        parse_suite(text)


def test_unknown_suite_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError, match="digits-5split") as info:
        load_suite("digits-5splt")
    assert 'Did you mean "digits-5split"' in str(info.value)


def test_file_hash_changes_with_the_text() -> None:
    a = parse_suite(TINY_SUITE_YAML)
    b = parse_suite(TINY_SUITE_YAML + "\n# a comment\n")
    assert a.file_sha256 != b.file_sha256


PAPER_SUITES = ("cifar100-10split", "aircraft-10split", "cars-10split")
FRAMEWORK_VARIANTS = {"none", "prepruning", "postpruning", "kd"}


@pytest.mark.parametrize("name", PAPER_SUITES)
def test_paper_suites_hold_the_paper_grid(name: str) -> None:
    """{finetune, lwf, icarl, ssil} x {plain teacher, plain student, pre@0.4, post@0.4, kd},
    plus joint; ImageNet weights for teacher and student, 10 tasks."""
    suite = load_suite(name)
    assert suite.num_tasks == 10 and suite.exemplar_budget == 2000
    assert suite.seeds == (1, 2, 3)
    teacher = suite.backbones[0]
    assert set(suite.weights) == {teacher, "mobilenet_v2"}
    assert all(w.torchvision == "IMAGENET1K_V1" for w in suite.weights.values())
    assert [m.strategy for m in suite.methods].count("joint") == 1
    for strategy in ("finetune", "lwf", "icarl", "ssil"):
        entries = [m for m in suite.methods if m.strategy == strategy]
        assert {m.framework for m in entries} == FRAMEWORK_VARIANTS
        assert {m.backbone for m in entries if m.framework == "none"} == {None, "mobilenet_v2"}
        kd = next(m for m in entries if m.framework == "kd")
        assert kd.config["framework"]["student"] == "mobilenet_v2"
        for framework in ("prepruning", "postpruning"):
            pruned = next(m for m in entries if m.framework == framework)
            assert pruned.config["framework"]["ratio"] == 0.4
            assert pruned.label == f"{strategy}+{framework}@0.4"
    assert suite.augmentation  # training batches are augmented; the suite says how


def test_cifar100_uses_the_conventional_class_order_and_recipe() -> None:
    import numpy as np

    suite = load_suite("cifar100-10split")
    order = list(suite.class_orders[0])
    assert order[:10] == [68, 56, 78, 8, 23, 84, 90, 65, 74, 76]
    assert order == np.random.RandomState(1993).permutation(100).tolist()
    assert suite.input_shape == (3, 32, 32) and suite.backbones == ("resnet34_cifar",)
    assert suite.augmentation.describe() == [
        {"random_crop": {"padding": 4}},
        {"horizontal_flip": {"p": 0.5}},
    ]
    assert suite.training["first_task_epochs"] == 200 and suite.training["epochs"] == 170


def test_fine_grained_suites_store_images_at_the_model_input_size() -> None:
    for name in ("aircraft-10split", "cars-10split"):
        suite = load_suite(name)
        assert suite.dataset.image_size == 224 and suite.input_shape == (3, 224, 224)
    cars = load_suite("cars-10split")
    assert cars.classes_per_task == (20,) * 6 + (19,) * 4


def test_image_size_must_match_the_input_shape() -> None:
    text = TINY_SUITE_YAML.replace("  val_fraction: 0.1\n",
                                   "  val_fraction: 0.1\n  image_size: 16\n")  # fmt: skip
    with pytest.raises(SuiteError, match="image_size 16 must match input_shape"):
        parse_suite(text)


def test_suite_weights_take_a_torchvision_enum_or_a_checked_file() -> None:
    text = TINY_SUITE_YAML + "weights:\n  compact_cnn: {torchvision: IMAGENET1K_V1}\n"
    assert parse_suite(text).weights["compact_cnn"].spec == "torchvision:IMAGENET1K_V1"
    bad = TINY_SUITE_YAML + "weights:\n  compact_cnn: {torchvision: X, path: y}\n"
    with pytest.raises(SuiteError, match="unknown key 'path'"):
        parse_suite(bad)


def test_a_bad_augmentation_block_is_a_suite_error() -> None:
    text = TINY_SUITE_YAML + "augmentation:\n  train: [{random_flip: {}}]\n"
    with pytest.raises(SuiteError, match="unknown augmentation 'random_flip'"):
        parse_suite(text)
