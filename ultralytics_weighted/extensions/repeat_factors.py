# ultralytics-weighted, AGPL-3.0 license
"""LVIS repeat-factor sampling (`balance_agg=rfs`): how many times each train image is drawn per epoch (numpy only).

Gupta et al., LVIS (CVPR 2019), as detectron2's `RepeatFactorTrainingSampler.repeat_factors_from_category_frequency`
and MMDetection's `ClassBalancedDataset` compute it. `schedule.py` draws image i with probability r_i / sum(r) in
epochs of round(sum(r)) images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.balance import flatten_labels
from .keys import DEFAULTS


def repeat_factors(
    classes: Sequence[np.ndarray], nc: int, threshold: float = DEFAULTS["balance_rfs_threshold"], strength: float = 1.0
) -> np.ndarray:
    """Return the repeat factor r_i >= 1 of every image: its expected draws per epoch.

    With strength 1 (`class_balance=True`) this is LVIS exactly: r_c = max(1, sqrt(t / f_c)). A strength s in [0, 1]
    scales the exponent, r_c = max(1, (t / f_c) ** (s / 2)): s = 0 repeats nothing (every r_i = 1).

    Args:
        classes (Sequence[np.ndarray]): Class ids of each image's objects, one 1-D int array per image.
        nc (int): Number of classes; ids must lie in [0, nc).
        threshold (float): t in (0, 1] (`balance_rfs_threshold`).
        strength (float): s in [0, 1] (`class_balance`).

    Returns:
        (np.ndarray): float64 repeat factor per image; 1.0 for images without labels.

    Examples:
        >>> labels = [np.array([0, 0])] * 8 + [np.array([0, 1])] + [np.array([], dtype=int)]  # class 1 in 1 of 10
        >>> repeat_factors(labels, nc=2, threshold=0.4).round(3).tolist()  # sqrt(0.4 / 0.1) = 2 for image 8
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0]
        >>> repeat_factors(labels, nc=2, threshold=0.4, strength=0.5)[8].round(3)  # (0.4 / 0.1) ** 0.25
        np.float64(1.414)
    """
    return flat_repeat_factors(*flatten_labels(classes), nc, threshold, strength)


def flat_repeat_factors(cls: np.ndarray, lengths: np.ndarray, nc: int, threshold: float, strength: float) -> np.ndarray:
    """Return `repeat_factors` for flat labels (`core.balance.flatten_labels`: class ids, instances per image)."""
    image = np.repeat(np.arange(len(lengths)), lengths)  # image index of every instance
    # 1. f_c: the fraction of the images that contain class c
    f = images_holding(image, cls, nc) / max(len(lengths), 1)
    # 2. r_c = max(1, (t / f_c) ** (s / 2)); classes without images are never looked up
    with np.errstate(divide="ignore"):
        r_class = np.maximum(1.0, (threshold / f) ** (strength / 2))
    # 3. r_i = max over the classes in image i; 1 for images without labels
    r = np.ones(len(lengths))
    np.maximum.at(r, image, r_class[cls])
    return r


def images_holding(image: np.ndarray, cls: np.ndarray, nc: int) -> np.ndarray:
    """Return, per class, how many images hold it: an image counts once however many instances of it it holds.

    Args:
        image (np.ndarray): Image index of every instance.
        cls (np.ndarray): Class id of every instance, in [0, nc).
        nc (int): Number of classes.

    Examples:
        >>> images_holding(np.array([0, 0, 1, 2]), np.array([1, 1, 1, 0]), 3).tolist()
        [1, 2, 0]
    """
    pairs = np.sort(image * nc + cls)  # (image, class) keys, an image's repeats adjacent (np.unique: far slower)
    return np.bincount(pairs[np.diff(pairs, prepend=-1) != 0] % nc, minlength=nc)
