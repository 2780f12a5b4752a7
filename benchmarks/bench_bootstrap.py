# ultralytics-weighted, AGPL-3.0 license
"""Benchmark: the detection bootstrap behind `compare`'s intervals (`compare.metrics.run_metrics` over 1,000 resamples).

Run:  python benchmarks/bench_bootstrap.py [--images 200] [--classes 10] [--runs 18] [--resamples 1000]

Per-image results are random but valid (a class's true positives never outnumber its objects): 1-7 objects per image,
each found with a probability falling from 0.9 (class 0) to 0.2 (last class) at a confidence in [0.2, 1] and a true
positive up to a random IoU threshold, plus on average `fp` false positives per image at confidences in [0, 0.9]. It
prints the time to evaluate every run on the whole set and on each resample (what `summarize` does for a comparison
of `runs` runs).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from ultralytics_weighted.commands.compare.metrics import resample_weights, run_metrics


def per_image_results(rng, n_images: int, nc: int, fp: int) -> dict:
    """Return one run's per-image results in the layout of `per_image.npz`."""
    tp, conf, pred_cls, pred_image, target_cls, target_image = [], [], [], [], [], []
    found = np.linspace(0.9, 0.2, nc)
    for i in range(n_images):
        for c in rng.integers(0, nc, rng.integers(1, 8)):
            target_cls.append(c), target_image.append(i)
            if rng.random() < found[c]:
                tp.append(np.arange(10) < rng.integers(1, 11)), conf.append(rng.uniform(0.2, 1))
                pred_cls.append(c), pred_image.append(i)
        k = int(rng.integers(0, 2 * fp + 1))
        tp += [np.zeros(10, bool)] * k
        conf += list(rng.uniform(0, 0.9, k))
        pred_cls += list(rng.integers(0, nc, k))
        pred_image += [i] * k
    arrays = (tp, conf, pred_cls, pred_image, target_cls, target_image)
    return dict(zip(("tp", "conf", "pred_cls", "pred_image", "target_cls", "target_image"), map(np.array, arrays)))


def main() -> None:
    """Time the bootstrap for a few false-positive densities."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--runs", type=int, default=18)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    weights = np.concatenate([np.ones((1, args.images)), resample_weights(args.images, args.resamples)])
    print(f"{os.cpu_count()} CPUs; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    for fp in (20, 100):
        runs = [per_image_results(rng, args.images, args.classes, fp) for _ in range(args.runs)]
        start = time.perf_counter()
        for run in runs:
            run_metrics(run, args.classes, weights)
        detections = np.mean([len(r["conf"]) for r in runs])
        print(
            f"{args.images} images, {args.classes} classes, ~{fp} false positives/image ({detections:,.0f} detections "
            f"per run): {args.runs} runs x (1 + {args.resamples:,}) resamples in {time.perf_counter() - start:.1f} s"
        )


if __name__ == "__main__":
    main()
