# Ultralytics 🚀 AGPL-3.0 License - https://ultralytics.com/license
"""Per-image sampling probabilities for class-balanced training, and the figures that describe them.

Pure numpy, no Ultralytics import, no Python loop over images or instances: the labels of N images are handled as one
flat array of class ids plus the image index of each instance, so a million images cost a few array passes.

Definitions used everywhere (log, stats, docs), for sampling probabilities p over N images:
    expected share of class c      e_c / sum(e),  e_c = sum_i p_i * (instances of c in image i)
    imbalance                      max / min share over the classes present
    effective sample size (ESS)    1 / (N * sum(p_i**2))        1.0 = uniform sampling
    coverage                       expected share of distinct images drawn in one epoch of N draws
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

AGGREGATIONS = ("mean", "max", "median", "sum")  # how an image's instance class weights combine into its weight


def flatten_labels(classes: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Turn per-image class id arrays into flat (class id, image index) arrays.

    Args:
        classes (Sequence[np.ndarray]): One array of class ids per image (any shape, e.g. Ultralytics' (n, 1) 'cls').

    Returns:
        cls (np.ndarray): Class id of every instance, int64, images in order.
        img (np.ndarray): Image index of every instance, int64, non-decreasing.
    """
    n_images = len(classes)
    lengths = np.fromiter(map(len, classes), dtype=np.int64, count=n_images)
    try:  # fast path: 1-D or (n, 1) arrays, one C-level concatenation
        cls = np.concatenate(classes, axis=0).reshape(-1) if n_images else np.zeros(0)
        if cls.size != lengths.sum():
            raise ValueError("not one class id per row")
    except ValueError:  # mixed shapes: flatten each image first
        flat = [np.asarray(c).reshape(-1) for c in classes]
        lengths = np.fromiter(map(len, flat), dtype=np.int64, count=n_images)
        cls = np.concatenate(flat) if n_images else np.zeros(0)
    return cls.astype(np.int64, copy=False), np.repeat(np.arange(n_images, dtype=np.int64), lengths)


