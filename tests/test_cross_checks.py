"""Figures a record repeats must agree (harness/records/cross_checks.py): a record edited by
hand is refused by validation, with the field named, by every writer and reader alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import EXIT_BAD_INPUT, main
from harness.leaderboard.build import build_site
from harness.records.cross_checks import cross_check_problems
from harness.records.layout import record_path
from harness.records.safe_parse import load_json
from harness.records.store import MalformedRecordError, load_records_leniently, write_record
from harness.records.validation import validate_record
from tests.record_factory import make_record

ROOT = Path(__file__).resolve().parents[1]
RATIO_04 = {"strategy": {}, "framework": {"ratio": 0.4}, "training": {}}


def _gflops_divided_by_100(record: dict) -> dict:
    """As a hand edit would: the ranked figure and its cost curve, not the counters' figures."""
    cost = record["inference_cost"]
    cost["gflops_per_image"] /= 100
    for point in cost["after_task"]:
        point["gflops_per_image"] /= 100
    return record


def test_a_ranked_gflops_edited_by_hand_is_refused_naming_the_field() -> None:
    record = _gflops_divided_by_100(make_record(gflops=0.5))
    problems = validate_record(record)
    assert len(problems) == 1, problems  # only the cross-check sees it
    assert problems[0].startswith("inference_cost.gflops_per_image=0.005 is not torch's count")
    assert "gflops_per_image_torch=0.5" in problems[0]


def test_editing_both_torch_figures_leaves_the_stated_disagreement_understated() -> None:
    record = _gflops_divided_by_100(make_record(gflops=0.5))
    record["inference_cost"]["gflops_per_image_torch"] /= 100
    [problem] = validate_record(record)
    assert problem.startswith("inference_cost.counter_disagreement_pct=0.0 understates")
    assert "(9900%)" in problem


def test_a_stated_disagreement_larger_than_the_counts_only_flags_more() -> None:
    assert validate_record(make_record(counter_disagreement_pct=3.5)) == []


def test_older_records_without_the_counter_fields_have_nothing_to_cross_check() -> None:
    record = make_record()
    for key in ("gflops_per_image_torch", "gflops_per_image_ptflops"):
        del record["inference_cost"][key]
    assert cross_check_problems(record) == []


