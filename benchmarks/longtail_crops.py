# ultralytics-weighted, AGPL-3.0 license
"""Build the long-tail classification benchmark: one square crop per labelled box of a YOLO detection dataset.

Run:  python benchmarks/longtail_crops.py [SOURCE] [OUT] [--imgsz 48] [--context 1.2] [--head 1000] [--ratio 50]
      [--seed 0] [--by-source MIN_EVAL]
      SOURCE defaults to ../shared/datasets/construction-safety, OUT to runs/data/construction-safety-crops
      then  yolo classify train data=OUT model=yolo11n-cls.yaml imgsz=64 ...   (see docs/results.md)

Every box becomes one crop, its class the box's class: a square of `context` times the box's longer side around the
box centre (the part outside the photo filled with Ultralytics' padding grey, 114), resized to `imgsz` pixels
(Ultralytics trains at a multiple of the model's stride, 32: the default 48 px crops train at imgsz=64). Train
crops come from the train split and are made long-tailed in the usual way (Cao et al. 2019, CIFAR-LT): classes ordered
by their available crops, most first, keep `head * ratio ** (-rank / (classes - 1))` crops of the class at `rank`,
so the counts fall exponentially from `head` to `head / ratio`, drawn without replacement with a seeded generator.
Evaluation crops come from val + test, all of them, into OUT/val (the split `yolo classify train` validates on).
OUT/manifest.json records the settings, the per-class counts and the source image and box of every crop.

`--by-source MIN_EVAL` is for a dataset whose own val + test split is too small for the rare classes (cinTA_v2 traffic
lights: 36 yellow boxes in val + test): the images of all splits are pooled and grouped by source photo (Roboflow
names an export `<photo>_jpg.rf.<hash>.jpg`; its train split holds 3 augmented versions of each photo), only the first
version (by name) of a photo is kept, so no photo is counted twice, and whole photos go to evaluation, in a seeded
order, while some class still has fewer than MIN_EVAL evaluation boxes; the other photos are the train pool. No
evaluation crop then shares a photo with a train crop.
Dataset: Construction Site Safety v28 (Roboflow Universe, roboflow-universe-projects/construction-site-safety),
CC BY 4.0.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import yaml

PAD_VALUE = 114  # the grey Ultralytics pads letterboxed images with
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
EVAL_SPLITS = ("val", "test")  # merged into OUT/val: val alone holds 21 Mask boxes, val + test at least 49 per class


def read_boxes(source: Path, split: str) -> list[tuple[str, Path, int, int, np.ndarray]]:
    """Return (split, image, box index, class, normalized xywh) for every labelled box of a split, by file name."""
    boxes = []
    for image in sorted(p for p in (source / "images" / split).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        label = source / "labels" / split / f"{image.stem}.txt"
        lines = label.read_text().split("\n") if label.exists() else []
        for index, values in enumerate(line.split() for line in lines if line.strip()):
            cls, coords = int(float(values[0])), np.array(values[1:], dtype=float)
            if len(coords) > 4:  # a polygon: its bounding box
                xs, ys = coords[0::2], coords[1::2]
                coords = np.array([(xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2, np.ptp(xs), np.ptp(ys)])
            boxes.append((split, image, index, cls, coords))
    return boxes


def source_photo(image: Path) -> str:
    """Return the source photo of a Roboflow export's image: its name before `.rf.` (`a_jpg.rf.123.jpg` -> `a_jpg`)."""
    return image.name.split(".rf.")[0]


def split_by_source(source: Path, min_eval: int, seed: int) -> tuple[list, list]:
    """Return (train boxes, evaluation boxes) of all splits pooled, split by whole source photos.

    One version per source photo is kept; photos go to evaluation in a seeded order while some class of theirs still
    has fewer than `min_eval` evaluation boxes.
    """
    splits = sorted(d.name for d in (source / "images").iterdir() if d.is_dir())
    by_photo: dict[str, list] = {}
    for box in (b for split in splits for b in read_boxes(source, split)):
        by_photo.setdefault(source_photo(box[1]), []).append(box)
    first = {photo: min(str(b[1]) for b in boxes) for photo, boxes in by_photo.items()}  # one version per photo
    by_photo = {photo: [b for b in boxes if str(b[1]) == first[photo]] for photo, boxes in sorted(by_photo.items())}
    order = np.random.default_rng(seed).permutation(len(by_photo))
    photos = list(by_photo)
    eval_counts: dict[int, int] = {c: 0 for photo in photos for *_, c, _ in by_photo[photo]}
    train, evaluation = [], []
    for i in order:
        boxes = by_photo[photos[i]]
        if any(eval_counts[b[3]] < min_eval for b in boxes):
            evaluation += boxes
            for b in boxes:
                eval_counts[b[3]] += 1
        else:
            train += boxes
    if min(eval_counts.values()) < min_eval:
        raise ValueError(f"fewer than {min_eval} evaluation boxes for some class: {eval_counts}")
    key = lambda b: (str(b[1]), b[2])  # noqa: E731, grouped by image, as write_crops expects
    return sorted(train, key=key), sorted(evaluation, key=key)


