# ultralytics-weighted, AGPL-3.0 license
"""What every epoch draws, with the plugin's extensions of the core's probabilities (`balance.py`), and its figures.

Extensions: `balance_agg=auto` (`auto.py`), `balance_agg=rfs` (`repeat_factors.py`), the data YAML's weights
(`multipliers`), and the epoch schedule (`balance_floor`, `balance_ramp`, `balance_start`). Pure numpy, as the core.

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
from .auto import AutoSolver
from .config import MAX_FLOOR, balance_strength, check_aggregation, check_strength
from .keys import DEFAULTS
from .once import computed_once, digest
from .repeat_factors import flat_repeat_factors, repeat_factors
from .shares import balance_stats, class_counts, too_few_classes, weighted_target_shares

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
    threshold: float = DEFAULTS["balance_rfs_threshold"],
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

    agg='rfs' draws each image in proportion to its LVIS repeat factor (`repeat_factors.repeat_factors` at
    `threshold` and `strength`), p_i = r_i / sum(r): exactly LVIS' rule, also for labels of a single class, and
    with no data weights (it takes none). Backgrounds then have r_i = 1 like every image of a frequent class.

    Args:
        classes (Sequence[np.ndarray]): Class ids of each image's objects, one 1-D int array per image.
        nc (int): Number of classes; ids must lie in [0, nc).
        agg (str): How an image's objects combine: 'mean', 'max', 'median', 'sum', 'auto' (solved) or 'rfs' (LVIS).
        strength (float): Balancing strength in [0, 1]: 1 = inverse class frequency, 0.5 = square root, 0 = uniform.
        class_multipliers (np.ndarray, optional): Factor >= 0 per class (data YAML `class_weights`): multiplies the
            class's weight and its target share t_c ∝ n_c ** (1 - strength) * m_c, also at strength 0.
        image_multipliers (np.ndarray, optional): Weight >= 0 per image (data YAML `image_weights` file): the
            distribution that replaces uniform, p_i ∝ v_i before balancing; instances count v_i times in n_c.
        sources (np.ndarray, optional): Source index per image (position in the data YAML's `train:` list).
        source_shares (np.ndarray, optional): Share of the draws per source (`source_weights`); each source's images
            are balanced on their own labels, then scaled to the source's share (renormalized over the sources with
            images).
        threshold (float): LVIS' threshold t of agg='rfs' (`balance_rfs_threshold`); other aggregations ignore it.

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
        {'mean': 1.25, 'max': 1.33, 'median': 1.2, 'sum': 1.6, 'auto': 1.0, 'rfs': 1.5}
    """
    check_aggregation(agg)
    check_strength(strength)
    n_images = len(classes)
    if n_images == 0:
        return np.zeros(0, dtype=np.float64)
    if agg == "rfs" and any(w is not None for w in (class_multipliers, image_multipliers, sources)):
        raise ValueError("agg='rfs' takes no data weights (class_weights, source_weights, image_weights).")
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
    if agg == "rfs":
        r = flat_repeat_factors(cls, lengths, nc, threshold, strength)
        return r / r.sum()
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

    With `agg='rfs'` (LVIS repeat factor sampling) the expected draws of image i are its repeat factor r_i >= 1 at
    s_e (`repeat_factors.repeat_factors`), and the epoch grows the same way, to round(sum(r)) images at full strength:
    each epoch draws them with probabilities r / sum(r). A ramp starts from r = 1 (uniform), as s_e = 0 repeats
    nothing, and the late start's stock epochs draw as many images uniformly.

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
        threshold (float): LVIS' threshold t of `agg='rfs'` (`balance_rfs_threshold`), in (0, 1].
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
        >>> rfs = BalanceSchedule(labels, nc=2, agg="rfs", threshold=0.5)  # class 1 in 2 of 8 images: r = sqrt(2)
        >>> rfs.epoch_size, (rfs.epoch_size * rfs.probabilities(0)).round(2).tolist()  # round(6 + 2.83) = 9 draws ∝ r
        (9, [1.02, 1.02, 1.02, 1.02, 1.02, 1.02, 1.44, 1.44])
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
        threshold: float = DEFAULTS["balance_rfs_threshold"],
    ):
        """Compute the schedule's epoch length (the probabilities of each epoch are computed when asked for)."""
        if not (0.0 <= floor <= MAX_FLOOR and 0.0 <= ramp <= 1.0 and 0.0 <= start < 1.0 and 0.0 < threshold <= 1.0):
            raise ValueError(  # also refuses nan and inf
                f"floor must lie in [0, {MAX_FLOOR:g}], ramp in [0, 1], start in [0, 1) and threshold in (0, 1], got "
                f"floor={floor}, ramp={ramp}, start={start}, threshold={threshold}."
            )
        self.classes, self.nc, self.agg = classes, nc, agg
        self.strength, self.floor, self.ramp, self.epochs = float(strength), float(floor), float(ramp), int(epochs)
        self.start, self.multipliers, self.memo = float(start), dict(multipliers or {}), memo
        self.threshold = float(threshold)
        # floor, not round: start < 1 leaves at least one balanced epoch; 1e-9 absorbs float products such as 0.29 * 100
        self.start_epoch = min(math.floor(self.start * self.epochs + 1e-9), max(self.epochs - 1, 0))
        self.ramp_epochs = self.ramp * max(self.epochs - self.start_epoch - 1, 0)  # length of the rise, in epochs
        self._cached = (None, None)  # (strength, probabilities) of the most recent epoch asked for
        # without a floor or rfs every epoch has N draws; else the longest balanced epoch of the schedule sets it
        grows = self.floor or agg == "rfs"
        balanced = range(self.start_epoch, self.full_strength_epoch + 1)
        strengths = {self.strength_at(e) for e in balanced} if grows and self.ramp_epochs else {self.strength}
        total = max(self._expected_draws(s).sum() for s in strengths) if grows else len(classes)
        # LVIS' epoch: round(sum(r)); the floor's: every image's least draws kept (round-off must not add a draw)
        self.epoch_size = max(len(classes), round(total) if agg == "rfs" else math.ceil(total - 1e-9))

    @functools.cached_property
    def balanced_probabilities(self) -> np.ndarray:
        """Return the probabilities of the balanced epochs at full strength (`full_strength_epoch`), computed once."""
        return self.probabilities(self.full_strength_epoch)

    @functools.cached_property
    def figures(self) -> dict:
        """Return `balance_stats` of the balanced epochs (shares, imbalance, ESS, coverage, epoch size), computed once.

        The one source of the figures the train-start table, the plot, `stats`, `compare` and `demo` show; 'target' is
        the class shares these epochs aim for (`weighted_target_shares`, with the data's weights; None for rfs, which
        aims at repeat factors, not shares).
        """
        p = self.balanced_probabilities
        figures = balance_stats(self.classes, self.nc, p, self.epoch_size)
        # rfs aims at repeat factors, not at class shares: it has no target to mark
        aims = self.agg != "rfs"
        figures["target"] = (
            weighted_target_shares(self.classes, self.nc, self.strength, p, **self.multipliers) if aims else None
        )
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
        return digest(*flatten_labels(self.classes), self.nc, self.agg, self.threshold)

    def _probabilities_at(self, strength: float) -> np.ndarray:
        """Return `weighted_probabilities` at `strength`: computed here, or once per training with a `memo` folder."""

        def compute():
            return weighted_probabilities(
                self.classes, self.nc, self.agg, strength, threshold=self.threshold, **self.multipliers
            )

        if self.memo is None:
            return compute()
        weights = [x for k, v in sorted(self.multipliers.items()) for x in (k, np.asarray(v))]  # arrays, not their repr
        return computed_once(self.memo, digest(self._labels_key, float(strength), *weights), compute)

    def _expected_draws(self, strength: float) -> np.ndarray:
        """Return max(d_i, floor): d_i = N * p_i for the probabilities p at `strength`, for rfs the repeat factor."""
        if self.agg == "rfs":  # LVIS: the draws are the repeat factors, p_i = r_i / sum(r)
            return np.maximum(repeat_factors(self.classes, self.nc, self.threshold, strength), self.floor)
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
            `balance_floor`, `balance_ramp`, `balance_start`, `balance_rfs_threshold` and `epochs`; a missing
            balancing key takes its value from `DEFAULTS`, a missing `epochs` the schedule's own default (one
            epoch). Other keys are ignored.
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
        threshold=settings["balance_rfs_threshold"],
        multipliers=multipliers,
        memo=memo,
        **epochs,
    )
