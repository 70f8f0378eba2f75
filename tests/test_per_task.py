"""The cost of what served after every task, and the bytes a trial keeps between tasks."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from harness.cost.per_task import cost_after_task, kept_model_bytes
from harness.records.validation import validate_record
from harness.training.exemplars import ExemplarMemory
from tests.contract_trials import tiny_record
from tests.record_factory import make_record


class _Learner:
    """A stand-in framework: a model, an old copy, a shared layer, stored logits, code."""

    def __init__(self) -> None:
        self.model = nn.Linear(4, 3)  # 12 weights + 3 biases, float32: 60 bytes
        self.old_model = copy.deepcopy(self.model)  # another 60 bytes
        self.alias = self.model  # the same module again: counted once
        self.extras = {"logits": [torch.zeros(5, 3, dtype=torch.float64)]}  # 120 bytes
        self.memory = ExemplarMemory(10)  # counted as exemplars, never as models
        self.memory.store(0, torch.zeros(2, 1, 8, 8))
        self.build = lambda: nn.Linear(100, 100)  # code, not state


def test_kept_model_bytes_counts_each_tensor_reachable_from_the_learner_once() -> None:
    assert kept_model_bytes(_Learner()) == 60 + 60 + 120


def test_exemplar_bytes_are_the_stored_samples_in_their_dtype() -> None:
    memory = ExemplarMemory(10)
    memory.store(0, torch.zeros(3, 1, 8, 8))
    memory.store(1, torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    assert memory.nbytes == 3 * 64 * 4 + 2 * 64


def test_the_cost_after_a_task_counts_the_served_module() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    point = cost_after_task(model, (1, 1, 8, 8), task=2)
    assert point.task == 2
    assert point.gflops_per_image == pytest.approx(2 * 64 * 10 / 1e9)
    assert point.params_millions == pytest.approx(650 / 1e6)
    assert point.param_bytes == 650 * 4


@pytest.mark.parametrize("strategy, framework", [("lwf", "none"), ("icarl", "postpruning")])
def test_a_record_carries_one_cost_and_memory_point_per_task(strategy, framework) -> None:
    record = tiny_record(strategy, framework)
    tasks = record["suite"]["num_tasks"]
    cost, memory = record["inference_cost"], record["memory"]
    assert [p["task"] for p in cost["after_task"]] == list(range(1, tasks + 1))
    assert [p["task"] for p in memory["after_task"]] == list(range(1, tasks + 1))
    last = cost["after_task"][-1]
    assert (last["gflops_per_image"], last["param_bytes"]) == (
        cost["gflops_per_image"],
        cost["param_bytes"],
    )
    assert memory["total_bytes"] == memory["exemplar_bytes"] + memory["model_bytes"]


def test_a_method_that_keeps_an_old_model_pays_for_its_bytes() -> None:
    finetune = tiny_record("finetune", "none")["memory"]["after_task"]
    lwf = tiny_record("lwf", "none")["memory"]["after_task"]
    for plain, distilling in zip(finetune, lwf, strict=True):
        # LwF keeps the model it trains and a frozen copy of the previous one: twice the
        # bytes, less the new classes' head rows the copy has not grown yet.
        assert plain["model_bytes"] < distilling["model_bytes"] <= 2 * plain["model_bytes"]
    icarl = tiny_record("icarl", "none")
    budget = icarl["suite"]["exemplar_budget"]
    last = icarl["memory"]["after_task"][-1]
    image_bytes = 4 * 1 * 8 * 8  # the tiny suite's float32 1x8x8 images
    assert last["exemplars"] <= budget and last["exemplar_bytes"] == last["exemplars"] * image_bytes


def test_a_curve_that_does_not_end_at_the_final_figures_is_refused() -> None:
    record = make_record()
    record["inference_cost"]["after_task"][-1]["gflops_per_image"] *= 2
    assert any("after_task[-1].gflops_per_image" in p for p in validate_record(record))
    record = make_record()
    record["inference_cost"]["after_task"].pop(0)
    assert any("after_task" in p for p in validate_record(record))


def test_memory_whose_total_is_not_its_sum_is_refused() -> None:
    record = make_record()
    record["memory"]["after_task"][0]["total_bytes"] += 1
    assert any("total_bytes is not their sum" in p for p in validate_record(record))
    record = make_record()
    del record["memory"]
    assert any("memory must be an object" in p for p in validate_record(record))


def _growing(record: dict, first_gflops: float) -> dict:
    """``record`` as a method whose network grew: its cost curve starts at ``first_gflops``."""
    record["inference_cost"]["after_task"][0]["gflops_per_image"] = first_gflops
    return record


def test_the_board_shows_kept_memory_and_where_a_changing_cost_started(tmp_path) -> None:
    from harness.leaderboard.build import build_site
    from tests.test_site import GENERATED_AT, suite_page

    flat = [make_record(label="lwf", seed=s) for s in (1, 2, 3)]
    page = suite_page(build_site(flat, tmp_path / "flat", generated_at=GENERATED_AT).parent)
    headers = page.tables["leaderboard"][0]
    assert "kept memory MB" in headers
    assert "GFLOPs task 1 → T G/img" not in headers  # no cost moved: nothing to show

    grown = [_growing(make_record(label="der", seed=s, gflops=2.0), 0.5) for s in (1, 2, 3)]
    page = suite_page(
        build_site(flat + grown, tmp_path / "grown", generated_at=GENERATED_AT).parent
    )
    headers = page.tables["leaderboard"][0]
    column = headers.index("GFLOPs task 1 → T G/img")
    assert headers[column - 2 : column] == ["GFLOPs G/img", "params M"]
    rows = {row[0]: row for row in page.rows("leaderboard")}
    assert (rows["der"][column - 2], rows["der"][column]) == ("2", "0.5 → 2")
    assert rows["lwf"][column] == "0.5 → 0.5"  # flat: the factory's 0.5 after every task
    html = page.path.read_text(encoding="utf-8")
    # One small cost line per entry; der's starts at a quarter of its height (0.5 of 2).
    assert html.count('<svg class="spark"') == 2
    assert 'points="0.0,11.5 ' in html  # 16 - 1 - 14 * 0.5 / 2: der's first point
    memory = headers.index("kept memory MB")
    # make_record keeps its model's parameter bytes (4 MB) and 640 bytes of exemplars a task.
    assert rows["lwf"][memory] == "4.001"


def test_the_cost_line_is_the_mean_over_seeds_scaled_to_the_largest() -> None:
    from harness.leaderboard.entry_charts import cost_curve, sparkline

    records = [make_record(seed=s) for s in (1, 2)]
    for record, first in zip(records, (0.25, 0.75), strict=True):
        _growing(record, first)
    curve = cost_curve(records)
    assert curve is not None and curve[0] == pytest.approx(0.5) and curve[-1] == pytest.approx(0.5)
    assert sparkline([1.0, 2.0, 4.0]) == "0.0,11.5 30.0,8.0 60.0,1.0"
    del records[1]["inference_cost"]["after_task"]
    assert cost_curve(records) is None  # a seed without the curve: no line rather than a wrong one


def test_the_board_ranks_at_equal_memory_too(tmp_path) -> None:
    """The memory front: final ACC against the memory kept. An entry that keeps more for
    less accuracy is off it, whatever its GFLOPs; a reference entry never competes."""
    from harness.leaderboard.build import build_site
    from tests.test_site import GENERATED_AT, suite_page

    lean = [make_record(label="lean", seed=s, acc=[[98.0, None], [60.0, 90.0]]) for s in (1, 2, 3)]
    hoarder = [make_record(label="hoarder", seed=s, acc=[[98.0, None], [50.0, 80.0]])
               for s in (1, 2, 3)]  # fmt: skip
    for record in hoarder:  # keeps twice the models, for less accuracy
        for point in [*record["memory"]["after_task"], record["memory"]]:
            if "model_bytes" in point:
                point["model_bytes"] *= 2
                point["total_bytes"] = point["model_bytes"] + point["exemplar_bytes"]
    page = suite_page(build_site(lean + hoarder, tmp_path, generated_at=GENERATED_AT).parent)
    headers = page.tables["leaderboard"][0]
    column = headers.index("front ACC·memory")
    rows = {row[0]: row for row in page.rows("leaderboard")}
    assert (rows["lean"][column], rows["hoarder"][column]) == ("front", "")
