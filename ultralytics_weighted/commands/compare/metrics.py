# ultralytics-weighted, AGPL-3.0 license
"""compare's metrics: per-class AP and recall recomputed from stored per-image results, under resampled images.

Numpy only. Every run of a comparison stores its per-image validation results (`per_image.npz`), so each metric can be
recomputed on any weighting of the evaluation images without running a model again:

- `resample_weights`: bootstrap resamples of the evaluation images as multiplicities (an image drawn twice weighs 2);
- `detection_ap`: per-class AP at the 10 IoU thresholds under such weights, Ultralytics' 101-point interpolated AP
  (with all weights 1 it is Ultralytics' own per-class AP);
- `class_recall`: per-class recall (per-class accuracy) and top-1 accuracy of a classifier under such weights;
- `prior_accuracy`: accuracy at the training data's class frequencies;
- `run_metrics`: every metric `compare` reports, per class and for all classes, from one run's stored results;
- `single_label_detections`, `detection_operating_point`: a detector's P/R/F1 at a fixed operating point, from the
  single-label detections of Ultralytics' `predict` path that compare's validation stores.

`intervals` turns these into paired intervals; benchmarks/calibration.py measures their coverage.
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


def run_metrics(
    per_image: dict,
    nc: int,
    weights: np.ndarray,
    train_instances: np.ndarray | None = None,
    operating_conf: float | None = None,
) -> dict:
    """Return every metric of one run per class and for all classes, under each weighting of the evaluation images.

    Args:
        per_image (dict): The run's `per_image.npz`: for detection `tp`, `conf`, `pred_cls`, `pred_image`, `target_cls`,
            `target_image`; for classification `true`, `pred` (and `probs`, unused here).
        nc (int): Number of classes.
        weights (np.ndarray): (B, n_images) weight of each evaluation image in each resample.
        train_instances (np.ndarray, optional): (nc,) train instances per class; classification then adds the 'all'
            row 'prior_accuracy' (`prior_accuracy`: accuracy at the training data's class frequencies), detection's
            operating point the 'all' row 'prior_recall'.
        operating_conf (float, optional): Detection: the operating point's confidence; adds its 'precision',
            'recall' and 'f1' (`detection_operating_point`) where the run stored single-label detections at it
            (`single_label_detections`).

    Returns:
        (dict): (metric, class id or 'all') -> (B,) values, for the classes with evaluation objects. Detection:
            'ap50' and 'ap50_95' (mean over the 10 IoU thresholds); 'all' is their mean over the classes with objects
            in the resample (mAP, as Ultralytics); with `operating_conf`, also the operating point's metrics.
            Classification: 'recall' per class; 'all' rows 'top1' (accuracy)
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
        if operating_conf is not None and (single := single_label_detections(per_image, operating_conf)) is not None:
            out |= detection_operating_point(single, nc, weights, operating_conf, train_instances)
        return out


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


def single_label_detections(per_image: dict, conf: float) -> dict | None:
    """Return a run's stored single-label detections at confidence `conf` in the form `detection_operating_point` reads.

    compare's validation stores, beside the validator's multi-label detections (`tp`, `conf`, `pred_cls`, ...), the
    detections of Ultralytics' `predict` path at the operating point: one class per box (its argmax), confidence >=
    `op_threshold`, each matched at IoU 0.5 as the validator matches (`op_hit`, `op_conf`, `op_cls`, `op_image`). The
    matching depends on which detections are kept, so they hold for their own threshold only.

    Args:
        per_image (dict): The run's detection `per_image.npz`.
        conf (float): The operating point's confidence (compare's `operating_conf`).

    Returns:
        (dict | None): `tp` (N, 1), `conf`, `pred_cls`, `pred_image`, `target_cls`, `target_image`; None if the run
            stored none at `conf` (stored before compare kept them, or at another `operating_conf`).

    Examples:
        >>> stored = {"op_hit": np.array([True]), "op_conf": np.array([0.9]), "op_cls": np.array([2]),
        ...           "op_image": np.array([0]), "op_threshold": np.float64(0.25), "target_cls": np.array([2]),
        ...           "target_image": np.array([0])}
        >>> single_label_detections(stored, 0.25)["tp"].tolist(), single_label_detections(stored, 0.5)
        ([[True]], None)
    """
    if "op_threshold" not in per_image or float(per_image["op_threshold"]) != float(conf):
        return None
    return {
        "tp": np.asarray(per_image["op_hit"], bool).reshape(-1, 1),
        "conf": per_image["op_conf"],
        "pred_cls": per_image["op_cls"],
        "pred_image": per_image["op_image"],
        "target_cls": per_image["target_cls"],
        "target_image": per_image["target_image"],
    }


def detection_operating_point(
    per_image: dict, nc: int, weights: np.ndarray, conf: float = 0.25, train_instances: np.ndarray | None = None
) -> dict:
    """Return per-class precision, recall and F1 of a detector at one fixed operating point, under each weighting.

    The operating point is fixed before the runs (confidence >= `conf`, Ultralytics' `predict` default 0.25, and IoU
    0.5), not tuned on the evaluation set that is reported: a threshold picked on the reported split would favour the
    noisier variant, as picking best.pt on it does. compare feeds it the single-label detections of the `predict`
    path (`single_label_detections`), where a box has one class, so a τ correction that changes a box's argmax class
    moves these numbers; AP, from the validator's multi-label NMS, barely moves.

    Args:
        per_image (dict): Detections and objects (`tp`, `conf`, `pred_cls`, `pred_image`, `target_cls`,
            `target_image`; `tp[:, 0]`: matched at IoU 0.5).
        nc (int): Number of classes.
        weights (np.ndarray): (B, n_images) weight of each evaluation image in each resample.
        conf (float): Confidence threshold of the operating point.
        train_instances (np.ndarray, optional): (nc,) train instances per class; adds the 'all' row 'prior_recall'
            (recall weighted by the train prior, `prior_accuracy`).

    Returns:
        (dict): (metric, class id or 'all') -> (B,) for 'precision', 'recall', 'f1', for the classes with evaluation
            objects; 'all' is the mean over the classes with objects in the resample. Precision (and F1) of a class
            without detections is 0, as Ultralytics reports it; every metric of a class without objects in a resample
            is NaN.

    Examples:
        >>> d = {"tp": np.array([[True], [False], [True]]), "conf": np.array([0.9, 0.8, 0.1]), "pred_cls": np.zeros(3),
        ...      "pred_image": np.array([0, 1, 1]), "target_cls": np.zeros(2), "target_image": np.array([0, 1])}
        >>> {k: v.round(3).tolist() for k, v in detection_operating_point(d, 1, np.ones((1, 2))).items() if k[1] == 0}
        {('precision', 0): [0.5], ('recall', 0): [0.5], ('f1', 0): [0.5]}
    """
    weights = np.asarray(weights, dtype=float)
    n_images = weights.shape[1]
    keep = np.asarray(per_image["conf"]) >= conf
    tp = np.asarray(per_image["tp"], bool)
    hit = (tp if tp.ndim == 2 else tp[:, None])[keep, 0]  # (N, T) or (N,): matched at IoU 0.5; N may be 0
    image, cls = np.asarray(per_image["pred_image"], int)[keep], np.asarray(per_image["pred_cls"], int)[keep]
    found, shown, objects = (np.zeros((n_images, nc)) for _ in range(3))
    np.add.at(found, (image[hit], cls[hit]), 1.0)
    np.add.at(shown, (image, cls), 1.0)
    np.add.at(objects, (np.asarray(per_image["target_image"], int), np.asarray(per_image["target_cls"], int)), 1.0)
    tp, det, labels = weights @ found, weights @ shown, weights @ objects
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        absent = labels == 0  # no objects of the class in the resample: nothing to measure
        precision = np.where(absent, np.nan, np.divide(tp, det, out=np.zeros_like(tp), where=det > 0))
        recall = np.where(absent, np.nan, tp / labels)
        both = precision + recall
        f1 = np.where(absent, np.nan, np.divide(2 * precision * recall, both, out=np.zeros_like(tp), where=both > 0))
        out = {}
        present = np.unique(per_image["target_cls"]).astype(int)
        for metric, values in (("precision", precision), ("recall", recall), ("f1", f1)):
            out |= {(metric, int(c)): values[:, c] for c in present}
            out[metric, "all"] = np.nanmean(values[:, present], 1)
        if train_instances is not None:
            out["prior_recall", "all"] = prior_accuracy(recall, train_instances)
    return out
