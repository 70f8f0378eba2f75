"""Fine-tuning: the lower bound of class-incremental learning."""

from __future__ import annotations

from harness.api.adapters import STRATEGIES, Strategy


@STRATEGIES.register("finetune")
class Finetune(Strategy):
    """Plain cross-entropy on each new task with no memory and no regularisation.

    It forgets catastrophically (McCloskey & Cohen, 1989), which makes it the reference
    lower bound every method must beat.
    """

    reference = "lower_bound"
    # On the tiny suite it ends at 100% on the newest task and 0% on the others, any seed.
    seed_sensitive_on_tiny_suite = False
