"""cilbench: a harness for low-complexity inference in class-incremental learning.

The harness owns everything that makes a comparison fair (data stream, splits, evaluation,
inference-cost measurement, records); adapters in ``methods/`` own only how they learn.
"""

from __future__ import annotations

__version__ = "0.2.0"
