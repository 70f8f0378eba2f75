"""Broken on purpose: reaches up the call stack for the stream and reads its test split."""

from __future__ import annotations

import sys

from harness.api import STRATEGIES, IncrementalNet, Strategy, TaskData


@STRATEGIES.register("broken_peeking")
class Peeking(Strategy):
    """Looks at the test data before training on a task (what the harness must stop)."""

    seed_sensitive_on_tiny_suite = False

    def begin_task(self, model: IncrementalNet, task: TaskData) -> None:
        frame = sys._getframe()
        while frame is not None:
            for value in list(frame.f_locals.values()):
                test = getattr(value, "test", None)
                if callable(getattr(test, "read", None)):
                    test.read()  # the harness has sealed it: this raises
            frame = frame.f_back
