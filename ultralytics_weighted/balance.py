# Ultralytics 🚀 AGPL-3.0 License - https://ultralytics.com/license
"""Per-image sampling probabilities for class-balanced training, and the figures that describe them.

Pure numpy, no Ultralytics import, no Python loop over images or instances: the labels of N images are handled as one
flat array of class ids plus the image index of each instance, so a million images cost a few array passes.

Definitions used everywhere (log, stats, docs), for sampling probabilities p over N images:
    expected share of class c      e_c / sum(e),  e_c = sum_i p_i * (instances of c in image i)
    imbalance                      max / min share over the classes present
    effective sample size (ESS)    1 / (N * sum(p_i**2))        1.0 = uniform sampling
    coverage                       expected share of distinct images drawn in one epoch of N draws
    target share at strength s     t_c ∝ n_c ** (1 - s), n_c = instances of c: s = 1 equal shares, s = 0 as in the data
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

AGGREGATIONS = ("mean", "max", "median", "sum", "auto")  # how an image's instance class weights combine into its weight

MAX_FLOOR = 1.0  # largest balance_floor: at 1 no image is skipped; above, every image repeats within an epoch
FLOOR_UNDOES_WARNING = 0.5  # warn when the floor takes back more than this fraction of the balance (log max/min share)


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
    try:  # fast path: 1-D or (n, 1) arrays, one C-level concatenation straight into int64 (as astype truncates)
        cls = np.concatenate(classes, axis=0, dtype=np.int64, casting="unsafe").reshape(-1) if n_images else None
        if cls is not None and cls.size != lengths.sum():
            raise ValueError("not one class id per row")
    except ValueError:  # mixed shapes: flatten each image first
        flat = [np.asarray(c).reshape(-1) for c in classes]
        lengths = np.fromiter(map(len, flat), dtype=np.int64, count=n_images)
        cls = np.concatenate(flat).astype(np.int64, copy=False) if n_images else None
    if cls is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    # image index of every instance: +1 at the first instance after each image's end, summed up (np.repeat of the
    # image indices gives the same, copying one 8-byte item at a time)
    ends = np.cumsum(lengths)
    img = np.bincount(ends[ends < cls.size], minlength=cls.size)
    return cls, np.cumsum(img, out=img)


def class_weights(counts: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Return (total instances / instances of class c) ** strength, and 0 for classes without instances.

    Args:
        counts (np.ndarray): Instances per class.
        strength (float): Balancing strength in [0, 1]; 1 = inverse frequency, 0.5 = square root, 0 = all ones.

    Returns:
        (np.ndarray): float64 weight per class.
    """
    counts = np.asarray(counts, dtype=np.float64)
    weights = np.zeros_like(counts)
    present = counts > 0
    weights[present] = (counts.sum() / counts[present]) ** strength
    return weights


def _aggregate(values: np.ndarray, img: np.ndarray, n_images: int, agg: str, sort_key: np.ndarray) -> np.ndarray:
    """Combine per-instance values into one value per image (0 for images without instances); `agg` is checked."""
    if agg == "sum":
        return np.bincount(img, weights=values, minlength=n_images)
    lengths = np.bincount(img, minlength=n_images)
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


