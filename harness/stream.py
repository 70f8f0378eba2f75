"""Deprecated path: moved to ``harness.data.stream`` (see ``harness.moved``)."""

from harness.data.stream import *  # noqa: F403
from harness.moved import warn_moved

warn_moved("harness.stream", "harness.data.stream")
