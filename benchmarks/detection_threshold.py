# ultralytics-weighted, AGPL-3.0 license
"""Precision and recall at a confidence threshold, per class, from a detection comparison's stored per-image results.

Run:  python benchmarks/detection_threshold.py COMPARE_FOLDER [--conf 0.25] [--resamples 1000]

AP ranks each class's detections by their own confidence, so a per-class shift of the class logits (`mean+tau=1`)
can leave it unchanged; what a user sees at a fixed threshold (`predict`'s default conf=0.25) can change. For every
variant this prints, per class and for all classes together (pooled), precision and recall at IoU 0.5 of the
detections with confidence >= conf: mean ± std over seeds, and the paired Δ to the first variant with its 95% interval
(`intervals.paired_delta`, the same bootstrap over seeds and val images as `compare`). The detections are those of
compare's validation (Ultralytics' NMS at conf 0.001, `max_det` 300) kept above the threshold, and a detection counts
as true if the validator matched it to an object (each object matched once, by IoU): the same boxes `predict` keeps at
conf 0.25 up to the few objects the validator matched to a lower-confidence box of higher IoU.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ultralytics_weighted.commands.compare import load_runs
from ultralytics_weighted.commands.compare.intervals import paired_delta
from ultralytics_weighted.commands.compare.metrics import resample_weights


def precision_recall(per_image: dict, nc: int, weights: np.ndarray, conf: float) -> dict:
    """Return (metric, class id or 'all') -> (B,) precision and recall at IoU 0.5 above `conf`, per image weighting.

    Per class with val objects; precision is 0 for a class without any detection above `conf` (nothing found). 'all'
    pools the detections and objects of every class.

    Examples:
        >>> x = {"tp": np.array([[1], [0], [1]], bool), "conf": np.array([0.9, 0.8, 0.1]), "pred_cls": np.zeros(3),
        ...      "pred_image": np.array([0, 1, 1]), "target_cls": np.zeros(2), "target_image": np.array([0, 1])}
        >>> {k: v.tolist() for k, v in precision_recall(x, 1, np.ones((1, 2)), 0.25).items() if k[1] == 0}
        {('precision', 0): [0.5], ('recall', 0): [0.5]}
    """
    kept = per_image["conf"] >= conf
    cls, image = per_image["pred_cls"][kept].astype(int), per_image["pred_image"][kept].astype(int)
    hit = per_image["tp"][kept, 0].astype(float)
    n_images = weights.shape[1]
    found, predicted, objects = (np.zeros((n_images, nc)) for _ in range(3))
    np.add.at(found, (image, cls), hit)
    np.add.at(predicted, (image, cls), 1.0)
    np.add.at(objects, (per_image["target_image"].astype(int), per_image["target_cls"].astype(int)), 1.0)
    found, predicted, objects = (weights @ x for x in (found, predicted, objects))  # (B, nc)
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for c in np.unique(per_image["target_cls"]).astype(int).tolist():
            out["precision", c] = np.where(predicted[:, c] > 0, found[:, c] / predicted[:, c], 0.0)
            out["recall", c] = found[:, c] / objects[:, c]
        out["precision", "all"] = found.sum(1) / np.maximum(predicted.sum(1), 1e-16)
        out["recall", "all"] = found.sum(1) / objects.sum(1)
    return out


def main() -> None:
    """Print the markdown table of precision and recall at the threshold for a comparison folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    setup, runs, stored = load_runs(args.folder)
    names = {int(k): v for k, v in setup["names"].items()}
    variants = [v["name"] for v in setup["variants"]]
    n_images = len(stored[0]["images"])
    weights = np.concatenate([np.ones((1, n_images)), resample_weights(n_images, args.resamples, 0)])
    values = {}  # (variant, seed) -> (metric, class) -> (1 + B,)
    for run, per_image in zip(runs, stored):
        values[run["variant"], run["seed"]] = precision_recall(per_image, len(names), weights, args.conf)
    seeds = sorted({s for _, s in values})
    head = ["metric", "class", variants[0]] + [x for v in variants[1:] for x in (v, f"Δ {v} [95%]")]
    print(f"Precision and recall at conf >= {args.conf:g}, IoU 0.5; mean ± std over {len(seeds)} seeds\n")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for key in values[variants[0], seeds[0]]:
        by_variant = {v: np.array([values[v, s][key] for s in seeds]) for v in variants}  # (S, 1 + B)
        cells = [key[0], names[key[1]] if key[1] != "all" else "**all**"]
        for v in variants:
            x = by_variant[v][:, 0]
            cells.append(f"{x.mean():.3f} ± {x.std(ddof=1):.3f}" if len(x) > 1 else f"{x.mean():.3f}")
            if v != variants[0]:
                both = np.stack([by_variant[variants[0]], by_variant[v]])  # (2, S, 1 + B)
                d = paired_delta(both[:, :, 0], both[:, :, 1:].transpose(2, 0, 1))
                cells.append(f"{d['delta']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}] {d['verdict']}")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
