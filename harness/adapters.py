"""Deprecated path: moved to ``harness.api.adapters`` (see ``harness.moved``)."""

from harness.api.adapters import *  # noqa: F403
from harness.moved import warn_moved

warn_moved("harness.adapters", "harness.api.adapters")