def image_weights(
    classes: Sequence[np.ndarray],
    nc: int,
    agg: str = "mean",
    strength: float = 1.0,
    *,
    class_multipliers: np.ndarray | None = None,
    image_multipliers: np.ndarray | None = None,
    sources: np.ndarray | None = None,
    source_shares: np.ndarray | None = None,
) -> np.ndarray:
    """Return class-balanced sampling probabilities, one per image.

    Class c weighs (total instances / instances of c) ** strength; an image weighs the aggregation (`agg`) of its
    instances' class weights. Labelled images share the probability mass they hold under uniform sampling, in
    proportion to their weights; background images (no instances) keep their uniform 1/N each, so balancing only
    redistributes draws among labelled images. Classes without instances affect nothing, and every labelled image keeps
    a probability above 0. Strength 0 (balancing off) and labels of fewer than two classes (see `nothing_to_balance`)
    give uniform probabilities with every `agg`.

    agg='auto' solves for the probabilities instead (`auto.AutoSolver`): the ones closest to uniform (maximum entropy)
    whose expected class shares hit `auto.target_shares(counts, strength)`, within bounds on every image's draws.

    Args:
        classes (Sequence[np.ndarray]): Class ids of each image's objects, one 1-D int array per image.
        nc (int): Number of classes; ids must lie in [0, nc).
        agg (str): How an image's objects combine: 'mean', 'max', 'median', 'sum', or 'auto' (solved).
        strength (float): Balancing strength in [0, 1]: 1 = inverse class frequency, 0.5 = square root, 0 = uniform.
        class_multipliers (np.ndarray, optional): Factor >= 0 per class (data YAML `class_weights`): multiplies the
            class's weight and its target share t_c ∝ n_c ** (1 - strength) * m_c, also at strength 0.
        image_multipliers (np.ndarray, optional): Weight >= 0 per image (data YAML `image_weights` file): the
            distribution that replaces uniform, p_i ∝ v_i before balancing; instances count v_i times in n_c.
        sources (np.ndarray, optional): Source index per image (position in the data YAML's `train:` list).
        source_shares (np.ndarray, optional): Share of the draws per source (`source_weights`); each source's images
            are balanced on their own labels, then scaled to the source's share (renormalized over the sources with
            images).

    Returns:
        (np.ndarray): float64 probabilities of length len(classes), summing to 1 (empty for no images).

    Examples:
        >>> import numpy as np
        >>> p = image_weights([np.array([0, 0]), np.array([1]), np.array([], dtype=int)], nc=2, agg="mean")
        >>> p.round(3).tolist()
        [0.222, 0.444, 0.333]
        >>> labels = [np.array([0, 0, 1]), np.array([0]), np.array([1]), np.array([], dtype=int)]
        >>> image_weights(labels, nc=2, agg="auto").round(3).tolist()  # the background keeps 1/N
        [0.188, 0.188, 0.375, 0.25]
        >>> image_weights([np.array([0, 0]), np.array([0])], nc=2, agg="sum").tolist()  # one class: uniform
        [0.5, 0.5]
        >>> stats = {agg: balance_stats(labels, 2, image_weights(labels, 2, agg)) for agg in AGGREGATIONS}
        >>> {agg: round(s["imbalance_after"], 2) for agg, s in stats.items()}  # max/min class share per epoch
        {'mean': 1.25, 'max': 1.33, 'median': 1.2, 'sum': 1.6, 'auto': 1.0}
    """
    check_aggregation(agg)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"'class_balance={strength}' is an invalid value. Valid strengths are between 0.0 and 1.0.")
    n_images = len(classes)
    if n_images == 0:
        return np.zeros(0, dtype=np.float64)
    if sources is not None:  # each source balanced on its own labels, then scaled to its share of the draws
        sources, shares = np.asarray(sources), np.asarray(source_shares, dtype=np.float64)
        held = np.bincount(sources, minlength=len(shares))[: len(shares)] > 0
        shares = np.where(held, shares, 0.0)
        p = np.zeros(n_images, dtype=np.float64)
        for k in np.flatnonzero(shares):
            idx = np.flatnonzero(sources == k)
            v = None if image_multipliers is None else np.asarray(image_multipliers)[idx]
            part = image_weights(
                [classes[i] for i in idx], nc, agg, strength, class_multipliers=class_multipliers, image_multipliers=v
            )
            p[idx] = part * (shares[k] / shares.sum())
        return p / p.sum()
    cls, img = flatten_labels(classes)
    if cls.size and (cls.min() < 0 or cls.max() >= nc):
        raise ValueError(f"class ids must lie in [0, {nc}), found {cls.min()}..{cls.max()}.")
    v = np.ones(n_images) if image_multipliers is None else np.asarray(image_multipliers, dtype=np.float64)
    p = v / v.sum()  # before class balancing: uniform, or as the image multipliers say
    m = np.ones(nc) if class_multipliers is None else np.asarray(class_multipliers, dtype=np.float64)
    counts = np.bincount(cls, weights=v[img], minlength=nc)  # instances as drawn before balancing
    present = counts > 0
    uniform_classes = not (m[present] != m[present][:1]).any()
    if (strength == 0 and uniform_classes) or present.sum() < 2:  # nothing to balance: p whatever `agg`
        return p
    labelled = (np.bincount(img, minlength=n_images) > 0) & (v > 0)  # backgrounds and weight-0 images keep their p
    mass = p[labelled].sum()
    if agg == "auto":
        from .auto import AutoSolver  # the extension (plugin only)

        keep = labelled[img]
        cls, img = cls[keep], img[keep]
        kept = np.unique(cls)  # renumber the classes of the solved images 0..C-1
        if len(kept) < 2:
            return p
        cls = np.searchsorted(kept, cls)
        img = (np.cumsum(labelled) - 1)[img]  # renumber the solved images 0..L-1
        q = AutoSolver(
            cls,
            img,
            int(labelled.sum()),
            strength,
            np.maximum(m[kept], 1e-6),  # a class weighted 0 gets as few draws as the bounds allow
            None if image_multipliers is None else v[labelled],
        ).solve()
        p[labelled] = q * mass
        return p
    cw = class_weights(counts, strength) * m
    rank = np.argsort(np.argsort(cw, kind="stable"), kind="stable")  # class id -> rank of its weight (median sort)
    w = _aggregate(cw[cls], img, n_images, agg, rank[cls]) * v
    p[labelled] = w[labelled] / w[labelled].sum() * mass
    return p


