# ultralytics-weighted, AGPL-3.0 license
"""Benchmark: per-image weights and one epoch's index draw vs the per-item `np.random.choice(N, p=list)` recipe.

Run:  python benchmarks/bench_balance.py [--sizes 10000,100000,1000000] [--classes 20] [--objects 7]

Labels are random: 1..2*objects-1 objects per image (mean `objects`), classes Zipf-distributed (class k with weight
1/(k+1)), as ragged (n, 1) float32 arrays like Ultralytics' 'cls' labels. For each size it prints the time of
`image_weights` per aggregation, of one epoch's systematic draw (`BalancedSampler.global_draw`), and of the blog
recipe (`np.random.choice(N, p=weights_list)` called once per item) timed over a few hundred items and extrapolated
to one epoch of N items, with the ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc

import numpy as np

from ultralytics_weighted.balance import AGGREGATIONS, image_weights
from ultralytics_weighted.sampler import BalancedSampler


def make_labels(n: int, nc: int, objects: int, seed: int = 0) -> list[np.ndarray]:
    """Return n random label arrays with Zipf-distributed classes."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 2 * objects, n)
    zipf = 1.0 / np.arange(1, nc + 1)
    flat = rng.choice(nc, size=int(lengths.sum()), p=zipf / zipf.sum()).astype(np.float32)
    return [c.reshape(-1, 1) for c in np.split(flat, np.cumsum(lengths)[:-1])]


def best_of(fn, repeats: int = 3) -> float:
    """Return the best wall time of `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Print the benchmark table for the sizes given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--objects", type=int, default=7)
    parser.add_argument("--per-item-draws", type=int, default=300, help="items timed for the per-item recipe")
    args = parser.parse_args()
    print(
        f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(f"labels: {args.classes} Zipf classes, mean {args.objects} objects per image\n")
    header = f"{'images':>9} {'instances':>10} " + " ".join(f"{a:>8}" for a in AGGREGATIONS)
    print(header + f" {'draw':>8} {'per-item':>12} {'ratio':>9} {'peak MB':>8}")
    for n in map(int, args.sizes.split(",")):
        labels = make_labels(n, args.classes, args.objects)
        instances = sum(len(c) for c in labels)
        repeats = 2 if n >= 10**6 else 3
        times = {a: best_of(lambda a=a, lb=labels: image_weights(lb, args.classes, a), repeats) for a in AGGREGATIONS}
        tracemalloc.start()
        p = image_weights(labels, args.classes, "mean")
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        sampler = BalancedSampler(p, seed=0)
        draw = best_of(lambda s=sampler: s.global_draw(0))
        weights_list = p.tolist()  # the recipe keeps a Python list and hands it to numpy on every item
        k = args.per_item_draws
        start = time.perf_counter()
        for _ in range(k):
            np.random.choice(n, p=weights_list)
        per_item_epoch = (time.perf_counter() - start) / k * n
        row = f"{n:>9,} {instances:>10,} " + " ".join(f"{times[a]:>7.3f}s" for a in AGGREGATIONS)
        print(row + f" {draw:>7.3f}s {per_item_epoch:>11.1f}s {per_item_epoch / draw:>8.0f}x {peak:>8.0f}")
    print("\ncolumns: image_weights per aggregation (best of runs), 'draw' = one epoch's systematic draw of N indices,")
    print("'per-item' = np.random.choice(N, p=list) per item, extrapolated to N items, 'ratio' = per-item / draw,")
    print("'peak MB' = peak memory traced while computing the mean weights.")


if __name__ == "__main__":
    main()
