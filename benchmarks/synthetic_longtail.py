# ultralytics-weighted, AGPL-3.0 license
"""Generate the synthetic long-tail preset's dataset: a rare class that often shares its image with common ones.

Run:  python benchmarks/synthetic_longtail.py [OUT] [--images 400] [--imgsz 96] [--rare-every 10] [--seed 0]
      then  ultralytics-weighted compare data=OUT/data.yaml ...   (see docs/results.md)

Uses `ultralytics_weighted.commands.synthetic.make_dataset`: 3 classes drawn as coloured shapes ('common' green
rectangles, 'medium' red circles, 'rare' yellow triangles); 'rare' is in every `rare_every`-th labelled training image
and every other such image also holds a 'common' object, so the rare class co-occurs with the common one. Validation
holds every class. Deterministic for a seed.
"""

from __future__ import annotations

import argparse

from ultralytics_weighted.commands.synthetic import class_counts, make_dataset


def main() -> None:
    """Write the dataset and print its data.yaml path and class counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="runs/data/synthetic-longtail")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--val", type=int, default=60)
    parser.add_argument("--imgsz", type=int, default=96)
    parser.add_argument("--rare-every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = make_dataset(args.out, "detect", args.images, args.val, args.imgsz, args.rare_every, seed=args.seed)
    print(f"{data}: train instances {class_counts(args.out, 'train')}, val {class_counts(args.out, 'val')}")


if __name__ == "__main__":
    main()