class BalanceSchedule:
    """The sampling probabilities of every epoch of class-balanced training, and the epoch length.

    The first floor(start * epochs) epochs (`start_epoch`, 0-based: the first balanced epoch) have strength 0, which
    samples uniformly, every image once, as stock shuffling does. From there epoch e balances at strength
    s_e = strength * min(1, (e - start_epoch) / (ramp * (epochs - start_epoch - 1))): with `ramp` > 0 the strength
    rises linearly from 0 (instance-balanced, as stock) in the first balanced epoch over that fraction of the remaining
    epochs (`ramp=1` reaches `strength` in the last epoch), otherwise every balanced epoch uses `strength`. Its image
    probabilities are `image_weights` at s_e, with the expected draws of every image raised to at least `floor`:
    d_i = max(N * p_i, floor). With `floor` > 0 the epoch grows (no image is skipped for another's extra draws, as in
    repeat factor sampling) instead of keeping N draws: `epoch_size` is the largest sum(d) of the balanced epochs,
    rounded up, and each epoch draws that many images with probabilities d / sum(d), so image i is still drawn at least
    `floor` times in expectation. One fixed length keeps the loader's length, warmup and progress bars as Ultralytics
    set them; the stock epochs before `start_epoch` then draw `epoch_size` images uniformly (each image
    floor(epoch_size / N) or ceil(epoch_size / N) times), so they cost as many images as the balanced ones.

    Args:
        classes (Sequence[np.ndarray]): Class ids of each image's objects, in dataset order.
        nc (int): Number of classes.
        strength (float): Balancing strength in [0, 1] (`class_balance`), reached after the ramp.
        agg (str): Aggregation of the image weights (`balance_agg`).
        floor (float): Least expected draws of each image per epoch (`balance_floor`); 0 keeps N draws per epoch.
        ramp (float): Fraction of the balanced epochs over which the strength rises from 0 (`balance_ramp`), in [0, 1].
        epochs (int): Epochs of the training.
        start (float): Fraction of the epochs sampled uniformly (stock) before balancing starts (`balance_start`), in
            [0, 1); the stock epochs are floor(start * epochs).
        multipliers (dict, optional): Keyword arguments of `image_weights` from the data (`class_multipliers`,
            `image_multipliers`, `sources`, `source_shares`), applied in every epoch: epochs at strength 0 (before
            `start`, the ramp's first) draw by them instead of uniformly.

    Examples:
        >>> labels = [np.array([0])] * 6 + [np.array([1])] * 2
        >>> schedule = BalanceSchedule(labels, nc=2, strength=1.0, floor=1.0, ramp=0.5, epochs=5)
        >>> [round(schedule.strength_at(e), 2) for e in range(5)]  # rises over half of the training
        [0.0, 0.5, 1.0, 1.0, 1.0]
        >>> schedule.epoch_size  # 8 images: the 2 rare ones take 2 draws each, the 6 common ones keep 1
        10
        >>> (schedule.epoch_size * schedule.probabilities(3)).round(2).tolist()
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0]
        >>> late = BalanceSchedule(labels, nc=2, strength=1.0, epochs=10, start=0.7)  # stock in epochs 0-6
        >>> late.start_epoch, (8 * late.probabilities(6)).tolist(), (8 * late.probabilities(7)).round(2).tolist()
        (7, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [0.67, 0.67, 0.67, 0.67, 0.67, 0.67, 2.0, 2.0])
        >>> late = BalanceSchedule(labels, nc=2, strength=1.0, ramp=0.5, epochs=10, start=0.5)  # ramp after start
        >>> [round(late.strength_at(e), 2) for e in range(10)], late.full_strength_epoch
        ([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0], 7)
        >>> late = BalanceSchedule(labels, nc=2, strength=1.0, floor=1.0, epochs=4, start=0.5)  # stock epochs grow too
        >>> late.epoch_size, (late.epoch_size * late.probabilities(0)).tolist()
        (10, [1.25, 1.25, 1.25, 1.25, 1.25, 1.25, 1.25, 1.25])
    """

    def __init__(
        self,
        classes: Sequence[np.ndarray],
        nc: int,
        strength: float = 1.0,
        agg: str = "mean",
        floor: float = 0.0,
        ramp: float = 0.0,
        epochs: int = 1,
        start: float = 0.0,
        multipliers: dict | None = None,
    ):
        """Compute the schedule's epoch length (the probabilities of each epoch are computed when asked for)."""
        if not (0.0 <= floor <= MAX_FLOOR and 0.0 <= ramp <= 1.0 and 0.0 <= start < 1.0):  # also refuses nan and inf
            raise ValueError(
                f"floor must lie in [0, {MAX_FLOOR:g}], ramp in [0, 1] and start in [0, 1), got floor={floor}, "
                f"ramp={ramp}, start={start}."
            )
        self.classes, self.nc, self.agg = classes, nc, agg
        self.strength, self.floor, self.ramp, self.epochs = float(strength), float(floor), float(ramp), int(epochs)
        self.start, self.multipliers = float(start), dict(multipliers or {})
        # floor, not round: start < 1 leaves at least one balanced epoch; 1e-9 absorbs float products such as 0.29 * 100
        self.start_epoch = min(math.floor(self.start * self.epochs + 1e-9), max(self.epochs - 1, 0))
        self.ramp_epochs = self.ramp * max(self.epochs - self.start_epoch - 1, 0)  # length of the rise, in epochs
        self._cached = (None, None)  # (strength, probabilities) of the most recent epoch asked for
        # without a floor every epoch has N draws; with one, the longest balanced epoch of the schedule sets the length
        ramping = self.floor and self.ramp_epochs
        balanced = range(self.start_epoch, self.full_strength_epoch + 1)
        strengths = {self.strength_at(e) for e in balanced} if ramping else {self.strength}
        totals = [self._expected_draws(s).sum() for s in strengths] if self.floor else [len(classes)]
        self.epoch_size = max(len(classes), math.ceil(max(totals) - 1e-9))  # round-off must not add a draw

    @property
    def full_strength_epoch(self) -> int:
        """Return the first epoch (0-based) that samples at the full `strength`."""
        return self.start_epoch + math.ceil(self.ramp_epochs)

    def strength_at(self, epoch: int) -> float:
        """Return the balancing strength of `epoch` (0-based): 0 before `start_epoch`, which samples uniformly."""
        if epoch < self.start_epoch:
            return 0.0
        if self.ramp_epochs <= 0:
            return self.strength
        return self.strength * min(1.0, (epoch - self.start_epoch) / self.ramp_epochs)

    def _expected_draws(self, strength: float) -> np.ndarray:
        """Return max(N * p_i, floor) for the image probabilities p at `strength`."""
        p = image_weights(self.classes, self.nc, self.agg, strength, **self.multipliers)
        return np.maximum(len(p) * p, self.floor)

    def probabilities(self, epoch: int) -> np.ndarray:
        """Return the sampling probability of every image in `epoch` (one draw of `epoch_size` images).

        Args:
            epoch (int): Epoch number (0-based), as the trainer counts it.

        Returns:
            (np.ndarray): float64 probabilities summing to 1; uniform before `start_epoch`.
        """
        strength = self.strength_at(epoch)  # 0 before start_epoch: image_weights is uniform at 0 for every agg
        if self._cached[0] != strength:
            if self.floor:  # max(N * p_i, floor) of uniform p is one constant: uniform too
                draws = self._expected_draws(strength)
                p = draws / draws.sum()
            else:  # exactly image_weights, so that the draws stay those of a schedule-free sampler
                p = image_weights(self.classes, self.nc, self.agg, strength, **self.multipliers)
            self._cached = (strength, p)
        return self._cached[1]

    def floor_effect(self) -> tuple[float, float, float, float]:
        """Return how much of the balance the floor takes back, and the max/min class shares it is measured on.

        Balance is measured as the log of the max/min class share per epoch (`balance_stats`), at full strength:
        g = log(stock) - log(without the floor) is what balancing gains, and the floor takes back
        (log(with the floor) - log(without)) / g of it: 0 keeps all of the balance, 1 is back at stock's imbalance.

        Returns:
            (tuple[float, float, float, float]): The fraction taken back (0.0 without a floor or without any balance to
                take back), and the max/min class share of stock, of balancing without the floor and with it.
        """
        without = image_weights(self.classes, self.nc, self.agg, self.strength)
        floored = self.probabilities(self.full_strength_epoch)
        shares = [balance_stats(self.classes, self.nc, p)["imbalance_after"] for p in (None, without, floored)]
        gained = math.log(shares[0] / shares[1]) if self.floor and shares[1] > 0 else math.nan
        if not gained > 1e-9:  # no floor, nothing gained, or nan (a class without instances is never drawn)
            return (0.0, *shares)
        return (math.log(shares[2] / shares[1]) / gained, *shares)

    def floor_warning(self) -> str | None:
        """Return a warning when the floor takes back more than FLOOR_UNDOES_WARNING of the balance, else None.

        Examples:
            >>> labels = [np.array([0, 0, 1])] + [np.array([0])] * 2 + [np.array([1])]
            >>> schedule = BalanceSchedule(labels, 2, 1.0, "sum", floor=1.0)
            >>> print(schedule.floor_warning())  # doctest: +NORMALIZE_WHITESPACE
            balance_floor=1 takes back 100% of the balance: max/min class share 2.00 stock, 1.67 without the floor,
            2.00 with it. A lower balance_floor (or a weaker class_balance) keeps more of it.
            >>> BalanceSchedule(labels, 2, 1.0, "sum", floor=0.25).floor_warning() is None
            True
        """
        undone, stock, without, floored = self.floor_effect()
        if undone <= FLOOR_UNDOES_WARNING:
            return None
        return (
            f"balance_floor={self.floor:g} takes back {undone:.0%} of the balance: max/min class share {stock:.2f} "
            f"stock, {without:.2f} without the floor, {floored:.2f} with it. A lower balance_floor (or a weaker "
            "class_balance) keeps more of it."
        )

    def describe(self) -> list[str]:
        """Return what the schedule adds to the train-start table: the late start and the ramp, one line each."""
        lines = []
        if self.start:
            stock = "epoch 1" if self.start_epoch == 1 else f"epochs 1-{self.start_epoch}"
            grown = f" ({self.epoch_size:,} uniform draws per epoch)" if self.epoch_size != len(self.classes) else ""
            lines.append(
                f"balance_start={self.start:g}: stock sampling in {stock}{grown}, balanced from epoch "
                f"{self.start_epoch + 1} of {self.epochs}"
                if self.start_epoch
                else f"balance_start={self.start:g}: {self.start:g} x {self.epochs} epochs leaves no stock epoch, "
                f"balanced from epoch 1 of {self.epochs}"
            )
        if self.ramp_epochs > 0:
            lines.append(
                f"balance_ramp={self.ramp:g}: class_balance rises linearly from 0 in epoch {self.start_epoch + 1} to "
                f"{self.strength:g} from epoch {self.full_strength_epoch + 1} of {self.epochs} on"
            )
        if lines:
            lines[-1] += "; the figures above are those of the balanced epochs."
        return lines


