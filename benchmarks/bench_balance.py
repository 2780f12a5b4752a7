# ultralytics-weighted, AGPL-3.0 license
"""Benchmark: per-image probabilities, one epoch's draw, BLAS contention and once-per-training vs once per process.

Run:  python benchmarks/bench_balance.py [--sizes 10000,100000,1000000] [--classes 80] [--zipf 1.1] [--objects 7]
      [--sections weights,neighbour,once] [--contention-size 1000000]

Labels are random, COCO-like: 1..2*objects-1 objects per image (mean `objects`), class k drawn with weight
1/(k+1)**zipf, as ragged (n, 1) float32 arrays like Ultralytics' 'cls' labels. Sections:

- weights: for each size the time of `weighted_probabilities` per aggregation (best of runs), of one epoch's
  systematic draw (`BalancedSampler.global_draw`), of the blog recipe (`np.random.choice(N, p=weights_list)` once
  per item, timed over a few items and extrapolated to N items) and the peak memory traced while computing the mean
  probabilities.
- neighbour: `balance_agg=auto` at --contention-size images alone, next to a busy neighbour process (numpy matrix
  products on one BLAS thread: one core busy), and in two processes at once (as two DDP ranks). Run it without
  OPENBLAS_NUM_THREADS / OMP_NUM_THREADS in the environment: the default threads are the case measured.
- once: two processes (as two DDP ranks) both needing the `auto` probabilities of the same labels, each computing them
  (once per process) vs through `computed_once` in a shared folder (one computes, the other loads). The wall time is
  from the common start to the last process done.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

from ultralytics_weighted.core.sampler import BalancedSampler
from ultralytics_weighted.extensions.config import ALL_AGGREGATIONS
from ultralytics_weighted.extensions.schedule import weighted_probabilities

# the busy neighbour: numpy matrix products on one BLAS thread (one core busy, as another rank or a data-loader job)
NEIGHBOUR = """
import numpy as np
from threadpoolctl import threadpool_limits
a = np.random.rand(1500, 1500)
with threadpool_limits(limits=1, user_api="blas"):
    while True:
        a @ a
"""


def make_labels(n: int, nc: int, objects: int, zipf: float = 1.1, seed: int = 0) -> list[np.ndarray]:
    """Return n random label arrays with Zipf-distributed classes (class k with weight 1/(k+1)**zipf)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 2 * objects, n)
    frequency = 1.0 / np.arange(1, nc + 1) ** zipf
    flat = rng.choice(nc, size=int(lengths.sum()), p=frequency / frequency.sum()).astype(np.float32)
    return [c.reshape(-1, 1) for c in np.split(flat, np.cumsum(lengths)[:-1])]


def best_of(fn, repeats: int = 3) -> float:
    """Return the best wall time of `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def weights_section(args) -> None:
    """Print the time of every aggregation, the draw and the per-item recipe, and the peak memory, per size."""
    header = f"{'images':>10} {'instances':>11} " + " ".join(f"{a:>7}" for a in ALL_AGGREGATIONS)
    print(header + f" {'draw':>7} {'per-item':>10} {'ratio':>8} {'peak MB':>8}")
    for n in map(int, args.sizes.split(",")):
        labels = make_labels(n, args.classes, args.objects, args.zipf)
        instances = sum(len(c) for c in labels)
        repeats = 2 if n >= 10**6 else 3
        times = {
            a: best_of(lambda a=a, lb=labels: weighted_probabilities(lb, args.classes, a), repeats)
            for a in ALL_AGGREGATIONS
        }
        tracemalloc.start()
        p = weighted_probabilities(labels, args.classes, "mean")
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        sampler = BalancedSampler(p, seed=0)
        draw = best_of(lambda s=sampler: s.global_draw(0))
        weights_list = p.tolist()  # the recipe keeps a Python list and hands it to numpy on every item
        k = max(5, min(args.per_item_draws, 10**8 // n))  # each item converts the whole list: few at 10M
        start = time.perf_counter()
        for _ in range(k):
            np.random.choice(n, p=weights_list)
        per_item_epoch = (time.perf_counter() - start) / k * n
        row = f"{n:>10,} {instances:>11,} " + " ".join(f"{times[a]:>6.2f}s" for a in ALL_AGGREGATIONS)
        print(row + f" {draw:>6.3f}s {per_item_epoch:>9.0f}s {per_item_epoch / draw:>7.0f}x {peak:>8.0f}", flush=True)
    print("\nweighted_probabilities per aggregation (best of runs); 'draw' = one epoch's systematic draw of N indices;")
    print("'per-item' = np.random.choice(N, p=list) per item, extrapolated to N items, 'ratio' = per-item / draw;")
    print("'peak MB' = peak memory traced while computing the mean probabilities.")


def workers(args, mode: str, count: int, folder: str = "") -> list[float]:
    """Run `count` worker processes that start their computation together; return each one's seconds."""
    start_at = time.time() + args.contention_size / 1e6 * 3 + 3  # after every worker has built its labels
    command = [sys.executable, __file__, "--worker", mode, "--start-at", str(start_at), "--folder", folder]
    command += ["--contention-size", str(args.contention_size), "--classes", str(args.classes)]
    command += ["--objects", str(args.objects), "--zipf", str(args.zipf)]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(count)]
    return [float(p.communicate()[0].split()[-1]) for p in processes]


