# ultralytics-weighted, AGPL-3.0 license
"""What every epoch draws, with the plugin's extensions of the core's probabilities (`balance.py`), and its figures.

Extensions: `balance_agg=auto` (`auto.py`), the data YAML's weights (`multipliers`), and the epoch schedule
(`balance_floor`, `balance_ramp`, `balance_start`). Pure numpy, as the core.

Definitions used everywhere (log, stats, docs), for sampling probabilities p over N images:
    expected share of class c      e_c / sum(e),  e_c = sum_i p_i * (instances of c in image i)
    imbalance                      max / min share over the classes present
    effective sample size (ESS)    1 / (N * sum(p_i**2))        1.0 = uniform sampling
    coverage                       expected share of distinct images drawn in one epoch of N draws
    target share at strength s     t_c ∝ n_c ** (1 - s), n_c = instances of c: s = 1 equal shares, s = 0 as in the data
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.balance import flatten_labels, inverse_frequency_weights, spread_probabilities
from .auto import AutoSolver, target_shares
from .config import MAX_FLOOR, balance_strength, check_aggregation, check_strength
from .keys import DEFAULTS
from .once import computed_once, digest
from .shares import class_counts, class_shares, too_few_classes

FLOOR_UNDOES_WARNING = 0.5  # warn when the floor takes back more than this fraction of the balance (log max/min share)


def weighted_probabilities(
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
        >>> p = weighted_probabilities([np.array([0, 0]), np.array([1]), np.array([], dtype=int)], nc=2, agg="mean")
        >>> p.round(3).tolist()
        [0.222, 0.444, 0.333]
        >>> labels = [np.array([0, 0, 1]), np.array([0]), np.array([1]), np.array([], dtype=int)]
        >>> weighted_probabilities(labels, nc=2, agg="auto").round(3).tolist()  # the background keeps 1/N
        [0.188, 0.188, 0.375, 0.25]
        >>> weighted_probabilities([np.array([0, 0]), np.array([0])], nc=2, agg="sum").tolist()  # one class: uniform
        [0.5, 0.5]
        >>> from ultralytics_weighted.extensions.config import ALL_AGGREGATIONS
        >>> stats = {agg: balance_stats(labels, 2, weighted_probabilities(labels, 2, agg)) for agg in ALL_AGGREGATIONS}
        >>> {agg: round(s["imbalance_after"], 2) for agg, s in stats.items()}  # max/min class share per epoch
        {'mean': 1.25, 'max': 1.33, 'median': 1.2, 'sum': 1.6, 'auto': 1.0}
    """
    check_aggregation(agg)
    check_strength(strength)
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
            part = weighted_probabilities(
                [classes[i] for i in idx], nc, agg, strength, class_multipliers=class_multipliers, image_multipliers=v
            )
            p[idx] = part * (shares[k] / shares.sum())
        return p / p.sum()
    cls, lengths = flatten_labels(classes)
    if cls.size and (cls.min() < 0 or cls.max() >= nc):
        raise ValueError(f"class ids must lie in [0, {nc}), found {cls.min()}..{cls.max()}.")
    v = np.ones(n_images) if image_multipliers is None else np.asarray(image_multipliers, dtype=np.float64)
    p = v / v.sum()  # before class balancing: uniform, or as the image multipliers say
    m = np.ones(nc) if class_multipliers is None else np.asarray(class_multipliers, dtype=np.float64)
    # instances as drawn before balancing (no per-instance weights without image multipliers: 8 bytes per instance)
    counts = class_counts(cls, lengths, nc, None if image_multipliers is None else v)
    present = counts > 0
    uniform_classes = not (m[present] != m[present][:1]).any()
    if (strength == 0 and uniform_classes) or too_few_classes(counts):  # nothing to balance: p whatever `agg`
        return p
    if agg == "auto":
        labelled = (lengths > 0) & (v > 0)  # backgrounds, weight-0 images keep their p
        mass = p[labelled].sum()
        dropped = (v[lengths > 0] <= 0).any()  # images weighted 0 hold instances: those stay out of the solve
        cls = cls[np.repeat(labelled, lengths)] if dropped else cls
        # the solved images hold exactly the classes `present` (weight-0 images add 0 to `counts`): renumbered 0..C-1
        cls = cls if present.all() else (np.cumsum(present) - 1)[cls]  # no sort, no copy if all present
        q = AutoSolver(
            cls,
            lengths[labelled],
            counts[present],
            strength,
            np.maximum(m[present], 1e-6),  # a class weighted 0 gets as few draws as the bounds allow
            None if image_multipliers is None else v[labelled],
        ).solve()
        p[labelled] = q * mass
        return p
    balanced = spread_probabilities(cls, lengths, inverse_frequency_weights(counts, strength) * m, agg)
    if image_multipliers is None:  # exactly the core's probabilities
        return balanced
    # image multipliers: labelled images share the mass they hold under p = v / sum(v) in proportion to v_i * weight_i
    labelled = (lengths > 0) & (v > 0)
    q = balanced * v
    p[labelled] = q[labelled] / q[labelled].sum() * p[labelled].sum()
    return p


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


