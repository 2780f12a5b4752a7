# Ultralytics 🚀 AGPL-3.0 License - https://ultralytics.com/license
"""Class-balanced sampling probabilities, one per train image: numpy only, vectorized over all instances at once.

1. Class weight: w_c = (instances / instances of c) ** s, s = `class_balance` (1 = inverse frequency, 0.5 = sqrt).
2. Image weight: v_i = the `balance_agg` (mean, max, median or sum) of w_c over the instances of image i.
3. Probability: labelled images share the mass they hold under uniform sampling in proportion to v_i; backgrounds keep
   1/N each, so balancing only moves draws between labelled images.
"""

from __future__ import annotations

import numpy as np

AGGREGATIONS = ("mean", "max", "median", "sum")  # `balance_agg` values


def flatten_labels(classes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Return the class id and the image index of every instance (int64, images in order) of per-image class ids."""
    n_images = len(classes)
    lengths = np.fromiter(map(len, classes), dtype=np.int64, count=n_images)
    try:  # fast path: 1-D or (n, 1) arrays, one C-level concatenation straight into int64 (no float copy)
        cls = np.concatenate(classes or [np.zeros(0)], dtype=np.int64, casting="unsafe").reshape(-1)
        if cls.size != lengths.sum():
            raise ValueError("not one class id per row")
    except ValueError:  # mixed shapes: flatten each image first
        flat = [np.reshape(c, -1) for c in classes]
        lengths = np.fromiter(map(len, flat), dtype=np.int64, count=n_images)
        cls = np.concatenate(flat, dtype=np.int64, casting="unsafe")
    return cls, np.repeat(np.arange(n_images, dtype=np.int64), lengths)


def class_weights(counts: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Return (total instances / instances of class c) ** strength per class, 0 for classes without instances."""
    counts = np.asarray(counts, dtype=np.float64)
    with np.errstate(divide="ignore"):  # absent classes: total / 0, replaced by 0
        return np.where(counts > 0, (counts.sum() / counts) ** strength, 0.0)


def _aggregate(values: np.ndarray, img: np.ndarray, lengths: np.ndarray, agg: str, sort_key=None) -> np.ndarray:
    """Combine per-instance values into one value per image (0 without instances); `sort_key` for the median only."""
    if agg in {"sum", "mean"}:
        total = np.bincount(img, weights=values, minlength=len(lengths))
        return total if agg == "sum" else total / np.maximum(lengths, 1)
    out = np.zeros(len(lengths), dtype=np.float64)
    labelled = lengths > 0
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[labelled]
    if agg == "max":
        out[labelled] = np.maximum.reduceat(values, starts)
        return out
    # median: sort each image's values by one integer key (image index, then value rank), average the middle two
    ordered = values[np.argsort(img * (int(sort_key.max()) + 1) + sort_key, kind="stable")]
    n = lengths[labelled]
    out[labelled] = 0.5 * (ordered[starts + (n - 1) // 2] + ordered[starts + n // 2])
    return out


def spread_probabilities(cls: np.ndarray, img: np.ndarray, n_images: int, weights: np.ndarray, agg: str) -> np.ndarray:
    """Return steps 2 and 3 of the module docstring for flat labels (`flatten_labels`) and class `weights` (step 1)."""
    p, lengths = np.full(n_images, 1.0 / n_images), np.bincount(img, minlength=n_images)  # instances per image
    labelled = lengths > 0
    rank = np.argsort(np.argsort(weights, kind="stable"), kind="stable")  # class -> rank of its weight (median)
    v = _aggregate(weights[cls], img, lengths, agg, rank[cls] if agg == "median" else None)
    p[labelled] = v[labelled] / v[labelled].sum() * p[labelled].sum()
    return p


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
    cls, img = flatten_labels(classes)
    if cls.size and (cls.min() < 0 or cls.max() >= nc):
        raise ValueError(f"class ids must lie in [0, {nc}), found {cls.min()}..{cls.max()}.")
    counts = np.bincount(cls, minlength=nc)
    if strength == 0 or np.count_nonzero(counts) < 2:  # nothing to balance
        return np.full(len(classes), 1.0 / max(len(classes), 1))
    return spread_probabilities(cls, img, len(classes), class_weights(counts, strength), agg)
