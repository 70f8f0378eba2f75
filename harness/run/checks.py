"""Checks a run must pass before Ray starts: resources, the records folder, the cluster.

Each would otherwise surface late (a trial that can never be scheduled waits forever, an
unwritable results folder loses finished trials, an unreachable address retries for
minutes); here each fails in seconds with what to change (exit code 2).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import tempfile
from pathlib import Path

MIN_FREE_BYTES = 16 * 1024**2  # records are tens of kB; less free space than this is "full"
ADDRESS_PROBE_TIMEOUT_S = 3.0


class RunCheckError(ValueError):
    """A run that cannot work as asked; the message says what to change."""


def check_cpu_options(args: argparse.Namespace) -> None:
    """CPU options Ray would otherwise ignore or wait on forever, checked before anything."""
    positive("--cpus-per-trial", args.cpus_per_trial)
    positive("--num-cpus", args.num_cpus)
    positive("--max-concurrent", args.max_concurrent)
    if args.address or os.environ.get("RAY_ADDRESS"):
        return  # a cluster's nodes may be larger than this machine
    local_cpus = args.num_cpus or os.cpu_count() or 1
    if args.cpus_per_trial > local_cpus:
        raise RunCheckError(
            f"--cpus-per-trial {args.cpus_per_trial} but the local Ray has {local_cpus} CPU(s) "
            "(this machine's, or --num-cpus): no trial could ever start. Pass "
            f"--cpus-per-trial {local_cpus} or less, or --address of a larger cluster"
        )


def check_local_gpus(requested: float) -> None:
    """A local Ray has this machine's GPUs; asking for more per trial would wait forever."""
    if requested <= 0:
        return
    import torch

    available = torch.cuda.device_count()
    if requested > available:
        raise RunCheckError(
            f"--gpus-per-trial {requested:g} but this machine has {available} GPU(s) visible: "
            "no trial could ever start. Pass a smaller --gpus-per-trial (a fraction packs "
            "trials on one GPU), --device cpu, or --address of a cluster with GPUs"
        )


def check_results_writable(results: Path) -> None:
    """Before any trial starts: the records folder exists (or can be made), takes a file,
    and has room; otherwise exit 2 instead of losing finished trials later."""
    try:
        results.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=results, prefix=".write-check-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())
        finally:
            os.unlink(probe)
        free = shutil.disk_usage(results).free
    except OSError as error:
        raise RunCheckError(
            f"cannot write records to {results}: {error.strerror or error}. Make it a writable "
            "folder (or pass --results DIR) and run again; no trial was started"
        ) from error
    if free < MIN_FREE_BYTES:
        raise RunCheckError(
            f"{results} has only {free // 1024} kB free; free some space (or pass --results "
            "DIR on another disk) and run again; no trial was started"
        )


def probe_ray_address(address: str, timeout_s: float = ADDRESS_PROBE_TIMEOUT_S) -> None:
    """Fail in seconds, naming the address, where Ray itself would retry for minutes."""
    if address in ("auto", "local"):
        return  # Ray finds (or starts) a cluster on this machine and fails fast on its own
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RunCheckError(
            f"--address {address!r}: expected HOST:PORT or ray://HOST:PORT (e.g. 10.0.0.5:6379)"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise RunCheckError(
            f"cannot reach the Ray cluster at {address} within {timeout_s:g} s "
            f"({error.strerror or error}). Start it (ray start --head) or fix --address "
            "(or $RAY_ADDRESS)"
        ) from error


def gpus_per_trial(device: str, requested: float | None) -> float:
    """The GPUs each trial asks Ray for, checked against ``--device`` before Ray starts."""
    if requested is None:
        import torch

        return 1.0 if device != "cpu" and torch.cuda.is_available() else 0.0
    if not 0 <= requested <= 64:
        raise RunCheckError(f"--gpus-per-trial must lie in [0, 64], got {requested}")
    if device == "cuda" and requested == 0:
        raise RunCheckError(
            "--device cuda with --gpus-per-trial 0: Ray hides the GPUs from trials that ask "
            "for none. Pass --gpus-per-trial 1 (or a fraction such as 0.25 to pack trials)"
        )
    if device == "cpu" and requested > 0:
        raise RunCheckError("--device cpu with --gpus-per-trial > 0 would reserve GPUs unused")
    return requested


def positive(flag: str, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise RunCheckError(f"{flag} must be a positive integer, got {value}")
    return value
