# Ultralytics 🚀 AGPL-3.0 License - https://ultralytics.com/license
"""Class-balanced sampling probabilities, one per train image: numpy only, vectorized over blocks of many images.

1. Class weight: w_c = (instances / instances of c) ** s, s = `class_balance` (1 = inverse frequency, 0.5 = sqrt).
2. Image weight: v_i = the `balance_agg` (mean, max, median or sum) of w_c over the instances of image i.
3. Probability: labelled images share the mass they hold under uniform sampling in proportion to v_i; backgrounds keep
   1/N each, so balancing only moves draws between labelled images.
"""

from __future__ import annotations

import numpy as np

AGGREGATIONS = ("mean", "max", "median", "sum")  # `balance_agg` values
IMAGES_PER_BLOCK = 2**18  # images aggregated at once: temporaries of a few MB, reused instead of paged in afresh


def flatten_labels(classes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Return all instances' class ids (int64, images in order) and each image's count, from 1-D or (n, 1) arrays."""
    lengths = np.fromiter(map(len, classes), dtype=np.int64, count=len(classes))
    cls = np.concatenate(classes or [np.zeros(0)], dtype=np.int64, casting="unsafe")  # one C pass, no float copy
    return cls.reshape(-1), lengths


def inverse_frequency_weights(counts: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Return (total instances / instances of class c) ** strength per class, 0 for classes without instances."""
    counts = np.asarray(counts, dtype=np.float64)
    with np.errstate(divide="ignore"):  # absent classes: total / 0, replaced by 0
        return np.where(counts > 0, (counts.sum() / counts) ** strength, 0.0)


def spread_probabilities(cls: np.ndarray, lengths: np.ndarray, weights: np.ndarray, agg: str) -> np.ndarray:
    """Return steps 2 and 3 of the module docstring for flat labels (`flatten_labels`) and class `weights` (step 1)."""
    order = np.argsort(weights, kind="stable")  # max and median use each class' rank among the weights: a small int
    rank, ranked = np.argsort(order).astype(np.min_scalar_type(len(weights))), weights[order]  # ranked[rank]: weight
    image_key = np.arange(IMAGES_PER_BLOCK, dtype=np.min_scalar_type(IMAGES_PER_BLOCK * len(weights))) * len(weights)
    v, ends = np.zeros(len(lengths)), np.cumsum(lengths)
    for i in range(0, len(lengths), IMAGES_PER_BLOCK):
        n, vi = lengths[i : i + IMAGES_PER_BLOCK], v[i : i + IMAGES_PER_BLOCK]
        labelled, c = n > 0, cls[ends[i] - n[0] : ends[i + len(n) - 1]]
        starts = (np.cumsum(n) - n)[labelled]  # first instance of each labelled image in the block
        if agg in {"sum", "mean"}:
            vi[labelled] = np.add.reduceat(weights[c], starts) / (n[labelled] if agg == "mean" else 1)
        elif agg == "max":
            vi[labelled] = ranked[np.maximum.reduceat(rank[c], starts)]
        else:  # median: sorted (image, rank) keys order each image's ranks; average the middle two
            key = np.sort(np.repeat(image_key[: len(n)], n) + rank[c])
            lo, hi = (ranked[key[starts + k] % len(weights)] for k in ((n[labelled] - 1) // 2, n[labelled] // 2))
            vi[labelled] = 0.5 * (lo + hi)
    return np.where(lengths > 0, v / v.sum() * np.count_nonzero(lengths), 1.0) / len(lengths)  # step 3


def image_probabilities(classes: list[np.ndarray], nc: int, agg: str = "mean", strength: float = 1.0) -> np.ndarray:
    """Return class-balanced sampling probabilities, one per image (uniform at strength 0 or with fewer than 2 classes).

    Args:
        classes (list[np.ndarray]): Class ids of each image's objects, one array per image.
        nc (int): Number of classes; ids must lie in [0, nc).
        agg (str): How an image's objects combine: 'mean', 'max', 'median' or 'sum' (`balance_agg`).
        strength (float): Balancing strength in [0, 1] (`class_balance`).

    Returns:
        (np.ndarray): float64 probabilities of length len(classes), summing to 1.

    Examples:
        >>> image_probabilities([np.array([0, 0]), np.array([1]), np.array([])], nc=2).round(3).tolist()
        [0.222, 0.444, 0.333]
    """
    if agg not in AGGREGATIONS:
        raise ValueError(f"'balance_agg={agg}' is an invalid value. Valid 'balance_agg' values are {AGGREGATIONS}.")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"'class_balance={strength}' is an invalid value. Valid values are between 0.0 and 1.0.")
    cls, lengths = flatten_labels(classes)
    if cls.size and (cls.min() < 0 or cls.max() >= nc):
        raise ValueError(f"class ids must lie in [0, {nc}), found {cls.min()}..{cls.max()}.")
    counts = np.bincount(cls, minlength=nc)
    if strength == 0 or np.count_nonzero(counts) < 2:  # nothing to balance
        return np.full(len(classes), 1.0 / max(len(classes), 1))
    return spread_probabilities(cls, lengths, inverse_frequency_weights(counts, strength), agg)
