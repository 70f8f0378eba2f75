"""Training throughput of the paper's models in the harness's trainer, against the hardware.

Measures, for ``resnet34_cifar`` and ``mobilenet_v2`` at 32x32 (CIFAR-100's shape, 100-class
head, the suite's augmentation on the device):

- training images/s in ``harness.training.trainer.Trainer`` at batch 128/256/512, in the trial's
  execution (bf16 autocast + channels-last on CUDA), and with ``torch.compile`` at one batch
  size (``--compile-batch``; compiling costs about a minute per model, so not at every size);
- the share of the GPU's bf16 peak reached: model FLOPs from the harness's own counter
  (training ~ 3x the forward pass) x images/s, against a large bf16 matmul timed in the
  same run;
- the trainer against a minimal plain loop doing the same work (ratio of images/s, eager);
- packing: N MobileNetV2 trainers in N processes on one GPU against one (throughput gain).

    python benchmarks/gpu_throughput.py --json out.json            # on a GPU
    python benchmarks/gpu_throughput.py --device cpu --quick       # smoke run on a CPU

Numbers come from this run only; nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.cost.inference import count_flops_torch  # noqa: E402
from harness.data.augment import parse_augmentation  # noqa: E402
from harness.data.pixels import with_pixel_normalization  # noqa: E402
from harness.data.stream import Split  # noqa: E402
from harness.models.backbones import create_backbone  # noqa: E402
from harness.models.execution import Execution, ExecutionOptions  # noqa: E402
from harness.models.incremental_net import IncrementalNet  # noqa: E402
from harness.training.trainer import Trainer, TrainingConfig  # noqa: E402

CIFAR_AUGMENTATION = {"train": [{"random_crop": {"padding": 4}}, "horizontal_flip"]}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def build_model(name: str, execution: Execution, classes: int = 100) -> IncrementalNet:
    """The model a cifar100-10split trial trains: pixel normalisation, backbone, head."""
    built = create_backbone(name, in_channels=3, input_size=32)
    model = IncrementalNet(
        with_pixel_normalization(built.module, IMAGENET_MEAN, IMAGENET_STD), built.feature_dim
    )
    model.add_classes(classes)
    return execution.place(model)


def synthetic_split(count: int, device: torch.device) -> Split:
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8, generator=generator)
    y = torch.randint(0, 100, (count,), generator=generator)
    return Split(x.to(device), y.to(device))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_tflops(device: torch.device, n: int) -> float:
    """bf16 matmul throughput (TFLOP/s) of an n x n x n product, best of several."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(10):
        _sync(device)
        start = time.perf_counter()
        for _ in range(5):
            a @ b
        _sync(device)
        best = min(best, (time.perf_counter() - start) / 5)
    return 2 * n**3 / best / 1e12


