# Ultralytics 🚀 AGPL-3.0 License - https://ultralytics.com/license
"""Class-balanced train sampler: each epoch one vectorized systematic draw from per-image probabilities."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler


def systematic_draw(p: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw `n` indices from probabilities `p` by systematic (low-variance) resampling, in random order.

    One uniform offset u ~ U[0, 1) places n evenly spaced points (u + k) / n, k = 0..n-1, on the cumulative sum of p,
    so image i is drawn floor(n * p_i) or ceil(n * p_i) times: the same expected exposure as n independent multinomial
    draws, without their chance misses (those skip ~37% of the images whose expected count is 1). The images are
    permuted before the cumulative sum so that which image rounds up is random rather than fixed by dataset order, and
    the result is shuffled so batches mix classes.

    Args:
        p (np.ndarray): Probabilities per image, summing to 1.
        n (int): Number of indices to draw.
        rng (np.random.Generator): Source of randomness.

    Returns:
        (np.ndarray): int64 array of n image indices.
    """
    # int32 where it fits: the shuffles take the same random numbers as rng.permutation's int64, at half the traffic
    order = np.arange(len(p), dtype=np.int32 if len(p) < 2**31 else np.int64)
    rng.shuffle(order)
    cumulative = np.cumsum(p[order])
    cumulative /= cumulative[-1]  # guard against float round-off: the last point must land inside
    offset = rng.random()

    def point(k):  # the k-th point, computed as (offset + np.arange(n)) / n would compute it
        return (offset + k) / n

    # image j (in permuted order) is drawn once per point in [cumulative[j-1], cumulative[j]): count the points below
    # each cumulative value (k < n * c - offset), then fix the count's round-off against the points themselves, so the
    # draw equals a binary search of every point (searchsorted, side="right") without n searches and n points in memory
    below = np.ceil(cumulative * n - offset).clip(0, n).astype(np.int64)
    while (too_many := (below > 0) & (point(below - 1) >= cumulative)).any():
        below[too_many] -= 1
    while (too_few := (below < n) & (point(below) < cumulative)).any():
        below[too_few] += 1
    counts = np.diff(below, prepend=0)
    counts[-1] += n - below[-1]  # points at or past the last cumulative value (round-off) go to the last image
    drawn = np.repeat(order, counts)
    rng.shuffle(drawn)
    return drawn.astype(np.int64, copy=False)


class BalancedSampler(Sampler[int]):
    """Sample dataset indices by per-image probabilities, a fresh systematic draw every epoch.

    The contract:
    - Each epoch draws `total_size = num_samples * num_replicas` indices (`epoch_size`, by default len(dataset),
      rounded up to a multiple of the replicas) in one vectorized pass. With the default an epoch has as many
      iterations as with stock shuffling; a larger `epoch_size` (e.g. `balance_floor`) grows every epoch alike, so the
      loader's length stays fixed for the whole training.
    - The draw is a pure function of (seed, epoch): `np.random.default_rng([seed, epoch])` and the probabilities of
      that epoch, which are fixed or given by a function of the epoch (e.g. a `balance_ramp` schedule). Every rank draws
      the same global sequence and keeps positions rank, rank + num_replicas, ...: slices are disjoint, of equal length
      `num_samples`, and together they are the whole draw.
    - Epochs count themselves: every `__iter__` draws the epoch `self.epoch` and advances it, because Ultralytics calls
      `set_epoch` only under DDP, and its InfiniteDataLoader may start the next epoch's iterator early (prefetch).
      `set_epoch(e)` then moves the counter to e, unless epoch e was already drawn by such an early start.

    Args:
        weights (np.ndarray | Callable[[int], np.ndarray]): Sampling probability per dataset index (normalized here),
            or a function returning them for an epoch (the same length every epoch).
        seed (int): Base seed, e.g. the trainer's `seed` argument.
        num_replicas (int, optional): Number of DDP processes; defaults to the world size, or 1 without DDP.
        rank (int, optional): This process' rank; defaults to the DDP rank, or 0.
        epoch_size (int, optional): Indices drawn per epoch over all ranks; defaults to len(dataset).

    Examples:
        >>> import numpy as np
        >>> sampler = BalancedSampler(np.array([0.1, 0.1, 0.8]), seed=0)
        >>> counts = np.bincount(list(sampler), minlength=3)  # expected counts 0.3, 0.3, 2.4
        >>> int(counts[2]) in {2, 3}, int(counts.sum())
        (True, 3)
        >>> len(BalancedSampler(np.array([0.1, 0.1, 0.8]), epoch_size=5))  # a grown epoch
        5
    """

    def __init__(
        self,
        weights: np.ndarray | Callable[[int], np.ndarray],
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        epoch_size: int | None = None,
    ):
        """Initialize the sampler with per-image probabilities (or their schedule), a seed and the DDP layout."""
        self._weights = weights if callable(weights) else _normalized(weights)
        n_images = len(self.probabilities(0))
        if num_replicas is None:
            num_replicas = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if rank is None:
            rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside [0, {num_replicas})")
        epoch_size = n_images if epoch_size is None else int(epoch_size)
        if epoch_size < 1:
            raise ValueError(f"epoch_size must be at least 1, got {epoch_size}")
        self.seed = int(seed)
        self.num_replicas = num_replicas
        self.rank = rank
        self.num_samples = math.ceil(epoch_size / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.epoch = 0  # epoch of the next draw
        self._last_drawn = None  # epoch of the most recent draw

    def probabilities(self, epoch: int) -> np.ndarray:
        """Return the normalized sampling probability of every dataset index in `epoch`."""
        return _normalized(self._weights(epoch)) if callable(self._weights) else self._weights

    def global_draw(self, epoch: int) -> np.ndarray:
        """Return the whole draw of `epoch`, identical on every rank."""
        rng = np.random.default_rng([self.seed, epoch])
        return systematic_draw(self.probabilities(epoch), self.total_size, rng)

    def __iter__(self) -> Iterator[int]:
        """Yield this rank's share of the current epoch's draw and advance the epoch counter."""
        epoch, self._last_drawn = self.epoch, self.epoch
        self.epoch += 1
        return iter(self.global_draw(epoch)[self.rank : self.total_size : self.num_replicas].tolist())

    def __len__(self) -> int:
        """Return the number of indices this rank yields per epoch."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the next draw, unless that epoch was already drawn by an early (prefetching) iterator.

        Args:
            epoch (int): Epoch number, as the trainer counts it.
        """
        if epoch != self._last_drawn:
            self.epoch = epoch


def _normalized(weights: np.ndarray) -> np.ndarray:
    """Return non-negative weights as float64 probabilities summing to 1, or raise ValueError."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1 or not len(weights) or (weights < 0).any() or not weights.sum() > 0:
        raise ValueError("weights must be a non-empty 1-D array of non-negative numbers with a positive sum")
    return weights / weights.sum()
