# ultralytics-weighted, AGPL-3.0 license
"""Benchmark: training throughput (images/s) with class balancing on vs off, in one run.

Run:  python benchmarks/bench_throughput.py [--images 240] [--epochs 6] [--rounds 2] [--imgsz 64] [--batch 8]

Trains yolo11n (from YAML) on a synthetic imbalanced detection set on CPU, alternating balancing off and on for
`rounds` rounds so that machine drift hits both equally. Throughput counts the images of every train epoch but the
first (warm-up), timed from `on_train_epoch_start` to `on_train_epoch_end` (loading, augmentation, forward, backward,
optimizer; no validation). Mosaic stays on (close_mosaic=0) to keep the data loading realistic.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")


def train_once(data: Path, project: Path, balance: bool, args: argparse.Namespace) -> tuple[int, float]:
    """Train once and return (images, seconds) over the timed epochs."""
    from ultralytics import YOLO

    timing = {"images": 0, "seconds": 0.0, "start": 0.0}

    def start(trainer):
        timing["start"] = time.perf_counter()

    def end(trainer):
        if trainer.epoch > 0:  # first epoch is warm-up
            timing["seconds"] += time.perf_counter() - timing["start"]
            timing["images"] += len(trainer.train_loader.sampler)

    model = YOLO("yolo11n.yaml")
    model.add_callback("on_train_epoch_start", start)
    model.add_callback("on_train_epoch_end", end)
    model.train(
        data=str(data),
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        device="cpu",
        workers=0,
        val=False,
        plots=False,
        close_mosaic=0,
        seed=0,
        class_balance=balance,
        balance_agg="mean",
        project=str(project),
        name=f"{'on' if balance else 'off'}",
        exist_ok=True,
        verbose=False,
    )
    return timing["images"], timing["seconds"]


def main() -> None:
    """Print images/s with balancing off and on, and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--imgsz", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    import torch

    import ultralytics_weighted  # noqa: F401
    from ultralytics_weighted.commands.synthetic import make_dataset

    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "data", n_train=args.images, n_val=8, imgsz=args.imgsz)
        totals = {False: [0, 0.0], True: [0, 0.0]}
        for _ in range(args.rounds):
            for balance in (False, True):
                images, seconds = train_once(data, Path(tmp) / "runs", balance, args)
                totals[balance][0] += images
                totals[balance][1] += seconds
    iterations = args.rounds * (args.epochs - 1) * -(-args.images // args.batch)
    print(f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, CPU")
    print(
        f"yolo11n, {args.images} images, imgsz {args.imgsz}, batch {args.batch}, {iterations} timed iterations per mode"
    )
    rate = {k: images / seconds for k, (images, seconds) in totals.items()}
    print(f"balancing off: {rate[False]:.1f} images/s")
    print(f"balancing on:  {rate[True]:.1f} images/s")
    print(f"ratio on/off:  {rate[True] / rate[False]:.3f}")


if __name__ == "__main__":
    main()
