"""The adapter contract's checks, one function each, over trial records of the tiny suite.

Each check reads what a trial through the harness's own path (``run_trial``) wrote and
returns a ``CheckResult``: pass, or what is wrong and how to fix it, in words an adapter's
author can act on. ``harness.api.conformance`` decides which trials to run for an adapter
and combines these per trial; the project's contract tests call them directly.

A trial that failed fails the one check its error belongs to (``owner_of``: reading test
data fails "no test data read while learning"); every other check of that trial is "not
checked", never a pass.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.api.adapters import STRATEGIES
from harness.api.config import ConfigError, resolve_config
from harness.cost.inference import why_not_cheaper
from harness.models.backbones import BACKBONES
from harness.records.validation import validate_record

PASS, FAIL, NOT_CHECKED = "pass", "FAIL", "not checked"

COMPLETES = "every trial runs to the end"
NO_TEST_DATA = "no test data read while learning"
NO_TASK_ID = "no task id at inference"
SCORES = "scores over all seen classes after every task"
DETERMINISTIC = "same seed, same accuracy matrix"
SEED_REACHES = "the seed reaches training"
MEMORY = "exemplar memory within budget"
BUDGET = "declared training budget spent"
COST = "inference cost measurable"
RECORD = "record valid"
CHEAPER = "compressed model cheaper than plain"
CONFIG = "config refuses NaN and infinity"
COMPOSES = "composes with the plain strategies"

# Counters of the served model's FLOPs may differ by this much (relative) and still agree.
COUNTER_TOLERANCE = 0.02
Record = Mapping[str, Any]


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: ``status`` is PASS, FAIL or NOT_CHECKED; ``message`` says what
    held or what is wrong, and ``fix`` (on a failure) what to change."""

    check: str
    status: str
    message: str
    fix: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def explained(self) -> str:
        """The message, and the fix when there is one."""
        return f"{self.message} Fix: {self.fix}" if self.fix else self.message


def label_of(record: Record) -> str:
    return f"{record['method']['strategy']}+{record['method']['framework']}"


def owner_of(error: Mapping[str, Any]) -> str:
    """The check a failed trial's error belongs to (COMPLETES when no other one owns it)."""
    kind, message = error.get("type", ""), error.get("message", "")
    traceback = error.get("traceback") or ""
    owners = {"TestDataAccessError": NO_TEST_DATA, "ExemplarBudgetError": MEMORY,
              "MemoryBudgetError": MEMORY, "BudgetMismatchError": BUDGET}  # fmt: skip
    if kind in owners:
        return owners[kind]
    if kind == "ContractViolation" and "scores of shape" in message:
        return SCORES
    if kind == "TypeError" and "predict_scores" in traceback:
        return NO_TASK_ID  # the served module would not take images alone
    return COMPLETES


# Why a trial failed in each check's terms, and the fix, after the harness's own message.
_FIXES = {
    COMPLETES: "correct the error at the place named (the record's error.traceback has the "
    "whole trace); `cilbench check-adapter` runs its trials in process, so a debugger can "
    "stop there.",
    NO_TEST_DATA: "an adapter may use the current task's train and val splits (TaskData) and "
    "its exemplar memory, nothing else: the harness seals the test split while learn() runs. "
    "Train, select and calibrate on task.train, task.val or the memory only.",
    NO_TASK_ID: "the harness calls the served module with a batch of images and nothing else "
    "(no task id, no labels): make forward(x) take images only and return scores over every "
    "class seen so far.",
    SCORES: "the served module must return one score per class seen so far, old and new: "
    "grow the head each task (start_task calls model.add_classes) and make a custom "
    "predictor cover every seen class.",
    MEMORY: "make room before storing: quota = self.memory.make_room(task.info."
    "num_seen_classes, new_classes=task.info.classes, method=...) cuts the earlier classes "
    "to budget // seen classes; then store at most quota images of each new class.",
    BUDGET: "train every model through the harness's loop (learn_task_with_strategy, "
    "train_on_task or context.fit) and declare each model's and stage's epochs per task in "
    "Framework.declared_epochs (a strategy's extra stages in Strategy.extra_stages).",
}
# Frames of the harness and of torch, as opposed to an adapter's own.
_HARNESS_CODE, _TORCH_CODE = f"{os.sep}harness{os.sep}", f"{os.sep}torch{os.sep}"


