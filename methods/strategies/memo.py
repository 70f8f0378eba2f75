"""MEMO: "A Model or 603 Exemplars: Towards Memory-Efficient Class-Incremental Learning" (Zhou,
Wang, Ye & Zhan, ICLR 2023)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.api.adapters import STRATEGIES
from harness.api.config import ranged
from harness.models.incremental_net import IncrementalNet
from methods.strategies.der import DER, DERConfig


@dataclass(frozen=True)
class MEMOConfig(DERConfig):
    # aux_weight: 1.0, PyCIL's alpha_aux in exps/memo.json. feature_batch_size: as DER's.
    # shared_blocks: how many leading blocks of the backbone all tasks share; None splits
    # before the backbone's last stage (harness.models.expanding.default_shared_blocks), as
    # PyCIL's memo_resnet32 shares all but its last stage (convs/memo_resnet.py).
    shared_blocks: int | None = ranged(None, at_least=0, integer=True)


@STRATEGIES.register("memo")
class MEMO(DER):
    """DER with the shallow blocks shared: one stem for all tasks, one deep branch per task.

    Everything else is DER's (``methods/strategies/der.py``): the new branch copies the newest,
    older branches are frozen, the auxiliary loss trains the newest, the head is weight-aligned
    after each task and iCaRL's herding fills the fixed memory. The shared stem goes on
    training in every task (PyCIL's ``train_base: true``, its benchmark setting); the older
    deep branches are frozen (``train_adaptive: false``). After T tasks the served network is
    the stem plus T deep branches, so its cost grows more slowly than DER's.

    Deviations: the optimiser, epochs and schedule are the suite's. The paper's memory
    alignment (fewer exemplars for the bytes its extra branches take) is a suite's choice
    here, not the method's: its record reports the model's and the exemplars' bytes.
    """

    Config = MEMOConfig

    def shared_blocks_for(self, model: IncrementalNet) -> int | None:
        return self.config.shared_blocks
