"""The training recipe a suite version's entries got, in words, from their records.

Epochs, batch size, optimiser, learning rate and schedule, and the exemplar budget move results
as much as a method does (issue 23: PyCIL's per-epoch step schedule against our per-batch
cosine moved one LwF seed by 22 points), so the suite page states them. The harness's trainer
(``harness/training/trainer.py``) is SGD with momentum and a cosine-annealed learning rate,
stepped per batch over each task's epochs, restarting at every task; the figures come from each
record's resolved ``method.config.training``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SCHEDULE = "cosine-annealed to 0 over each task, stepped per batch, restarting at every task"


def recipe_texts(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each distinct training recipe among ``records`` (ok, non-debug ones) in words, with how
    many of the records used it, most used first."""
    counts: dict[str, int] = {}
    for record in records:
        training = ((record.get("method") or {}).get("config") or {}).get("training")
        if record.get("status") == "ok" and isinstance(training, Mapping):
            text = recipe_text(training)
            counts[text] = counts.get(text, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"text": text, "records": count} for text, count in ranked]


def recipe_text(training: Mapping[str, Any]) -> str:
    """E.g. "15 epochs per task, batch 32; SGD, lr 0.05 (cosine-annealed ...), momentum 0.9,
    weight decay 0.0005"; a figure the record lacks is left out."""
    epochs, first = training.get("epochs"), training.get("first_task_epochs")
    data = [f"{_number(epochs)} epochs per task" if epochs is not None else ""]
    if first is not None and first != epochs:
        data[0] += f" ({_number(first)} on task 1)"
    data.append(_named("batch", training.get("batch_size")))
    lr = training.get("lr")
    optimiser = ["SGD", f"lr {_number(lr)} ({SCHEDULE})" if lr is not None else "",
                 _named("momentum", training.get("momentum")),
                 _named("weight decay", training.get("weight_decay"))]  # fmt: skip
    return ", ".join(p for p in data if p) + "; " + ", ".join(p for p in optimiser if p)


def _named(name: str, value: Any) -> str:
    return f"{name} {_number(value)}" if value is not None else ""


def _number(value: Any) -> str:
    return (
        f"{value:g}"
        if isinstance(value, int | float) and not isinstance(value, bool)
        else str(value)
    )
