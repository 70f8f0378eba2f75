"""Figures a record states twice must agree: the checks that catch a hand-edited record.

The schema checks each figure on its own (a number, in range); these check the figures a
record repeats against each other, so that editing one copy by hand is refused with the
field named instead of ranking first on the site. What they compare:

- ``inference_cost.gflops_per_image`` is torch's count (``harness/cost/inference.py`` writes
  the same number into ``gflops_per_image_torch``), and ``counter_disagreement_pct`` must not
  understate how far torch's and ptflops' counts lie apart (overstating only flags more);
- the method's label names its strategy, framework and ratio
  (``<strategy>[-<variant>][+<framework>[@<ratio>]]``, then any suffix the suite chose,
  starting with ``-`` or ``_``: ``lwf-pycil+kd``, ``lwf-slow``), and ``method.config_sha256``
  is the hash of ``method.config``;
- ``suite.num_tasks`` counts ``suite.classes_per_task``, which sum to the classes ordered.

Older records may lack a repeated field: then there is nothing to compare, and nothing is
refused. Only ok records are checked (a failed record ranks nowhere). Torch-free.
"""

from __future__ import annotations

import math
import re
from typing import Any

from harness.records.quantities import is_int, is_number
from harness.records.schema import canonical_sha256

# Copies of one figure written by the same code agree exactly; this leaves room for a
# float's last bits only.
SAME_FIGURE_RTOL = 1e-9
# counter_disagreement_pct is a percentage of a float ratio: a millionth of a point apart.
DISAGREEMENT_SLACK_PCT = 1e-6
# A suite may add a suffix to the grammar's label (``lwf-slow``); it starts with one of these.
LABEL_SUFFIX_STARTS = ("-", "_")
# A suite's name for a variant of the strategy (its own config choices), between the strategy
# and the framework: ``lwf-pycil+kd``.
_VARIANT = re.compile(r"[-_][A-Za-z0-9.=_-]+")
_RATIO = re.compile(r"@([0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)")


def cross_check_problems(record: dict[str, Any]) -> list[str]:
    """Every figure of an ok ``record`` that disagrees with another copy of it (empty: none)."""
    if record.get("status") != "ok":
        return []
    problems = _flop_problems(record.get("inference_cost"))
    method = record.get("method")
    if isinstance(method, dict):
        problems += _label_problems(method) + _config_hash_problems(method)
        problems += _tuned_problems(method.get("tuned"))
    if isinstance(record.get("suite"), dict):
        problems += _suite_problems(record["suite"])
    return problems


def _flop_problems(cost: Any) -> list[str]:
    """The ranked GFLOPs are torch's count, and the stated disagreement is the real one."""
    if not isinstance(cost, dict):
        return []
    ranked, torch_count = cost.get("gflops_per_image"), cost.get("gflops_per_image_torch")
    ptflops = cost.get("gflops_per_image_ptflops")
    problems = []
    if is_number(ranked) and is_number(torch_count) and not _same(ranked, torch_count):
        problems.append(
            f"inference_cost.gflops_per_image={ranked!r} is not torch's count "
            f"gflops_per_image_torch={torch_count!r}, which it repeats (a record edited by "
            "hand? rerun the trial, or restore the figure)"
        )
    stated = cost.get("counter_disagreement_pct")
    if is_number(torch_count) and is_number(ptflops) and is_number(stated):
        actual = _disagreement_pct(torch_count, ptflops)
        if actual > stated + DISAGREEMENT_SLACK_PCT * max(1.0, stated):
            problems.append(
                f"inference_cost.counter_disagreement_pct={stated!r} understates how far "
                f"gflops_per_image_torch={torch_count!r} and gflops_per_image_ptflops="
                f"{ptflops!r} lie apart ({actual:.6g}%)"
            )
    return problems


def _disagreement_pct(primary: float, check: float) -> float:
    """As ``harness.cost.inference.disagreement_pct`` computes it (torch-free here)."""
    if primary == check:
        return 0.0
    return 100.0 * abs(primary - check) / abs(primary) if primary else 100.0


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=SAME_FIGURE_RTOL, abs_tol=0.0)


def _label_problems(method: dict[str, Any]) -> list[str]:
    label, strategy, framework = (method.get(k) for k in ("label", "strategy", "framework"))
    if not all(isinstance(v, str) and v for v in (label, strategy, framework)):
        return []  # the schema's type checks name these
    problem = label_mismatch(label, strategy, framework, _config_ratio(method))
    return [f"method.label={label!r} {problem}"] if problem else []


