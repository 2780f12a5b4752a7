# ultralytics-weighted, AGPL-3.0 license
"""Build the CPU long-tail detection benchmark: real box crops pasted onto heavily blurred real photos, small images.

Run:  python benchmarks/longtail_composite.py [SOURCE] [OUT] [--imgsz 96] [--head 250] [--ratio 25] [--objects 1,3]
      [--size 0.35,0.65] [--blur 0.08] [--min-box 12] [--eval-per-class 60] [--seed 0]
      SOURCE defaults to ../shared/datasets/construction-safety, OUT to runs/data/cs-composite96
      then  python benchmarks/convergence_trial.py OUT/data.yaml --epochs 40 ...  (stock; AP50 per epoch, converged?)
      and   ultralytics-weighted compare data=OUT/data.yaml model=yolo11n.yaml imgsz=96 ...  (the printed command)

The defaults are the benchmark of benchmarks/results/PLAN.md section 3 (96 px, 250 -> 10 train instances, 40 epochs
with `optimizer=AdamW lr0=0.002 nbs=32`, chosen by convergence trials: docs/results.md).

What a composite image is: a real photo of the split, a random square part of it resized to `imgsz` and blurred with a
Gaussian of sigma `blur * imgsz` (so its own people, cones and vehicles are unlabelled smears, not objects), with
1 to 3 (`--objects`) labelled box crops pasted on it, each the exact box of a real photo (flipped left-right with
probability 0.5), resized keeping its aspect so that its longer side is a uniform `--size` fraction of `imgsz`, at a
random place where it overlaps no other pasted crop (shrunk by 0.85 until one is found). Small images with few large
objects on a plain background: the detector's job is mostly to tell the 10 classes apart, which a from-scratch
yolo11n learns in minutes on one core, while every object still looks like a real photo's.

Train images hold crops of train boxes on blurred train photos; evaluation images (OUT/images/val) hold crops of val +
test boxes on blurred val + test photos: nothing of the evaluation derives from a train photo. Boxes whose longer side
is under `--min-box` source pixels are not used (upscaled, they are mush). The train instances are long-tailed as in
benchmarks/longtail_crops.py: classes ranked by their usable train boxes, the class at rank r keeps
`head * ratio ** (-r / (classes - 1))` boxes (25x: 250 -> 10 by default), drawn without replacement. The evaluation is
balanced: `--eval-per-class` instances per class, distinct boxes while the class has enough, otherwise every box once
and some twice (a repeat differs in flip, size, place and background; the manifest says how many boxes are distinct).
Instances are shuffled and dealt to images, 1 to 3 each, so a rare instance shares its image with random others.

OUT/data.yaml carries the source's attribution and names the copy by absolute `path:`; OUT/manifest.json records the
settings, per-class counts and, per image, its background photo and every pasted box's source photo, box and place.
Deterministic: the same source and settings give the same files.
Dataset: Construction Site Safety v28 (Roboflow Universe, roboflow-universe-projects/construction-site-safety),
CC BY 4.0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import yaml

EVAL_SPLITS = ("val", "test")  # merged: val alone holds 21 Mask boxes
SHRINK = 0.85  # a crop that finds no free place after PLACE_TRIES tries is shrunk by this factor and tried again
PLACE_TRIES = 50
# the comparison this benchmark is for (issue 25); the GPU twin (gpu_longtail_detection.py) runs the same variants
VARIANTS = "none,cls_pw=0.25,cls_pw=0.5,mean,auto,rfs,mean+balance_floor=1,mean+tau=0.5,mean+tau=1"
# the training budget at which stock levelled off on the default composite (convergence_trial.py, docs/results.md):
# Ultralytics' automatic optimizer (AdamW, lr 0.000714 for 10 classes) was still rising after 40 and 50 epochs
EPOCHS = 40
RECIPE = "optimizer=AdamW lr0=0.002 nbs=32"


def _sibling(name: str):
    """Import another script of benchmarks/ (longtail_crops: its box reader and long-tail formula) without sys.path."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


crops = _sibling("longtail_crops")


