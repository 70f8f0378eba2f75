# ruff: noqa: E501  (the tables read best one case per line)
"""Bad input fails fast and clearly: malformed suites and nonsense configs exit 2 before Ray.

Each table row is one malformed input with the message it must produce. Before these checks
some rows gave tracebacks (``version: two``), hung (an alias bomb), or produced "ok" records
of nonsense (``training.epochs=0``: an untrained model; ``backbones: compact_cnn``: one
backbone per letter).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing
from pathlib import Path

import pytest

from harness import cli
from harness.api.adapters import FRAMEWORKS, STRATEGIES, load_adapters
from harness.api.config import ConfigError, check_range, resolve_config
from harness.api.conformance import built_in_names
from harness.api.testing import TINY_SUITE_YAML
from harness.data.suite import MAX_SUITE_BYTES, SuiteError, check_seeds, load_suite, parse_suite
from harness.training.trainer import TrainingConfig

ORDER_LINE = "  - order: [3, 0, 5, 1, 4, 2]\n"


def _edit(old: str, new: str) -> str:
    assert TINY_SUITE_YAML.count(old) == 1, old
    return TINY_SUITE_YAML.replace(old, new)


def _block(key: str, new: str) -> str:
    """The tiny suite with top-level ``key`` and its indented lines replaced by ``new``."""
    lines = TINY_SUITE_YAML.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{key}:"))
    end = next(
        (i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines)
    )
    return "".join(lines[:start]) + new + "".join(lines[end:])


def _alias_bomb() -> str:
    """The "billion laughs": nine levels of ten aliases, 10**9 copies of one string."""
    lines = ['a0: &a0 "lol"']
    for level in range(1, 10):
        refs = ", ".join(f"*a{level - 1}" for _ in range(10))
        lines.append(f"a{level}: &a{level} [{refs}]")
    bomb = "\n".join(lines)
    return _edit("description: Synthetic blobs for tests; not a benchmark.\n",
                 "description: {" + bomb.replace("\n", ", ") + "}\n")  # fmt: skip


# (case id, suite text, what the message must say)
MALFORMED_SUITES = [
    ("version-word", _edit("version: 1\n", "version: two\n"), "version='two'"),
    ("version-zero", _edit("version: 1\n", "version: 0\n"), "version=0 is out of range"),
    ("version-float", _edit("version: 1\n", "version: 1.5\n"), "version=1.5"),
    ("seeds-word", _edit("seeds: [1, 2]", "seeds: [a]"), "seed 'a' is not an integer"),
    ("seeds-bool", _edit("seeds: [1, 2]", "seeds: [true]"), "seed True is not an integer"),
    ("seeds-empty", _edit("seeds: [1, 2]", "seeds: []"), "non-empty list"),
    ("seeds-scalar", _edit("seeds: [1, 2]", "seeds: 5"), "non-empty list"),
    ("seeds-duplicate", _edit("seeds: [1, 2]", "seeds: [1, 1]"), "seed 1 is listed twice"),
    ("seeds-negative", _edit("seeds: [1, 2]", "seeds: [-1]"), r"out of range.*2\*\*32"),
    ("seeds-too-big", _edit("seeds: [1, 2]", "seeds: [4294967296]"), "out of range"),
    ("seeds-huge-int", _edit("seeds: [1, 2]", f"seeds: [{'9' * 5000}]"), "not valid YAML"),
    ("order-bare-list", _block("class_orders", "class_orders:\n  - [3, 0, 5, 1, 4, 2]\n"),
     r"class_orders\[0\] must be a mapping \{order"),  # fmt: skip
    ("orders-scalar", _block("class_orders", "class_orders: 5\n"), "class_orders must be a non-empty list"),
    ("order-words", _edit(ORDER_LINE, "  - order: [a, b, c, d, e, f]\n"),
     r"class_orders\[0\] entry='a'"),  # fmt: skip
    ("input-shape-scalar", _edit("input_shape: [1, 8, 8]", "input_shape: 3"),
     r"input_shape must be \[channels, height, width\]"),  # fmt: skip
    ("input-shape-short", _edit("input_shape: [1, 8, 8]", "input_shape: [1, 8]"), "input_shape"),
    ("input-shape-zero", _edit("input_shape: [1, 8, 8]", "input_shape: [1, 0, 8]"),
     "input_shape entry=0 is out of range"),  # fmt: skip
    ("num-classes-word", _edit("num_classes: 6", "num_classes: six"), "num_classes='six'"),
    ("methods-scalar", _block("methods", "methods: 5\n"),
     "methods must be a non-empty list"),  # fmt: skip
    ("methods-number", _block("methods", "methods: [5]\n"),
     "methods entry: expected a mapping"),  # fmt: skip
    ("method-strategy-number", _block("methods", "methods: [{strategy: 5}]\n"),
     "strategy must be a non-empty string"),  # fmt: skip
    ("method-config-scalar", _block("methods", "methods: [{strategy: lwf, config: {strategy: 3}}]\n"), "config.strategy must be a mapping"),  # fmt: skip
    ("method-label-path", _block("methods", "methods: [{strategy: lwf, label: ../../etc}]\n"), "cannot name a results folder"),  # fmt: skip
    ("dataset-name-missing", _edit("  name: synthetic-blobs\n", ""), "missing required key.*name"),
    ("dataset-name-null", _edit("  name: synthetic-blobs\n", "  name:\n"),
     "dataset.name must be a non-empty string"),  # fmt: skip
    ("dataset-scalar", _block("dataset", "dataset: synthetic-blobs\n"), "dataset: expected a mapping"),
    ("val-fraction-one", _edit("val_fraction: 0.1", "val_fraction: 1.0"),
     r"val_fraction=1.0 is out of range: it must be a finite number in \[0, 1\)"),  # fmt: skip
    ("val-fraction-nan", _edit("val_fraction: 0.1", "val_fraction: .nan"), "val_fraction=nan"),
    ("val-fraction-word", _edit("val_fraction: 0.1", "val_fraction: lots"), "val_fraction='lots'"),
    ("test-fraction-negative", _edit("test_fraction: 0.25", "test_fraction: -0.25"),
     "test_fraction=-0.25 is out of range"),  # fmt: skip
    ("test-fraction-zero", _edit("test_fraction: 0.25", "test_fraction: 0"),
     "test_fraction=0 is out of range"),  # fmt: skip
    ("split-seed-negative", _edit("split_seed: 0", "split_seed: -1"), "split_seed=-1"),
    ("std-zero", _edit("  val_fraction: 0.1\n", "  val_fraction: 0.1\n  normalize: {mean: [0.5], std: [0.0]}\n"),
     "normalize.std entry=0.0 is out of range"),  # fmt: skip
    ("std-inf", _edit("  val_fraction: 0.1\n", "  val_fraction: 0.1\n  normalize: {mean: [0.5], std: [.inf]}\n"),
     "normalize.std entry=inf"),  # fmt: skip
    ("mean-nan", _edit("  val_fraction: 0.1\n", "  val_fraction: 0.1\n  normalize: {mean: [.nan], std: [1.0]}\n"),
     "normalize.mean entry=nan"),  # fmt: skip
    ("normalize-scalar", _edit("  val_fraction: 0.1\n", "  val_fraction: 0.1\n  normalize: 5\n"),
     "normalize: expected a mapping"),  # fmt: skip
    ("max-train-zero", _edit("  val_fraction: 0.1\n", "  val_fraction: 0.1\n  max_train_per_class: 0\n"),
     "max_train_per_class=0"),  # fmt: skip
    ("image-size-zero", _edit("  val_fraction: 0.1\n", "  val_fraction: 0.1\n  image_size: 0\n"),
     "image_size=0"),  # fmt: skip
    ("classes-per-task-zero", _edit("classes_per_task: [2, 2, 2]", "classes_per_task: [2, 0, 4]"),
     "classes_per_task entry=0 is out of range"),  # fmt: skip
    ("classes-per-task-negative", _edit("classes_per_task: [2, 2, 2]", "classes_per_task: [4, -1, 3]"),
     "classes_per_task entry=-1"),  # fmt: skip
    ("classes-per-task-scalar", _edit("classes_per_task: [2, 2, 2]", "classes_per_task: 6"),
     "classes_per_task must be a non-empty list"),  # fmt: skip
    ("exemplar-budget-negative", _edit("exemplar_budget: 12", "exemplar_budget: -1"),
     "exemplar_budget=-1"),  # fmt: skip
    ("exemplar-budget-text", _edit("exemplar_budget: 12", "exemplar_budget: '12'"),
     "exemplar_budget='12'"),  # fmt: skip
    ("backbones-string", _edit("backbones: [compact_cnn]", "backbones: compact_cnn"),
     "backbones must be a non-empty list"),  # fmt: skip
    ("backbones-empty", _edit("backbones: [compact_cnn]", "backbones: []"), "non-empty list"),
    ("primary-metric-number", _edit("primary_metric: final_acc_pct", "primary_metric: 5"),
     "primary_metric must be a non-empty string"),  # fmt: skip
    ("description-list", _edit("description: Synthetic blobs for tests; not a benchmark.",
                               "description: [1, 2]"), "description must be text"),  # fmt: skip
    ("training-scalar", _block("training", "training: 5\n"), "training must be a mapping"),
    ("training-epochs-zero", _edit("  epochs: 5\n", "  epochs: 0\n"), "training.epochs=0"),
    ("training-lr-nan", _edit("  lr: 0.05\n", "  lr: .nan\n"), "training.lr=nan"),
    ("alias-bomb", _alias_bomb(), "anchors and aliases"),
    ("plain-alias", _edit("version: 1\n", "version: &v 1\nnum_classes_again: *v\n"),
     "anchors and aliases"),  # fmt: skip
    ("duplicate-key", _edit("version: 1\n", "version: 1\nversion: 2\n"),
     "key 'version' appears twice"),  # fmt: skip
    ("nested-too-deep", _edit("description: Synthetic blobs for tests; not a benchmark.",
                              "description: " + "[" * 20000), "not valid YAML"),  # fmt: skip
    ("not-yaml", "name: [unclosed\n", "not valid YAML"),
    ("top-level-list", "- a\n- b\n", "must be a mapping of keys"),
    ("weights-path-number", _edit("methods:", "weights: {compact_cnn: {path: 5, sha256: ab}}\nmethods:"),
     "weights.compact_cnn.path must be a non-empty string"),  # fmt: skip
    ("oversized", TINY_SUITE_YAML + "#" * MAX_SUITE_BYTES + "\n", "bytes at most"),
]  # fmt: skip

BAD_NAMES = ["../escape", "a/b", ".hidden", "a..b", "", "x" * 101, "name with spaces", "5x\n"]


@pytest.mark.parametrize(
    "text, message", [row[1:] for row in MALFORMED_SUITES], ids=[row[0] for row in MALFORMED_SUITES]
)
def test_a_malformed_suite_is_a_suite_error_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(SuiteError, match=message) as caught:
        parse_suite(text, source="bad-suite.yaml")
    assert str(caught.value).startswith("bad-suite.yaml: ")  # the file is named


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_suite_name_must_be_safe_as_a_folder_name(name: str) -> None:
    text = _edit("name: tiny-3split\n", f"name: {json.dumps(name)}\n")
    with pytest.raises(SuiteError, match="name"):
        parse_suite(text)


def test_a_non_utf8_suite_file_is_a_suite_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(TINY_SUITE_YAML.replace("Synthetic", "Synth\xe9tic").encode("latin-1"))
    with pytest.raises(SuiteError, match=r"latin1.yaml: not UTF-8 text \(byte \d+"):
        load_suite(str(path))


@pytest.mark.parametrize(
    "row", [MALFORMED_SUITES[0], MALFORMED_SUITES[3], MALFORMED_SUITES[11],
            next(r for r in MALFORMED_SUITES if r[0] == "alias-bomb")], ids=lambda r: r[0]
)  # fmt: skip
def test_the_command_line_exits_2_on_a_malformed_suite(
    row: tuple[str, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], no_ray
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(row[1])
    assert cli.main(["run", "--suite", str(path), "--results", str(tmp_path / "r")]) == 2
    assert "cilbench: error:" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_the_command_line_exits_2_on_a_non_utf8_suite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_ray
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    assert cli.main(["run", "--suite", str(path), "--results", str(tmp_path / "r")]) == 2
    assert "not UTF-8" in capsys.readouterr().err


@pytest.mark.parametrize(
    "seeds, message",
    [([], "non-empty"), ("1,2", "non-empty list"), ([1, "2"], "'2' is not an integer"),
     ([1.0], "1.0 is not an integer"), ([True], "True is not an integer"),
     ([-1], "out of range"), ([2**32], "out of range"), ([3, 1, 3], "3 is listed twice")],
)  # fmt: skip
def test_check_seeds_refuses_what_numpy_or_a_rerun_would_trip_on(seeds, message) -> None:
    with pytest.raises(SuiteError, match=message):
        check_seeds(seeds, where="--seeds")


def test_check_seeds_returns_good_seeds_as_a_list() -> None:
    assert check_seeds((0, 1, 2**32 - 1)) == [0, 1, 2**32 - 1]


# (method, --set override, what the message must say): every one used to start Ray, and the
# first four wrote "ok" records.
NONSENSE_CONFIGS = [
    ("lwf", "training.epochs=-1", r"training.epochs=-1 is out of range: it must be an integer >= 1"),
    ("lwf", "training.epochs=0", "training.epochs=0"),
    ("lwf", "training.first_task_epochs=0", "training.first_task_epochs=0"),
    ("lwf", "training.batch_size=0", "training.batch_size=0"),
    ("lwf", "training.eval_batch_size=0", "training.eval_batch_size=0"),
    ("lwf", "training.lr=0", r"training.lr=0.0 is out of range: it must be a finite number > 0"),
    ("lwf", "training.lr=NaN", "training.lr=nan is not allowed"),
    ("lwf", "training.lr=Infinity", "training.lr=inf is not allowed"),
    ("lwf", "training.momentum=1", r"training.momentum=1.0 .* in \[0, 1\)"),
    ("lwf", "training.momentum=-0.5", "training.momentum=-0.5"),
    ("lwf", "training.weight_decay=-1e-4", "training.weight_decay=-0.0001"),
    ("lwf", "strategy.temperature=0", "strategy.temperature=0.0"),
    ("lwf", "strategy.lambda_kd=-1", "strategy.lambda_kd=-1.0"),
    ("lwf", "strategy.lambda_kd=NaN", "strategy.lambda_kd=nan"),
    ("icarl", "strategy.lambda_kd=-Infinity", "strategy.lambda_kd=-inf"),
    ("icarl", "strategy.feature_batch_size=0", "strategy.feature_batch_size=0"),
    ("ssil", "strategy.replay_fraction=1", r"strategy.replay_fraction=1.0 .* in \(0, 1\)"),
    ("ssil", "strategy.replay_fraction=NaN", "strategy.replay_fraction=nan"),
    ("ssil", "strategy.temperature=-2", "strategy.temperature=-2.0"),
    ("ssil", "strategy.lambda_kd=-1", "strategy.lambda_kd=-1.0"),
    ("lwf+prepruning", "framework.ratio=1.5", r"framework.ratio=1.5 .* in \(0, 0.9\)"),
    ("lwf+prepruning", "framework.ratio=NaN", "framework.ratio=nan"),
    ("lwf+prepruning", "framework.ratio=0", "framework.ratio=0.0"),
    ("lwf+prepruning", "framework.sparsity=-1", "framework.sparsity=-1.0"),
    ("lwf+prepruning", "framework.sparsity_epochs=-1", "framework.sparsity_epochs=-1"),
    ("lwf+prepruning", "framework.finetune_epochs=0", "framework.finetune_epochs=0"),
    ("lwf+postpruning", "framework.ratio=NaN", "framework.ratio=nan"),
    ("lwf+postpruning", "framework.sparsity=NaN", "framework.sparsity=nan"),
    ("lwf+postpruning", "framework.finetune_epochs=-1", "framework.finetune_epochs=-1"),
    ("lwf+postpruning", "framework.distill_weight=-1", "framework.distill_weight=-1.0"),
    ("lwf+postpruning", "framework.temperature=0", "framework.temperature=0.0"),
    ("lwf+kd", "framework.temperature=NaN", "framework.temperature=nan"),
    ("lwf+kd", "framework.lambda_kd=-1", "framework.lambda_kd=-1.0"),
    ("lwf+kd", "framework.student=compact_cnn_smal", 'Did you mean "compact_cnn_small"'),
]  # fmt: skip


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any run that gets past planning fails the test at once instead of starting Ray."""
    import harness.run.scheduler

    def refuse(*args, **kwargs):
        raise AssertionError("the trials reached the scheduler: the bad input was not refused")

    monkeypatch.setattr(harness.run.scheduler, "run_grid", refuse)


