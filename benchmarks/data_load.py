"""How long the real-format datasets take to load, first time and cached, and what they cost
in memory. Generates each dataset in its real on-disk format at realistic size with random
content (``harness.data.fake_datasets``), then measures, each in a fresh process:

- first load: ``check_dataset`` (builds the manifest: hashes every file) and ``load_dataset``
  (decodes every JPEG once into the cache; CIFAR-100 just unpickles);
- cached load: the preflight ``check_dataset`` (stat every file, hash the small ones) and
  ``load_dataset`` (memory-maps the cache);
- peak RSS (VmHWM) of a process holding one trial's data: every split loaded and every page
  touched (memory-mapped cache pages count as the process's resident file pages).

CIFAR-100's manifest is built during generation (``trust_generated_cifar100``), so its "first
check" is the same as its every-time check: re-hashing its three pickles.

    python benchmarks/data_load.py                       # full size, in a temp folder
    python benchmarks/data_load.py --scale 0.1 --json out.json --root /tmp/bench-data

The generated files stay in the OS page cache after generation, so "first load" is a warm-disk
figure; on a cold disk add the time to read the dataset once (1.6-2.7 GB for these two).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("data_load")

FULL = {"cifar100": 60_000, "fgvc-aircraft": 10_000, "stanford-cars": 16_185}
SIZES = {"fgvc-aircraft": (1000, 700), "stanford-cars": (700, 480)}  # typical, +-15%


def generate(name: str, root: Path, *, scale: float, workers: int) -> dict:
    """Write ``name`` into ``root`` unless it is there; returns what was generated."""
    from harness.data import fake_datasets as fake

    start = time.perf_counter()
    if name == "cifar100":
        per_class = max(1, round(500 * scale))
        fake.write_fake_cifar100(
            root, train_per_class=per_class, test_per_class=max(1, per_class // 5)
        )
        fake.trust_generated_cifar100(root)  # hashes once, like a first check would
        return {"generate_s": time.perf_counter() - start, "image_size": "32x32"}
    if name == "fgvc-aircraft":
        fake.write_fake_aircraft(
            root,
            per_class_per_split=max(1, round(FULL[name] * scale / 300)),
            image_size=SIZES[name],
            size_jitter=0.15,
            workers=workers,
        )
    else:
        fake.write_fake_cars(
            root,
            train_per_class=max(1, round(42 * scale)),
            test_per_class=max(1, round(41 * scale)),
            image_size=SIZES[name],
            size_jitter=0.15,
            greyscale_every=100,
            workers=workers,
        )
    w, h = SIZES[name]
    return {"generate_s": time.perf_counter() - start, "image_size": f"~{w}x{h} (+-15%)"}


def measure(name: str, root: Path, image_size: int) -> dict:
    """In this (fresh) process: check, load, touch every page; times and peak RSS."""
    import numpy as np

    from harness.data.datasets import check_dataset, load_dataset

    baseline_kb = _proc_status_kb("VmRSS")
    start = time.perf_counter()
    check_dataset(name, root, image_size=image_size)
    checked = time.perf_counter()
    data = load_dataset(name, root, image_size=image_size)
    loaded = time.perf_counter()
    arrays = [a for a in (data.train_x, data.val_x, data.test_x) if a is not None]
    checksum = sum(int(np.sum(a, dtype=np.uint64)) for a in arrays)  # touch every page
    return {
        "check_s": checked - start,
        "load_s": loaded - checked,
        "touch_s": time.perf_counter() - loaded,
        "images": sum(len(a) for a in arrays),
        "array_shape": list(data.train_x.shape[1:]),
        "dtype": str(data.train_x.dtype),
        "data_mb": sum(a.nbytes for a in arrays) / 2**20,
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
        "peak_rss_mb": _proc_status_kb("VmHWM") / 1024,
        "baseline_rss_mb": baseline_kb / 1024,
        "checksum": checksum,
    }


def _proc_status_kb(field: str) -> int:
    """A memory figure of this process from /proc (Linux), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _measure_in_child(name: str, root: Path, image_size: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--measure",
        name,
        "--root",
        str(root),
        "--image-size",
        str(image_size),
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def benchmark(names: list[str], root: Path, *, scale: float, image_size: int) -> list[dict]:
    rows = []
    for name in names:
        log.info("%s: generating (scale %.3g) ...", name, scale)
        row = {
            "dataset": name,
            "scale": scale,
            **generate(name, root, scale=scale, workers=os.cpu_count() or 1),
        }
        size = 32 if name == "cifar100" else image_size
        log.info("%s: first load ...", name)
        row["first"] = _measure_in_child(name, root, size)
        log.info("%s: cached load ...", name)
        row["cached"] = _measure_in_child(name, root, size)
        row["files_gb"] = _folder_bytes(root, name) / 2**30
        rows.append(row)
        log.info("%s: %s", name, json.dumps(row))
    return rows


def _folder_bytes(root: Path, name: str) -> int:
    folder = {
        "cifar100": "cifar-100-python",
        "fgvc-aircraft": "fgvc-aircraft-2013b",
        "stanford-cars": "stanford_cars",
    }[name]
    return sum(p.stat().st_size for p in (root / folder).rglob("*") if p.is_file())


def print_table(rows: list[dict], *, scale: float) -> None:
    header = (
        f"{'dataset':14} {'images':>7} {'files GB':>8} {'first check':>11} "
        f"{'first load':>10} {'cached check':>12} {'cached load':>11} {'data MB':>8} "
        f"{'peak RSS MB':>11}"
    )
    print(header)
    for r in rows:
        f, c = r["first"], r["cached"]
        print(
            f"{r['dataset']:14} {c['images']:>7} {r['files_gb']:>8.2f} {f['check_s']:>10.2f}s "
            f"{f['load_s']:>9.2f}s {c['check_s']:>11.2f}s {c['load_s']:>10.3f}s "
            f"{c['data_mb']:>8.0f} {c['peak_rss_mb']:>11.0f}"
        )
        if scale != 1.0 and r["dataset"] != "cifar100":
            factor = FULL[r["dataset"]] / c["images"]
            print(
                f"  extrapolated to {FULL[r['dataset']]} images (x{factor:.1f}, linear): first "
                f"check {f['check_s'] * factor:.1f}s, first load {f['load_s'] * factor:.1f}s, "
                f"data {c['data_mb'] * factor:.0f} MB"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help="where to generate (default: a temp folder)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the real counts")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--datasets", default="cifar100,fgvc-aircraft,stanford-cars")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one child measurement
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.root, args.image_size)))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="cilbench-data-") as tmp:
        root = args.root or Path(tmp)
        rows = benchmark(
            args.datasets.split(","), root, scale=args.scale, image_size=args.image_size
        )
    print_table(rows, scale=args.scale)
    if args.json:
        machine = {"cpus": os.cpu_count(), "platform": sys.platform}
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
