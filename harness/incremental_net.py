"""Deprecated path: moved to ``harness.models.incremental_net`` (see ``harness.moved``)."""

from harness.models.incremental_net import *  # noqa: F403
from harness.moved import warn_moved

warn_moved("harness.incremental_net", "harness.models.incremental_net")
