# ultralytics-weighted, AGPL-3.0 license
"""What a comparison establishes: per-class metrics from stored per-image results, resampled, and paired intervals.

Numpy only. Every run of a comparison stores its per-image validation results (`per_image.npz`), so each metric can be
recomputed on any weighting of the evaluation images without running a model again:

- `resample_weights`: bootstrap resamples of the evaluation images as multiplicities (an image drawn twice weighs 2);
- `detection_ap`: per-class AP at the 10 IoU thresholds under such weights, Ultralytics' 101-point interpolated AP
  (with all weights 1 it is Ultralytics' own per-class AP);
- `class_recall`: per-class recall (per-class accuracy) and top-1 accuracy of a classifier under such weights;
- `run_metrics`: every metric `compare` reports, per class and for all classes, from one run's stored results;
- `paired_delta`: the Δ of a variant to the first one, seed by seed, its mean, a 95% interval that holds at 2-5 seeds
  (a t-interval on the per-seed Δ widened by the evaluation noise all seeds share: `delta_interval`), its p-value and
  the verdict better / worse / not established;
- `familywise`: verdicts across the classes of one report controlled family-wise (Holm);
- `decision_rule`, `decision_across_datasets`: docs/decision-rule.md applied to per-class rows;
- `prior_accuracy`, `tau_frontier`, `detection_operating_point`: accuracy at the training data's class frequencies,
  the τ correction's points without retraining, and a detector's P/R/F1 at a fixed operating point.

benchmarks/calibration.py measures the interval's coverage and false calls through these functions.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np

AP_X = np.linspace(0, 1, 101)  # recall points of the interpolated AP (COCO's 101, as Ultralytics)
EPS = 1e-16  # Ultralytics' recall denominator guard (ap_per_class)
CHUNK = 4_000_000  # elements per (resamples x detections x thresholds) block: bounds the memory of detection_ap


def resample_weights(n_images: int, resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """Return bootstrap resamples of `n_images` evaluation images as multiplicities, one row per resample.

    Args:
        n_images (int): Evaluation images.
        resamples (int): Bootstrap resamples.
        seed (int): Seed of the draw; the same seed gives the same resamples, so every run is resampled alike.

    Returns:
        (np.ndarray): Float array (resamples, n_images); each row sums to n_images.

    Examples:
        >>> w = resample_weights(5, resamples=3, seed=1)
        >>> w.shape, w.sum(1).tolist()
        ((3, 5), [5.0, 5.0, 5.0])
    """
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_images, size=(resamples, n_images))
    weights = np.zeros((resamples, n_images))
    np.add.at(weights, (np.arange(resamples)[:, None], draws), 1.0)
    return weights


def _interpolated_ap(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Return the 101-point interpolated AP of many precision-recall curves at once (rows of equal length).

    Each row is what Ultralytics' `compute_ap` integrates: sentinels at both ends, the precision envelope, linear
    interpolation at AP_X and the trapezoidal rule. The rows are shifted apart (row k by k times more than a row spans)
    so that one `np.interp` call interpolates them all.
    """
    rows = recall.shape[0]
    mrec = np.concatenate([np.zeros((rows, 1)), recall, recall[:, -1:], np.ones((rows, 1))], 1)
    mpre = np.concatenate([np.ones((rows, 1)), precision, np.zeros((rows, 2))], 1)
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre, 1), 1), 1)
    offset = np.ceil(mrec.max() + 1) * np.arange(rows)[:, None]
    y = np.interp((AP_X + offset).ravel(), (mrec + offset).ravel(), mpre.ravel()).reshape(rows, len(AP_X))
    return ((y[:, 1:] + y[:, :-1]) / 2 * np.diff(AP_X)).sum(1)


