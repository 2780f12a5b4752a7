# ultralytics-weighted, AGPL-3.0 license
"""Build the long-tailed detection benchmark: drop most train images holding the rare classes, evaluate on val + test.

Run:  python benchmarks/longtail_detection.py [SOURCE] [OUT] [--rare vehicle,"Safety Cone"] [--keep 0.1] [--seed 0]
      SOURCE defaults to ../shared/datasets/construction-safety, OUT to runs/data/construction-safety-longtail
      then  ultralytics-weighted compare data=OUT/data.yaml model=yolo11n.yaml ...   (see docs/results.md)

Of the train images that hold at least one box of a rare class, a seeded `keep` fraction stays (drawn without
replacement); every other train image stays as it is. Val and test stay whole and are merged into the evaluation
split (`val: [images/val, images/test]`): val alone holds 21 Mask boxes, val + test at least 49 of every class.
The copy is self-contained (images and labels are copied, so Ultralytics can write its label caches next to them),
and OUT/data.yaml names it by absolute `path:`. OUT/manifest.json records the settings, the kept and dropped train
images and the per-class box counts.

Default rare classes: `vehicle` and `Safety Cone`, the two classes in the fewest train images (142 and 125 of 514).
Every rare-holding image also holds common classes (Person in most), so dropping few images costs the common
classes the fewest boxes; both are objects rather than attributes of a person, so no other class marks them.
Dataset: Construction Site Safety v28 (Roboflow Universe, roboflow-universe-projects/construction-site-safety),
CC BY 4.0.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
EVAL_SPLITS = ("val", "test")
RARE = ("vehicle", "Safety Cone")  # the two classes in the fewest train images (see above)


def class_ids(label: Path) -> list[int]:
    """Return the class id of every box in a YOLO label file (none if the file is missing)."""
    lines = label.read_text().split("\n") if label.exists() else []
    return [int(float(line.split()[0])) for line in lines if line.strip()]


def split_images(source: Path, split: str) -> list[Path]:
    """Return a split's images in file name order."""
    return sorted(p for p in (source / "images" / split).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def box_counts(source: Path, split: str, images: list[Path], names: dict[int, str]) -> dict[str, int]:
    """Return boxes per class name over the given images of a split."""
    counts = Counter(c for image in images for c in class_ids(source / "labels" / split / f"{image.stem}.txt"))
    return {name: counts[c] for c, name in names.items()}


def build(source: Path, out: Path, rare: tuple[str, ...] = RARE, keep: float = 0.1, seed: int = 0) -> dict:
    """Write the long-tailed copy, its data.yaml and manifest.json; return the manifest."""
    source, out = Path(source).resolve(), Path(out).resolve()
    source_yaml = (source / "data.yaml").read_text().splitlines()
    names = yaml.safe_load("\n".join(source_yaml))["names"]
    names = dict(enumerate(names)) if isinstance(names, list) else {int(k): v for k, v in names.items()}
    unknown = sorted(set(rare) - set(names.values()))
    if unknown or not 0 <= keep <= 1:
        raise ValueError(f"rare classes must be among {list(names.values())} (got {unknown}), keep in [0, 1] ({keep})")
    rare_ids = {c for c, name in names.items() if name in rare}
    train = split_images(source, "train")
    holding = [p for p in train if rare_ids & set(class_ids(source / "labels" / "train" / f"{p.stem}.txt"))]
    chosen = np.random.default_rng(seed).choice(len(holding), round(keep * len(holding)), replace=False)
    kept_rare = {holding[i] for i in chosen}
    dropped = [p for p in holding if p not in kept_rare]
    kept = [p for p in train if p not in set(dropped)]
    shutil.rmtree(out / "images", ignore_errors=True)
    shutil.rmtree(out / "labels", ignore_errors=True)
    splits = {"train": kept, **{s: split_images(source, s) for s in EVAL_SPLITS}}
    for split, images in splits.items():
        for folder in ("images", "labels"):
            (out / folder / split).mkdir(parents=True)
        for image in images:
            shutil.copyfile(image, out / "images" / split / image.name)
            label = source / "labels" / split / f"{image.stem}.txt"
            if label.exists():
                shutil.copyfile(label, out / "labels" / split / label.name)
    data = {
        "path": str(out),
        "train": "images/train",
        "val": [f"images/{s}" for s in EVAL_SPLITS],
        "names": names,
    }
    attribution = [line for line in source_yaml if line.startswith("#")]  # the source's own words
    change = f"# Long-tailed: {', '.join(rare)} kept in {keep:g} of their train images (seed {seed}); eval val + test"
    header = "\n".join([*attribution, change])
    (out / "data.yaml").write_text(f"{header}\n{yaml.safe_dump(data, sort_keys=False, allow_unicode=True)}")
    manifest = {
        "source": str(source),
        "attribution": [line.lstrip("# ") for line in attribution],
        "rare": list(rare),
        "keep": keep,
        "seed": seed,
        "images": {"train": len(kept), "train_source": len(train), **{s: len(splits[s]) for s in EVAL_SPLITS}},
        "boxes": {
            "train_source": box_counts(source, "train", train, names),
            "train": box_counts(source, "train", kept, names),
            "eval": {
                name: sum(box_counts(source, s, splits[s], names)[name] for s in EVAL_SPLITS) for name in names.values()
            },
        },
        "kept_rare_images": sorted(p.name for p in kept_rare),
        "dropped_images": [p.name for p in dropped],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main() -> None:
    """Build the benchmark and print its per-class box counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default="../shared/datasets/construction-safety")
    parser.add_argument("out", nargs="?", default="runs/data/construction-safety-longtail")
    parser.add_argument("--rare", default=",".join(RARE), help="comma-separated class names")
    parser.add_argument("--keep", type=float, default=0.1, help="fraction of the rare-holding train images kept")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    manifest = build(args.source, args.out, tuple(args.rare.split(",")), args.keep, args.seed)
    images, boxes = manifest["images"], manifest["boxes"]
    print(f"{Path(args.out).resolve() / 'data.yaml'}: {images['train']} of {images['train_source']} train images")
    print("| class | train (source) | train | eval (val + test) |\n|---|---|---|---|")
    for name in boxes["train"]:
        print(f"| {name} | {boxes['train_source'][name]} | {boxes['train'][name]} | {boxes['eval'][name]} |")


if __name__ == "__main__":
    main()
