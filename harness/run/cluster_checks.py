"""Trials on a Ray cluster: the same code on every node, checked, and which node ran a trial.

Every node needs the same install: the same commit of this repository and the same plugins
(the record's provenance is the driver's, so a node that runs other code would write a wrong
record), and the same data and weights files. The driver sends what it has with the trials
(``driver_facts``); each trial compares its node's before it runs (``refusal``: the code, and
on a cluster the dataset's manifest digest) and after (``node_record``: the sha256 of every
weights file it loaded) and, on a difference, ends as a failure record that names both
sides, the node and the fix. On a cluster, every failure record names the node it failed on.

Imports no Ray: the scheduler (the only module that imports Ray) passes in what Ray says
about the node.
"""

from __future__ import annotations

import copy
import socket
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import Any

from harness.api.adapters import ENTRY_POINT_GROUPS
from harness.records.provenance import code_version, node_text
from harness.run.trial_record import failure_record
from harness.run.trial_spec import TrialSpec

HARNESS_DISTRIBUTION = "cilbench"
SAME_INSTALL_FIX = (
    "install the same commit and plugins on every node (the same commit of this repository, "
    "installed the same way, and the same plugin distributions and versions), then rerun"
)
SAME_FILES_FIX = (
    "copy the driver's files to every node under the same path (an absolute --data-root, or "
    "$CILBENCH_DATA; weights files where the suite or --weights names them), then rerun"
)


def driver_facts(specs: list[TrialSpec], *, on_cluster: bool) -> dict[str, Any]:
    """What every trial checks its node against: the driver's code fingerprint and, on a
    cluster, its dataset's manifest digest and the sha256 of each trial's weights files."""
    return {
        "fingerprint": harness_fingerprint(specs[0].code_version if specs else None),
        "on_cluster": on_cluster,
        "dataset_digest": _or_none(dataset_digest, specs[0]) if on_cluster and specs else None,
        "weights": [_or_none(weights_sha256, s) or {} for s in specs] if on_cluster else None,
    }


def refusal(driver: dict[str, Any], spec: TrialSpec, node: dict[str, Any]) -> str | None:
    """Why ``spec`` must not run on this node (its code, or on a cluster its data, differs
    from the driver's), or None. Runs on the node, before the trial."""
    if driver["on_cluster"]:
        own = harness_fingerprint()
    else:
        # One checkout on one machine: its workers import the code once and are reused, so a
        # commit or an edit during a long local run must not fail the run's later trials.
        own = {"harness": driver["fingerprint"]["harness"], "plugins": installed_plugins()}
    mismatch = fingerprint_mismatch(driver["fingerprint"], own, node=node)
    if mismatch is None and driver["dataset_digest"] is not None:
        mismatch = _data_mismatch(driver["dataset_digest"], spec, node)
    return mismatch


def node_record(
    record: dict[str, Any], spec: TrialSpec, node: dict[str, Any], *, driver: dict[str, Any],
    index: int,
) -> dict[str, Any]:  # fmt: skip
    """The trial's record as the node sends it: naming the node, and a failure record if a
    weights file it loaded differs from the driver's (on a cluster)."""
    expected = driver["weights"][index] if driver.get("weights") else {}
    loaded = record.get("method", {}).get("weights") or {}
    different = [
        f"{backbone}: {entry.get('path')} has sha256 {entry.get('sha256')} on the node, "
        f"{expected[backbone]} on the driver"
        for backbone, entry in sorted(loaded.items())
        if isinstance(entry, dict) and expected.get(backbone) not in (None, entry.get("sha256"))
    ]
    if different and record.get("status") == "ok":
        why = (f"weights on Ray node {node_text(node)} differ from the driver's: "
               f"{'; '.join(different)}. Fix: {SAME_FILES_FIX}")  # fmt: skip
        execution = record["execution"]
        failed = failure_record(spec, None, why, record["timing"]["trial_wall_time_s"],
                                device=execution.get("device_name", "unknown"))  # fmt: skip
        record = {**failed, "execution": execution}
    return with_ray_node(record, node, name_in_error=driver["on_cluster"])


def dataset_digest(spec: TrialSpec) -> str | None:
    """The digest of the trial's dataset files as this node's manifest has them (sha256 over
    every file's path, size and sha256), checked first; None for a dataset without a
    manifest (built-in data; Fashion-MNIST, whose files are only parsed)."""
    from harness.data.datasets import DATASETS, default_data_root
    from harness.data.datasets.file_source import FileDatasetSource

    source = DATASETS.get(spec.suite.dataset.name)
    if not isinstance(source, FileDatasetSource):
        return None
    root = Path(spec.data_root).expanduser() if spec.data_root else default_data_root()
    return source.verified_manifest(root).digest


def weights_sha256(spec: TrialSpec) -> dict[str, str | None]:
    """Backbone -> sha256 of the weights file the trial starts it from (None: random)."""
    from harness.models.weights import resolve_weights
    from harness.run.grid import backbones_built
    from harness.run.trial_spec import resolve_trial, weights_spec

    resolved = resolve_trial(spec)
    found: dict[str, str | None] = {}
    for backbone in backbones_built(resolved):
        weights = weights_spec(spec, resolved.suite, backbone)
        found[backbone] = None if weights is None else resolve_weights(backbone, weights).sha256
    return found