def detection_ap(
    tp: np.ndarray,
    conf: np.ndarray,
    pred_cls: np.ndarray,
    pred_image: np.ndarray,
    target_cls: np.ndarray,
    target_image: np.ndarray,
    nc: int,
    weights: np.ndarray,
) -> np.ndarray:
    """Return per-class AP at every IoU threshold for each weighting of the evaluation images.

    A detection or target of image i counts weights[b, i] times in resample b (the precision-recall curve steps by that
    weight at once). With all weights 1 this is Ultralytics' `ap_per_class` AP: the same sort by confidence, curves and
    integration. Detections after a class's last true positive (at any threshold) cannot change its AP and are dropped,
    and each run of consecutive detections that are false at every threshold counts as one with the run's weight,
    before the resamples are evaluated; the resamples are evaluated in blocks of at most CHUNK elements.

    Args:
        tp (np.ndarray): Bool (N, T): detection n is a true positive at IoU threshold t (Ultralytics' `tp` matrix).
        conf (np.ndarray): (N,) detection confidences.
        pred_cls (np.ndarray): (N,) predicted classes.
        pred_image (np.ndarray): (N,) index of each detection's image.
        target_cls (np.ndarray): (M,) classes of the ground-truth objects.
        target_image (np.ndarray): (M,) index of each object's image.
        nc (int): Number of classes.
        weights (np.ndarray): (B, n_images) weight of each image in each resample.

    Returns:
        (np.ndarray): (B, nc, T) AP; NaN for a class without objects in a resample (Ultralytics leaves such a class
            out of its mean).

    Examples:
        >>> tp = np.array([[True], [False], [True]])  # three detections of class 0, one threshold
        >>> ap = detection_ap(tp, np.array([0.9, 0.8, 0.7]), np.zeros(3), np.array([0, 1, 1]), np.zeros(2),
        ...                   np.array([0, 1]), 1, np.ones((1, 2)))
        >>> round(float(ap[0, 0, 0]), 4)
        0.8283
        >>> ap = detection_ap(tp, np.array([0.9, 0.8, 0.7]), np.zeros(3), np.array([0, 1, 1]), np.zeros(2),
        ...                   np.array([0, 1]), 1, np.array([[1.0, 0.0], [1.0, 2.0]]))  # image 1 left out, twice
        >>> ap[:, 0, 0].round(4).tolist()
        [0.995, 0.731]
    """
    weights = np.asarray(weights, dtype=float)
    tp = np.asarray(tp, dtype=bool).reshape(len(conf), -1)
    n_images, thresholds = weights.shape[1], tp.shape[1]
    counts = np.zeros((n_images, nc))
    np.add.at(counts, (np.asarray(target_image, int), np.asarray(target_cls, int)), 1.0)
    labels = weights @ counts  # (B, nc) objects of each class per resample
    ap = np.zeros((len(weights), nc, thresholds))
    order = np.argsort(-np.asarray(conf))  # as Ultralytics: ties keep the order its argsort gives
    tp, pred_cls, pred_image = tp[order], np.asarray(pred_cls)[order], np.asarray(pred_image, int)[order]
    for c in range(nc):
        hits = tp[pred_cls == c]
        found = np.flatnonzero(hits.any(1))
        if not found.size:
            continue  # no true positive: AP 0 in every resample
        hits, images = hits[: found[-1] + 1], pred_image[pred_cls == c][: found[-1] + 1]
        # a run of detections that are false at every threshold acts as one: only the precision after its last one
        # can reach the envelope or the interpolation, and that depends on the run's total weight alone
        miss = ~hits.any(1)
        starts = np.flatnonzero(~miss | np.r_[True, ~miss[:-1]])
        hits = hits[starts].astype(float)
        step = max(1, CHUNK // (len(starts) * thresholds))
        for b in range(0, len(weights), step):
            w = np.add.reduceat(weights[b : b + step, images], starts, 1)  # (b, m) weight of each detection or run
            tpc = np.cumsum(w[:, :, None] * hits[None], 1)  # (b, m, T)
            seen = np.cumsum(w, 1)[:, :, None]
            recall = tpc / (labels[b : b + step, c, None, None] + EPS)
            precision = np.divide(tpc, seen, out=np.zeros_like(tpc), where=seen > 0)
            curves = (x.transpose(0, 2, 1).reshape(-1, len(starts)) for x in (recall, precision))
            ap[b : b + step, c] = _interpolated_ap(*curves).reshape(-1, thresholds)
    ap[labels == 0] = np.nan
    return ap


def class_recall(true: np.ndarray, pred: np.ndarray, nc: int, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return per-class recall and top-1 accuracy of a classifier for each weighting of the evaluation images.

    Args:
        true (np.ndarray): (n,) true class of each image.
        pred (np.ndarray): (n,) predicted (top-1) class of each image.
        nc (int): Number of classes.
        weights (np.ndarray): (B, n) weight of each image in each resample.

    Returns:
        recall (np.ndarray): (B, nc) share of each class's images predicted as that class; NaN without images.
        top1 (np.ndarray): (B,) share of all images predicted correctly.

    Examples:
        >>> recall, top1 = class_recall(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 3, np.ones((1, 4)))
        >>> recall.tolist(), top1.tolist()
        ([[0.5, 1.0, nan]], [0.75])
    """
    weights = np.asarray(weights, dtype=float)
    onehot = np.eye(nc)[np.asarray(true, int)]  # (n, nc)
    right = onehot * (np.asarray(true) == np.asarray(pred))[:, None]
    total = weights @ onehot
    recall = np.divide(weights @ right, total, out=np.full(total.shape, np.nan), where=total > 0)
    return recall, (weights @ right).sum(1) / weights.sum(1)


def run_metrics(per_image: dict, nc: int, weights: np.ndarray, train_instances: np.ndarray | None = None) -> dict:
    """Return every metric of one run per class and for all classes, under each weighting of the evaluation images.

    Args:
        per_image (dict): The run's `per_image.npz`: for detection `tp`, `conf`, `pred_cls`, `pred_image`, `target_cls`,
            `target_image`; for classification `true`, `pred` (and `probs`, unused here).
        nc (int): Number of classes.
        weights (np.ndarray): (B, n_images) weight of each evaluation image in each resample.
        train_instances (np.ndarray, optional): (nc,) train instances per class; classification then adds the 'all'
            row 'prior_accuracy' (`prior_accuracy`: accuracy at the training data's class frequencies).

    Returns:
        (dict): (metric, class id or 'all') -> (B,) values, for the classes with evaluation objects. Detection:
            'ap50' and 'ap50_95' (mean over the 10 IoU thresholds); 'all' is their mean over the classes with objects
            in the resample (mAP, as Ultralytics). Classification: 'recall' per class; 'all' rows 'top1' (accuracy)
            and 'balanced_accuracy' (mean per-class recall over the classes with images in the resample).

    Examples:
        >>> out = run_metrics({"true": np.array([0, 0, 1, 2]), "pred": np.array([0, 1, 1, 1])}, 3, np.ones((1, 4)))
        >>> {k: v.round(3).tolist() for k, v in out.items()}  # doctest: +NORMALIZE_WHITESPACE
        {('recall', 0): [0.5], ('recall', 1): [1.0], ('recall', 2): [0.0], ('top1', 'all'): [0.5],
         ('balanced_accuracy', 'all'): [0.5]}
        >>> out = run_metrics({"true": np.array([0, 0, 1, 2]), "pred": np.array([0, 1, 1, 1])}, 3, np.ones((1, 4)),
        ...                   train_instances=np.array([70, 20, 10]))
        >>> out["prior_accuracy", "all"].round(3).tolist()  # 0.7 * 0.5 + 0.2 * 1 + 0.1 * 0
        [0.55]
    """
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of a resample without any class is NaN
        if "true" in per_image:
            recall, top1 = class_recall(per_image["true"], per_image["pred"], nc, weights)
            present = np.unique(per_image["true"]).astype(int)
            out = {("recall", int(c)): recall[:, c] for c in present}
            out |= {("top1", "all"): top1, ("balanced_accuracy", "all"): np.nanmean(recall, 1)}
            if train_instances is not None:
                out["prior_accuracy", "all"] = prior_accuracy(recall, train_instances)
            return out
        keys = ("tp", "conf", "pred_cls", "pred_image", "target_cls", "target_image")
        ap = detection_ap(*(per_image[k] for k in keys), nc, weights)
        present = np.unique(per_image["target_cls"]).astype(int)
        out = {}
        for metric, values in (("ap50", ap[:, :, 0]), ("ap50_95", ap.mean(2))):
            out |= {(metric, int(c)): values[:, c] for c in present}
            out[metric, "all"] = np.nanmean(values, 1)
        return out


def _erfc(x: np.ndarray) -> np.ndarray:
    """Return the complementary error function of x >= 0 (Numerical Recipes' erfcc: relative error < 1.2e-7)."""
    t = 1.0 / (1.0 + 0.5 * x)
    poly = 0.0
    for c in (0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196):
        poly = (poly + c) * t  # Horner, highest power first
    return t * np.exp(-x * x - 1.26551223 + (poly + 1.00002368) * t)


@lru_cache(maxsize=64)
def _chi2_grid(df: int, points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Return df / U on a grid of U ~ chi²(df) and each point's probability (trapezoid in log U, summing to 1).

    U ranges over exp(-30) .. the far upper tail; the mass left out below is under 3e-7, far below any p-value a
    verdict turns on.
    """
    y = np.linspace(-30.0, math.log(df + 12 * math.sqrt(2 * df) + 20), points)
    density = np.exp(df / 2 * y - np.exp(y) / 2 - df / 2 * math.log(2) - math.lgamma(df / 2))  # of log U
    weights = density * np.gradient(y)
    return df / np.exp(y), weights / weights.sum()


def delta_interval(
    delta: float, seed_spread: float, own: float, shared: float, seeds: int, level: float = 0.95
) -> tuple[float, float, float]:
    """Return the interval (lo, hi) and the two-sided p-value of a mean Δ over seeds from its variance components.

    The mean Δ's variance is θ / S + shared: θ = E[s²] (the per-seed Δ's variance: training seed and the evaluation
    noise each seed has alone), estimated by s² with S - 1 degrees of freedom, and `shared` (the evaluation noise all
    seeds share; the per-seed evaluation noise `own` = σ²_own / S is a known floor of θ / S). Its fiducial
    (generalized pivotal) distribution, θ / S = max(s² / S * (S - 1) / U, own) with U ~ chi²(S - 1), gives

        P(|mean Δ - true Δ| > x) = E_U[erfc(x / sqrt(2 * (max(s² / S * (S - 1) / U, own) + shared)))]

    computed by quadrature over U. With shared = own = 0 this is Student's t with S - 1 degrees of freedom exactly (the
    t-interval on the per-seed Δ); with s² = 0 or 1 seed it is the normal interval of the known evaluation variance.

    Args:
        delta (float): The mean Δ over seeds.
        seed_spread (float): s² / S, the per-seed Δ's sample variance over S (0 or NaN: no seed level).
        own (float): σ²_own / S, the evaluation variance each seed's Δ has alone, over S.
        shared (float): The evaluation variance all seeds' Δ share.
        seeds (int): S.
        level (float): Confidence level.

    Returns:
        (tuple[float, float, float]): lo, hi and the p-value of Δ = 0.

    Examples:
        >>> [round(delta_interval(0.0, 1.0, 0.0, 0.0, s)[1], 2) for s in (2, 3, 5)]  # t(1), t(2), t(4) quantiles
        [12.71, 4.3, 2.78]
        >>> round(delta_interval(0.0, 0.0, 1.0, 0.0, 3)[1], 3), round(delta_interval(1.96, 0.0, 0.5, 0.5, 1)[2], 3)
        (1.96, 0.05)
        >>> lo, hi, p = delta_interval(0.1, 0.03**2, 0.01**2, 0.02**2, 3)  # t(2) on all of it: ±0.155
        >>> round(lo, 3), round(hi, 3), round(p, 3)  # the shared part is measured, only the seed part has t's tails
        (-0.033, 0.233, 0.088)
    """
    if seeds > 1 and seed_spread > 0:
        ratio, weights = _chi2_grid(seeds - 1)
        variances = np.maximum(seed_spread * ratio, own) + shared
    else:
        variances, weights = np.array([own + shared]), np.ones(1)
    if not np.isfinite(variances).all() or not np.isfinite(delta):
        return math.nan, math.nan, math.nan
    if variances.max() <= 0:
        return delta, delta, float(delta == 0)
    scales = np.sqrt(2 * np.maximum(variances, 1e-300))

    def tail(x: float) -> float:  # P(|mean Δ - true Δ| > x)
        return float(weights @ _erfc(x / scales))

    low, high = 0.0, 4 * math.sqrt(float(variances.min()))  # bracket, then bisect: the tail falls in x
    while tail(high) > 1 - level:
        low, high = high, 2 * high
    while high - low > 1e-6 * high:  # the half-width to 6 digits
        mid = (low + high) / 2
        low, high = (mid, high) if tail(mid) > 1 - level else (low, mid)
    half = (low + high) / 2
    return delta - half, delta + half, min(1.0, tail(abs(delta)))


INTERVAL_LEVELS = ("both", "seeds", "images")  # what paired_delta's interval counts: `both` is compare's interval


def paired_delta(
    values: np.ndarray,
    resampled: np.ndarray,
    resamples: int | None = None,
    seed: int = 0,
    level: float = 0.95,
    levels: str = "both",
) -> dict:
    """Return the paired Δ of a variant to the baseline, its interval, p-value and verdict, from S seeds of each.

    The Δ of seed s is Δ_s = variant − baseline on the whole evaluation set; the estimate is their mean. Its variance
    has three parts: the training seed's (σ²_seed / S), the evaluation noise each seed's Δ has alone (σ²_own / S) and
    the evaluation noise all seeds share because they are scored on the same images (`shared`). The spread of the
    Δ_s over seeds (s², S − 1 degrees of freedom) estimates σ²_seed + σ²_own, blind to `shared`; the evaluation
    resamples (the same images for every run) measure `shared` as the mean covariance between different seeds' Δ and
    σ²_own as the rest of a seed's own variance. `delta_interval` combines them: a t-interval on the per-seed Δ
    (S − 1 degrees of freedom, the seed level) widened by the shared evaluation noise and never narrower than the
    evaluation noise alone. With 2 seeds the seed level has 1 degree of freedom (t = 12.7): the interval is wide by
    design. With 1 seed nothing measures the seed noise and the interval holds the evaluation noise alone
    (`seed_level` False). A resample in which the metric is undefined (a class without evaluation objects) is left out.

    Args:
        values (np.ndarray): (2, S) the metric on the whole evaluation set: row 0 the baseline, row 1 the variant,
            column s = seed s.
        resampled (np.ndarray): (B, 2, S) the metric on each evaluation resample, the same resamples for every run.
        resamples (int, optional): How many of the B resamples to use (default all).
        seed (int): Unused: the interval draws nothing of its own (the seed bootstrap it replaced did); kept so that
            existing callers keep working.
        level (float): Confidence level of the interval (two-sided).
        levels (str): 'both' (the interval above), or for comparison what one level alone gives: 'seeds' (the plain
            t-interval on the per-seed Δ, blind to the evaluation noise the seeds share) or 'images' (the normal
            interval of the evaluation noise alone, blind to the seeds).

    Returns:
        (dict): `delta_by_seed` (list), `delta` (mean), `lo`, `hi` (the interval), `p` (two-sided p-value of Δ = 0),
            the variance components `seed_spread` (s² / S), `own`, `shared`, `se` (sqrt(max(seed_spread, own) +
            shared)), `seed_level` (whether the seeds' spread entered) and `verdict`: 'better' if lo > 0, 'worse' if
            hi < 0, else 'not established' (one Δ alone; `familywise` controls a family of them).

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> base = rng.normal(0.5, 0.01, (200, 3))  # 200 evaluation resamples x 3 seeds
        >>> same = paired_delta(np.full((2, 3), 0.5), np.stack([base, base], 1))
        >>> same["delta"], same["lo"], same["hi"], same["verdict"]
        (0.0, 0.0, 0.0, 'not established')
        >>> up = paired_delta(np.array([[0.5] * 3, [0.6] * 3]), np.stack([base, base + 0.1], 1))
        >>> round(up["delta"], 3), round(up["lo"], 3), up["verdict"]
        (0.1, 0.1, 'better')
        >>> seeds = paired_delta(np.array([[0.5] * 3, [0.51, 0.6, 0.69]]), np.stack([base, base + 0.1], 1))
        >>> round(seeds["se"], 4), round(seeds["lo"], 3), round(seeds["hi"], 3), seeds["verdict"]  # t(2) = 4.303
        (0.052, -0.124, 0.324, 'not established')
        >>> shared = 0.06 * rng.normal(size=(200, 1))  # evaluation noise that every seed's Δ shares
        >>> both = np.stack([base, base + 0.1 + shared], 1)
        >>> flat = paired_delta(np.array([[0.5] * 3, [0.6] * 3]), both)  # the seeds agree: the images' noise alone
        >>> round(flat["se"], 3), round(flat["lo"], 3), flat["verdict"]
        (0.061, -0.019, 'not established')
        >>> spread = np.array([[0.5] * 3, [0.51, 0.6, 0.69]])  # both kinds of noise: each level alone is too narrow
        >>> rows = [paired_delta(spread, both, levels=x) for x in INTERVAL_LEVELS]  # both, seeds, images
        >>> [(round(r["lo"], 3), round(r["hi"], 3)) for r in rows]
        [(-0.147, 0.347), (-0.124, 0.324), (-0.019, 0.219)]
    """
    if levels not in INTERVAL_LEVELS:
        raise ValueError(f"levels={levels!r} is invalid: use one of {INTERVAL_LEVELS}.")
    values, resampled = np.asarray(values, float), np.asarray(resampled, float)[:resamples]
    by_seed = values[1] - values[0]
    seeds, delta = len(by_seed), float(by_seed.mean())
    diff = resampled[:, 1] - resampled[:, 0]  # (B, S)
    diff = diff[np.isfinite(diff).all(1)]
    if len(diff) > 1:
        cov = np.cov(diff, rowvar=False, ddof=1).reshape(seeds, seeds)
        shared = float(cov.sum() - np.trace(cov)) / (seeds * (seeds - 1)) if seeds > 1 else 0.0
        own = max(0.0, float(np.trace(cov)) / seeds - shared) / seeds
        shared = max(0.0, shared)
    else:
        own = shared = 0.0  # no resample to measure the evaluation noise with
    seed_spread = float(by_seed.var(ddof=1)) / seeds if seeds > 1 and levels != "images" else 0.0
    if levels == "seeds":
        own = shared = 0.0
    lo, hi, p = delta_interval(delta, seed_spread, own, shared, seeds, level)
    verdict = "better" if lo > 0 else "worse" if hi < 0 else "not established"
    row = {"delta_by_seed": by_seed.tolist(), "delta": delta, "lo": lo, "hi": hi, "verdict": verdict, "p": p}
    row |= {"seed_spread": seed_spread, "own": own, "shared": shared}
    return row | {"se": math.sqrt(max(seed_spread, own) + shared), "seed_level": seeds > 1 and levels != "images"}


def detection_operating_point(per_image: dict, nc: int, weights: np.ndarray, conf: float = 0.25) -> dict:
    """Return per-class precision, recall and F1 of a detector at one fixed operating point, under each weighting.

    The operating point is fixed before the runs (confidence >= `conf`, Ultralytics' `predict` default 0.25, and IoU
    0.5), not tuned on the evaluation set that is reported: a threshold picked on the reported split would favour the
    noisier variant, as picking best.pt on it does.

    Args:
        per_image (dict): The run's detection `per_image.npz` (`tp`, `conf`, `pred_cls`, `pred_image`, `target_cls`,
            `target_image`).
        nc (int): Number of classes.
        weights (np.ndarray): (B, n_images) weight of each evaluation image in each resample.
        conf (float): Confidence threshold of the operating point.

    Returns:
        (dict): (metric, class id or 'all') -> (B,) for 'precision', 'recall', 'f1', for the classes with evaluation
            objects; 'all' is the mean over those classes (NaN entries left out). Precision of a class without
            detections in a resample is NaN.

    Examples:
        >>> d = {"tp": np.array([[True], [False], [True]]), "conf": np.array([0.9, 0.8, 0.1]), "pred_cls": np.zeros(3),
        ...      "pred_image": np.array([0, 1, 1]), "target_cls": np.zeros(2), "target_image": np.array([0, 1])}
        >>> {k: v.round(3).tolist() for k, v in detection_operating_point(d, 1, np.ones((1, 2))).items() if k[1] == 0}
        {('precision', 0): [0.5], ('recall', 0): [0.5], ('f1', 0): [0.5]}
    """
    weights = np.asarray(weights, dtype=float)
    n_images = weights.shape[1]
    keep = np.asarray(per_image["conf"]) >= conf
    hit = np.asarray(per_image["tp"], bool).reshape(len(keep), -1)[keep, 0]
    image, cls = np.asarray(per_image["pred_image"], int)[keep], np.asarray(per_image["pred_cls"], int)[keep]
    found, shown, objects = (np.zeros((n_images, nc)) for _ in range(3))
    np.add.at(found, (image[hit], cls[hit]), 1.0)
    np.add.at(shown, (image, cls), 1.0)
    np.add.at(objects, (np.asarray(per_image["target_image"], int), np.asarray(per_image["target_cls"], int)), 1.0)
    tp, det, labels = weights @ found, weights @ shown, weights @ objects
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        precision = np.where(det > 0, tp / det, np.nan)
        recall = np.where(labels > 0, tp / labels, np.nan)
        f1 = np.where(labels > 0, np.nan_to_num(2 * precision * recall / (precision + recall)), np.nan)
        out = {}
        present = np.unique(per_image["target_cls"]).astype(int)
        for metric, values in (("precision", precision), ("recall", recall), ("f1", f1)):
            out |= {(metric, int(c)): values[:, c] for c in present}
            out[metric, "all"] = np.nanmean(values[:, present], 1)
    return out


def holm(p: np.ndarray | list) -> np.ndarray:
    """Return Holm's step-down adjusted p-values: reject where the adjusted p < alpha, family-wise error <= alpha.

    Holm (1979) holds under any dependence between the tests (a balanced variant's per-class Δ are correlated: what the
    tail gains the head may lose) and rejects everything Bonferroni does and more. A NaN p-value counts as 1.

    Args:
        p (np.ndarray | list): Unadjusted p-values of one family.

    Returns:
        (np.ndarray): Adjusted p-values, in the input's order.

    Examples:
        >>> holm([0.01, 0.04, 0.03, 0.5]).round(3).tolist()
        [0.04, 0.09, 0.09, 0.5]
    """
    p = np.nan_to_num(np.asarray(p, float), nan=1.0)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(np.minimum(1.0, (len(p) - np.arange(len(p))) * p[order]))
    adjusted = np.empty_like(p)
    adjusted[order] = stepped
    return adjusted


def familywise(rows: list[dict], alpha: float = 0.05) -> list[dict]:
    """Return `paired_delta` rows of one family with verdicts controlled family-wise (Holm) at `alpha`.

    The family is the classes of one report: one metric, one variant, every class (not the 'all' rows, each a single
    question of its own). The chance that a variant identical to the baseline gets any class called better or worse
    stays <= alpha, where unadjusted verdicts on 10 classes would call one about 40% of the time. Each row keeps its
    unadjusted interval (`lo`, `hi`) and verdict (`verdict_unadjusted`); `verdict` becomes the controlled one.

    Args:
        rows (list[dict]): `paired_delta` results, one per class of the family.
        alpha (float): Family-wise error rate (1 - the rows' interval level, for verdicts that agree on one class).

    Returns:
        (list[dict]): New rows with `p_adjusted`, `verdict_unadjusted` and the controlled `verdict`.

    Examples:
        >>> rows = [{"delta": d, "p": p, "verdict": v} for d, p, v in ((0.2, 0.001, "better"), (-0.1, 0.03, "worse"))]
        >>> [(r["p_adjusted"], r["verdict_unadjusted"], r["verdict"]) for r in familywise(rows + [{"delta": 0, "p": 0.9,
        ...     "verdict": "not established"}])]  # doctest: +NORMALIZE_WHITESPACE
        [(0.003, 'better', 'better'), (0.06, 'worse', 'not established'),
         (0.9, 'not established', 'not established')]
    """
    adjusted = holm([r["p"] for r in rows])
    out = []
    for r, p in zip(rows, adjusted):
        verdict = ("better" if r["delta"] > 0 else "worse") if p < alpha else "not established"
        out.append(r | {"p_adjusted": float(p), "verdict_unadjusted": r["verdict"], "verdict": verdict})
    return out


NONINFERIORITY_MARGIN = (
    0.02  # δ of docs/decision-rule.md: the largest loss of a class's recall or AP50 the rule accepts
)
RARE_TIER_SHARE = 1 / 3  # docs/decision-rule.md: the rare tier is the rarest third of the classes by train instances


def rare_tier(train_instances: dict, share: float = RARE_TIER_SHARE) -> list:
    """Return the rare tier of docs/decision-rule.md: the ceil(share * K) classes with the fewest train instances.

    Args:
        train_instances (dict): Class -> train instances, for the K classes of the report.
        share (float): Share of the classes in the tier.

    Returns:
        (list): The tier's classes, rarest first (ties: in the dict's order).

    Examples:
        >>> rare_tier({"car": 900, "bus": 40, "bike": 120, "truck": 300, "tram": 5})
        ['tram', 'bus']
    """
    ranked = sorted(train_instances, key=lambda c: train_instances[c])  # stable: ties keep the dict's order
    return ranked[: max(1, math.ceil(share * len(ranked) - 1e-9))]


def decision_rule(
    rows: dict, train_instances: dict, margin: float = NONINFERIORITY_MARGIN, share: float = RARE_TIER_SHARE
) -> dict:
    """Return what docs/decision-rule.md says of one variant on one dataset, from its per-class rows of one metric.

    (a) Non-inferiority: every class's lower bound (the unadjusted 95% interval; requiring all of them at once is an
    intersection-union test, so no adjustment is needed) is >= -margin; a class without an interval fails (less evidence
    never passes). (b) The rare tier is better: at least one of its classes is **better** under family-wise control
    (`familywise` across all the report's classes) and the tier's mean Δ is > 0. (c) needs a second dataset:
    `decision_across_datasets`.

    Args:
        rows (dict): Class -> `familywise` row (`delta`, `lo`, controlled `verdict`), every class of the report.
        train_instances (dict): Class -> train instances (the rare tier is chosen from these, before any run).
        margin (float): δ, the non-inferiority margin.
        share (float): Share of the classes in the rare tier.

    Returns:
        (dict): `a`, `b` (bool), `rare_tier` (list), `failing` (classes whose lower bound is below -margin) and
            `outcome`: 'passes the rule on this dataset ((c) needs a second dataset)' or which part fails and why.

    Examples:
        >>> rows = {"car": {"delta": -0.01, "lo": -0.015, "verdict": "not established"},
        ...         "tram": {"delta": 0.2, "lo": 0.08, "verdict": "better"},
        ...         "bus": {"delta": 0.05, "lo": -0.03, "verdict": "not established"}}
        >>> counts = {"car": 900, "tram": 5, "bus": 40}
        >>> decision_rule(rows, counts)["outcome"]
        'fails (a): bus lower bound -0.030 < -0.02'
        >>> rows["bus"]["lo"] = -0.01
        >>> decision_rule(rows, counts)["outcome"]
        'passes the rule on this dataset ((c) needs a second dataset)'
        >>> rows["tram"]["verdict"] = "not established"
        >>> decision_rule(rows, counts)["outcome"]
        'fails (b): no rare-tier class (tram) is better under family-wise control'
    """
    failing = {c: r["lo"] for c, r in rows.items() if not r["lo"] >= -margin}  # NaN fails
    tier = rare_tier({c: train_instances[c] for c in rows}, share)
    better = [c for c in tier if rows[c]["verdict"] == "better"]
    tier_delta = float(np.mean([rows[c]["delta"] for c in tier]))
    reasons = []
    if failing:
        worst = ", ".join(f"{c} lower bound {lo:+.3f}" for c, lo in failing.items())
        reasons.append(f"fails (a): {worst} < -{margin:g}")
    if not better:
        reasons.append(
            f"fails (b): no rare-tier class ({', '.join(map(str, tier))}) is better under family-wise control"
        )
    elif tier_delta <= 0:
        reasons.append(f"fails (b): the rare tier's mean Δ {tier_delta:+.3f} is not above 0")
    outcome = "; ".join(reasons) or "passes the rule on this dataset ((c) needs a second dataset)"
    return {"a": not failing, "b": bool(better) and tier_delta > 0, "rare_tier": tier, "failing": failing} | {
        "outcome": outcome
    }


def decision_across_datasets(outcomes: dict) -> str:
    """Return the rule's verdict for one setting over datasets: (c) it passes (a) and (b) on at least two of them.

    Args:
        outcomes (dict): Dataset name -> `decision_rule` result for the setting.

    Returns:
        (str): 'passes the rule' or why not.

    Examples:
        >>> ok = {"a": True, "b": True}
        >>> decision_across_datasets({"crops": ok, "lights": ok | {"b": False}})
        'fails (c): passes (a) and (b) on 1 dataset (crops); the rule needs 2'
        >>> decision_across_datasets({"crops": ok, "lights": ok})
        'passes the rule'
    """
    passed = [name for name, r in outcomes.items() if r["a"] and r["b"]]
    if len(passed) >= 2:
        return "passes the rule"
    listed = f"{len(passed)} dataset{'' if len(passed) == 1 else 's'}" + (f" ({', '.join(passed)})" if passed else "")
    return f"fails (c): passes (a) and (b) on {listed}; the rule needs 2"


def prior_accuracy(recall: np.ndarray, train_instances: np.ndarray) -> np.ndarray:
    """Return accuracy at the training data's class frequencies: per-class recall weighted by the train prior.

    Top-1 on the evaluation set weighs the classes by the evaluation set's frequencies, which a curated or re-split
    evaluation set need not share with the data the model will meet; this weighs them as the training data does.
    Classes without evaluation images in a resample (NaN recall) are left out and the prior renormalized.

    Args:
        recall (np.ndarray): (B, nc) per-class recall (`class_recall`).
        train_instances (np.ndarray): (nc,) train instances per class.

    Returns:
        (np.ndarray): (B,) prior-weighted accuracy.

    Examples:
        >>> prior_accuracy(np.array([[0.9, 0.5, np.nan]]), np.array([80, 20, 5])).round(3).tolist()
        [0.82]
    """
    prior = np.broadcast_to(np.asarray(train_instances, float), recall.shape)
    known = np.isfinite(recall)
    return np.where(known, recall * prior, 0).sum(1) / np.where(known, prior, 0).sum(1)


TAU_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)  # the τ frontier's points (docs/decision-rule.md)


def tau_frontier(
    per_image: dict, nc: int, weights: np.ndarray, offsets: np.ndarray, train_instances: np.ndarray, taus=TAU_GRID
) -> dict:
    """Return balanced accuracy and prior-weighted accuracy of a balanced classifier corrected by each τ, no retraining.

    The correction adds τ times the class-logit offsets (at τ = 1: `priors.prior_offsets(share_before, share_trained,
    1)`) to the logits; on stored softmax probabilities that is argmax(log p + τ * offsets), since log-softmax differs
    from the logits by a constant per image.

    Args:
        per_image (dict): The run's classification `per_image.npz` (`true`, `probs`).
        nc (int): Number of classes.
        weights (np.ndarray): (B, n_images) weight of each evaluation image in each resample.
        offsets (np.ndarray): (nc,) class-logit offsets at τ = 1.
        train_instances (np.ndarray): (nc,) train instances per class (the prior of `prior_accuracy`).
        taus (tuple): The τ values.

    Returns:
        (dict): τ -> {'balanced_accuracy': (B,), 'prior_accuracy': (B,)}.

    Examples:
        >>> probs = np.array([[0.6, 0.4], [0.45, 0.55], [0.3, 0.7], [0.2, 0.8]])  # 2 head images, 2 tail images
        >>> out = tau_frontier({"true": np.array([0, 0, 1, 1]), "probs": probs}, 2, np.ones((1, 4)),
        ...                    np.log(np.array([0.9, 0.1]) / 0.5), np.array([90, 10]), taus=(0, 1))
        >>> [(t, float(x["balanced_accuracy"][0]), float(x["prior_accuracy"][0])) for t, x in out.items()]
        [(0, 0.75, 0.55), (1, 0.5, 0.9)]
    """
    logp = np.log(np.clip(np.asarray(per_image["probs"], float), 1e-12, None))
    out = {}
    for tau in taus:
        pred = np.argmax(logp + tau * np.asarray(offsets, float), 1)
        recall, _ = class_recall(per_image["true"], pred, nc, weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample without any class
            balanced = np.nanmean(recall, 1)
        out[tau] = {"balanced_accuracy": balanced, "prior_accuracy": prior_accuracy(recall, train_instances)}
    return out