def pixel_box(xywh: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """Return a normalized xywh box as integer pixel corners (x0, y0, x1, y1) clipped to the image."""
    x0 = int(np.clip(round((xywh[0] - xywh[2] / 2) * width), 0, width))
    y0 = int(np.clip(round((xywh[1] - xywh[3] / 2) * height), 0, height))
    x1 = int(np.clip(round((xywh[0] + xywh[2] / 2) * width), 0, width))
    y1 = int(np.clip(round((xywh[1] + xywh[3] / 2) * height), 0, height))
    return x0, y0, x1, y1


def usable_boxes(boxes: list, min_box: int) -> list:
    """Return the boxes whose clipped longer side has at least `min_box` pixels (and each side at least 2)."""
    sizes = {}
    usable = []
    for box in boxes:
        image = box[1]
        if image not in sizes:
            sizes[image] = cv2.imread(str(image)).shape[:2]
        height, width = sizes[image]
        x0, y0, x1, y1 = pixel_box(box[4], width, height)
        if max(x1 - x0, y1 - y0) >= min_box and min(x1 - x0, y1 - y0) >= 2:
            usable.append(box)
    return usable


def eval_selection(indices: list[int], n: int, rng: np.random.Generator) -> list[int]:
    """Return `n` of a class's evaluation boxes (indices): each box once while there are enough.

    With fewer boxes than `n`, every box is used n // len times and the rest are drawn without replacement.
    """
    whole, rest = divmod(n, len(indices))
    return sorted(indices * whole + [indices[i] for i in rng.choice(len(indices), rest, replace=False)])


def place(sizes: list[tuple[int, int]], imgsz: int, rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    """Return a non-overlapping place (x0, y0, w, h) for each (w, h), shrinking a crop that finds no free place."""
    placed = []
    for w, h in sizes:
        while True:
            free = None
            for _ in range(PLACE_TRIES):
                x0, y0 = int(rng.integers(0, imgsz - w + 1)), int(rng.integers(0, imgsz - h + 1))
                if all(x0 >= px + pw or px >= x0 + w or y0 >= py + ph or py >= y0 + h for px, py, pw, ph in placed):
                    free = (x0, y0, w, h)
                    break
            if free:
                placed.append(free)
                break
            w, h = max(2, int(w * SHRINK)), max(2, int(h * SHRINK))
    return placed


def background(photo: Path, imgsz: int, blur: float, rng: np.random.Generator) -> np.ndarray:
    """Return a random square part (half to all of the shorter side) of a photo at `imgsz` pixels, heavily blurred."""
    image = cv2.imread(str(photo))
    height, width = image.shape[:2]
    side = int(rng.integers(min(height, width) // 2, min(height, width) + 1))
    x0, y0 = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
    square = cv2.resize(image[y0 : y0 + side, x0 : x0 + side], (imgsz, imgsz), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(square, (0, 0), sigmaX=blur * imgsz)


def write_split(
    split: str,
    instances: list,
    photos: list[Path],
    out: Path,
    source: Path,
    settings: dict,
    rng: np.random.Generator,
) -> list[dict]:
    """Deal the instances (shuffled) to images of 1..k objects, paste them onto blurred photos; return the records."""
    imgsz, lo, hi = settings["imgsz"], *settings["objects"]
    size_lo, size_hi = settings["size"]
    order = [instances[i] for i in rng.permutation(len(instances))]
    for folder in ("images", "labels"):
        (out / folder / split).mkdir(parents=True)
    records, start = [], 0
    while start < len(order):
        group = order[start : start + int(rng.integers(lo, hi + 1))]
        start += len(group)
        name = f"{split}{len(records):05d}"
        photo = photos[int(rng.integers(len(photos)))]
        canvas = background(photo, imgsz, settings["blur"], rng)
        cuts, sizes, flips = [], [], []
        for box in group:  # (split, image, box index, class, xywh)
            photo_image, xywh = cv2.imread(str(box[1])), box[4]
            x0, y0, x1, y1 = pixel_box(xywh, photo_image.shape[1], photo_image.shape[0])
            cut = photo_image[y0:y1, x0:x1]
            flip = bool(rng.random() < 0.5)
            scale = rng.uniform(size_lo, size_hi) * imgsz / max(cut.shape[:2])
            cuts.append(cut[:, ::-1] if flip else cut)
            sizes.append((max(2, round(cut.shape[1] * scale)), max(2, round(cut.shape[0] * scale))))
            flips.append(flip)
        objects, lines = [], []
        for (_, image, index, cls, _), cut, flip, (x0, y0, w, h) in zip(group, cuts, flips, place(sizes, imgsz, rng)):
            interpolation = cv2.INTER_AREA if w < cut.shape[1] else cv2.INTER_LINEAR
            canvas[y0 : y0 + h, x0 : x0 + w] = cv2.resize(
                np.ascontiguousarray(cut), (w, h), interpolation=interpolation
            )
            xywh = [(x0 + w / 2) / imgsz, (y0 + h / 2) / imgsz, w / imgsz, h / imgsz]
            lines.append(f"{cls} " + " ".join(f"{v:.6f}" for v in xywh))
            source_image = image.relative_to(source / "images").as_posix()
            objects.append({"cls": cls, "source": source_image, "box": index, "flip": flip, "xywh": xywh})
        cv2.imwrite(str(out / "images" / split / f"{name}.png"), canvas)
        (out / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + "\n")
        records.append({"image": f"{split}/{name}.png", "background": photo.relative_to(source / "images").as_posix()})
        records[-1]["objects"] = objects
    return records


def build(
    source: Path,
    out: Path,
    imgsz: int = 96,
    head: int = 250,
    ratio: float = 25,
    objects: tuple[int, int] = (1, 3),
    size: tuple[float, float] = (0.35, 0.65),
    blur: float = 0.08,
    min_box: int = 12,
    eval_per_class: int = 60,
    seed: int = 0,
) -> dict:
    """Write the composite train and val splits, data.yaml and manifest.json; return the manifest."""
    source, out = Path(source).resolve(), Path(out).resolve()
    if not (1 <= objects[0] <= objects[1] and 0 < size[0] <= size[1] <= 1 and imgsz >= 8 and eval_per_class >= 1):
        raise ValueError(f"need 1 <= objects ({objects}), 0 < size <= 1 ({size}), imgsz >= 8, eval_per_class >= 1")
    source_yaml = (source / "data.yaml").read_text().splitlines()
    names = yaml.safe_load("\n".join(source_yaml))["names"]
    names = dict(enumerate(names)) if isinstance(names, list) else {int(k): v for k, v in names.items()}
    train = usable_boxes(crops.read_boxes(source, "train"), min_box)
    splits = [s for s in EVAL_SPLITS if (source / "images" / s).is_dir()]
    evaluation = usable_boxes([b for s in splits for b in crops.read_boxes(source, s)], min_box)
    available = {c: sum(b[3] == c for b in train) for c in names}
    eval_available = {c: sum(b[3] == c for b in evaluation) for c in names}
    if min(available.values()) == 0 or min(eval_available.values()) == 0:
        raise ValueError(f"every class needs usable train and eval boxes: train {available}, eval {eval_available}")
    keep = crops.longtail_counts(available, head, ratio)
    rng = np.random.default_rng(seed)
    chosen, eval_chosen = [], []
    for c in sorted(keep, key=lambda c: (-available[c], c)):  # fixed draw order: the result depends on the seed only
        candidates = [i for i, b in enumerate(train) if b[3] == c]
        chosen += [candidates[i] for i in rng.choice(len(candidates), keep[c], replace=False)]
    for c in names:
        eval_chosen += eval_selection([i for i, b in enumerate(evaluation) if b[3] == c], eval_per_class, rng)
    photos = {"train": _images(source, ("train",)), "val": _images(source, splits)}  # the blurred backgrounds
    for folder in ("images", "labels"):
        shutil.rmtree(out / folder, ignore_errors=True)
    settings = {"imgsz": imgsz, "objects": list(objects), "size": list(size), "blur": blur}
    records = {
        "train": write_split("train", [train[i] for i in sorted(chosen)], photos["train"], out, source, settings, rng),
        "val": write_split("val", [evaluation[i] for i in eval_chosen], photos["val"], out, source, settings, rng),
    }
    data = {"path": str(out), "train": "images/train", "val": "images/val", "names": names}
    attribution = [line for line in source_yaml if line.startswith("#")]  # the source's own words
    change = (
        f"# Composite ({Path(__file__).name}): box crops pasted {objects[0]}-{objects[1]} per {imgsz} px image onto "
        f"blurred photos; train boxes {head} -> {head / ratio:g} ({ratio:g}x, seed {seed}); eval: val + test boxes, "
        f"{eval_per_class} per class"
    )
    header = "\n".join([*attribution, change])
    (out / "data.yaml").write_text(f"{header}\n{yaml.safe_dump(data, sort_keys=False, allow_unicode=True)}")
    manifest = {
        "source": str(source),
        "attribution": [line.lstrip("# ") for line in attribution],
        **settings,
        "head": head,
        "ratio": ratio,
        "min_box": min_box,
        "eval_per_class": eval_per_class,
        "seed": seed,
        "images": {split: len(r) for split, r in records.items()},
        "classes": {
            names[c]: {
                "available": available[c],
                "train": keep[c],
                "eval_available": eval_available[c],
                "eval": eval_per_class,
                "eval_distinct": min(eval_per_class, eval_available[c]),
            }
            for c in names
        },
        **records,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _images(source: Path, splits) -> list[Path]:
    """Return every image of the given splits of a YOLO dataset (the background photos, labelled or not)."""
    return sorted(
        p for s in splits for p in (source / "images" / s).iterdir() if p.suffix.lower() in crops.IMAGE_SUFFIXES
    )


def main() -> None:
    """Build the benchmark, print its per-class counts and the commands that use it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default="../shared/datasets/construction-safety")
    parser.add_argument("out", nargs="?", default="runs/data/cs-composite96")
    parser.add_argument("--imgsz", type=int, default=96, help="composite image side in pixels")
    parser.add_argument("--head", type=int, default=250, help="train instances of the most frequent class")
    parser.add_argument("--ratio", type=float, default=25, help="imbalance ratio, head / tail")
    parser.add_argument("--objects", default="1,3", help="fewest,most pasted crops per image")
    parser.add_argument("--size", default="0.35,0.65", help="a crop's longer side, as fractions of imgsz (low,high)")
    parser.add_argument("--blur", type=float, default=0.08, help="background blur sigma as a fraction of imgsz")
    parser.add_argument("--min-box", type=int, default=12, help="smallest usable box (longer side, source pixels)")
    parser.add_argument("--eval-per-class", type=int, default=60, help="evaluation instances per class")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    objects = tuple(int(v) for v in args.objects.split(","))
    size = tuple(float(v) for v in args.size.split(","))
    manifest = build(
        args.source,
        args.out,
        args.imgsz,
        args.head,
        args.ratio,
        objects,
        size,
        args.blur,
        args.min_box,
        args.eval_per_class,
        args.seed,
    )
    out = Path(args.out).resolve()
    print(f"{out / 'data.yaml'}: {manifest['images']['train']} train images, {manifest['images']['val']} eval images")
    print("| class | usable train boxes | train | usable eval boxes | eval (distinct) |\n|---|---|---|---|---|")
    for name, c in sorted(manifest["classes"].items(), key=lambda kv: -kv[1]["train"]):
        print(
            f"| {name} | {c['available']} | {c['train']} | {c['eval_available']} | {c['eval']} ({c['eval_distinct']}) |"
        )
    print(
        f"\nconvergence trial (stock):\n  python benchmarks/convergence_trial.py {out / 'data.yaml'} --epochs {EPOCHS} "
        f"imgsz={args.imgsz} {RECIPE}\ncomparison:\n  ultralytics-weighted compare data={out / 'data.yaml'} "
        f"model=yolo11n.yaml variants={VARIANTS} seeds=3 epochs={EPOCHS} imgsz={args.imgsz} batch=32 {RECIPE} "
        "val=False workers=1 device=cpu parallel=2"
    )


if __name__ == "__main__":
    main()