def nothing_to_balance(classes: Sequence[np.ndarray], names: dict | Sequence[str]) -> str | None:
    """Return why class-balanced sampling cannot change what an epoch shows, or None when it can.

    Balancing moves draws between classes, so it needs labels of at least two classes: with no labelled image (all
    backgrounds, or `classes=` filtering every label out) or a single labelled class, `image_weights` is uniform for
    every aggregation, and training samples as without `class_balance`.

    Args:
        classes (Sequence[np.ndarray]): Class ids of each image's objects, one array per image.
        names (dict | Sequence[str]): Class names by class id.

    Returns:
        (str | None): A sentence for the log saying so, or None if at least two classes have labels.

    Examples:
        >>> nothing_to_balance([np.array([1]), np.array([1, 1])], ["car", "bus"]).split(":")[0]
        'only one class has labels, so there is nothing to balance (every label is bus)'
        >>> nothing_to_balance([np.array([0]), np.array([1])], ["car", "bus"]) is None
        True
    """
    names = names if isinstance(names, dict) else dict(enumerate(names))
    present = np.unique(flatten_labels(classes)[0])
    if len(present) > 1:
        return None
    if len(present):
        why = f"only one class has labels, so there is nothing to balance (every label is {names.get(int(present[0]))})"
    else:
        why = f"no train image has labels ({len(classes)} images, all backgrounds), so there is nothing to balance"
    return f"{why}: every image is drawn once per epoch, as without class_balance."


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
        "coverage": coverage(p, draws=epoch_size),
        "epoch_size": n_images if epoch_size is None else int(epoch_size),
    }


