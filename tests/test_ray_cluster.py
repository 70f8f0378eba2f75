"""Trials on a Ray cluster: the same code on every node, records that name their node, and a
grid on two loopback nodes through ``cilbench run --address``, one node killed mid-grid.

The two-node test starts a head and a worker node on this machine with Ray's own
``ray.cluster_utils.Cluster`` (1 CPU each) and runs the real command line in a subprocess
against it; it takes about a minute and is marked ``slow``. The other tests need no cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.api.testing import TINY_SUITE_YAML, write_tiny_suite
from harness.data.fake_datasets import trust_generated_cifar100, write_fake_cifar100
from harness.records.validation import validate_record
from harness.run.cluster_checks import (
    SAME_FILES_FIX,
    SAME_INSTALL_FIX,
    dataset_digest,
    driver_facts,
    fingerprint_mismatch,
    harness_fingerprint,
    node_record,
    refusal,
    this_node,
    with_ray_node,
)
from harness.run.grid import plan_trials
from harness.run.trial import TrialSpec, failure_record, resolve_trial
from tests.record_factory import make_record
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]  # the subprocesses and Ray's workers import it
NODE = {"node_id": "3f2a9c1e" + "0" * 48, "host": "gpu-7"}
# The tiny suite with a method slow enough to be running when its node is killed.
CLUSTER_SUITE_YAML = TINY_SUITE_YAML.replace("name: tiny-3split", "name: tiny-cluster").replace(
    "  - strategy: lwf\n",
    "  - {strategy: lwf, label: lwf-slow, config: {training: {epochs: 120}}}\n",
)


def _fingerprint(commit: str = "a" * 40, dirty: bool = False, **plugins: str) -> dict[str, Any]:
    return {
        "harness": {"git_commit": commit, "git_dirty": dirty, "version": "0.2.0"},
        "plugins": {f"cilbench.strategies:{name}": shipped for name, shipped in plugins.items()},
    }


# ------------------------------------------------------------ same code on every node


def test_a_node_with_another_commit_is_refused_with_both_versions_the_node_and_the_fix():
    driver, node = _fingerprint("a" * 40), _fingerprint("b" * 40, dirty=True)
    message = fingerprint_mismatch(driver, node, node=NODE)
    assert message is not None
    assert f"git commit {'b' * 40!r} on the node, {'a' * 40!r} on the driver" in message
    assert "uncommitted changes True on the node, False on the driver" in message
    assert "gpu-7 (node 3f2a9c1e)" in message  # the node, by host and id
    assert f"Driver: commit {'a' * 40}, cilbench 0.2.0, plugins: none" in message
    assert f"Node gpu-7: commit {'b' * 40} (dirty)" in message
    assert "install the same commit and plugins on every node" in message
    assert message.endswith(SAME_INSTALL_FIX)


def test_a_node_with_other_plugins_is_refused_and_names_each_difference():
    driver = _fingerprint(mine="cl-mine 1.0", theirs="cl-theirs 2.0")
    node = _fingerprint(mine="cl-mine 1.1", extra="cl-extra 0.1")
    message = fingerprint_mismatch(driver, node, node=NODE)
    assert message is not None
    assert "plugin cilbench.strategies:mine is cl-mine 1.1 on the node, cl-mine 1.0" in message
    assert "plugin cilbench.strategies:theirs (cl-theirs 2.0) is not installed" in message
    assert "plugin cilbench.strategies:extra (cl-extra 0.1) is installed on the node only" in (
        message
    )
    assert "git commit" not in message  # the commits agree


def test_the_same_install_runs_and_this_checkout_agrees_with_itself():
    assert fingerprint_mismatch(_fingerprint(), _fingerprint(), node=NODE) is None
    here = harness_fingerprint()
    assert fingerprint_mismatch(here, harness_fingerprint(), node=this_node("x")) is None
    assert set(here["harness"]) == {"git_commit", "git_dirty", "version"}


def test_a_refused_trial_becomes_a_failure_record_with_the_drivers_run_id(tmp_path) -> None:
    """What the driver does with a node's refusal: the trial's own run id, never a result."""
    from harness.run.scheduler import _TrialEvents

    suite = write_tiny_suite(tmp_path)
    spec = plan_trials(suite=str(suite), methods=["lwf"], seeds=[1], debug=True).specs[0]
    received: list[dict[str, Any]] = []
    events = _TrialEvents([spec], lambda i, r: received.append(r), lambda i, e: None, [], True)
    refusal = fingerprint_mismatch(_fingerprint("a" * 40), _fingerprint("b" * 40), node=NODE)

    class Trial:
        config = {"trial_index": 0}

    result = {"kind": "refused", "error": refusal, "ray_node_json": json.dumps(NODE)}
    events.on_trial_result(0, [], Trial(), result)
    [record] = received
    assert record["status"] == "failed" and record["run_id"] == resolve_trial(spec).run_id
    assert record["error"]["message"] == refusal  # named once, not prefixed twice
    assert record["execution"]["ray_node"] == NODE
    assert record["provenance"]["device"] == "not started"
    assert validate_record(record) == []


def test_a_node_whose_data_differs_or_is_missing_is_refused_before_the_trial(tmp_path):
    suite_text = (REPO / "suites" / "cifar100-10split.yaml").read_text()
    roots = {name: tmp_path / name for name in ("driver", "same", "other", "empty")}
    for name, seed in (("driver", 0), ("same", 0), ("other", 1)):
        write_fake_cifar100(roots[name], train_per_class=2, test_per_class=1, seed=seed)
        trust_generated_cifar100(roots[name])
    roots["empty"].mkdir()

    def spec(root: str) -> TrialSpec:
        return TrialSpec(suite_text=suite_text, strategy="lwf", framework="none", seed=1,
                         backbone="resnet32", label="lwf", data_root=str(roots[root]))  # fmt: skip

    driver = {"fingerprint": harness_fingerprint(), "on_cluster": True,
              "dataset_digest": dataset_digest(spec("driver"))}  # fmt: skip
    assert refusal(driver, spec("same"), NODE) is None  # a copy of the same files
    other = refusal(driver, spec("other"), NODE)
    assert other is not None and other.startswith(
        "the cifar100 data on Ray node gpu-7 (node 3f2a9c1e) differs from the driver's"
    )
    assert other.endswith(SAME_FILES_FIX)
    missing = refusal(driver, spec("empty"), NODE)
    assert missing is not None and "fails its check" in missing and "cilbench data" in missing


def test_a_weights_file_that_differs_on_the_node_fails_the_trial(tmp_path) -> None:
    spec = plan_trials(suite=str(write_tiny_suite(tmp_path)), seeds=[1], debug=True).specs[0]
    record = make_record(label="finetune", seed=1)
    record["method"]["weights"] = {"compact_cnn": {"source": "ckpt.pt", "path": "ckpt.pt",
                                                   "sha256": "b" * 64, "url": None}}  # fmt: skip
    record["execution"] = {"device": "cpu", "device_name": "cpu", "precision": "fp32"}
    driver = {"on_cluster": True, "weights": [{"compact_cnn": "a" * 64}]}
    failed = node_record(record, spec, NODE, driver=driver, index=0)
    assert failed["status"] == "failed" and failed["run_id"] == resolve_trial(spec).run_id
    message = failed["error"]["message"]
    assert message.startswith("on Ray node gpu-7 (node 3f2a9c1e): weights on Ray node")
    assert f"ckpt.pt has sha256 {'b' * 64} on the node, {'a' * 64} on the driver" in message
    assert failed["execution"]["ray_node"] == NODE and validate_record(failed) == []
    driver["weights"] = [{"compact_cnn": "b" * 64}]  # the same file: the record stands
    assert node_record(record, spec, NODE, driver=driver, index=0)["status"] == "ok"


def test_a_local_run_checks_only_the_code(tmp_path) -> None:
    specs = plan_trials(suite=str(write_tiny_suite(tmp_path)), seeds=[1], debug=True).specs
    local = driver_facts(specs, on_cluster=False)
    assert local["dataset_digest"] is None and local["weights"] is None
    assert local["fingerprint"]["harness"]["git_commit"] == specs[0].code_version["git_commit"]
    cluster = driver_facts(specs, on_cluster=True)  # built-in data: nothing to compare
    assert cluster["dataset_digest"] is None and cluster["weights"] == [{"compact_cnn": None}] * 2


def test_a_commit_during_a_local_run_does_not_fail_its_later_trials(tmp_path) -> None:
    """Locally the workers share the driver's checkout: only the plugins are compared, so
    committing or editing while a long run goes on leaves its trials running. On a cluster
    the commit must match."""
    specs = plan_trials(suite=str(write_tiny_suite(tmp_path)), seeds=[1], debug=True).specs
    moved = [replace(s, code_version={"git_commit": "c" * 40, "git_dirty": False}) for s in specs]
    assert refusal(driver_facts(moved, on_cluster=False), moved[0], NODE) is None
    on_cluster = {**driver_facts(moved, on_cluster=True), "dataset_digest": None}
    assert "git commit" in (refusal(on_cluster, moved[0], NODE) or "")


# ------------------------------------------------------------ records name their node


def test_records_carry_their_ray_node_and_validate_with_or_without_it(tmp_path) -> None:
    ok = make_record(label="lwf", seed=1)
    assert validate_record(ok) == [] and "execution" not in ok  # as committed records are
    with_node = with_ray_node(ok, NODE, name_in_error=True)
    assert with_node["execution"]["ray_node"] == NODE and validate_record(with_node) == []
    ok["execution"] = {"device": "cpu", "precision": "fp32"}
    assert with_ray_node(ok, NODE, name_in_error=True)["execution"]["precision"] == "fp32"
    spec = plan_trials(suite=str(write_tiny_suite(tmp_path)), seeds=[1], debug=True).specs[0]
    failed = failure_record(spec, None, FileNotFoundError("no data under /data"), 1.0)
    named = with_ray_node(failed, NODE, name_in_error=True)
    assert named["error"]["message"] == "on Ray node gpu-7 (node 3f2a9c1e): no data under /data"
    assert validate_record(named) == []
    local = with_ray_node(failed, NODE, name_in_error=False)  # a local Ray: one machine
    assert local["error"]["message"] == "no data under /data"


def test_the_entry_page_names_the_node_of_each_seed(tmp_path) -> None:
    from harness.leaderboard.build import build_site
    from tests.test_site import entry_page

    nodes = [NODE, {"node_id": "77aa00bb" + "1" * 48, "host": "gpu-8"}]
    records = [with_ray_node(make_record(label="lwf", seed=s), node, name_in_error=True)
               for s, node in zip((1, 2), nodes, strict=True)]  # fmt: skip
    records.append(make_record(label="icarl", seed=1, gflops=0.2))  # a record without a node
    site = build_site(records, tmp_path / "site").parent
    lwf, icarl = entry_page(site, "lwf"), entry_page(site, "icarl")
    header = lwf.tables["per-seed"][0]
    column = header.index("Ray node")
    assert [row[column] for row in lwf.rows("per-seed")] == [
        "gpu-7 (node 3f2a9c1e)",
        "gpu-8 (node 77aa00bb)",
    ]
    assert header[-1] == "hardware"
    assert "Ray node" not in icarl.tables["per-seed"][0]  # no column where nothing ran on one


# ------------------------------------------------------------ two loopback nodes


@pytest.fixture
def two_nodes(monkeypatch):
    """Starts a head and a worker node on this machine, 1 CPU each, in a short private
    RAY_TMPDIR; ``worker_only_path`` is put on the worker node's Python path alone."""
    from ray.cluster_utils import Cluster

    folder = Path(tempfile.mkdtemp(prefix="cbc-", dir="/tmp"))
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    for key, value in {"RAY_TMPDIR": str(folder), "PYTHONPATH": path, "HF_HUB_OFFLINE": "1",
                       "RAY_USAGE_STATS_ENABLED": "0"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)  # the nodes' processes, hence their workers, inherit it
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    small = {"num_cpus": 1, "object_store_memory": 100 * 1024**2}
    cluster = Cluster()  # the head is added below, so that a failed start is shut down too

    def start(worker_only_path: Path | None = None) -> tuple[Any, Any]:
        cluster.add_node(**small, include_dashboard=False)  # the head; Ray's files: RAY_TMPDIR
        if worker_only_path is not None:
            os.environ["PYTHONPATH"] = f"{worker_only_path}{os.pathsep}{path}"
        try:
            return cluster, cluster.add_node(**small)
        finally:
            os.environ["PYTHONPATH"] = path  # the driver and the head never see it

    try:
        yield start
    finally:
        cluster.shutdown()
        shutil.rmtree(folder, ignore_errors=True)