@pytest.mark.parametrize("method, override, message", NONSENSE_CONFIGS)
def test_a_nonsense_config_exits_2_before_ray_starts(
    method: str, override: str, message: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], no_ray,
) -> None:  # fmt: skip
    suite = tmp_path / "tiny-3split.yaml"
    suite.write_text(TINY_SUITE_YAML)
    argv = ["run", "--suite", str(suite), "--method", method, "--seeds", "1",
            "--set", override, "--results", str(tmp_path / "results"), "--no-site"]  # fmt: skip
    assert cli.main(argv) == 2
    assert re.search(message, capsys.readouterr().err)


def _float_fields(config_cls: type) -> list[str]:
    hints = typing.get_type_hints(config_cls)
    return [f.name for f in dataclasses.fields(config_cls) if float in typing.get_args(
        hints[f.name]) or hints[f.name] is float]  # fmt: skip


def _all_configs() -> list[tuple[str, type]]:
    load_adapters()
    configs = [("training", TrainingConfig)]
    # Built-in adapters only: an installed plugin is checked by `cilbench check-adapter`, and
    # must never turn this project's tests red.
    configs += [("strategy", STRATEGIES.get(n).Config) for n in built_in_names(STRATEGIES)]
    configs += [("framework", FRAMEWORKS.get(n).Config) for n in built_in_names(FRAMEWORKS)]
    return [(scope, cls) for scope, cls in configs if dataclasses.fields(cls)]


