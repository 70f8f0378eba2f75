"""Test-session settings shared by every test file."""

from __future__ import annotations

import os

import torch

# No test may reach the network for weights (without this, a miss retries for ~48 s).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One thread, as each trial gets under Ray: small ops on two contended threads run far slower.
torch.set_num_threads(1)