def harness_fingerprint(code: dict[str, Any] | None = None) -> dict[str, Any]:
    """The code this process runs trials with: the harness's git commit and dirty flag
    (``code``, e.g. a ``TrialSpec.code_version``, else this checkout's), its installed
    version, and every installed plugin entry point with its distribution and version."""
    return {
        "harness": {**(code or code_version()), "version": _version_or_none()},
        "plugins": installed_plugins(),
    }


def installed_plugins() -> dict[str, str]:
    """``"group:name"`` -> ``"distribution version"`` of every installed adapter plugin."""
    plugins = {}
    for group in ENTRY_POINT_GROUPS:
        for point in entry_points(group=group):
            dist = point.dist
            shipped = f"{dist.name} {dist.version}" if dist else f"no distribution ({point.value})"
            plugins[f"{group}:{point.name}"] = shipped
    return dict(sorted(plugins.items()))


def fingerprint_mismatch(
    driver: dict[str, Any], node_fingerprint: dict[str, Any], *, node: dict[str, Any]
) -> str | None:
    """Why a trial must not run on ``node`` (its fingerprint differs from the driver's), or
    None when they agree. The message names both versions, the node and the fix."""
    differences = _harness_differences(driver["harness"], node_fingerprint["harness"])
    differences += _plugin_differences(driver["plugins"], node_fingerprint["plugins"])
    if not differences:
        return None
    return (
        f"the harness on Ray node {node_text(node)} differs from the driver's, so this "
        f"trial did not run there: {'; '.join(differences)}. Driver: "
        f"{describe_fingerprint(driver)}. Node {node.get('host')}: "
        f"{describe_fingerprint(node_fingerprint)}. Fix: {SAME_INSTALL_FIX}"
    )


def describe_fingerprint(fingerprint: dict[str, Any]) -> str:
    """E.g. "commit e69acd4 (dirty), cilbench 0.2.0, plugins: none"."""
    harness = fingerprint["harness"]
    commit = harness.get("git_commit")
    text = f"commit {commit}" if commit else "no git commit (not a git checkout)"
    if harness.get("git_dirty"):
        text += " (dirty)"
    text += f", {HARNESS_DISTRIBUTION} {harness.get('version') or 'not installed'}"
    plugins = fingerprint["plugins"]
    listed = ", ".join(f"{name} from {shipped}" for name, shipped in plugins.items())
    return f"{text}, plugins: {listed or 'none'}"


def this_node(node_id: str | None) -> dict[str, Any]:
    """What a record says about the Ray node that ran it: Ray's node id and the host name."""
    return {"node_id": node_id, "host": socket.gethostname()}


def with_ray_node(
    record: dict[str, Any], node: dict[str, Any], *, name_in_error: bool
) -> dict[str, Any]:
    """The record with ``execution.ray_node``; with ``name_in_error`` (trials on a cluster), a
    failure record's error message starts with the node it failed on (data or weights
    missing there, the node lost, ...)."""
    record = copy.deepcopy(record)
    execution = record.get("execution")
    record["execution"] = {**(execution if isinstance(execution, dict) else {}),
                           "ray_node": dict(node)}  # fmt: skip
    error = record.get("error")
    if name_in_error and record.get("status") == "failed" and isinstance(error, dict):
        prefix = f"on Ray node {node_text(node)}: "
        message = str(error.get("message") or "")
        if not message.startswith(prefix):
            error["message"] = prefix + message
    return record


def _or_none(find: Callable[[TrialSpec], Any], spec: TrialSpec) -> Any:
    """What ``find`` finds on the driver, or None (nothing to compare) where it cannot: such
    a trial fails on its node with the node's own error (the driver's preflight passed)."""
    try:
        return find(spec)
    except Exception:
        return None


def _data_mismatch(expected: str, spec: TrialSpec, node: dict[str, Any]) -> str | None:
    name = spec.suite.dataset.name
    try:
        found = dataset_digest(spec)
    except Exception as error:  # missing or corrupt files: the check says which
        return (f"the {name} data on Ray node {node_text(node)} fails its check: {error}. "
                f"Fix: {SAME_FILES_FIX}")  # fmt: skip
    if found == expected:
        return None
    return (
        f"the {name} data on Ray node {node_text(node)} differs from the driver's (manifest "
        f"digest {str(found)[:16]} on the node, {expected[:16]} on the driver). Fix: "
        f"{SAME_FILES_FIX}"
    )


def _harness_differences(driver: dict[str, Any], node: dict[str, Any]) -> list[str]:
    names = {"git_commit": "git commit", "git_dirty": "uncommitted changes",
             "version": f"{HARNESS_DISTRIBUTION} version"}  # fmt: skip
    return [
        f"{names.get(key, key)} {node.get(key)!r} on the node, {driver.get(key)!r} on the driver"
        for key in sorted(set(driver) | set(node))
        if driver.get(key) != node.get(key)
    ]


def _plugin_differences(driver: dict[str, str], node: dict[str, str]) -> list[str]:
    differences = []
    for name in sorted(set(driver) | set(node)):
        if name not in node:
            differences.append(f"plugin {name} ({driver[name]}) is not installed on the node")
        elif name not in driver:
            differences.append(f"plugin {name} ({node[name]}) is installed on the node only")
        elif driver[name] != node[name]:
            differences.append(f"plugin {name} is {node[name]} on the node, {driver[name]} "
                               "on the driver")  # fmt: skip
    return differences


def _version_or_none() -> str | None:
    try:
        return version(HARNESS_DISTRIBUTION)
    except PackageNotFoundError:
        return None