@pytest.mark.parametrize(
    "scope, config_cls", _all_configs(), ids=lambda v: getattr(v, "__name__", v)
)
def test_every_float_of_every_registered_config_refuses_nan_and_infinity(scope, config_cls) -> None:
    resolve_config(config_cls, {}, scope=scope)  # the defaults pass their own checks
    for name in _float_fields(config_cls):
        for value in ("NaN", "Infinity", "-Infinity"):
            with pytest.raises(ConfigError, match=f"{scope}.{name}="):
                resolve_config(config_cls, {name: value}, scope=scope)


def test_resolve_config_turns_any_constructor_value_error_into_a_config_error() -> None:
    @dataclasses.dataclass(frozen=True)
    class Picky:
        size: int = 1

        def __post_init__(self) -> None:
            if self.size > 3:
                raise ValueError("size must be at most 3")

    with pytest.raises(ConfigError, match="strategy config: size must be at most 3"):
        resolve_config(Picky, {"size": 4}, scope="strategy")


def test_check_range_names_key_value_and_range() -> None:
    with pytest.raises(
        ConfigError, match=r"^x.y=nan is not allowed: it must be a finite number in \(0, 1\)$"
    ):
        check_range("x.y", math.nan, above=0, below=1)
    with pytest.raises(
        ConfigError, match=r"^n=2.0 is not allowed: it must be an integer >= 1 or null$"
    ):
        check_range("n", 2.0, at_least=1, integer=True, optional=True)
    check_range("n", None, at_least=1, integer=True, optional=True)
    check_range("r", 0.0, at_least=0, below=1)


def test_a_labels_ratio_sets_the_frameworks_ratio(tmp_path) -> None:
    """``--method lwf+prepruning@0.6`` as the suites' labels write it: the framework's ratio
    is 0.6 and the label says so; a ratio that is not a number names the --set to use."""
    from harness.run.grid import plan_trials

    plan = plan_trials(suite="digits-5split", methods=["lwf+prepruning@0.6"], seeds=[1],
                       results_dir=tmp_path)  # fmt: skip
    (trial,) = [t for t in plan.resolved if t.spec.backbone == "compact_cnn"]
    assert trial.spec.label == "lwf+prepruning@0.6"
    assert trial.config_dict["framework"]["ratio"] == 0.6
    with pytest.raises(ConfigError, match=r"--set framework.ratio=0.6"):
        plan_trials(suite="digits-5split", methods=["lwf+prepruning@big"], results_dir=tmp_path)
