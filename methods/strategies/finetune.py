"""Fine-tuning: the lower bound of class-incremental learning."""

from __future__ import annotations

from harness.adapters import STRATEGIES, Strategy


@STRATEGIES.register("finetune")
class Finetune(Strategy):
    """Plain cross-entropy on each new task with no memory and no regularisation.

    It forgets catastrophically (McCloskey & Cohen, 1989), which makes it the reference
    lower bound every method must beat.
    """

    reference = "lower_bound"
