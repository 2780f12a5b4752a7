# ultralytics-weighted, AGPL-3.0 license
"""Write a data.yaml for the traffic-lights set whose train split keeps one of the 3 augmented copies of each photo.

Run:  python benchmarks/traffic_lights_subset.py [SOURCE] [OUT]
      SOURCE defaults to ../shared/datasets/traffic-lights, OUT to runs/data/traffic-lights-1x.yaml

The train folder holds 3 augmented versions of each of 699 photos, adjacent in name order ('<photo>_jpg.rf.<hash>').
Keeping the first version of each photo gives 699 distinct photos with the original class mix (Ultralytics' `fraction`
would instead keep the first files in name order, a different class mix). Val and test are used as they are. Nothing
is copied: the YAML points at the source images through a list file. Dataset: cinTA_v2 (Roboflow Universe,
wawan-pradana/cinta_v2), CC BY 4.0.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    """Write the list file and data.yaml."""
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/traffic-lights").resolve()
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "runs/data/traffic-lights-1x.yaml").resolve()
    images = sorted((source / "images" / "train").glob("*.jpg"))
    first = {}
    for image in images:
        first.setdefault(image.name.split(".rf.")[0], image)
    out.parent.mkdir(parents=True, exist_ok=True)
    listing = out.with_suffix(".train.txt")
    listing.write_text("".join(f"{p}\n" for p in first.values()))
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(("green", "red", "yellow")))
    out.write_text(
        f"# cinTA_v2 traffic lights (Roboflow Universe, wawan-pradana/cinta_v2), CC BY 4.0: one copy per train photo\n"
        f"path: {source}\ntrain: {listing}\nval: images/val\ntest: images/test\nnames:\n{names}\n"
    )
    print(f"{out}: {len(first)} of {len(images)} train images")


if __name__ == "__main__":
    main()