def trainer_images_per_s(
    model: IncrementalNet, data: Split, execution: Execution, batch: int, epochs: int
) -> float:
    """Images/s of ``Trainer.fit`` (after one warm-up epoch: autotuning, compilation)."""
    augmentation = parse_augmentation(CIFAR_AUGMENTATION)
    config = TrainingConfig(epochs=epochs, batch_size=batch, lr=0.01)
    trainer = Trainer(config, seed=0, augmentation=augmentation, execution=execution)

    def loss_fn(m: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(m(x), y)

    trainer.fit(model, data, loss_fn, epochs=1)  # warm-up
    _sync(execution.device)
    start = time.perf_counter()
    trainer.fit(model, data, loss_fn)
    _sync(execution.device)
    steps = len(data) // batch  # the trainer skips only a last batch of one
    return steps * batch * epochs / (time.perf_counter() - start)


def minimal_loop_images_per_s(
    model: IncrementalNet, data: Split, execution: Execution, batch: int, epochs: int
) -> float:
    """The same work in a plain loop: shuffle, gather, augment, autocast step, SGD."""
    augmentation = parse_augmentation(CIFAR_AUGMENTATION)
    generator = torch.Generator().manual_seed(0)
    run = execution.compiled(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    model.train()

    def one_epoch() -> None:
        order = torch.randperm(len(data), generator=generator).to(data.x.device)
        for start in range(0, len(data) - batch + 1, batch):
            index = order[start : start + batch]
            x = augmentation(data.x[index], generator)
            x = x.contiguous(memory_format=torch.channels_last) if execution.channels_last else x
            optimizer.zero_grad(set_to_none=True)
            with execution.autocast():
                loss = F.cross_entropy(run(x), data.y[index])
            loss.backward()
            optimizer.step()

    one_epoch()  # warm-up
    _sync(execution.device)
    start = time.perf_counter()
    for _ in range(epochs):
        one_epoch()
    _sync(execution.device)
    return (len(data) // batch) * batch * epochs / (time.perf_counter() - start)


def _packed_worker(args: tuple[str, str, int, int, int, Any, Any]) -> float:
    name, device, batch, images, epochs, barrier, results = args
    torch.backends.cudnn.benchmark = True
    execution = Execution(ExecutionOptions(device=device))
    model = build_model(name, execution)
    data = synthetic_split(images, execution.device)
    trainer_images_per_s(model, data, execution, batch, 1)  # warm-up in every process
    barrier.wait()
    rate = trainer_images_per_s(model, data, execution, batch, epochs)
    results.put(rate)
    return rate


def packing_gain(
    name: str, device: str, *, processes: int, batch: int, images: int, epochs: int
) -> dict[str, float]:
    """Aggregate images/s of ``processes`` trainers sharing the device, against one."""
    context = mp.get_context("spawn")
    rates = {}
    for count in (1, processes):
        barrier, results = context.Barrier(count), context.Queue()
        workers = [
            context.Process(
                target=_packed_worker,
                args=((name, device, batch, images, epochs, barrier, results),),
            )
            for _ in range(count)
        ]
        for worker in workers:
            worker.start()
        rates[count] = sum(results.get(timeout=900) for _ in workers)
        for worker in workers:
            worker.join()
    return {
        "processes": processes,
        "images_per_s_one": rates[1],
        "images_per_s_packed": rates[processes],
        "gain": rates[processes] / rates[1],
    }


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--models", default="resnet34_cifar,mobilenet_v2")
    parser.add_argument("--batch-sizes", default="128,256,512")
    parser.add_argument("--images", type=int, default=20480, help="synthetic images per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per measurement")
    parser.add_argument("--compile", default="off,on", help="off, on or off,on")
    parser.add_argument("--compile-batch", type=int, default=256, help="batch size compiled")
    parser.add_argument("--pack", type=int, default=4, help="processes for the packing test")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_sizes, args.images, args.epochs = "32", 128, 1
        args.compile_batch = 32
    return args


def _measure(args: argparse.Namespace, name: str, compiled: bool, peak: float) -> list[dict]:
    """Trainer (and, uncompiled, minimal-loop) throughput of one model at each batch size."""
    run_execution = Execution(ExecutionOptions(device=args.device, compile=compiled))
    device = run_execution.device
    forward_flops = count_flops_torch(
        build_model(name, run_execution).eval(), torch.zeros(1, 3, 32, 32, device=device)
    )
    rows = []
    batches = [int(b) for b in args.batch_sizes.split(",")]
    for batch in [args.compile_batch] if compiled else batches:
        data = synthetic_split(args.images, device)
        model = build_model(name, run_execution)
        rate = trainer_images_per_s(model, data, run_execution, batch, args.epochs)
        minimal = None
        if not compiled:
            minimal = minimal_loop_images_per_s(
                build_model(name, run_execution), data, run_execution, batch, args.epochs
            )
        achieved = 3 * forward_flops * rate / 1e12
        row = {
            "model": name, "batch": batch, "compile": compiled,
            "images_per_s": rate, "minimal_loop_images_per_s": minimal,
            "trainer_vs_minimal": None if minimal is None else rate / minimal,
            "train_tflops": achieved, "pct_of_bf16_peak": 100 * achieved / peak,
            "forward_gflops_per_image": forward_flops / 1e9,
            "compile_first_steps_s": run_execution.first_step_seconds if compiled else None,
        }  # fmt: skip
        rows.append(row)
        versus = "" if minimal is None else (
            f"; minimal loop {minimal:.0f} img/s, trainer/minimal {rate / minimal:.3f}"
        )  # fmt: skip
        print(
            f"{name:15s} batch {batch:4d} compile={compiled!s:5s} {rate:10.0f} img/s "
            f"({row['pct_of_bf16_peak']:.1f}% of bf16 peak){versus}",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    execution = Execution(ExecutionOptions(device=args.device))
    execution.setup()
    peak = matmul_peak_tflops(execution.device, 512 if args.quick else 8192)
    summary: dict[str, Any] = {
        "device": execution.describe()["device_name"],
        "precision": execution.precision,
        "torch": torch.__version__,
        "bf16_matmul_peak_tflops": peak,
        "runs": [],
    }
    print(f"device {summary['device']}: bf16 matmul peak {peak:.1f} TFLOP/s", flush=True)
    for name in args.models.split(","):
        for compiled in [mode == "on" for mode in args.compile.split(",")]:
            summary["runs"] += _measure(args, name, compiled, peak)
    if args.pack > 1:
        packed = packing_gain(
            "mobilenet_v2", args.device, processes=args.pack, batch=128,
            images=args.images, epochs=args.epochs,
        )  # fmt: skip
        summary["packing_mobilenet_v2"] = packed
        print(
            f"packing: {args.pack} MobileNetV2 trainers {packed['images_per_s_packed']:.0f} img/s "
            f"vs one {packed['images_per_s_one']:.0f} img/s: {packed['gain']:.2f}x",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
