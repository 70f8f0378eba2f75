"""How many trials a local run starts at once by default: one per CPU that is idle.

A trial is single-threaded by default (``--cpus-per-trial 1``, part of the run id), so a
second trial at once gains only where a second CPU is free. Measured on a shared 2-core
machine (README, "How many trials at once"), digits-5split's 21 seed-1 trials: with the
machine otherwise idle, two at once took 72 s against 132 s one at a time (1.8x); with
other jobs keeping its cores busy, two at once made each trial 1.3-1.9x slower and the grid
0.93-1.16x as fast, for one more Ray worker's start-up (about 5 CPU-seconds of imports) and
twice the memory. So the default follows the idle CPUs the load average shows, not the core
count. Concurrency never changes a trial's numbers (the same 21 matrices either way), only
when it finishes.
"""

from __future__ import annotations

import math
import os

# A CPU counts as idle when the 1-minute load average leaves at least this much of it free:
# the average lags by about a minute and includes this command's own start-up (imports).
IDLE_FRACTION = 0.25


def load_average() -> float | None:
    """This machine's 1-minute load average, or None where the platform has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def default_max_concurrent(
    *, cpus_per_trial: int, load: float | None, num_cpus: int | None = None
) -> int:
    """Trials at once on a local Ray: as many as the idle CPUs hold, at least 1.

    ``load`` is the 1-minute load average (None: unknown, size by the CPUs alone);
    ``num_cpus`` the local Ray's size (default: this machine's CPUs).
    """
    cpus = num_cpus or os.cpu_count() or 1
    fits = max(1, cpus // cpus_per_trial)
    if load is None:
        return fits
    idle = max(0.0, cpus - load)
    return max(1, min(fits, math.floor(idle / cpus_per_trial + 1 - IDLE_FRACTION)))