def square_crop(image: np.ndarray, xywh: np.ndarray, context: float, imgsz: int) -> np.ndarray:
    """Cut a square of `context` times the box's longer side around its centre and resize it to `imgsz` pixels."""
    h, w = image.shape[:2]
    cx, cy = xywh[0] * w, xywh[1] * h
    side = max(2, round(context * max(xywh[2] * w, xywh[3] * h)))
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    padded = cv2.copyMakeBorder(image, side, side, side, side, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    crop = padded[y0 + side : y0 + 2 * side, x0 + side : x0 + 2 * side]
    interpolation = cv2.INTER_AREA if side > imgsz else cv2.INTER_LINEAR
    return cv2.resize(crop, (imgsz, imgsz), interpolation=interpolation)


def longtail_counts(available: dict[int, int], head: int, ratio: float) -> dict[int, int]:
    """Return the crops to keep per class: falling exponentially from `head` to `head / ratio` by available count.

    Classes are ranked by their available count (most first, ties by class id); a class never keeps more than it has.
    """
    order = sorted(available, key=lambda c: (-available[c], c))
    steps = max(len(order) - 1, 1)
    return {c: min(available[c], max(1, round(head * ratio ** (-rank / steps)))) for rank, c in enumerate(order)}


def write_crops(boxes: list, folder: Path, names: dict[int, str], context: float, imgsz: int) -> list:
    """Write one crop per box to folder/<class name>/ and return the manifest records."""
    records, cache = [], {}
    for split, image, index, cls, xywh in boxes:
        if image not in cache:
            cache.clear()  # boxes arrive grouped by image: keep one decoded photo
            cache[image] = cv2.imread(str(image))
        name = f"{split}_{image.stem}_{index}.jpg"
        (folder / names[cls]).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / names[cls] / name), square_crop(cache[image], xywh, context, imgsz))
        records.append({"crop": f"{folder.name}/{names[cls]}/{name}", "image": f"{split}/{image.name}", "box": index})
    return records


def build(
    source: Path,
    out: Path,
    imgsz: int = 48,
    context: float = 1.2,
    head: int = 1000,
    ratio: float = 50,
    seed: int = 0,
    by_source: int | None = None,
) -> dict:
    """Write the train (long-tailed) and val crop folders and manifest.json; return the manifest.

    Evaluation crops are val + test whole, or with `by_source` the whole photos `split_by_source` picks.
    """
    source, out = Path(source).resolve(), Path(out).resolve()
    source_yaml = (source / "data.yaml").read_text().splitlines()
    names = yaml.safe_load("\n".join(source_yaml))["names"]
    names = dict(enumerate(names)) if isinstance(names, list) else {int(k): v for k, v in names.items()}
    if by_source is None:
        train = read_boxes(source, "train")
        evaluation = [b for s in EVAL_SPLITS if (source / "images" / s).is_dir() for b in read_boxes(source, s)]
    else:
        train, evaluation = split_by_source(source, by_source, seed)
    available = {c: sum(b[3] == c for b in train) for c in names}
    if min(available.values()) == 0:
        raise ValueError(f"every class needs train boxes, got {available}")
    keep = longtail_counts(available, head, ratio)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in sorted(keep, key=lambda c: (-available[c], c)):  # fixed draw order: the result depends on the seed only
        candidates = [i for i, b in enumerate(train) if b[3] == c]
        chosen += [candidates[i] for i in rng.choice(len(candidates), keep[c], replace=False)]
    for folder in ("train", "val"):
        shutil.rmtree(out / folder, ignore_errors=True)
    train_records = write_crops([train[i] for i in sorted(chosen)], out / "train", names, context, imgsz)
    val_records = write_crops(evaluation, out / "val", names, context, imgsz)
    manifest = {
        "source": str(source),
        "attribution": [line.lstrip("# ") for line in source_yaml if line.startswith("#")],  # the source's own words
        "imgsz": imgsz,
        "context": context,
        "head": head,
        "ratio": ratio,
        "seed": seed,
        "by_source": by_source,
        "classes": {
            names[c]: {
                "available": available[c],
                "train": keep[c],
                "val": sum(b[3] == c for b in evaluation),
            }
            for c in names
        },
        "train": train_records,
        "val": val_records,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main() -> None:
    """Build the benchmark and print its per-class counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default="../shared/datasets/construction-safety")
    parser.add_argument("out", nargs="?", default="runs/data/construction-safety-crops")
    parser.add_argument("--imgsz", type=int, default=48, help="crop side in pixels")
    parser.add_argument("--context", type=float, default=1.2, help="crop side / box's longer side")
    parser.add_argument("--head", type=int, default=1000, help="train crops of the most frequent class")
    parser.add_argument("--ratio", type=float, default=50, help="imbalance ratio, head / tail")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--by-source", type=int, metavar="MIN_EVAL", help="pool the splits, split by photo, >= MIN_EVAL per class"
    )
    args = parser.parse_args()
    manifest = build(args.source, args.out, args.imgsz, args.context, args.head, args.ratio, args.seed, args.by_source)
    print(f"{Path(args.out).resolve()}: {sum(c['train'] for c in manifest['classes'].values())} train crops")
    print("| class | available | train | val |\n|---|---|---|---|")
    for name, c in sorted(manifest["classes"].items(), key=lambda kv: -kv[1]["train"]):
        print(f"| {name} | {c['available']} | {c['train']} | {c['val']} |")


if __name__ == "__main__":
    main()
