"""The search: Ray Tune samples the method's space under the suite's budget, seeded.

- Budget: ``suite.tuning.samples`` configurations, the first being the method's own config
  as the suite runs it (so a tuned config never does worse on validation than the default),
  each learning the suite's tasks with the suite's training recipe. ASHA (``ASHAScheduler``)
  uses tasks as its time axis: it stops weaker configurations once they have learned
  ``grace_tasks`` tasks. No method can ask for more.
- Metric: average incremental accuracy on the validation split after each task
  (``validation_trial``); the winner is the configuration with the best value after the last
  task, among those that learned every task.
- Seeded: ``BasicVariantGenerator(random_state=seed)`` draws the configurations, so the same
  command tries the same configurations, and each configuration's validation curve repeats
  exactly. Which configurations ASHA stops depends on the order Ray runs them in, which Ray
  does not fix even one at a time: two runs of one fmnist-5split search stopped the defaults
  after task 2 in one and let them finish in the other (winners 0.02 points apart).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, replace
from typing import Any

from harness.api.search_space import Domain
from harness.data.suite_tuning import TuningBudget
from harness.evaluation.protocol import TaskEvent
from harness.run.cluster_checks import driver_facts, refusal, this_node

# Ray through the scheduler, which sets Ray's environment before importing it.
from harness.run.scheduler import SchedulerOptions, _run_folder, _start_ray, ray, tune
from harness.run.trial_spec import TrialSpec
from harness.tuning.space import plain_values, with_sampled
from harness.tuning.validation_trial import run_validation_trial

METRIC = "val_aia_pct"  # average incremental accuracy on validation data, after each task
TIME_AXIS = "task"  # what ASHA counts: tasks learned


@dataclass(frozen=True)
class TriedConfig:
    values: dict[str, Any]  # "scope.field" -> value
    val_acc_pct: list[float]  # accuracy on seen validation classes after each task learned
    error: str | None = None

    @property
    def val_aia_pct(self) -> float | None:
        return sum(self.val_acc_pct) / len(self.val_acc_pct) if self.val_acc_pct else None

    def to_dict(self) -> dict[str, Any]:
        return {"values": self.values, "val_acc_pct": self.val_acc_pct,
                "val_aia_pct": self.val_aia_pct, "error": self.error}  # fmt: skip


@dataclass(frozen=True)
class SearchOutcome:
    tried: list[TriedConfig]
    num_tasks: int
    best: TriedConfig | None  # None when no configuration learned every task

    def completed(self) -> list[TriedConfig]:
        return [t for t in self.tried if t.error is None and len(t.val_acc_pct) == self.num_tasks]


def ray_domain(domain: Domain) -> Any:
    if domain.kind == "choice":
        return tune.choice(list(domain.values))
    return getattr(tune, domain.kind)(domain.low, domain.high)


def search(
    base: TrialSpec,
    space: dict[str, Domain],
    defaults: dict[str, Any],
    budget: TuningBudget,
    *,
    num_tasks: int,
    seed: int,
    options: SchedulerOptions,
) -> SearchOutcome:
    """Try ``budget.samples`` configurations of ``base`` (defaults first) and pick the best."""
    folder = _run_folder()
    history = _History()
    try:
        _start_ray(options, folder)
        # The same checks as a ranked run's: a node with other code or data must not score.
        on_cluster = bool(options.address or os.environ.get("RAY_ADDRESS"))
        driver = driver_facts([base], on_cluster=on_cluster)
        tuner = tune.Tuner(
            tune.with_resources(
                tune.with_parameters(_trainable, base=base, driver=driver),
                {"cpu": options.cpus_per_trial},
            ),
            param_space={key: ray_domain(domain) for key, domain in space.items()},
            tune_config=tune.TuneConfig(
                metric=METRIC,
                mode="max",
                num_samples=budget.samples,
                search_alg=tune.search.BasicVariantGenerator(
                    points_to_evaluate=[defaults], random_state=seed
                ),
                scheduler=tune.schedulers.ASHAScheduler(
                    time_attr=TIME_AXIS,
                    max_t=num_tasks,
                    grace_period=budget.grace_tasks,
                    reduction_factor=budget.reduction_factor,
                ),
                max_concurrent_trials=options.max_concurrent,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name="cilbench-tune",
                storage_path=str(folder / "tune"),
                verbose=0,
                callbacks=[history],
            ),
        )
        tried = [_tried(result, space, history) for result in tuner.fit()]
    finally:
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    tried.sort(key=lambda t: json.dumps(t.values, sort_keys=True))  # order-free, for the record
    outcome = SearchOutcome(tried=tried, num_tasks=num_tasks, best=None)
    finished = outcome.completed()
    # On a tie the defaults win: a tuned config departs from them only where it is better.
    best = max(finished, key=lambda t: (t.val_aia_pct or 0.0, t.values == defaults), default=None)
    return replace(outcome, best=best)


def _trainable(config: dict[str, Any], base: TrialSpec, driver: dict[str, Any]) -> None:
    """Inside a Ray worker: one configuration, reporting the validation metric per task."""
    spec = replace(base, overrides=with_sampled(base.overrides, plain_values(config)))
    why_not = refusal(driver, spec, this_node(ray.get_runtime_context().get_node_id()))
    if why_not is not None:
        raise RuntimeError(why_not)  # a failed configuration, with the reason
    accuracies: list[float] = []

    def report(event: TaskEvent) -> None:
        accuracies.append(event.acc_seen_pct)
        tune.report({TIME_AXIS: event.task_index + 1, "val_acc_pct": event.acc_seen_pct,
                     METRIC: sum(accuracies) / len(accuracies)})  # fmt: skip

    run_validation_trial(spec, on_task_end=report)


class _History(tune.Callback):
    """Each trial's validation accuracy after every task it learned, as reported."""

    def __init__(self) -> None:
        self.curves: dict[str, list[float]] = {}

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:  # noqa: ANN001
        self.curves.setdefault(trial.trial_id, []).append(float(result["val_acc_pct"]))


def _tried(result: Any, space: dict[str, Domain], history: _History) -> TriedConfig:
    values = plain_values({key: result.config[key] for key in space})
    trial_id = (result.metrics or {}).get("trial_id")
    accuracies = history.curves.get(trial_id, []) if trial_id else []
    error = None if result.error is None else f"{type(result.error).__name__}: {result.error}"
    return TriedConfig(values=values, val_acc_pct=accuracies, error=error)
