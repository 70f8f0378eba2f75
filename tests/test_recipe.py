"""The training recipe on the suite page (issue 23): the schedule moves results as much as a
method does, so every entry's recipe is stated, and a suite whose entries differ says so."""

from __future__ import annotations

from harness.leaderboard.recipe import recipe_texts
from tests.record_factory import make_record

TRAINING = {"epochs": 15, "first_task_epochs": None, "batch_size": 32, "lr": 0.05,
            "momentum": 0.9, "weight_decay": 0.0005, "eval_batch_size": 256}  # fmt: skip


def _record(**training: object) -> dict:
    config = {"strategy": {}, "framework": {}, "training": {**TRAINING, **training}}
    return make_record(label="lwf", config=config)


def test_one_recipe_reads_as_the_trainer_runs_it() -> None:
    (recipe,) = recipe_texts([_record(), _record()])
    assert recipe == {
        "text": "15 epochs per task, batch 32; SGD, lr 0.05 (cosine-annealed to 0 over each "
        "task, stepped per batch, restarting at every task), momentum 0.9, weight decay 0.0005",
        "records": 2,
    }


def test_entries_trained_differently_are_told_apart_most_used_first() -> None:
    texts = recipe_texts([_record(), _record(first_task_epochs=30), _record(first_task_epochs=30)])
    assert [t["records"] for t in texts] == [2, 1]
    assert texts[0]["text"].startswith("15 epochs per task (30 on task 1), batch 32")
    assert recipe_texts([make_record(label="lwf", status="failed")]) == []