def balance_settings(strength: float, agg: str | None, schedule: BalanceSchedule | None = None) -> str:
    """Return the settings as train keys, e.g. 'class_balance=1 balance_agg=mean balance_floor=1' (unset keys left out).

    Examples:
        >>> balance_settings(0.5, "sum")
        'class_balance=0.5 balance_agg=sum'
    """
    text = f"class_balance={strength:g}" + (f" balance_agg={agg}" if agg else "")
    if schedule:
        text += "".join(
            f" {k}={v:g}"
            for k, v in (
                ("balance_floor", schedule.floor),
                ("balance_ramp", schedule.ramp),
                ("balance_start", schedule.start),
            )
            if v
        )
    return text


def balance_report(
    classes: Sequence[np.ndarray],
    names: dict | Sequence[str],
    p: np.ndarray,
    strength: float,
    agg: str,
    task: str | None = "detect",
    schedule: BalanceSchedule | None = None,
) -> list[str]:
    """Return the lines logged at train start: settings, one row per class, the summary, and what does not apply.

    Args:
        classes (Sequence[np.ndarray]): Class ids of each image's objects, in dataset order.
        names (dict | Sequence[str]): Class names by class id.
        p (np.ndarray): Sampling probability of each image.
        strength (float): Balancing strength (`class_balance`).
        agg (str): Aggregation of the image weights (`balance_agg`).
        task (str, optional): Training task; with 'classify' a line says that `agg` does not apply (one label per
            image); None leaves that line out.
        schedule (BalanceSchedule, optional): The epoch schedule `p` belongs to (its balanced epochs), when
            `balance_floor`, `balance_ramp` or `balance_start` is set: adds the epoch length, the start and the ramp.

    Returns:
        (list[str]): Lines without a prefix: per class instances, images, share of instances before and expected
            share per epoch after; then max/min class share before -> after, ESS, coverage and a grown epoch's length.

    Examples:
        >>> labels = [np.array([0, 0]), np.array([0]), np.array([1])]
        >>> lines = balance_report(labels, ["car", "bus"], image_weights(labels, 2), 1.0, "mean")
        >>> print(lines[-1])
        max/min class share 3.00 -> 1.00, effective sample size 0.76, coverage 73.3% of images per epoch
        >>> schedule = BalanceSchedule(labels, 2, floor=1.0)  # every image drawn at least once: the epoch grows
        >>> lines = balance_report(labels, ["car", "bus"], schedule.probabilities(0), 1.0, "mean", schedule=schedule)
        >>> print(lines[0].split(":")[0], "|", lines[-1].split(", coverage ")[1])
        class_balance=1 balance_agg=mean balance_floor=1 | 100.0% of images per epoch, epoch 3 -> 4 images (+33%)
    """
    names = names if isinstance(names, dict) else dict(enumerate(names))
    settings = balance_settings(strength, agg, schedule)
    if reason := nothing_to_balance(classes, names):
        return [f"{settings}: {len(classes)} train images; {reason}"]
    epoch_size = schedule.epoch_size if schedule else None
    stats = balance_stats(classes, len(names), p, epoch_size)
    w = max([len("class")] + [len(str(names.get(c, c))) for c in range(len(stats["instances"]))])
    backgrounds = sum(len(c) == 0 for c in classes)
    kept = f" ({backgrounds} backgrounds keep their share)" if backgrounds else ""
    lines = [
        f"{settings}: {len(classes)} train images{kept}, expected share of each class per epoch:",
        f"{'class':>{w}} {'instances':>10} {'images':>8} {'share before':>13} {'share per epoch':>16}",
    ]
    for c, (n, m, before, after) in enumerate(
        zip(stats["instances"], stats["images"], stats["share_before"], stats["share_after"])
    ):
        if n:  # classes without instances are never drawn and do not count
            lines.append(f"{names.get(c, c)!s:>{w}} {n:>10d} {m:>8d} {before:>13.1%} {after:>16.1%}")
    size, n = stats["epoch_size"], len(classes)
    grown = f", epoch {n:,} -> {size:,} images ({size / n - 1:+.0%})" if size != n else ""
    lines.append(
        f"max/min class share {stats['imbalance_before']:.2f} -> {stats['imbalance_after']:.2f}, "
        f"effective sample size {stats['ess']:.2f}, coverage {stats['coverage']:.1%} of images per epoch{grown}"
    )
    lines += schedule.describe() if schedule else []
    if task == "classify":
        lines.append(
            f"balance_agg={agg} does not apply to classification (one label per image): every value gives the same."
        )
    if absent := [str(names[c]) for c in range(len(names)) if not stats["instances"][c]]:
        lines.append(f"no training images for {', '.join(absent)}: never drawn, shares are over the other classes.")
    return lines


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


