"""Old import paths that adapters out of the tree may still use, kept for one release.

``harness.adapters``, ``harness.stream``, ``harness.exemplars``, ``harness.incremental_net`` and
``harness.training``'s ``Trainer``/``TrainingConfig`` moved into the subpackages in 0.2; each
old path re-exports its module and warns once with the new one. Removed in 0.3.
"""

from __future__ import annotations

import warnings

REMOVED_IN = "0.3"


def warn_moved(old: str, new: str) -> None:
    warnings.warn(
        f"{old} moved to {new} (or import from harness.api, the adapter author's surface); "
        f"the old path goes in cilbench {REMOVED_IN}",
        DeprecationWarning,
        stacklevel=3,
    )
