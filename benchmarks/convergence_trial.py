# ultralytics-weighted, AGPL-3.0 license
"""Convergence trial: train stock yolo11n from scratch for N epochs, print AP50 per epoch and whether it levelled off.

Run:  python benchmarks/convergence_trial.py DATA --epochs N [--name NAME] [key=value ...]
      python benchmarks/convergence_trial.py --report RUN_FOLDER      (only read a finished run's results.csv)
      e.g. OMP_NUM_THREADS=1 python benchmarks/convergence_trial.py runs/data/cs-composite96/data.yaml --epochs 40 \
          optimizer=AdamW lr0=0.002 nbs=32    (the command longtail_composite.py prints)

Trains `model=yolo11n.yaml` (no class balancing: the stock baseline) with the settings compare's runs get
(`imgsz=96 batch=32 workers=1 device=cpu seed=0` unless key=value says otherwise) but `val=True`, so that results.csv
holds AP50 on the evaluation split after every epoch; the learning rate decays over the N epochs as in a compare run of
`epochs=N`, so a trial of N epochs says whether compare's `epochs=N` converges (a shorter run's curve does not).

Converged means: AP50 rose by less than 0.01 over the last fifth of the epochs, the rise being the least-squares line
through the AP50 of the epochs from N - ceil(N / 5) to N, times the epochs it spans (a line, so that one epoch's noise
decides nothing; the end-to-end difference is printed beside it). Also printed: the wall and CPU time per epoch (CPU:
this process and its dataloader workers, i.e. what it costs a core shared with nothing else).
"""

from __future__ import annotations

import argparse
import csv
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np

TOLERANCE = 0.01  # AP50 rise over the last fifth below which a run has converged (issue 25)
AP50 = "metrics/mAP50(B)"
SETTINGS = {"model": "yolo11n.yaml", "imgsz": 96, "batch": 32, "workers": 1, "device": "cpu", "seed": 0}


def read_ap50(run: Path) -> list[float]:
    """Return AP50 per epoch from a run folder's results.csv (Ultralytics pads its column names with spaces)."""
    with open(Path(run) / "results.csv", newline="") as f:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(f)]
    return [float(row[AP50]) for row in rows]


def last_fifth_rise(ap50: list[float]) -> tuple[float, float]:
    """Return (fitted rise, end-to-end rise) of AP50 over the last ceil(N / 5) epochs of N.

    Examples:
        >>> [round(x, 3) for x in last_fifth_rise([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])]
        [0.2, 0.2]
        >>> [round(x, 3) for x in last_fifth_rise([0.0] * 8 + [0.30, 0.29, 0.31, 0.30])]  # levelled off at 0.3
        [0.006, 0.0]
    """
    span = math.ceil(len(ap50) / 5)
    if len(ap50) < span + 1:
        raise ValueError(f"need at least 2 epochs of AP50, got {len(ap50)}")
    window = np.asarray(ap50[-span - 1 :], dtype=float)
    slope = np.polyfit(np.arange(span + 1), window, 1)[0]
    return float(slope * span), float(window[-1] - window[0])


def report(run: Path) -> bool:
    """Print AP50 per epoch and the convergence check of a run folder; return whether it converged."""
    ap50 = read_ap50(run)
    n, span = len(ap50), math.ceil(len(ap50) / 5)
    print(f"{run}: AP50 per epoch ({n} epochs)")
    for start in range(0, n, 10):
        print(f"  {start + 1:>4}-{min(start + 10, n):<4} " + " ".join(f"{v:.3f}" for v in ap50[start : start + 10]))
    fitted, end_to_end = last_fifth_rise(ap50)
    converged = fitted < TOLERANCE
    print(
        f"AP50 over the last fifth (epochs {n - span}-{n}): fitted rise {fitted:+.4f}, end to end {end_to_end:+.4f}, "
        f"final {ap50[-1]:.3f}, best {max(ap50):.3f} -> {'CONVERGED' if converged else 'NOT CONVERGED'} "
        f"(fitted rise < {TOLERANCE})"
    )
    return converged


def train(data: str, epochs: int, name: str, overrides: dict) -> Path:
    """Train stock yolo11n with val=True; print wall and CPU time per epoch; return the run folder."""
    from ultralytics import YOLO

    keys = {**SETTINGS, **overrides, "data": data, "epochs": epochs, "val": True, "plots": False}
    keys.update(project=str(Path(keys.pop("project", "runs/trials")).resolve()), name=name, exist_ok=True)
    model = YOLO(keys.pop("model"))
    start, cpu = time.time(), _cpu_seconds()
    model.train(**keys)
    wall, cpu = time.time() - start, _cpu_seconds() - cpu
    print(
        f"{epochs} epochs, start-up included: {wall:.0f} s wall ({wall / epochs:.1f} s/epoch), "
        f"{cpu:.0f} s CPU ({cpu / epochs:.1f} s/epoch)"
    )
    return Path(model.trainer.save_dir)


def _cpu_seconds() -> float:
    """Return the CPU seconds of this process and its finished children (the dataloader workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    """Train and report, or report on a finished run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", help="the data YAML (e.g. runs/data/cs-composite96/data.yaml)")
    parser.add_argument("overrides", nargs="*", help="train key=value settings replacing or adding to the defaults")
    parser.add_argument("--epochs", type=int, help="epochs to train (the budget compare would get)")
    parser.add_argument("--name", help="run folder name under runs/trials (default: trial-e<epochs>)")
    parser.add_argument("--report", type=Path, metavar="RUN_FOLDER", help="only read this run's results.csv")
    args = parser.parse_intermixed_args()  # key=value arguments may follow the options
    if args.report:
        report(args.report)
        return 0
    if not args.data or not args.epochs:
        parser.error("give DATA and --epochs, or --report RUN_FOLDER")
    from ultralytics.cfg import smart_value

    overrides = {k: smart_value(v) for k, v in (arg.split("=", 1) for arg in args.overrides)}
    report(train(args.data, args.epochs, args.name or f"trial-e{args.epochs}", overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
