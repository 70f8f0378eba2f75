"""The record header every trial record shares, and the record of a trial that failed.

A failure record carries the trial's own run id (resolving the spec here if need be), so the
next successful run of the trial finds and replaces it.
"""

from __future__ import annotations

import datetime
import traceback
from dataclasses import asdict
from typing import Any

from harness.api.adapters import ENTRY_POINT_GROUPS, FRAMEWORKS, STRATEGIES
from harness.data.suite import Suite, class_order_sha256, parse_suite
from harness.models.environment import environment
from harness.records.provenance import adapter_origin
from harness.records.schema import TrialRecord
from harness.run.trial_spec import ResolvedTrial, TrialSpec, resolve_trial, sha256_of

# Prefix of the id of a failure record whose spec cannot even be resolved (no real run id).
UNRESOLVED_RUN_ID = "unresolved-"
# provenance.device of a failure record when no device was resolved for the trial: it failed
# before it could run, or it failed in a worker the driver cannot ask (a dead worker).
DEVICE_NOT_STARTED = "not started"
DEVICE_UNKNOWN = "unknown"


def failure_record(
    spec: TrialSpec,
    resolved: ResolvedTrial | None,
    error: BaseException | str,
    seconds: float,
    *,
    device: str = DEVICE_UNKNOWN,
) -> dict[str, Any]:
    """A record that says the trial failed and why; it does not count on the leaderboard.

    It carries the trial's own run id (the spec is resolved here if need be), so the next
    successful run of the trial finds and replaces it. ``device`` is the device resolved for
    the trial, if the caller knows it (never a guess from the machine this runs on)."""
    header = record_header(spec, resolved or _try_resolve(spec), status="failed", device=device)
    if isinstance(error, BaseException):
        details = {
            "type": type(error).__name__,
            "message": str(error) or type(error).__name__,
            "traceback": "".join(traceback.format_exception(error)),
        }
    else:
        details = {"type": "TrialError", "message": error, "traceback": None}
    timing = {"task_wall_time_s": [], "trial_wall_time_s": seconds}
    return TrialRecord(**header, timing=timing, error=details).to_json()


def record_header(
    spec: TrialSpec, resolved: ResolvedTrial | None, *, status: str, device: str = DEVICE_UNKNOWN
) -> dict[str, Any]:
    """``TrialRecord`` fields common to ok and failed trials. ``device``: where the trial ran
    (an ok record's comes from its execution)."""
    suite = resolved.suite if resolved else _try_parse(spec.suite_text)
    order = list(suite.class_orders[spec.order_index]) if suite else []
    strategy_cls = STRATEGIES.get(spec.strategy) if spec.strategy in STRATEGIES else None
    framework_cls = FRAMEWORKS.get(spec.framework) if spec.framework in FRAMEWORKS else None
    return {
        "run_id": resolved.run_id if resolved else UNRESOLVED_RUN_ID + sha256_of(asdict(spec))[:16],
        "status": status,
        "debug": spec.debug,
        "created_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "suite": {
            "name": suite.name if suite else "unknown",
            "version": suite.version if suite else None,
            "file_sha256": suite.file_sha256 if suite else None,
            "protocol_sha256": suite.protocol_sha256 if suite else None,
            "class_order": order,
            "class_order_sha256": class_order_sha256(order) if order else None,
            "order_index": spec.order_index,
            "num_tasks": suite.num_tasks if suite else None,
            "classes_per_task": list(suite.classes_per_task) if suite else None,
            "exemplar_budget": suite.exemplar_budget if suite else None,
            # Only when declared, so that earlier records stay as they were.
            **(
                {"total_memory_bytes": suite.total_memory_bytes}
                if suite and suite.total_memory_bytes is not None
                else {}
            ),
            "primary_metric": suite.primary_metric if suite else None,
        },
        "method": {
            "label": spec.label,
            "strategy": spec.strategy,
            "framework": spec.framework,
            "backbone": spec.backbone,
            "config": resolved.config_dict if resolved else spec.overrides,
            "config_sha256": resolved.config_sha256 if resolved else None,
            "reference": strategy_cls.reference if strategy_cls else None,
            "weights_overrides": dict(spec.weights),  # --weights: replaces the suite's weights
            # Only on a tuned twin: which tuned config, its digest and the suite tuned on.
            **({"tuned": dict(spec.tuned)} if spec.tuned is not None else {}),
            # Built in, or the plugin distribution (and version) each adapter came from.
            "origins": {
                kind: adapter_origin(cls, entry_point_groups=ENTRY_POINT_GROUPS) if cls else None
                for kind, cls in (("strategy", strategy_cls), ("framework", framework_cls))
            },
        },
        "seed": spec.seed,
        "provenance": {**spec.code_version, **environment(device=device)},
    }


def _try_resolve(spec: TrialSpec) -> ResolvedTrial | None:
    try:
        return resolve_trial(spec)
    except Exception:  # unknown names, bad configs: the failure record says so itself
        return None


def _try_parse(text: str) -> Suite | None:
    try:
        return parse_suite(text)
    except Exception:
        return None