def test_the_doctored_record_is_refused_by_validate_the_writer_and_the_site(
    tmp_path, capsys
) -> None:
    honest = make_record(label="lwf", seed=1, gflops=0.5)
    doctored = _gflops_divided_by_100(make_record(label="lwf+kd", strategy="lwf",
                                                  framework="kd", seed=1, gflops=0.5))  # fmt: skip
    results = tmp_path / "results"
    for record in (honest, doctored):
        path = record_path(results, record)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record))
    assert main(["validate", "--results", str(results)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "lwf+kd" in err and "inference_cost.gflops_per_image=0.005" in err
    with pytest.raises(MalformedRecordError, match="gflops_per_image"):
        write_record(doctored, tmp_path / "elsewhere")
    loaded = load_records_leniently(results)
    assert [r["method"]["label"] for r in loaded.records] == ["lwf"]
    site = build_site(loaded.records, tmp_path / "site", skipped=loaded.warnings).parent
    suite_page = (site / "suites" / "digits-5split-v1.html").read_text()
    assert "lwf+kd" not in suite_page.split('id="leaderboard"')[1].split("</table>")[0]


@pytest.mark.parametrize(
    "label, strategy, framework, config",
    [
        ("lwf", "lwf", "none", None),
        ("lwf+none", "lwf", "none", None),
        ("lwf+kd", "lwf", "kd", None),
        ("lwf+prepruning@0.4", "lwf", "prepruning", RATIO_04),
        ("lwf+prepruning", "lwf", "prepruning", RATIO_04),  # states no ratio: nothing to check
        ("lwf-slow", "lwf", "none", None),  # a suite's own suffix
        ("lwf+kd_student", "lwf", "kd", None),
        ("lwf+postpruning@0.4-long", "lwf", "postpruning", RATIO_04),
    ],
)
def test_labels_that_name_their_method_are_valid(label, strategy, framework, config) -> None:
    record = make_record(label=label, strategy=strategy, framework=framework, config=config)
    assert validate_record(record) == []


@pytest.mark.parametrize(
    "label, strategy, framework, config, expected",
    [
        ("lwf+kd", "lwf", "none", None, "'+kd' is left over (expected e.g. 'lwf')"),
        ("lwf", "lwf", "kd", None, "does not name its framework 'kd'"),
        ("icarl+prepruning@0.4", "lwf", "prepruning", RATIO_04, "does not start with its "
         "strategy 'lwf' (expected e.g. 'lwf+prepruning@0.4')"),
        ("lwf+prepruning@0.6", "lwf", "prepruning", RATIO_04,
         "states ratio 0.6, but method.config.framework.ratio is 0.4"),
        ("lwf+kd@0.4", "lwf", "kd", None, "states ratio 0.4, but method.config.framework has "
         "no ratio"),
        ("lwfx", "lwf", "none", None, "'x' is left over"),
        ("derpp", "der", "none", None, "'pp' is left over"),
    ],
)  # fmt: skip
def test_a_label_that_misnames_its_method_is_refused(
    label, strategy, framework, config, expected
) -> None:
    record = make_record(label=label, strategy=strategy, framework=framework, config=config)
    [problem] = validate_record(record)
    assert problem.startswith(f"method.label={label!r} ")
    assert expected in problem


def test_a_failed_record_is_not_cross_checked() -> None:
    failed = make_record(label="lwf-broken", strategy="crashes_in_worker", status="failed")
    assert validate_record(failed) == []


def test_a_config_hash_that_is_not_the_configs_is_refused() -> None:
    record = make_record(config=RATIO_04, label="lwf+prepruning@0.4", framework="prepruning",
                         strategy="lwf")  # fmt: skip
    record["method"]["config"]["framework"]["ratio"] = 0.6  # edited, hash left as it was
    record["method"]["label"] = "lwf+prepruning@0.6"
    [problem] = validate_record(record)
    assert (
        problem.startswith("method.config_sha256=")
        and "is not the hash of method.config" in problem
    )


def test_tasks_and_classes_per_task_must_agree() -> None:
    record = make_record()  # two tasks of two classes, four classes ordered
    record["suite"]["classes_per_task"] = [2, 2, 2]
    problems = validate_record(record)
    assert "suite.num_tasks=2 is not the number of suite.classes_per_task (3)" in problems
    assert "suite.classes_per_task sums to 6, but suite.class_order orders 4 classes" in problems


def test_every_committed_record_passes_the_cross_checks() -> None:
    paths = sorted((ROOT / "results").glob("**/seed*-*.json"))
    assert len(paths) >= 100
    problems = [
        f"{path.relative_to(ROOT)}: {problem}"
        for path in paths
        for problem in cross_check_problems(load_json(path.read_text(), source=path.name))
    ]
    assert problems == []


def test_a_weights_file_named_by_an_absolute_path_is_refused() -> None:
    """Issue 19: committed records named each weights file by the generating machine's
    path. A record must name it relative to the project or by its file name."""
    from harness.records.validation import validate_record

    record = make_record(label="lwf")
    entry = {"source": "checkpoints/w.pt", "path": "checkpoints/w.pt", "sha256": "0" * 64,
             "url": None}  # fmt: skip
    record["method"]["weights"] = {"compact_cnn": entry}
    assert validate_record(record) == []
    record["method"]["weights"]["compact_cnn"] = {**entry, "path": "/work/gen/checkpoints/w.pt"}
    assert validate_record(record) == [
        "method.weights.compact_cnn.path='/work/gen/checkpoints/w.pt' is an absolute path: name "
        "the file relative to the project or by its file name (its sha256 identifies it)"
    ]


def test_a_named_variant_of_the_strategy_may_sit_before_its_framework() -> None:
    from harness.records.cross_checks import label_mismatch

    assert label_mismatch("lwf-pycil+kd", "lwf", "kd", None) is None
    assert label_mismatch("lwf-pycil+prepruning@0.4", "lwf", "prepruning", 0.4) is None
    assert label_mismatch("lwf-pycil", "lwf", "none", None) is None
    assert "ratio 0.6" in label_mismatch("lwf-pycil+prepruning@0.6", "lwf", "prepruning", 0.4)
    assert "framework 'kd'" in label_mismatch("lwf-pycil+postpruning", "lwf", "kd", None)