def _slow_trials_running(log: Path) -> set[str]:
    """The slow trials (by progress name) that have finished a task but not yet ended."""
    lines = log.read_text().splitlines()
    started = {line.split(" task ")[0] for line in lines if "lwf-slow" in line and " task " in line}
    ended = {name for name in started for line in lines
             if line.startswith(name) and (" done in " in line or " FAILED" in line)}  # fmt: skip
    return started - ended


def _nodes_of_records(results: Path) -> dict[str, str]:
    """Run id -> the node id of each ok record written so far."""
    found = {}
    for path in results.glob("**/*.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):  # being written
            continue
        if record.get("status") == "ok":
            found[record["run_id"]] = record["execution"]["ray_node"]["node_id"]
    return found


@pytest.mark.slow  # a two-node cluster and six trials: about a minute on 2 cores
def test_a_grid_on_two_nodes_survives_losing_one(two_nodes, tmp_path) -> None:
    cluster, worker = two_nodes()
    head_id, worker_id = cluster.head_node.node_id, worker.node_id
    suite = tmp_path / "tiny-cluster.yaml"
    suite.write_text(CLUSTER_SUITE_YAML)
    log = tmp_path / "out.txt"
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "--suite", str(suite), "--seeds", "1,2,3",
         "--no-site", "--results", "results", "--address", cluster.address],
        cwd=tmp_path, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    results = tmp_path / "results"
    try:
        # Kill the worker node once it has finished a trial and is running a slow one: two
        # slow trials at once on two 1-CPU nodes means one runs on each.
        wait_for(lambda: worker_id in _nodes_of_records(results).values(), process, log, 180)
        wait_for(lambda: len(_slow_trials_running(log)) >= 2, process, log, 180)
        cluster.remove_node(worker)
        code = process.wait(timeout=180)  # never a hang
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    elapsed = time.monotonic() - started
    assert code == 1, output  # the lost node's trial failed; the run said so and ended

    planned = plan_trials(suite=str(suite), seeds=[1, 2, 3]).specs
    run_ids = {resolve_trial(spec).run_id for spec in planned}
    records = {}
    for path in results.glob("**/*.json"):  # every record reached the driver's results/
        record = json.loads(path.read_text())
        assert validate_record(record) == [], path
        records[record["run_id"]] = record
    assert set(records) == run_ids  # one record per trial, each under its real run id

    ok = [r for r in records.values() if r["status"] == "ok"]
    failed = [r for r in records.values() if r["status"] == "failed"]
    assert {r["execution"]["ray_node"]["node_id"] for r in ok} == {head_id, worker_id}
    assert failed, output
    lost = [r for r in failed if (r.get("execution") or {}).get("ray_node", {}).get(
        "node_id") == worker_id]  # fmt: skip
    assert lost, [r["error"] for r in failed]  # the slow trial running on the lost node
    for record in failed:
        assert record["method"]["label"] == "lwf-slow"
        assert record["error"]["type"] in (
            "ActorDiedError", "RayActorError", "WorkerCrashedError", "NodeDiedError",
            "ActorUnavailableError",
        ), record["error"]  # fmt: skip
    for record in lost:  # the error names the node it failed on
        node = f"on Ray node {socket.gethostname()} (node {worker_id[:8]}): "
        assert record["error"]["message"].startswith(node), record["error"]
    assert len(ok) == len(run_ids) - len(failed) >= 4  # the others finished on the head
    print(f"two-node grid: {len(ok)} ok, {len(failed)} failed, {elapsed:.1f} s")


