"""The harness's training loop: the suite's budget per task and its augmentation per batch."""

from __future__ import annotations

import torch
from torch import nn

from harness.data.augment import Augmentation, HorizontalFlip
from harness.data.stream import Split
from harness.training.trainer import Trainer, TrainingConfig


def _data(n: int = 8) -> Split:
    x = torch.arange(n * 4, dtype=torch.uint8).view(n, 1, 1, 4)
    return Split(x, torch.zeros(n, dtype=torch.int64))


class _Spy(nn.Module):
    """A model that remembers every batch it is trained on."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.seen.append(x.clone())
        return self.weight * x.float().sum()


def _fit(config: TrainingConfig, augmentation: Augmentation, *, epochs: int | None = None):
    model = _Spy()
    trainer = Trainer(config, seed=0, augmentation=augmentation)
    trainer.fit(model, _data(), lambda m, x, y: m(x), epochs=epochs)
    return model.seen


def test_first_task_has_its_own_budget_when_the_suite_gives_one() -> None:
    config = TrainingConfig(epochs=3, first_task_epochs=5)
    assert [config.epochs_for_task(i) for i in range(3)] == [5, 3, 3]
    assert TrainingConfig(epochs=3).epochs_for_task(0) == 3


def test_training_batches_are_augmented_and_stay_stored_pixels() -> None:
    config = TrainingConfig(epochs=1, batch_size=4)
    plain = _fit(config, Augmentation())
    flipped = _fit(config, Augmentation((HorizontalFlip(p=1.0),)))
    assert len(plain) == len(flipped) == 2
    for original, augmented in zip(plain, flipped, strict=True):
        assert augmented.dtype == torch.uint8
        assert torch.equal(augmented, original.flip(3))  # same batch order, flipped


def test_augmentation_is_reproduced_by_the_seed() -> None:
    config = TrainingConfig(epochs=2, batch_size=4)
    augmentation = Augmentation((HorizontalFlip(p=0.5),))
    first, second = _fit(config, augmentation), _fit(config, augmentation)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
