# Ultralytics 🚀 AGPL-3.0 License - https://ultralytics.com/license
"""Class-balanced train sampler: each epoch one vectorized systematic draw from per-image probabilities."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler


def shuffled(values: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """Return int64 `values` in [0, 2**bits) in random order: one sort of random 64-bit keys with them in the low bits.

    Uniform but for values whose random high bits tie (~n**2 / 2**(65 - bits) pairs, 45 of 10M): they keep their order.
    """
    keys = rng.bit_generator.random_raw(len(values))
    keys &= ~np.uint64(2**bits - 1)  # random high bits
    keys |= values.view(np.uint64)
    keys.sort()
    return np.bitwise_and(keys, np.uint64(2**bits - 1), out=keys).view(np.int64)


def systematic_draw(p: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw `n` indices from probabilities `p` by systematic (low-variance) resampling, in random order.

    One uniform offset u places n evenly spaced points (u + k) / n on the cumulative sum of p, so image i is drawn
    floor(n * p_i) or ceil(n * p_i) times: the exposure of n multinomial draws without their chance misses (those skip
    ~37% of the images expected once). Permuting first makes which image rounds up random; the result is shuffled.
    """
    bits = max(len(p) - 1, 1).bit_length()
    order = shuffled(np.arange(len(p), dtype=np.int64), bits, rng)
    cumulative = np.cumsum(p[order])
    cumulative /= cumulative[-1]  # float round-off: the last image ends at 1
    below = np.ceil(cumulative * n - rng.random()).clip(0, n).astype(np.int64)  # points below each: no n searches
    below[-1] = n  # round-off: points at or past the end belong to the last image
    return shuffled(np.repeat(order, np.diff(below, prepend=0)), bits, rng)


class BalancedSampler(Sampler[int]):
    """Sample dataset indices by per-image probabilities, a fresh systematic draw every epoch.

    The contract:
    - Each epoch draws `epoch_size` indices over all ranks (by default len(dataset), rounded up to a multiple of the
      ranks) in one pass; each rank yields `epoch_size / num_replicas` of them, the same number every epoch.
    - The draw is a pure function of (seed, epoch): `np.random.default_rng([seed, epoch])` and that epoch's
      probabilities (fixed, or a function of the epoch). Every rank draws the same sequence and keeps positions rank,
      rank + num_replicas, ...: disjoint slices of equal length that together are the whole draw.
    - Epochs count themselves: each `__iter__` draws epoch `self.epoch` and advances it (a loader may start an epoch's
      iterator before the trainer calls `set_epoch`); `set_epoch(e)` moves the counter unless e was already drawn.

    Args:
        probabilities (np.ndarray | Callable[[int], np.ndarray]): Probability per dataset index, or a function of epoch.
        seed (int): Base seed, e.g. the trainer's `seed` argument.
        num_replicas (int, optional): Number of DDP processes; defaults to the world size, or 1 without DDP.
        rank (int, optional): This process' rank; defaults to the DDP rank, or 0.
        epoch_size (int, optional): Indices drawn per epoch over all ranks; defaults to len(dataset).

    Examples:
        >>> sampler = BalancedSampler(np.array([0.1, 0.1, 0.8]), seed=0)
        >>> list(sampler)  # expected counts 0.3, 0.3 and 2.4: image 2 is drawn 2 or 3 times
        [2, 2, 2]
    """

    def __init__(
        self,
        probabilities: np.ndarray | Callable[[int], np.ndarray],
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        epoch_size: int | None = None,
    ):
        """Initialize the sampler with per-image probabilities (or their schedule), a seed and the DDP layout."""
        ddp = dist.is_available() and dist.is_initialized()
        self.num_replicas = (dist.get_world_size() if ddp else 1) if num_replicas is None else num_replicas
        self.rank = (dist.get_rank() if ddp else 0) if rank is None else rank
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"rank {self.rank} is outside [0, {self.num_replicas})")
        self.seed, self._probabilities = int(seed), probabilities
        epoch_size = len(self.probabilities(0)) if epoch_size is None else epoch_size
        self.epoch_size = math.ceil(epoch_size / self.num_replicas) * self.num_replicas
        self.epoch, self._last_drawn = 0, None  # the epoch of the next draw, and of the most recent one

    def probabilities(self, epoch: int) -> np.ndarray:
        """Return the sampling probability of every dataset index in `epoch`, normalized to sum to 1."""
        p = np.asarray(self._probabilities(epoch) if callable(self._probabilities) else self._probabilities, float)
        if p.ndim != 1 or not len(p) or (p < 0).any() or not p.sum() > 0:
            raise ValueError("probabilities must be a non-empty 1-D array of non-negative numbers with a positive sum")
        return p / p.sum()

    def global_draw(self, epoch: int) -> np.ndarray:
        """Return the whole draw of `epoch`, identical on every rank."""
        return systematic_draw(self.probabilities(epoch), self.epoch_size, np.random.default_rng([self.seed, epoch]))

    def __iter__(self) -> Iterator[int]:
        """Yield this rank's share of the current epoch's draw and advance the epoch counter."""
        epoch, self._last_drawn = self.epoch, self.epoch
        self.epoch += 1
        return iter(self.global_draw(epoch)[self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        """Return the number of indices this rank yields per epoch."""
        return self.epoch_size // self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the next draw, unless an early (prefetching) iterator already drew that epoch."""
        if epoch != self._last_drawn:
            self.epoch = epoch