def worker(args) -> None:
    """Build the labels, wait for the common start, compute the auto probabilities and print the seconds taken."""
    labels = make_labels(args.contention_size, args.classes, args.objects, args.zipf)
    time.sleep(max(0.0, args.start_at - time.time()))
    start = time.perf_counter()
    if args.worker == "once":
        from ultralytics_weighted.core.balance import flatten_labels
        from ultralytics_weighted.extensions.once import computed_once, digest

        key = digest(*flatten_labels(labels), args.classes, "auto", 1.0)
        computed_once(args.folder, key, lambda: weighted_probabilities(labels, args.classes, "auto"))
    else:
        weighted_probabilities(labels, args.classes, "auto")
    print(time.perf_counter() - start)


def neighbour_section(args) -> None:
    """Print the auto time alone, beside a busy neighbour, and in two processes at once."""
    env = {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}
    print(f"balance_agg=auto at {args.contention_size:,} images, BLAS threads from the environment: {env or 'default'}")
    idle = min(workers(args, "alone", 1) + workers(args, "alone", 1))
    neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR])
    try:
        busy = workers(args, "alone", 1)[0]
    finally:
        neighbour.kill()
        neighbour.wait()
    pair = max(workers(args, "alone", 2))
    print(f"  alone                      {idle:6.2f}s")
    print(f"  beside a busy neighbour    {busy:6.2f}s  ({busy / idle:.2f}x alone)")
    print(f"  two processes at once      {pair:6.2f}s  ({pair / idle:.2f}x alone; the slower of the two)")


def once_section(args) -> None:
    """Print the wall time of two processes needing the same auto probabilities, per process vs once."""
    print(f"two processes needing the auto probabilities of the same {args.contention_size:,} images")
    per_process = max(workers(args, "alone", 2))
    with tempfile.TemporaryDirectory() as folder:
        times = workers(args, "once", 2, folder)
    print(f"  each computes (once per process)   {per_process:6.2f}s  (the slower of the two)")
    print(f"  computed_once (one computes, one loads)  {max(times):6.2f}s  (computer {max(times):.2f}s, loader", end="")
    print(f" waits and loads {min(times):.2f}s)")


def main() -> None:
    """Print the benchmark tables for the sections and sizes given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--zipf", type=float, default=1.1, help="exponent of the class frequencies")
    parser.add_argument("--objects", type=int, default=7)
    parser.add_argument("--per-item-draws", type=int, default=300, help="items timed for the per-item recipe")
    parser.add_argument("--sections", default="weights,neighbour,once")
    parser.add_argument("--contention-size", type=int, default=1_000_000, help="images of the neighbour/once runs")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    print(
        f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(f"labels: {args.classes} classes, Zipf {args.zipf:g}, mean {args.objects} objects per image\n")
    sections = {"weights": weights_section, "neighbour": neighbour_section, "once": once_section}
    for name in args.sections.split(","):
        sections[name](args)
        print()


if __name__ == "__main__":
    main()
