# ultralytics-weighted, AGPL-3.0 license
"""What a comparison establishes: per-class metrics from stored per-image results, resampled, and paired intervals.

Numpy only. Every run of a comparison stores its per-image validation results (`per_image.npz`), so each metric can be
recomputed on any weighting of the evaluation images without running a model again:

- `resample_weights`: bootstrap resamples of the evaluation images as multiplicities (an image drawn twice weighs 2);
- `detection_ap`: per-class AP at the 10 IoU thresholds under such weights, Ultralytics' 101-point interpolated AP
  (with all weights 1 it is Ultralytics' own per-class AP);
- `class_recall`: per-class recall (per-class accuracy) and top-1 accuracy of a classifier under such weights;
- `run_metrics`: every metric `compare` reports, per class and for all classes, from one run's stored results;
- `paired_delta`: the Δ of a variant to the first one, seed by seed, its mean, and a 95% interval from a two-level
  bootstrap (seeds, paired, and evaluation images), with the verdict better / worse / not established.
"""

from __future__ import annotations

import warnings

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


def run_metrics(per_image: dict, nc: int, weights: np.ndarray) -> dict:
    """Return every metric of one run per class and for all classes, under each weighting of the evaluation images.

    Args:
        per_image (dict): The run's `per_image.npz`: for detection `tp`, `conf`, `pred_cls`, `pred_image`, `target_cls`,
            `target_image`; for classification `true`, `pred` (and `probs`, unused here).
        nc (int): Number of classes.
        weights (np.ndarray): (B, n_images) weight of each evaluation image in each resample.

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
    """
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of a resample without any class is NaN
        if "true" in per_image:
            recall, top1 = class_recall(per_image["true"], per_image["pred"], nc, weights)
            present = np.unique(per_image["true"]).astype(int)
            out = {("recall", int(c)): recall[:, c] for c in present}
            return out | {("top1", "all"): top1, ("balanced_accuracy", "all"): np.nanmean(recall, 1)}
        keys = ("tp", "conf", "pred_cls", "pred_image", "target_cls", "target_image")
        ap = detection_ap(*(per_image[k] for k in keys), nc, weights)
        present = np.unique(per_image["target_cls"]).astype(int)
        out = {}
        for metric, values in (("ap50", ap[:, :, 0]), ("ap50_95", ap.mean(2))):
            out |= {(metric, int(c)): values[:, c] for c in present}
            out[metric, "all"] = np.nanmean(values, 1)
        return out


def paired_delta(values: np.ndarray, resampled: np.ndarray, resamples: int | None = None, seed: int = 0) -> dict:
    """Return the paired Δ of a variant to the baseline, its 95% interval and verdict, from S seeds of each.

    The interval is a two-level percentile bootstrap: each resample b draws S seeds with replacement (the same draw
    for both, so the pairs stay paired) and takes the mean over the drawn seeds of the Δ recomputed on evaluation
    resample b (the same images for every run). It thus holds both the seed-to-seed variation and the noise of a finite
    evaluation set. A resample in which the metric is undefined (a class without evaluation objects) is left out.

    Args:
        values (np.ndarray): (2, S) the metric on the whole evaluation set: row 0 the baseline, row 1 the variant,
            column s = seed s.
        resampled (np.ndarray): (B, 2, S) the metric on each evaluation resample, the same resamples for every run.
        resamples (int, optional): How many of the B resamples to use (default all).
        seed (int): Seed of the seed draw.

    Returns:
        (dict): `delta_by_seed` (list), `delta` (mean), `lo`, `hi` (2.5% and 97.5% of the bootstrap) and `verdict`:
            'better' if lo > 0, 'worse' if hi < 0, else 'not established'.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> base = rng.normal(0.5, 0.01, (200, 3))  # 200 evaluation resamples x 3 seeds
        >>> same = paired_delta(np.full((2, 3), 0.5), np.stack([base, base], 1))
        >>> same["delta"], same["lo"], same["hi"], same["verdict"]
        (0.0, 0.0, 0.0, 'not established')
        >>> up = paired_delta(np.array([[0.5] * 3, [0.6] * 3]), np.stack([base, base + 0.1], 1))
        >>> round(up["delta"], 3), round(up["lo"], 3), up["verdict"]
        (0.1, 0.1, 'better')
    """
    values, resampled = np.asarray(values, float), np.asarray(resampled, float)[:resamples]
    by_seed = values[1] - values[0]
    diff = resampled[:, 1] - resampled[:, 0]  # (B, S)
    seeds = np.random.default_rng(seed).integers(0, diff.shape[1], size=diff.shape)
    means = np.take_along_axis(diff, seeds, 1).mean(1)
    means = means[np.isfinite(means)]
    lo, hi = (float(x) for x in np.percentile(means, [2.5, 97.5])) if means.size else (np.nan, np.nan)
    verdict = "better" if lo > 0 else "worse" if hi < 0 else "not established"
    return {"delta_by_seed": by_seed.tolist(), "delta": float(by_seed.mean()), "lo": lo, "hi": hi, "verdict": verdict}