def label_mismatch(label: str, strategy: str, framework: str, ratio: Any) -> str | None:
    """Why ``label`` does not name ``strategy`` under ``framework`` with ``ratio`` (the
    framework config's ``ratio``, None when it has none), or None when it does."""
    hint = f"(expected e.g. {expected_label(strategy, framework, ratio)!r})"
    if not label.startswith(strategy):
        return f"does not start with its strategy {strategy!r} {hint}"
    rest = label[len(strategy) :]
    variant = _VARIANT.match(rest)  # a named variant of the strategy: lwf-pycil+kd
    if variant and rest[variant.end() :].startswith("+"):
        rest = rest[variant.end() :]
    named = f"+{framework}"
    if rest.startswith(named):
        rest = rest[len(named) :]
    elif framework != "none":
        return f"does not name its framework {framework!r} after the strategy {hint}"
    ratio_match = _RATIO.match(rest)
    if ratio_match:
        stated = float(ratio_match.group(1))
        if not is_number(ratio):
            return f"states ratio {stated:g}, but method.config.framework has no ratio {hint}"
        if not math.isclose(stated, float(ratio), rel_tol=1e-12, abs_tol=1e-12):
            return f"states ratio {stated:g}, but method.config.framework.ratio is {ratio!r} {hint}"
        rest = rest[ratio_match.end() :]
    if rest and not rest.startswith(LABEL_SUFFIX_STARTS):
        starts = " or ".join(map(repr, LABEL_SUFFIX_STARTS))
        return (
            f"names something other than its strategy {strategy!r}, framework {framework!r} "
            f"and ratio: {rest!r} is left over {hint}; a suite's own suffix starts with {starts}"
        )
    return None


def expected_label(strategy: str, framework: str, ratio: Any) -> str:
    """The grammar's label: ``lwf``, ``lwf+kd``, ``lwf+prepruning@0.4``."""
    if framework == "none":
        return strategy
    return f"{strategy}+{framework}" + (f"@{ratio:g}" if is_number(ratio) else "")


def _config_ratio(method: dict[str, Any]) -> Any:
    config = method.get("config")
    framework = config.get("framework") if isinstance(config, dict) else None
    return framework.get("ratio") if isinstance(framework, dict) else None


def _config_hash_problems(method: dict[str, Any]) -> list[str]:
    """The leaderboard groups trials by ``config_sha256``: it must be the config's own hash
    (``harness.run.trial_spec.sha256_of`` of the resolved config)."""
    config, stated = method.get("config"), method.get("config_sha256")
    if not isinstance(config, dict) or not isinstance(stated, str):
        return []
    actual = canonical_sha256(config)
    if actual == stated:
        return []
    return [f"method.config_sha256={stated!r} is not the hash of method.config ({actual!r})"]


def _tuned_problems(tuned: Any) -> list[str]:
    """A tuned twin names its tuned config: a file under the suites' ``tuned/`` folder (a
    relative path), the file's sha256 and the suite it was tuned on."""
    if tuned is None:
        return []
    where = "method.tuned"
    if not isinstance(tuned, dict):
        return [f"{where} must be an object (file, sha256, tuning_suite)"]
    file, digest, suite = tuned.get("file"), tuned.get("sha256"), tuned.get("tuning_suite")
    problems = []
    if not isinstance(file, str) or not file.startswith("tuned/") or ".." in file.split("/"):
        problems.append(f"{where}.file={file!r} must be a path under tuned/ (relative)")
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        problems.append(f"{where}.sha256 must be 64 hex digits")
    if not isinstance(suite, str) or not suite:
        problems.append(f"{where}.tuning_suite must name a suite")
    return problems


def _suite_problems(suite: dict[str, Any]) -> list[str]:
    classes, tasks, order = (suite.get(k) for k in ("classes_per_task", "num_tasks", "class_order"))
    if not (isinstance(classes, list) and all(is_int(c) for c in classes)):
        return []  # older records store one count for every task: nothing repeated
    problems = []
    if is_int(tasks) and tasks != len(classes):
        problems.append(
            f"suite.num_tasks={tasks} is not the number of suite.classes_per_task ({len(classes)})"
        )
    if isinstance(order, list) and order and sum(classes) != len(order):
        problems.append(
            f"suite.classes_per_task sums to {sum(classes)}, but suite.class_order orders "
            f"{len(order)} classes"
        )
    return problems
