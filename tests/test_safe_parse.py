"""Hostile JSON and YAML are refused by counting, not by timing: the refusal reads at most
``MAX_DEPTH`` levels, never hands the text to a recursive parser, and never recurses itself.

``benchmarks/hostile_input.py`` prints the CPU time of each refusal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import harness.records.safe_parse as safe_parse
from harness.api.config import ConfigError, resolve_config
from harness.api.testing import TINY_SUITE_YAML
from harness.cli import EXIT_BAD_INPUT, EXIT_OK, main
from harness.data.datasets.manifest import read_manifest
from harness.data.suite import SuiteError, parse_suite
from harness.records.safe_parse import MAX_DEPTH, UntrustedInputError, load_json, load_yaml
from harness.records.store import MalformedRecordError, load_records, load_records_leniently
from harness.training.trainer import TrainingConfig
from tests.record_factory import make_record, write_records

DEEP = 200_000  # the hostile record: {"a": [[[...]]]} 200,000 deep


def _max_stack_depth(call: Callable[[], object]) -> int:
    """The deepest Python call stack ``call`` reaches, counted in frames below the caller."""
    depth = deepest = 0

    def profile(frame, event, arg) -> None:
        nonlocal depth, deepest
        if event == "call":
            depth += 1
            deepest = max(deepest, depth)
        elif event == "return":
            depth -= 1

    sys.setprofile(profile)
    try:
        call()
    except Exception:
        pass
    finally:
        sys.setprofile(None)
    return deepest


def _refused_without_decoding(monkeypatch, parse: Callable[[], object], match: str) -> None:
    """``parse`` is refused, with the recursive parsers never called and the stack shallow."""

    def never(*args, **kwargs):
        raise AssertionError("the hostile text reached a recursive parser")

    monkeypatch.setattr(safe_parse.json, "loads", never)
    monkeypatch.setattr(safe_parse.yaml, "load", never)
    with pytest.raises(UntrustedInputError, match=match):
        parse()
    assert _max_stack_depth(parse) < 40  # a flat scan: no frame per nesting level


def _json_nested(levels: int) -> str:
    return '{"a": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"


def test_json_at_the_limit_is_read_and_one_level_more_is_refused() -> None:
    assert load_json(_json_nested(MAX_DEPTH), source="x.json")["a"] is not None
    with pytest.raises(UntrustedInputError, match=f"x.json: .*more than {MAX_DEPTH} levels"):
        load_json(_json_nested(MAX_DEPTH + 1), source="x.json")


def test_hostile_json_never_reaches_the_decoder(monkeypatch) -> None:
    text = _json_nested(DEEP)
    _refused_without_decoding(monkeypatch, lambda: load_json(text, source="r.json"), "levels")


def test_brackets_inside_json_strings_do_not_nest() -> None:
    value = {"text": "[" * 500 + '{"\\"[[[', "list": [["]]]]"]]}
    assert load_json(json.dumps(value), source="x.json") == value


@pytest.mark.parametrize(
    "text", ['"' + "[" * 100, '"\\"' * 10_000 + "[[[", "[1, 2", '{"a": 1}}', "1" * 5000]
)
def test_broken_json_is_an_untrusted_input_error(text: str) -> None:
    with pytest.raises(UntrustedInputError, match="^x.json: not valid JSON"):
        load_json(text, source="x.json")


def _yaml_block_nested(levels: int) -> str:
    return "".join(f"{' ' * i}k{i}:\n" for i in range(levels - 1)) + " " * (levels - 1) + "k: 1\n"


@pytest.mark.parametrize("nested", [_yaml_block_nested, lambda n: "[" * n + "]" * n])
def test_yaml_at_the_limit_is_read_and_one_level_more_is_refused(nested) -> None:
    assert load_yaml(nested(MAX_DEPTH), source="s.yaml") is not None
    with pytest.raises(UntrustedInputError, match="^s.yaml: not valid YAML: .*nest"):
        load_yaml(nested(MAX_DEPTH + 1), source="s.yaml")


@pytest.mark.parametrize("pure_python", [False, True], ids=["libyaml", "pure-python"])
@pytest.mark.parametrize(
    "payload", ["[" * 60_000, "- " * 30_000 + "1", "{a: " * 15_000], ids=["flow", "block", "map"]
)
def test_a_64kb_hostile_yaml_never_reaches_the_composer(monkeypatch, payload, pure_python):
    if pure_python:  # what a PyYAML built without libyaml runs: the same refusal
        monkeypatch.setattr(safe_parse, "_EVENT_PARSER", yaml.SafeLoader)
    events_read = []
    real_parse = yaml.parse

    def counting_parse(*args, **kwargs):
        for event in real_parse(*args, **kwargs):
            events_read.append(event)
            yield event

    monkeypatch.setattr(safe_parse.yaml, "parse", counting_parse)
    text = "description:\n  " + payload + "\n"
    _refused_without_decoding(monkeypatch, lambda: load_yaml(text, source="s.yaml"), "nest")
    # Two refusals (the check and the stack count), each reading a key and a collection per
    # level at most, to the limit: not the 15,000 to 60,000 levels the text holds.
    assert len(events_read) <= 2 * 2 * (MAX_DEPTH + 4)


def test_a_hostile_suite_is_a_suite_error_naming_the_file() -> None:
    text = TINY_SUITE_YAML + "extra: " + "[" * 60_000 + "\n"
    with pytest.raises(SuiteError, match="^bad.yaml: not valid YAML"):
        parse_suite(text, source="bad.yaml")


def test_anchors_and_duplicate_keys_are_still_refused() -> None:
    with pytest.raises(UntrustedInputError, match="anchors and aliases"):
        load_yaml("a: &x [1]\nb: *x\n", source="s.yaml")
    with pytest.raises(UntrustedInputError, match="key 'a' appears twice"):
        load_yaml("a: 1\na: 2\n", source="s.yaml")


def _results_with_a_hostile_record(folder: Path) -> Path:
    results = folder / "results"
    write_records([make_record()], results)
    (results / "seed1-hostile.json").write_text(_json_nested(DEEP))
    return results


def test_a_hostile_record_is_left_out_and_the_rest_is_read(tmp_path) -> None:
    results = _results_with_a_hostile_record(tmp_path)
    loaded = load_records_leniently(results)
    assert len(loaded.records) == 1
    [warning] = loaded.warnings
    assert "seed1-hostile.json: skipped: not valid JSON: nested more than" in warning
    with pytest.raises(MalformedRecordError, match="seed1-hostile.json"):
        load_records(results)


def test_validate_names_a_hostile_record_and_the_site_builds_without_it(tmp_path, capsys):
    results = _results_with_a_hostile_record(tmp_path)
    assert main(["validate", "--results", str(results)]) == EXIT_BAD_INPUT
    assert "seed1-hostile.json" in capsys.readouterr().err
    site = tmp_path / "site"
    assert main(["site", "--results", str(results), "--out", str(site)]) == EXIT_OK
    assert "seed1-hostile.json" in (site / "index.html").read_text()


def test_a_hostile_config_value_is_a_short_config_error() -> None:
    value = "[" * DEEP
    with pytest.raises(ConfigError, match=r"^training\.lr='\[{60}\.\.\.' is not a valid float"):
        resolve_config(TrainingConfig, {"lr": value}, scope="training")


def test_a_hostile_dataset_manifest_is_ignored_and_rebuilt(tmp_path) -> None:
    folder = tmp_path / "cilbench-manifests"
    folder.mkdir()
    (folder / "cifar100.json").write_text(_json_nested(DEEP))
    assert read_manifest(tmp_path, "cifar100") is None