def class_weights(counts: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Return (total instances / instances of class c) ** power, and 0 for classes without instances.

    Args:
        counts (np.ndarray): Instances per class.
        power (float): Balancing strength in [0, 1]; 1 = inverse frequency, 0.5 = square root, 0 = all ones.

    Returns:
        (np.ndarray): float64 weight per class.
    """
    counts = np.asarray(counts, dtype=np.float64)
    weights = np.zeros_like(counts)
    present = counts > 0
    weights[present] = (counts.sum() / counts[present]) ** power
    return weights


def _aggregate(values: np.ndarray, img: np.ndarray, n_images: int, agg: str, sort_key: np.ndarray) -> np.ndarray:
    """Combine per-instance values into one value per image (0 for images without instances); `agg` is checked."""
    lengths = np.bincount(img, minlength=n_images)
    if agg == "sum":
        return np.bincount(img, weights=values, minlength=n_images)
    if agg == "mean":
        return np.bincount(img, weights=values, minlength=n_images) / np.maximum(lengths, 1)
    out = np.zeros(n_images, dtype=np.float64)
    labelled = lengths > 0
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[labelled]
    if agg == "max":
        out[labelled] = np.maximum.reduceat(values, starts)
        return out
    # median: sort each image's values by one integer key (image index, then value rank), average the middle two
    order = np.argsort(img * (int(sort_key.max()) + 1) + sort_key, kind="stable")
    ordered = values[order]
    n = lengths[labelled]
    out[labelled] = 0.5 * (ordered[starts + (n - 1) // 2] + ordered[starts + n // 2])
    return out


def check_aggregation(agg: str) -> None:
    """Raise ValueError, in Ultralytics' style, unless `agg` names one of `AGGREGATIONS`."""
    if agg not in AGGREGATIONS:
        raise ValueError(
            f"'balance_agg={agg}' is an invalid value. Valid 'balance_agg' values are {', '.join(AGGREGATIONS)}."
        )


def image_weights(classes: Sequence[np.ndarray], nc: int, agg: str = "mean", power: float = 1.0) -> np.ndarray:
    """Return class-balanced sampling probabilities, one per image.

    Class c weighs (total instances / instances of c) ** power; an image weighs the aggregation (`agg`) of its
    instances' class weights. Labelled images share the probability mass they hold under uniform sampling, in
    proportion to their weights; background images (no instances) keep their uniform 1/N each, so balancing only
    redistributes draws among labelled images. Classes without instances affect nothing, and every labelled image keeps
    a probability above 0.

    Args:
        classes (Sequence[np.ndarray]): Class ids of each image's objects, one 1-D int array per image.
        nc (int): Number of classes; ids must lie in [0, nc).
        agg (str): How an image's objects combine: 'mean', 'max', 'median' or 'sum'.
        power (float): Balancing strength in [0, 1]: 1 = inverse class frequency, 0.5 = square root, 0 = uniform.

    Returns:
        (np.ndarray): float64 probabilities of length len(classes), summing to 1 (empty for no images).

    Examples:
        >>> import numpy as np
        >>> p = image_weights([np.array([0, 0]), np.array([1]), np.array([], dtype=int)], nc=2, agg="mean")
        >>> p.round(3).tolist()
        [0.222, 0.444, 0.333]
    """
    check_aggregation(agg)
    if not 0.0 <= power <= 1.0:
        raise ValueError(f"'class_balance={power}' is an invalid value. Valid strengths are between 0.0 and 1.0.")
    n_images = len(classes)
    if n_images == 0:
        return np.zeros(0, dtype=np.float64)
    cls, img = flatten_labels(classes)
    if cls.size and (cls.min() < 0 or cls.max() >= nc):
        raise ValueError(f"class ids must lie in [0, {nc}), found {cls.min()}..{cls.max()}.")
    counts = np.bincount(cls, minlength=nc)
    cw = class_weights(counts, power)
    rank = np.argsort(np.argsort(cw, kind="stable"), kind="stable")  # class id -> rank of its weight (median sort)
    w = _aggregate(cw[cls], img, n_images, agg, rank[cls])
    labelled = np.bincount(img, minlength=n_images) > 0
    p = np.full(n_images, 1.0 / n_images)
    if labelled.any():
        p[labelled] = w[labelled] / w[labelled].sum() * (labelled.sum() / n_images)
    return p


def balance_stats(classes: Sequence[np.ndarray], nc: int, p: np.ndarray | None = None) -> dict:
    """Describe what sampling with probabilities `p` does to the classes an epoch shows.

    Args:
        classes (Sequence[np.ndarray]): Class ids of each image's objects, one array per image.
        nc (int): Number of classes.
        p (np.ndarray, optional): Sampling probabilities per image; None means uniform (stock shuffling).

    Returns:
        (dict): 'instances' and 'images' per class (int arrays), 'share_before' and 'share_after' per class (float
            arrays: share of instances in the data and expected share per epoch under p), 'imbalance_before',
            'imbalance_after' (max/min share over present classes), 'ess' and 'coverage' (see the module docstring).

    Examples:
        >>> import numpy as np
        >>> labels = [np.array([0, 0]), np.array([0]), np.array([1])]
        >>> s = balance_stats(labels, 2, image_weights(labels, 2))
        >>> round(s["imbalance_before"], 2), round(s["imbalance_after"], 2)
        (3.0, 1.0)
    """
    n_images = len(classes)
    cls, img = flatten_labels(classes)
    p = np.full(n_images, 1.0 / max(n_images, 1)) if p is None else np.asarray(p, dtype=np.float64)
    instances = np.bincount(cls, minlength=nc)
    images = np.bincount(cls[np.unique(img * nc + cls, return_index=True)[1]], minlength=nc) if cls.size else instances
    expected = np.bincount(cls, weights=p[img], minlength=nc)
    present = instances > 0

    def shares(x):
        total = x.sum()
        return x / total if total > 0 else np.zeros(nc)

    def imbalance(share):
        s = share[present]
        return float(s.max() / s.min()) if s.size and s.min() > 0 else float("nan")

    before, after = shares(instances.astype(np.float64)), shares(expected)
    return {
        "instances": instances,
        "images": images,
        "share_before": before,
        "share_after": after,
        "imbalance_before": imbalance(before),
        "imbalance_after": imbalance(after),
        "ess": effective_sample_size(p),
        "coverage": coverage(p),
    }


def effective_sample_size(p: np.ndarray) -> float:
    """Return 1 / (N * sum(p**2)): 1.0 for uniform sampling, 1/N when one image takes every draw."""
    p = np.asarray(p, dtype=np.float64)
    return float(1.0 / (p.size * np.square(p).sum())) if p.size else float("nan")


def coverage(p: np.ndarray, method: str = "systematic") -> float:
    """Return the expected share of distinct images drawn in one epoch of N draws.

    With systematic resampling image i is drawn floor(N p_i) or ceil(N p_i) times, so it is seen with probability
    min(1, N p_i); with independent multinomial draws it is seen with probability 1 - (1 - p_i) ** N.

    Args:
        p (np.ndarray): Sampling probabilities per image.
        method (str): 'systematic' (this package's sampler) or 'multinomial' (independent draws).

    Returns:
        (float): Coverage in [0, 1].
    """
    p = np.asarray(p, dtype=np.float64)
    n = p.size
    if not n:
        return float("nan")
    if method == "systematic":
        return float(np.minimum(1.0, n * p).mean())
    if method == "multinomial":
        return float((1.0 - np.power(1.0 - p, n)).mean())
    raise ValueError(f"method='{method}' is not supported, use 'systematic' or 'multinomial'.")