class BalanceSchedule:
    """The sampling probabilities of every epoch of class-balanced training, and the epoch length.

    The first floor(start * epochs) epochs (`start_epoch`, 0-based: the first balanced epoch) have strength 0, which
    samples uniformly, every image once, as stock shuffling does. From there epoch e balances at strength
    s_e = strength * min(1, (e - start_epoch) / (ramp * (epochs - start_epoch - 1))): with `ramp` > 0 the strength
    rises linearly from 0 (instance-balanced, as stock) in the first balanced epoch over that fraction of the remaining
    epochs (`ramp=1` reaches `strength` in the last epoch), otherwise every balanced epoch uses `strength`. Its image
    probabilities are `weighted_probabilities` at s_e, with the expected draws of every image raised to at least
    `floor`: d_i = max(N * p_i, floor). With `floor` > 0 the epoch grows (no image is skipped for another's extra
    draws, as in repeat factor sampling) instead of keeping N draws: `epoch_size` is the largest sum(d) of the
    balanced epochs, rounded up, and each epoch draws that many images with probabilities d / sum(d), so image i is
    still drawn at least `floor` times in expectation. One fixed length keeps the loader's length, warmup and progress
    bars as Ultralytics set them; the stock epochs before `start_epoch` then draw `epoch_size` images uniformly (each
    image floor(epoch_size / N) or ceil(epoch_size / N) times), so they cost as many images as the balanced ones.

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
        memo (str | Path, optional): A folder the processes of one training share (the run's save_dir under DDP): each
            strength's probabilities are then computed by the first process that asks and loaded by the others
            (`once.computed_once`), instead of once per DDP rank.
        multipliers (dict, optional): Keyword arguments of `weighted_probabilities` from the data (`class_multipliers`,
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
        memo: str | Path | None = None,
    ):
        """Compute the schedule's epoch length (the probabilities of each epoch are computed when asked for)."""
        if not (0.0 <= floor <= MAX_FLOOR and 0.0 <= ramp <= 1.0 and 0.0 <= start < 1.0):  # also refuses nan and inf
            raise ValueError(
                f"floor must lie in [0, {MAX_FLOOR:g}], ramp in [0, 1] and start in [0, 1), got floor={floor}, "
                f"ramp={ramp}, start={start}."
            )
        self.classes, self.nc, self.agg = classes, nc, agg
        self.strength, self.floor, self.ramp, self.epochs = float(strength), float(floor), float(ramp), int(epochs)
        self.start, self.multipliers, self.memo = float(start), dict(multipliers or {}), memo
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

    @functools.cached_property
    def balanced_probabilities(self) -> np.ndarray:
        """Return the probabilities of the balanced epochs at full strength (`full_strength_epoch`), computed once."""
        return self.probabilities(self.full_strength_epoch)

    @functools.cached_property
    def figures(self) -> dict:
        """Return `balance_stats` of the balanced epochs (shares, imbalance, ESS, coverage, epoch size), computed once.

        The one source of the figures the train-start table, the plot, `stats`, `compare` and `demo` show; 'target' is
        the class shares these epochs aim for (`weighted_target_shares`, with the data's weights).
        """
        p = self.balanced_probabilities
        figures = balance_stats(self.classes, self.nc, p, self.epoch_size)
        figures["target"] = weighted_target_shares(self.classes, self.nc, self.strength, p, **self.multipliers)
        return figures

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

    @functools.cached_property
    def _labels_key(self) -> str:
        """Return the digest of the labels, the part of every memo key that does not change with the strength."""
        return digest(*flatten_labels(self.classes), self.nc, self.agg)

    def _probabilities_at(self, strength: float) -> np.ndarray:
        """Return `weighted_probabilities` at `strength`: computed here, or once per training with a `memo` folder."""

        def compute():
            return weighted_probabilities(self.classes, self.nc, self.agg, strength, **self.multipliers)

        if self.memo is None:
            return compute()
        weights = [x for k, v in sorted(self.multipliers.items()) for x in (k, np.asarray(v))]  # arrays, not their repr
        return computed_once(self.memo, digest(self._labels_key, float(strength), *weights), compute)

    def _expected_draws(self, strength: float) -> np.ndarray:
        """Return max(N * p_i, floor) for the image probabilities p at `strength`."""
        p = self._probabilities_at(strength)
        return np.maximum(len(p) * p, self.floor)

    def probabilities(self, epoch: int) -> np.ndarray:
        """Return the sampling probability of every image in `epoch` (one draw of `epoch_size` images).

        Args:
            epoch (int): Epoch number (0-based), as the trainer counts it.

        Returns:
            (np.ndarray): float64 probabilities summing to 1; uniform before `start_epoch`.
        """
        strength = self.strength_at(epoch)  # 0 before start_epoch: uniform at 0 for every agg
        if self._cached[0] != strength:
            if self.floor:  # max(N * p_i, floor) of uniform p is one constant: uniform too
                draws = self._expected_draws(strength)
                p = draws / draws.sum()
            else:  # exactly weighted_probabilities, so that the draws stay those of a schedule-free sampler
                p = self._probabilities_at(strength)
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
        # stock (the instances' shares) and the balanced epochs (with the floor, if any): computed once for the table
        stock, balanced = self.figures["imbalance_before"], self.figures["imbalance_after"]
        if not self.floor:  # nothing to take back: no second computation of the probabilities at train start
            return (0.0, stock, balanced, balanced)
        without = balance_stats(self.classes, self.nc, self._probabilities_at(self.strength))["imbalance_after"]
        shares = [stock, without, balanced]
        gained = math.log(shares[0] / shares[1]) if shares[1] > 0 else math.nan
        if not gained > 1e-9:  # nothing gained, or nan (a class without instances is never drawn)
            return (0.0, *shares)
        return (math.log(shares[2] / shares[1]) / gained, *shares)


