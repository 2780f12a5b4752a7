# ultralytics-weighted, AGPL-3.0 license
"""Class counts and shares, the rule "nothing to balance", and the figures of a sampling (numpy only).

The one place these are computed for the schedule's figures, the train-start table, `stats`, the class priors and the
data YAML's weights report: counts and shares of flat labels (`core.balance.flatten_labels`), the target shares with
the data's weights, and `balance_stats` (imbalance, effective sample size, coverage; definitions in `schedule.py`'s
docstring). The upstream core keeps its own two-line count, as it must stand alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.balance import flatten_labels
from .auto import target_shares


def class_counts(cls: np.ndarray, lengths: np.ndarray, nc: int, p: np.ndarray | None = None) -> np.ndarray:
    """Return the instances of each class, each counted with its image's weight `p` (once each without `p`).

    Args:
        cls (np.ndarray): Class id of every instance, images in order (`flatten_labels`).
        lengths (np.ndarray): Instances of each image (`flatten_labels`).
        nc (int): Number of classes.
        p (np.ndarray, optional): Weight of each image, e.g. its sampling probability: the expected instances per
            draw. None counts the instances of the data (an int array).

    Returns:
        (np.ndarray): One count per class (0 for classes without instances).

    Examples:
        >>> cls, lengths = np.array([0, 0, 1]), np.array([2, 1, 0])
        >>> class_counts(cls, lengths, 3).tolist(), class_counts(cls, lengths, 3, np.array([0.25, 0.5, 0.25])).tolist()
        ([2, 1, 0], [0.5, 0.5, 0.0])
    """
    return np.bincount(cls, weights=None if p is None else np.repeat(p, lengths), minlength=nc)


def class_shares(cls: np.ndarray, lengths: np.ndarray, nc: int, p: np.ndarray | None = None) -> np.ndarray:
    """Return each class's share of the instances (`class_counts` over their sum), all 0 without any instance.

    With sampling probabilities `p` this is the expected share of each class per epoch; without, the share in the
    data (both are defined in `schedule.py`'s module docstring).

    Examples:
        >>> cls, lengths = np.array([0, 0, 1]), np.array([2, 1, 0])
        >>> p = np.array([0.2, 0.6, 0.2])
        >>> class_shares(cls, lengths, 2).round(3).tolist(), class_shares(cls, lengths, 2, p).round(3).tolist()
        ([0.667, 0.333], [0.4, 0.6])
        >>> class_shares(np.zeros(0, dtype=np.int64), np.array([0]), 2).tolist()  # backgrounds only
        [0.0, 0.0]
    """
    counts = class_counts(cls, lengths, nc, p).astype(np.float64)
    total = counts.sum()
    return counts / total if total > 0 else np.zeros(nc)


def too_few_classes(counts: np.ndarray) -> bool:
    """Return whether fewer than two classes have instances: then balancing has nothing to move draws between.

    The one rule of "nothing to balance" for the plugin: with no labelled image or labels of a single class, every
    aggregation and strength gives the probabilities training would use without `class_balance`.

    Examples:
        >>> too_few_classes(np.array([3, 0, 0])), too_few_classes(np.array([0, 0])), too_few_classes(np.array([3, 1]))
        (True, True, False)
    """
    return bool(np.count_nonzero(counts) < 2)


def weighted_target_shares(
    classes: Sequence[np.ndarray],
    nc: int,
    strength: float,
    p: np.ndarray,
    *,
    class_multipliers: np.ndarray | None = None,
    image_multipliers: np.ndarray | None = None,
    sources: np.ndarray | None = None,
    source_shares: np.ndarray | None = None,
) -> np.ndarray:
    """Return the class shares that `weighted_probabilities` aims for with the data's weights (the plot's targets).

    Within the images balanced together (all of them, or each `train:` source on its own) the target is
    t_c ∝ n_c ** (1 - strength) * m_c, n_c the instances counted with their image's weight; the `auto` aggregation
    solves for exactly this. With sources, each source's target counts as many instances as its draws hold under `p`.

    Args:
        classes (Sequence[np.ndarray]): Class ids of each image's objects, one array per image.
        nc (int): Number of classes.
        strength (float): Balancing strength in [0, 1].
        p (np.ndarray): The sampling probabilities these weights give (`weighted_probabilities`), for the sources' mix.
        class_multipliers (np.ndarray, optional): Factor per class, as in `weighted_probabilities`.
        image_multipliers (np.ndarray, optional): Weight per image, as in `weighted_probabilities`.
        sources (np.ndarray, optional): Source index per image, as in `weighted_probabilities`.
        source_shares (np.ndarray, optional): Unused here (the sources' shares are already in `p`); accepted so that
            `DataWeights.multipliers` passes as is.

    Returns:
        (np.ndarray): float64 target share per class, summing to 1 over the classes drawn (0 for the others).

    Examples:
        >>> labels = [np.array([0])] * 6 + [np.array([1])] * 2
        >>> weighted_target_shares(labels, 2, 1.0, np.full(8, 1 / 8), class_multipliers=np.array([1.0, 3.0])).tolist()
        [0.25, 0.75]
    """
    cls, lengths = flatten_labels(classes)
    m = np.ones(nc) if class_multipliers is None else np.asarray(class_multipliers, dtype=np.float64)
    v = np.ones(len(classes)) if image_multipliers is None else np.asarray(image_multipliers, dtype=np.float64)
    group = np.zeros(len(classes), dtype=np.int64) if sources is None else np.asarray(sources)
    on_instances = np.repeat(group, lengths)
    aimed = np.zeros(nc)
    for k in np.unique(group):
        held = on_instances == k
        counts = np.bincount(cls[held], weights=np.repeat(v, lengths)[held], minlength=nc)
        t = target_shares(counts, strength) * m
        if t.sum() > 0:  # instances that the draws of this group hold under p
            aimed += t / t.sum() * np.sum(np.asarray(p)[group == k] * lengths[group == k])
    return aimed / aimed.sum() if aimed.sum() > 0 else aimed


def balance_stats(
    classes: Sequence[np.ndarray], nc: int, p: np.ndarray | None = None, epoch_size: int | None = None
) -> dict:
    """Describe what sampling with probabilities `p` does to the classes an epoch shows.

    Args:
        classes (Sequence[np.ndarray]): Class ids of each image's objects, one array per image.
        nc (int): Number of classes.
        p (np.ndarray, optional): Sampling probabilities per image; None means uniform (stock shuffling).
        epoch_size (int, optional): Images drawn per epoch (`BalanceSchedule.epoch_size`); None means one per image.

    Returns:
        (dict): 'instances' and 'images' per class (int arrays), 'share_before' and 'share_after' per class (float
            arrays: share of instances in the data and expected share per epoch under p), 'imbalance_before',
            'imbalance_after' (max/min share over present classes), 'ess', 'coverage' (see the module docstring) and
            'epoch_size' (images drawn per epoch).

    Examples:
        >>> import numpy as np
        >>> labels = [np.array([0, 0]), np.array([0]), np.array([1])]
        >>> from ultralytics_weighted.extensions.schedule import weighted_probabilities
        >>> s = balance_stats(labels, 2, weighted_probabilities(labels, 2))
        >>> round(s["imbalance_before"], 2), round(s["imbalance_after"], 2)
        (3.0, 1.0)
    """
    n_images = len(classes)
    cls, lengths = flatten_labels(classes)
    img = np.repeat(np.arange(n_images), lengths)  # image index of every instance
    p = np.full(n_images, 1.0 / max(n_images, 1)) if p is None else np.asarray(p, dtype=np.float64)
    instances = class_counts(cls, lengths, nc)
    images = np.bincount(cls[np.unique(img * nc + cls, return_index=True)[1]], minlength=nc) if cls.size else instances
    present = instances > 0

    def imbalance(share):
        s = share[present]
        return float(s.max() / s.min()) if s.size and s.min() > 0 else float("nan")

    before, after = class_shares(cls, lengths, nc), class_shares(cls, lengths, nc, p)
    return {
        "instances": instances,
        "images": images,
        "share_before": before,
        "share_after": after,
        "imbalance_before": imbalance(before),
        "imbalance_after": imbalance(after),
        "ess": effective_sample_size(p),
        "coverage": coverage(p, draws=epoch_size),
        "epoch_size": n_images if epoch_size is None else int(epoch_size),
    }


def effective_sample_size(p: np.ndarray) -> float:
    """Return 1 / (N * sum(p**2)): 1.0 for uniform sampling, 1/N when one image takes every draw."""
    p = np.asarray(p, dtype=np.float64)
    return float(1.0 / (p.size * np.square(p).sum())) if p.size else float("nan")


def coverage(p: np.ndarray, method: str = "systematic", draws: int | None = None) -> float:
    """Return the expected share of distinct images drawn in one epoch of `draws` draws (default N, the image count).

    With systematic resampling image i is drawn floor(draws p_i) or ceil(draws p_i) times, so it is seen with
    probability min(1, draws p_i); with independent multinomial draws it is seen with probability
    1 - (1 - p_i) ** draws.

    Args:
        p (np.ndarray): Sampling probabilities per image.
        method (str): 'systematic' (this package's sampler) or 'multinomial' (independent draws).
        draws (int, optional): Draws per epoch; None means one per image (N), as with stock shuffling.

    Returns:
        (float): Coverage in [0, 1].

    Examples:
        >>> coverage(np.array([0.5, 0.25, 0.25, 0.0])), coverage(np.array([0.5, 0.25, 0.25, 0.0]), draws=8)
        (0.75, 0.75)
    """
    p = np.asarray(p, dtype=np.float64)
    n = p.size
    if not n:
        return float("nan")
    draws = n if draws is None else draws
    if method == "systematic":
        return float(np.minimum(1.0, draws * p).mean())
    if method == "multinomial":
        return float((1.0 - np.power(1.0 - p, draws)).mean())
    raise ValueError(f"method='{method}' is not supported, use 'systematic' or 'multinomial'.")
