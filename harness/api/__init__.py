"""The adapter author's surface: everything a strategy or framework imports, in one place.

Owns the adapter contract (``Strategy``, ``Framework``, ``LearnerContext``), the registries,
config resolution and the shipped tiny suite for adapter tests; it re-exports the harness
pieces an adapter uses (task data, exemplar memory, the incremental network and its growth,
distillation, the training config), and the contract as checks (``contract_checks``,
``conformance``: what ``cilbench check-adapter`` and the contract tests apply). May import
data/, models/, training/, cost/ and records/; never run/ or cli/.

``from harness.api import Strategy`` imports only what that name needs: the re-exports load on
first use, so modules that need only ``harness.api.config`` or ``.registry`` stay torch-free.
"""

from __future__ import annotations

import importlib
from typing import Any

_SOURCES = {
    "harness.api.adapters": ("FRAMEWORKS", "STRATEGIES", "Framework", "LearnerContext",
                             "StageFit", "Strategy", "learn_task_with_strategy",
                             "load_adapters"),
    "harness.api.config": ("ConfigError", "check_range", "resolve_config"),
    "harness.api.registry": ("Registry", "UnknownNameError"),
    "harness.api.testing": ("TINY_SUITE_YAML", "tiny_suite", "write_tiny_suite"),
    "harness.data.stream": ("Split", "TaskData", "TaskInfo"),
    "harness.models.expanding": ("ExpandingBackbone", "add_branch", "expanding_backbone",
                                 "output_of"),
    "harness.models.incremental_net": ("ClassifierHead", "IncrementalNet"),
    "harness.training.distillation": ("DistillationConfig", "distillation_kl"),
    "harness.training.exemplars": ("ExemplarMemory",),
    "harness.training.trainer": ("Trainer", "TrainingConfig"),
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'harness.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