class TrainedPriors:
    """The class priors of a balanced training: each class's share in the data and its share over the epochs trained.

    The share trained is the mean, over the epochs trained so far, of each epoch's expected class share under the
    schedule's probabilities (`BalanceSchedule.probabilities`, so a ramp or any other per-epoch schedule counts as
    sampled). Each epoch's share is computed once, so asking after every epoch costs one epoch's pass.

    Attributes:
        schedule (BalanceSchedule): The schedule the training samples with.
        share_before (np.ndarray): Share of each class among the train instances (0 for absent classes).
        epoch_shares (list[np.ndarray]): Expected class share of each epoch computed so far, by epoch.

    Examples:
        >>> labels = [np.array([0])] * 3 + [np.array([1])]
        >>> priors = TrainedPriors(BalanceSchedule(labels, nc=2, strength=1.0, ramp=1.0, epochs=3))
        >>> priors.share_before.tolist(), priors.share_trained(1).tolist()  # epoch 0 samples as stock (ramp)
        ([0.75, 0.25], [0.75, 0.25])
        >>> priors.share_trained(3).round(3).tolist()  # epochs at strength 0, 0.5 and 1: shares 0.75, 0.634, 0.5
        [0.628, 0.372]
    """

    def __init__(self, schedule: BalanceSchedule):
        """Flatten the schedule's labels once and compute the shares before balancing."""
        self.schedule = schedule
        self._cls, self._img = flatten_labels(schedule.classes)
        instances = np.bincount(self._cls, minlength=schedule.nc).astype(np.float64)
        self.share_before = instances / max(instances.sum(), 1.0)
        self.epoch_shares: list[np.ndarray] = []

    def share_trained(self, epochs: int) -> np.ndarray:
        """Return each class's expected share over epochs 0 .. epochs - 1, each epoch weighted equally."""
        while len(self.epoch_shares) < epochs:
            p = self.schedule.probabilities(len(self.epoch_shares))
            expected = np.bincount(self._cls, weights=p[self._img], minlength=self.schedule.nc)
            self.epoch_shares.append(expected / max(expected.sum(), np.finfo(float).tiny))
        return np.mean(self.epoch_shares[:epochs], axis=0) if epochs > 0 else self.share_before.copy()

    def record(self, epochs: int, names: dict | Sequence[str], settings: str) -> dict:
        """Return the priors after `epochs` epochs as plain Python data (lists, floats, str), to store in a checkpoint.

        Args:
            epochs (int): Epochs trained so far.
            names (dict | Sequence[str]): Class names by class id.
            settings (str): The balancing train keys (`balance_settings`).

        Returns:
            (dict): 'names', 'share_before', 'share_trained' (lists by class id), 'epochs', 'settings' and 'tau' (the
                correction applied so far: 0.0 at training time).
        """
        names = names if isinstance(names, dict) else dict(enumerate(names))
        return {
            "names": [str(names.get(c, c)) for c in range(self.schedule.nc)],
            "share_before": [float(x) for x in self.share_before],
            "share_trained": [float(x) for x in self.share_trained(epochs)],
            "epochs": int(epochs),
            "settings": str(settings),
            "tau": 0.0,
        }


def prior_offsets(share_before: Sequence[float], share_trained: Sequence[float], tau: float) -> np.ndarray:
    """Return the logit offsets tau * log(share before / share trained) that restore the data's class prior.

    A model trained on balanced draws has learned the trained shares as its class prior; adding these offsets to its
    class logits exchanges that prior for the data's (logit adjustment, Menon et al. 2021) at tau = 1, and for a prior
    in between at 0 < tau < 1. Classes with no share on either side get 0 (nothing was learned about their prior).

    Args:
        share_before (Sequence[float]): Share of each class in the data.
        share_trained (Sequence[float]): Share of each class over the epochs trained.
        tau (float): Strength of the correction, >= 0.

    Returns:
        (np.ndarray): float64 offset per class.

    Examples:
        >>> prior_offsets([0.8, 0.2, 0.0], [0.5, 0.5, 0.0], tau=1.0).round(3).tolist()
        [0.47, -0.916, 0.0]
    """
    before, trained = np.asarray(share_before, dtype=np.float64), np.asarray(share_trained, dtype=np.float64)
    known = (before > 0) & (trained > 0)
    offsets = np.zeros_like(before)
    offsets[known] = tau * np.log(before[known] / trained[known])
    return offsets