def failure_of(record: Record, check: str) -> CheckResult | None:
    """None when the trial finished; else FAIL if its error belongs to ``check`` (with the
    fix), NOT_CHECKED if it belongs to another check."""
    if record["status"] == "ok":
        return None
    error = record.get("error") or {}
    label = label_of(record)
    if owner_of(error) != check:
        return CheckResult(check, NOT_CHECKED, f"{label} did not finish")
    where = _adapter_frame(error.get("traceback") or "")
    problem = f"{label} failed: {error.get('type')}: {error.get('message')}{where}."
    return CheckResult(check, FAIL, problem, _FIXES[check])


def _adapter_frame(traceback: str) -> str:
    """' (at File "...", line N, in f)': the innermost frame of the adapter's own code, where
    it went wrong; else the innermost of the harness's (where the harness called it)."""
    frames = [line.strip() for line in traceback.splitlines() if line.strip().startswith("File")]
    harness = [frame for frame in frames if _TORCH_CODE not in frame]
    own = [frame for frame in harness if _HARNESS_CODE not in frame]
    chosen = own or harness or frames
    return f" (at {chosen[-1]})" if chosen else ""


def on_finished_trials(
    check: str,
) -> Callable[[Callable[..., CheckResult]], Callable[..., CheckResult]]:
    """Decorator: the check reads only trials that finished; a failed trial's error fails
    the check it belongs to and leaves the others not checked (``failure_of``)."""

    def decorate(function: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
        @functools.wraps(function)
        def checked(*records: Record) -> CheckResult:
            for record in records:
                failed = failure_of(record, check)
                if failed is not None:
                    return failed
            return function(*records)

        return checked

    return decorate


@on_finished_trials(COMPLETES)
def check_completes(record: Record) -> CheckResult:
    return CheckResult(COMPLETES, PASS, f"{label_of(record)} finished every task")


@on_finished_trials(NO_TEST_DATA)
def check_learns_without_test_data(record: Record) -> CheckResult:
    return CheckResult(NO_TEST_DATA, PASS, "the test split stayed sealed through every learn()")


@on_finished_trials(NO_TASK_ID)
def check_no_task_id_at_inference(record: Record) -> CheckResult:
    """The harness makes a task id unreachable (it passes images only); a served module that
    wants one fails its first evaluation with a TypeError, which this names."""
    message = "the served module scored every test batch from images alone (nothing else)"
    return CheckResult(NO_TASK_ID, PASS, message)


@on_finished_trials(SCORES)
def check_scores_cover_seen_classes(record: Record) -> CheckResult:
    num_tasks = record["suite"]["num_tasks"]
    for matrix in ("acc_matrix_pct", "task_aware_acc_matrix_pct"):
        rows = record["results"][matrix]
        problem = None if len(rows) == num_tasks else f"{len(rows)} rows for {num_tasks} tasks"
        for i, row in enumerate(rows):
            seen, unseen = row[: i + 1], row[i + 1 :]
            if not all(a is not None and 0.0 <= a <= 100.0 for a in seen):
                problem = f"row {i + 1} has no accuracy in [0, 100] for a seen task: {row}"
            elif unseen != [None] * (num_tasks - i - 1):
                problem = f"row {i + 1} scores tasks not seen yet: {row}"
        if problem:
            message = f"{label_of(record)}: the record's {matrix} is malformed ({problem})."
            return CheckResult(SCORES, FAIL, message, _FIXES[SCORES])
    return CheckResult(SCORES, PASS, f"{num_tasks} rows, every seen task scored after each task")


@on_finished_trials(MEMORY)
def check_memory_within_budget(record: Record) -> CheckResult:
    label, strategy = label_of(record), STRATEGIES.get(record["method"]["strategy"])
    if strategy.unbounded_memory and not strategy.reference:
        message = f"{label}: {strategy.__name__} asks for unbounded_memory but is no reference."
        fix = ("remove `unbounded_memory = True`: only a reference bound (e.g. joint "
               "training, reference = 'upper_bound') may keep all data.")  # fmt: skip
        return CheckResult(MEMORY, FAIL, message, fix)
    if strategy.unbounded_memory:
        return CheckResult(MEMORY, PASS, f"unbounded: {strategy.__name__} is a reference bound")
    kept = [row["exemplars"] for row in record["memory"]["after_task"]]
    budget = record["suite"]["exemplar_budget"]
    if max(kept, default=0) > budget:
        message = f"{label} kept {kept} exemplars after each task, over the budget of {budget}."
        return CheckResult(MEMORY, FAIL, message, _FIXES[MEMORY])
    return CheckResult(MEMORY, PASS, f"at most {max(kept, default=0)} of {budget} exemplars")


@on_finished_trials(BUDGET)
def check_training_budget_spent(record: Record) -> CheckResult:
    budget = record["training_budget"]
    declared = {(t + 1, role): epochs for t, row in enumerate(budget["declared_epochs"])
                for role, epochs in row.items() if epochs}  # fmt: skip
    spent = {(row["task"], row["role"]): row["epochs"] for row in budget["spent"]}
    if spent != declared:
        message = f"{label_of(record)} declared epochs {declared} but spent {spent}."
        return CheckResult(BUDGET, FAIL, message, _FIXES[BUDGET])
    return CheckResult(BUDGET, PASS, "every model trained exactly its declared epochs")


@on_finished_trials(COST)
def check_cost_measurable(record: Record) -> CheckResult:
    """Every op of the served model has a FLOP formula, both counters agree, and the module
    has parameters, a head and a registered backbone to name."""
    label, cost = label_of(record), record["inference_cost"]
    torch_count, ptflops = cost["gflops_per_image"], cost["gflops_per_image_ptflops"]
    served = record["method"]["inference_backbone"]
    problems = [
        (cost["uncounted_ops"], f"the served model runs ops with no FLOP formula "
         f"({', '.join(cost['uncounted_ops'])}), so its GFLOPs would read low",
         "serve standard layers, or add the op's formula (harness/cost/flop_formulas.py) or, "
         "if its arithmetic is negligible, name it in NEGLIGIBLE_OPS (harness/cost/"
         "op_coverage.py)"),
        (abs(ptflops - torch_count) > COUNTER_TOLERANCE * torch_count,
         f"torch's counter ({torch_count:.6g}) and ptflops ({ptflops:.6g} GFLOPs) disagree by "
         "more than 2%", "compute the scores inside the served module's forward, with "
         "modules and tensor ops, not in hooks or outside it"),
        (torch_count <= 0 or cost["params_millions"] <= 0, "the served model counts no "
         "FLOPs or no parameters", "serve the module that computes the scores"),
        (cost["params_millions_without_head"] >= cost["params_millions"], "no classifier "
         "head found in the served model", "serve an IncrementalNet (context.build_model()) "
         "or a module wrapping one"),
        (served not in BACKBONES, f"the served module names {served!r} as its backbone, "
         "which is not registered", "serve a model built by context.build_model(...)"),
    ]  # fmt: skip
    found = [(message, fix) for failing, message, fix in problems if failing]
    if found:
        message = f"{label}: " + "; ".join(message for message, _ in found) + "."
        return CheckResult(COST, FAIL, message, "; ".join(fix for _, fix in found) + ".")
    message = f"{label}: {torch_count:.4g} GFLOPs, all ops counted, counters agree"
    return CheckResult(COST, PASS, message)


@on_finished_trials(RECORD)
def check_record_valid(record: Record) -> CheckResult:
    problems = validate_record(dict(record))
    if problems:
        message = f"{label_of(record)}: the record breaks its schema: {'; '.join(problems)}."
        fix = "Framework.report() must return plain JSON values (finite numbers, strings, lists)."
        return CheckResult(RECORD, FAIL, message, fix)
    return CheckResult(RECORD, PASS, "the record passes cilbench validate's schema checks")


@on_finished_trials(DETERMINISTIC)
def check_deterministic(first: Record, second: Record) -> CheckResult:
    """Two runs of one trial (same seed) must give the same accuracy matrix."""
    a, b = first["results"]["acc_matrix_pct"], second["results"]["acc_matrix_pct"]
    if a != b:
        seed = first["seed"]
        message = f"{label_of(first)} with seed {seed} gave two accuracy matrices: {a}, then {b}."
        fix = (
            "the harness seeds Python's random, NumPy's global generator and torch's before "
            "each trial: draw every random number from those, or from a torch.Generator "
            "seeded from torch.initial_seed(); never from time, os.urandom, hash() of a "
            "string, an unseeded numpy.random.default_rng() or torch.Generator().seed()."
        )
        return CheckResult(DETERMINISTIC, FAIL, message, fix)
    return CheckResult(DETERMINISTIC, PASS, f"two runs with seed {first['seed']} agree")


@on_finished_trials(SEED_REACHES)
def check_seed_reaches_training(one: Record, other: Record) -> CheckResult:
    """Two seeds must give two runs and two accuracy matrices (for a strategy that says its
    tiny-suite accuracies move with the seed)."""
    a, b = one["results"]["acc_matrix_pct"], other["results"]["acc_matrix_pct"]
    if one["run_id"] == other["run_id"] or a == b:
        message = (
            f"{label_of(one)}: seeds {one['seed']} and {other['seed']} gave the same accuracy "
            f"matrix {a}, so nothing shows the seed reaching training."
        )
        fix = (
            "if the strategy ends at the same accuracies whatever the batch order on the tiny "
            "suite (e.g. 100% on the newest task, 0% on the others), set "
            "`seed_sensitive_on_tiny_suite = False` with a comment saying why; otherwise "
            "draw its randomness from the seeded generators."
        )
        return CheckResult(SEED_REACHES, FAIL, message, fix)
    return CheckResult(SEED_REACHES, PASS, "seeds 1 and 2 give different accuracy matrices")


@on_finished_trials(CHEAPER)
def check_cheaper(plain: Record, compressed: Record) -> CheckResult:
    """A framework that declares ``compresses`` serves fewer FLOPs and parameters."""
    reason = why_not_cheaper(plain["inference_cost"], compressed["inference_cost"])
    if reason is not None:
        message = f"{label_of(compressed)} against {label_of(plain)}: {reason}."
        fix = (
            "declare `compresses = False` on the framework, or serve a smaller model: remove "
            "whole channels (harness.training.pruning.prune_channels) or serve a smaller "
            "student (context.build_model(backbone=...))."
        )
        return CheckResult(CHEAPER, FAIL, message, fix)
    flops = "gflops_per_image"
    saved = 1 - compressed["inference_cost"][flops] / plain["inference_cost"][flops]
    return CheckResult(CHEAPER, PASS, f"{label_of(compressed)} serves {saved:.0%} fewer FLOPs")


def check_config_refuses_nan(adapter: type, *, scope: str) -> CheckResult:
    """The adapter's defaults resolve, and every float field refuses NaN and infinities."""
    config_cls = adapter.Config
    if not dataclasses.is_dataclass(config_cls):
        message = f"{adapter.__name__}.Config ({config_cls!r}) is not a dataclass."
        return CheckResult(CONFIG, FAIL, message, "make it a @dataclass(frozen=True).")
    try:
        resolve_config(config_cls, {}, scope=scope)
    except ConfigError as error:
        return CheckResult(CONFIG, FAIL, f"the defaults are refused: {error}.", "fix them.")
    accepted = []
    for name in float_fields(config_cls):
        for value in ("NaN", "Infinity", "-Infinity"):
            try:
                resolve_config(config_cls, {name: value}, scope=scope)
            except ConfigError:
                continue
            accepted.append(f"{scope}.{name}={value}")
    if accepted:
        fix = (
            f"declare each float field of {config_cls.__name__} with its range, `name: float "
            "= ranged(default, at_least=...)` (harness.api.config), and never replace a "
            "refused value in __post_init__."
        )
        return CheckResult(CONFIG, FAIL, f"{', '.join(accepted)} accepted.", fix)
    fields = float_fields(config_cls)
    held = f"float fields ({', '.join(fields)}) refuse NaN and infinities" if fields else ""
    return CheckResult(CONFIG, PASS, held or "no float fields")


def float_fields(config_cls: type) -> list[str]:
    """Names of the fields annotated ``float`` (or ``float | None``)."""
    hints = typing.get_type_hints(config_cls)
    return [f.name for f in dataclasses.fields(config_cls)
            if hints[f.name] is float or float in typing.get_args(hints[f.name])]  # fmt: skip


# The checks every contract trial gets, by name, in the order they print.
PER_TRIAL = {COMPLETES: check_completes, NO_TEST_DATA: check_learns_without_test_data,
             NO_TASK_ID: check_no_task_id_at_inference, SCORES: check_scores_cover_seen_classes,
             MEMORY: check_memory_within_budget, BUDGET: check_training_budget_spent,
             COST: check_cost_measurable, RECORD: check_record_valid}  # fmt: skip
