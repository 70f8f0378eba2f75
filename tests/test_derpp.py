"""DER++ and the per-sample extras of the exemplar memory it keeps its logits in."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.data.stream import Split, TaskData, TaskInfo
from harness.models.incremental_net import IncrementalNet
from harness.training.exemplars import ExemplarBudgetError, ExemplarMemory
from methods.strategies.derpp import LOGITS, DERpp, DERppConfig
from tests.contract_trials import tiny_record


def test_extras_are_kept_cut_and_counted_with_their_exemplars() -> None:
    memory = ExemplarMemory(10)
    memory.store(0, torch.zeros(4, 1, 2, 2), extras={LOGITS: torch.arange(8.0).reshape(4, 2)})
    assert memory.nbytes == 4 * 4 * 4 + 8 * 4  # images, then logits, float32
    memory.shrink_to(2)
    assert memory.get_extra(0, LOGITS).tolist() == [[0.0, 1.0], [2.0, 3.0]]
    assert memory.nbytes == 2 * 4 * 4 + 4 * 4
    with pytest.raises(ValueError, match="3 rows for 2 samples"):
        memory.store(1, torch.zeros(2, 1, 2, 2), extras={LOGITS: torch.zeros(3, 2)})
    with pytest.raises(KeyError, match="without the extra 'logits'"):
        memory.store(1, torch.zeros(2, 1, 2, 2))
        memory.get_extra(1, LOGITS)
    with pytest.raises(ExemplarBudgetError):
        memory.store(2, torch.zeros(7, 1, 2, 2), extras={LOGITS: torch.zeros(7, 2)})


def _task(index: int, classes: tuple[int, ...], seen: int) -> TaskData:
    y = torch.tensor([c for c in classes for _ in range(6)])
    x = torch.randn(len(y), 1, 2, 2) + y[:, None, None, None].float()
    info = TaskInfo(index=index, num_tasks=2, classes=classes, num_seen_classes=seen)
    return TaskData(info=info, train=Split(x, y), val=Split(x[:0], y[:0]))


def _model(classes: int) -> IncrementalNet:
    model = IncrementalNet(nn.Flatten(), 4)
    model.add_classes(classes)
    return model


def test_stored_logits_are_the_models_at_insertion_time() -> None:
    torch.manual_seed(0)
    memory = ExemplarMemory(8)
    strategy = DERpp(DERppConfig(), memory=memory)
    model, task = _model(2), _task(0, (0, 1), 2)
    strategy.end_task(model, task)
    for label in (0, 1):
        kept = memory.get(label)
        assert len(kept) == 4  # the budget split over the two seen classes
        assert torch.allclose(memory.get_extra(label, LOGITS), model.eval()(kept))
    model.add_classes(2)  # later training does not touch what was stored
    with torch.no_grad():
        model.head.fc.weight.add_(1.0)
    assert memory.get_extra(0, LOGITS).shape == (4, 2)


def test_the_loss_adds_logit_matching_and_label_replay_on_old_classes() -> None:
    torch.manual_seed(0)
    memory = ExemplarMemory(8)
    config = DERppConfig(alpha=0.1, beta=0.5, replay_batch_size=5)
    strategy = DERpp(config, memory=memory)
    model = _model(2)
    strategy.end_task(model, _task(0, (0, 1), 2))
    model.add_classes(2)
    second = _task(1, (2, 3), 4)
    strategy.begin_task(model, second)
    x, y = second.train.x[:5], second.train.y[:5]
    torch.manual_seed(1)
    loss = strategy.loss(model, x, y, second)
    torch.manual_seed(1)  # the same two replay draws, by hand
    replay = strategy._replay
    bx, stored, mask = replay.logit_batch(5)
    mse = ((model(bx)[:, :2] - stored) ** 2 * mask).sum() / mask.sum()
    lx, ly = replay.label_batch(5)
    expected = F.cross_entropy(model(x), y) + 0.1 * mse + 0.5 * F.cross_entropy(model(lx), ly)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()))
    assert float(mse.detach()) == pytest.approx(0.0, abs=1e-10)  # unchanged model: the logits match


def test_a_derpp_trial_counts_its_logits_in_the_memory_it_keeps() -> None:
    record = tiny_record("derpp", "none")
    assert record["status"] == "ok", record["error"]
    last = record["memory"]["after_task"][-1]
    image_bytes = 4 * 1 * 8 * 8  # the tiny suite's float32 1x8x8 images
    assert last["exemplar_bytes"] > last["exemplars"] * image_bytes  # images plus logits


def test_the_replay_draws_are_declared_as_the_samples_the_model_sees() -> None:
    torch.manual_seed(0)
    memory = ExemplarMemory(8)
    strategy = DERpp(DERppConfig(), memory=memory)
    model = _model(2)
    first = _task(0, (0, 1), 2)
    strategy.begin_task(model, first)
    assert strategy.replayed_samples(5, first) == 0  # nothing to replay on task 1
    strategy.end_task(model, first)
    model.add_classes(2)
    second = _task(1, (2, 3), 4)
    strategy.begin_task(model, second)
    seen: list[int] = []
    handle = model.register_forward_pre_hook(lambda module, args: seen.append(len(args[0])))
    strategy.loss(model, second.train.x[:5], second.train.y[:5], second)
    handle.remove()
    assert sum(seen) == 5 + strategy.replayed_samples(5, second) == 15


def test_a_derpp_trial_meters_three_batches_a_step_once_it_replays() -> None:
    def samples(record: dict) -> list[int]:
        return [row["samples"] for row in record["training_budget"]["spent"]]

    derpp, finetune = tiny_record("derpp", "none"), tiny_record("finetune", "none")
    # The same task data a step; DER++ adds two replay draws of the same size from task 2 on.
    plain = samples(finetune)
    assert samples(derpp) == [plain[0], *(3 * n for n in plain[1:])]


def test_making_room_cuts_old_classes_to_the_quota_and_refuses_a_too_small_budget() -> None:
    memory = ExemplarMemory(6)
    memory.store(0, torch.zeros(6, 1, 2, 2), extras={LOGITS: torch.zeros(6, 2)})
    assert memory.make_room(2, new_classes=[1], method="X") == 3
    assert len(memory.get(0)) == 3 and len(memory.get_extra(0, LOGITS)) == 3
    with pytest.raises(ValueError, match="X needs at least one exemplar per class.*gives 0"):
        memory.make_room(7, new_classes=[6], method="X")
