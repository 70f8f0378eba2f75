"""The harness's training loop: the same optimiser, budget and seeded batch order for all.

The suite fixes the training budget (``training:`` block) and the training augmentation
(``augmentation:``), so methods differ in what they optimise, not in how many steps or which
views of the images they get. A method entry may override it; the record keeps
the resolved values.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from harness.api.config import check_fields, ranged
from harness.data.augment import NO_AUGMENTATION, Augmentation
from harness.data.stream import Split
from harness.models.execution import CPU_EXECUTION, Execution, timed_first_step
from harness.training.budget import DEFAULT_ROLE, TrainingMeter


@dataclass(frozen=True)
class TrainingConfig:
    """SGD with momentum and a cosine schedule per task; defaults suit the tiny offline suites."""

    epochs: int = ranged(10, at_least=1, integer=True)
    # first_task_epochs: the budget of task 1 when it differs (None: ``epochs``). CIL codebases
    # give the base task its own budget (PyCIL: ``init_epoch`` 200 vs. ``epochs`` 170).
    first_task_epochs: int | None = ranged(None, at_least=1, integer=True)
    batch_size: int = ranged(32, at_least=1, integer=True)
    lr: float = ranged(0.05, above=0)
    momentum: float = ranged(0.9, at_least=0, below=1)
    weight_decay: float = ranged(5e-4, at_least=0)
    eval_batch_size: int = ranged(256, at_least=1, integer=True)

    def __post_init__(self) -> None:
        # Nonsense budgets (0 epochs: an untrained model; lr NaN) must fail before any trial.
        # ``resolve_config`` checks the declared ranges; this checks them for a config built
        # directly too: harness.models.pretrain builds one from a PretrainRecipe, whose lr,
        # momentum and weight_decay declare no range of their own.
        check_fields(self, scope="training")

    def epochs_for_task(self, index: int) -> int:
        """Epochs of the plain training stage of task ``index`` (0-based)."""
        if index == 0 and self.first_task_epochs is not None:
            return self.first_task_epochs
        return self.epochs


class Trainer:
    """Runs ``epochs`` of minibatch SGD on a split with a loss function supplied by the method."""

    def __init__(
        self,
        config: TrainingConfig,
        *,
        seed: int,
        augmentation: Augmentation = NO_AUGMENTATION,
        execution: Execution = CPU_EXECUTION,
        meter: TrainingMeter | None = None,
    ) -> None:
        self.config = config
        self.meter = meter or TrainingMeter()  # what every fit spends, per task and role
        self.execution = execution
        self.device = execution.device
        self.augmentation = augmentation
        # One generator for the whole trial: batch order and augmentation are functions of
        # the seed alone (a suite without augmentation draws nothing extra from it), drawn on
        # the CPU so that they are the same on every device.
        self.generator = torch.Generator().manual_seed(seed)

    def fit(
        self,
        model: nn.Module,
        data: Split,
        loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
        *,
        epochs: int | None = None,
        parameters: list[nn.Parameter] | None = None,
        after_backward: Callable[[nn.Module], None] | None = None,
        sample_weights: torch.Tensor | None = None,
        role: str = DEFAULT_ROLE,
        extra_samples: Callable[[int], int] | None = None,
    ) -> None:
        """Train ``model`` in place; epochs, steps and samples are metered under ``role``,
        with ``extra_samples(batch size)`` more samples each step for a loss that draws data
        of its own (DER++'s replay).

        ``after_backward`` runs between backward and step (e.g. the L1 penalty on BatchNorm
        scales of Network Slimming). ``sample_weights`` (one per sample) switches from
        shuffled epochs to weighted sampling with replacement, the same number of samples per
        epoch (e.g. balanced replay of exemplars). Nothing in the batch loop waits for the
        device (no ``.item()``, no host copies when the data lies on the device already).
        """
        cfg = self.config
        epochs = cfg.epochs if epochs is None else epochs
        params = [p for p in (parameters or model.parameters()) if p.requires_grad]
        optimizer = torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        steps_per_epoch = max(1, -(-len(data) // cfg.batch_size))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, epochs * steps_per_epoch)
        )
        run_model = self.execution.compiled(model)
        model.train()
        first_step = True
        for _ in range(epochs):
            self.meter.add_epoch(role)
            order = self._epoch_order(len(data), sample_weights).to(data.x.device)
            for start in range(0, len(data), cfg.batch_size):
                batch = order[start : start + cfg.batch_size]
                if len(batch) < 2 and len(data) >= 2:
                    continue  # a single-sample batch breaks BatchNorm statistics
                timing = timed_first_step(self.execution) if first_step else nullcontext()
                with timing:
                    x, y = self._batch(data, batch)
                    optimizer.zero_grad(set_to_none=True)
                    with self.execution.autocast():
                        loss = loss_fn(run_model, x, y)
                    loss.backward()
                    if after_backward is not None:
                        after_backward(model)
                    optimizer.step()
                    scheduler.step()
                extra = 0 if extra_samples is None else extra_samples(len(batch))
                self.meter.add_step(role, len(batch) + extra)
                first_step = False
        model.eval()

    def _batch(self, data: Split, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The images (augmented, on the device, in the model's memory format) and labels."""
        x = data.x[batch].to(self.device, non_blocking=True)
        y = data.y[batch].to(self.device, non_blocking=True)
        if self.augmentation:
            x = self.augmentation(x, self.generator)
        return self.execution.batch(x), y

    def _epoch_order(self, size: int, sample_weights: torch.Tensor | None) -> torch.Tensor:
        if sample_weights is None:
            return torch.randperm(size, generator=self.generator)
        weights = sample_weights.detach().double().cpu()  # the CPU generator draws
        if weights.shape != (size,) or bool((weights < 0).any()):
            raise ValueError(f"sample_weights must be {size} non-negative numbers")
        return torch.multinomial(weights, size, replacement=True, generator=self.generator)
