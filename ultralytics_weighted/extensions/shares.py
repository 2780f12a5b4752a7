# ultralytics-weighted, AGPL-3.0 license
"""Class counts and shares of flat labels (`core.balance.flatten_labels`), and the rule "nothing to balance".

The one place these are computed for the schedule's figures, the train-start table, `stats`, the class priors and the
data YAML's weights report (numpy only). The upstream core keeps its own two-line count, as it must stand alone.
"""

from __future__ import annotations

import numpy as np


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