@pytest.mark.slow  # a two-node cluster and three quick trials: about 30 s on 2 cores
def test_a_node_with_another_plugin_set_runs_nothing_and_says_why(two_nodes, tmp_path) -> None:
    """A plugin installed on the worker node only (a dist-info on its Python path alone)."""
    extra = tmp_path / "worker-only" / "cilbench_node_only-9.9.dist-info"
    extra.mkdir(parents=True)
    (extra / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: cilbench-node-only\nVersion: 9.9\n"
    )
    (extra / "entry_points.txt").write_text(
        "[cilbench.strategies]\nnode_only = cilbench_node_only\n"
    )
    cluster, worker = two_nodes(worker_only_path=extra.parent)
    suite = write_tiny_suite(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--suite", str(suite), "--method",
         "finetune", "--seeds", "1,2,3", "--quick", "--no-site", "--results", "results",
         "--address", cluster.address, "--max-concurrent", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    planned = plan_trials(suite=str(suite), methods=["finetune"], seeds=[1, 2, 3], debug=True)
    found = [json.loads(path.read_text()) for path in (tmp_path / "results").glob("**/*.json")]
    records = {record["run_id"]: record for record in found}
    assert set(records) == {resolve_trial(spec).run_id for spec in planned.specs}
    refused = [r for r in records.values() if r["status"] == "failed"]
    assert refused, output
    for record in records.values():
        assert validate_record(record) == []
        node = record["execution"]["ray_node"]["node_id"]
        assert node == (
            worker.node_id if record["status"] == "failed" else cluster.head_node.node_id
        )
    for record in refused:
        message = record["error"]["message"]
        assert "plugin cilbench.strategies:node_only (cilbench-node-only 9.9) is installed on " in (
            message
        )
        assert f"(node {worker.node_id[:8]})" in message and SAME_INSTALL_FIX in message
        assert record["provenance"]["device"] == "not started"
        assert message.count("on Ray node") == 1  # named once
