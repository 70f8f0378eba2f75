"""Deprecated path: moved to ``harness.training.exemplars`` (see ``harness.moved``)."""

from harness.moved import warn_moved
from harness.training.exemplars import *  # noqa: F403

warn_moved("harness.exemplars", "harness.training.exemplars")
