"""DER: Dynamically Expandable Representation for Class Incremental Learning (Yan, Xie & He,
CVPR 2021)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from harness.api.adapters import STRATEGIES, Strategy
from harness.api.config import ranged
from harness.data.stream import TaskData
from harness.models.expanding import add_branch, expanding_backbone, output_of
from harness.models.incremental_net import IncrementalNet
from harness.training.exemplars import ExemplarMemory
from methods.strategies.icarl import herd_exemplars
from methods.strategies.wa import align_weights


@dataclass(frozen=True)
class DERConfig:
    # aux_weight: weight of the auxiliary loss on the newest branch's features; 1.0 is the
    # paper's lambda_a (Sec. 3.3) and PyCIL's (models/der.py: loss_clf + loss_aux; MEMO's
    # exps/memo.json: alpha_aux 1.0).
    aux_weight: float = ranged(1.0, at_least=0)
    # feature_batch_size: images per forward pass when extracting features for herding; a
    # memory knob only.
    feature_batch_size: int = ranged(256, at_least=1, integer=True)


@STRATEGIES.register("der")
class DER(Strategy):
    """A new copy of the feature extractor per task, all of them serving, features concatenated.

    - Task t > 1 (``begin_task``): a new branch, initialised from the newest one, is added;
      every older branch is frozen, BatchNorm statistics included (``ExpandingBackbone``);
      the linear head widens to the concatenated features (old weights kept).
    - Loss: cross-entropy of the head over all seen classes, plus ``aux_weight`` times the
      auxiliary classifier's cross-entropy on the newest branch's features alone, over the
      new classes and one "old" class that all old classes map to (the paper's Eq. 5).
      The auxiliary classifier trains only during its task and never serves.
    - After training on task t > 1: weight aligning of the head (Zhao et al., 2020; PyCIL's
      DER calls ``weight_align`` after each incremental task); then iCaRL's herding with the
      concatenated features fills the fixed memory (PyCIL's ``build_rehearsal_memory``).
    - Inference: the head's logits over all branches, so after T tasks T extractors serve:
      the record's cost curve grows with T.

    Deviations: the paper's channel-level masking and pruning of each new branch (Sec. 3.4)
    are left out, as in PyCIL ("masking and pruning are not implemented by the source repo",
    models/der.py); the optimiser, epochs and schedule are the suite's. The first branch is
    the whole backbone including its pixel normalisation stem (shared, parameter-free).

    Where the implementations differ: the paper's own code (Rhyssiyan/DER-ClassIL.pytorch,
    inclearn/models/incmodel.py) does not weight-align the head; after each task it resets
    the classifier and re-trains it on a class-balanced loader with logits divided by T = 5
    for 30 epochs, and it warms the learning rate up for 10 epochs. PyCIL (models/der.py)
    weight-aligns instead, as we do. Mammoth's ``der`` is another method (Dark Experience
    Replay: our ``derpp``'s family), not this one.
    """

    Config = DERConfig
    network_growth: ClassVar[str | None] = "expands"
    # Blocks of the backbone shared by all branches (0: DER grows whole backbones).
    shared_blocks: ClassVar[int | None] = 0

    def __init__(self, config: DERConfig, *, memory: ExemplarMemory) -> None:
        super().__init__(config, memory=memory)
        self.aux_head: nn.Linear | None = None

    def begin_task(self, model: IncrementalNet, task: TaskData) -> None:
        self.aux_head = None
        if task.num_old_classes == 0:
            return
        backbone = add_branch(model, shared_blocks=self.shared_blocks_for(model))
        device = model.head.fc.weight.device  # type: ignore[union-attr]
        self.aux_head = nn.Linear(backbone.branch_dim, len(task.classes) + 1).to(device)

    def shared_blocks_for(self, model: IncrementalNet) -> int | None:
        """How many of the backbone's blocks the branches share (MEMO overrides)."""
        return self.shared_blocks

    def training_modules(self) -> list[nn.Module]:
        return [] if self.aux_head is None else [self.aux_head]

    def loss(
        self, model: IncrementalNet, x: torch.Tensor, y: torch.Tensor, task: TaskData
    ) -> torch.Tensor:
        if self.aux_head is None:
            return F.cross_entropy(model(x), y)
        backbone = expanding_backbone(model)
        with output_of(backbone.branches[-1]) as newest:
            logits = model(x)  # one forward: a framework's hook may reuse these logits
        classification = F.cross_entropy(logits, y)
        old = task.num_old_classes
        # New classes keep their order from 1; every old class is the auxiliary class 0.
        aux_targets = torch.where(y >= old, y - old + 1, torch.zeros_like(y))
        aux = F.cross_entropy(self.aux_head(newest.value.flatten(1)), aux_targets)
        return classification + self.config.aux_weight * aux

    def end_task(self, model: IncrementalNet, task: TaskData) -> None:
        if task.info.num_old_classes > 0:
            align_weights(model, new_classes=len(task.info.classes))
        herd_exemplars(model, task, self.memory, feature_batch_size=self.config.feature_batch_size,
                       method=type(self).__name__)  # fmt: skip
        self.aux_head = None
