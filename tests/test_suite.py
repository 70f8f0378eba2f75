"""Suite files: every class order is a permutation with a matching hash; errors name the fix."""

from __future__ import annotations

import pytest
import yaml

from harness.registry import UnknownNameError
from harness.suite import (
    SuiteError,
    class_order_sha256,
    default_suites_dir,
    list_suites,
    load_suite,
    parse_suite,
)
from harness.testing import TINY_SUITE_YAML

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