def schedule_from_args(args, classes, nc: int, multipliers: dict | None = None, memo=None) -> BalanceSchedule:
    """Return the `BalanceSchedule` that the train keys describe: the one place a schedule is built from settings.

    Training, `stats`, `compare` and the aggregation report all call it, so a key is read the same way everywhere.

    Args:
        args (dict | SimpleNamespace): Train keys, checked by `check_balance_args`: `class_balance`, `balance_agg`,
            `balance_floor`, `balance_ramp`, `balance_start` and `epochs`; a missing balancing key takes its value
            from `DEFAULTS`, a missing `epochs` the schedule's own default (one epoch). Other keys are ignored.
        classes (Sequence[np.ndarray]): Class ids of each image's objects, in dataset order.
        nc (int): Number of classes.
        multipliers (dict, optional): Weights from the data YAML (`DataWeights.multipliers`), applied in every epoch.
        memo (str | Path, optional): A folder the training's processes share, to compute each epoch's probabilities
            once per training instead of once per DDP rank (`BalanceSchedule`'s `memo`).

    Returns:
        (BalanceSchedule): The schedule of every epoch's sampling probabilities and the epoch length.

    Examples:
        >>> from types import SimpleNamespace
        >>> import numpy as np
        >>> labels = [np.array([0])] * 6 + [np.array([1])] * 2
        >>> schedule = schedule_from_args({"class_balance": True, "balance_floor": 1, "epochs": 10}, labels, nc=2)
        >>> schedule.strength, schedule.agg, schedule.epoch_size  # the 2 rare images take 2 draws each
        (1.0, 'mean', 10)
        >>> late = schedule_from_args(SimpleNamespace(class_balance=0.5, balance_start=0.3, epochs=10), labels, 2)
        >>> late.start_epoch, (8 * late.probabilities(3)).round(2).tolist()
        (3, [0.85, 0.85, 0.85, 0.85, 0.85, 0.85, 1.46, 1.46])
    """
    settings = {**DEFAULTS, **(args if isinstance(args, dict) else vars(args))}
    epochs = {"epochs": settings["epochs"]} if "epochs" in settings else {}  # else the schedule's default
    return BalanceSchedule(
        classes,
        nc,
        strength=balance_strength(settings["class_balance"]),
        agg=settings["balance_agg"],
        floor=settings["balance_floor"],
        ramp=settings["balance_ramp"],
        start=settings["balance_start"],
        multipliers=multipliers,
        memo=memo,
        **epochs,
    )


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
