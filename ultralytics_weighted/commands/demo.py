# ultralytics-weighted, AGPL-3.0 license
"""`ultralytics-weighted demo`: stock vs balanced training on a generated long-tail dataset, in about 2 minutes on CPU.

The dataset is the synthetic long-tail preset of docs/results.md: 400 training images at 96 px with 'common' green
rectangles, 'medium' red circles and 'rare' yellow triangles, 'rare' in every 10th labelled image (every other time
next to a 'common' object), 60 validation images holding every class. Stock and balanced training (`class_balance=True`)
run through `ultralytics-weighted compare` with otherwise identical settings (6 epochs of yolo11n from scratch); in
docs/results.md stock reached rare-class AP50 0.00-0.17 over 3 seeds and balanced 0.99 in every seed.

Everything goes to one folder: `runs/demo`, `runs/demo2`, ... in the current directory (as Ultralytics numbers its
runs), or `dir=PATH`. A folder is only used if it is new, empty, or an earlier demo's (marked by `MARKER` and holding
nothing else), whose dataset and results are then replaced: the demo never writes into other data.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from pathlib import Path

from ultralytics_weighted.commands.compare import INTERRUPTED, Interrupted
from ultralytics_weighted.extensions.report import balance_report
from ultralytics_weighted.extensions.shares import balance_stats

MARKER = ".ultralytics-weighted-demo"  # marks a folder as a demo's, so that a later demo may replace its contents
ENTRIES = (MARKER, "dataset", "compare")  # everything a demo writes into its folder
DEMO_KEYS = ("dir", "images", "seeds")  # the demo's own keys; the others are `yolo train` keys
SET_BY_DEMO = ("data", "variants", "project", "name")  # chosen by the demo (the dataset, the variants, the folders)
TRAIN = {  # the preset of docs/results.md; any of these can be overridden with key=value
    "model": "yolo11n.yaml",  # built from YAML: no weights to download
    "epochs": 6,
    "imgsz": 96,
    "batch": 16,
    "val": False,  # compare validates each run's final weights once; validating every epoch costs time
    "device": "cpu",
}
IMAGES, VAL_IMAGES, RARE_EVERY = 400, 60, 10


def demo_folder(path: str | None) -> Path:
    """Return the folder this demo writes to, marked as a demo's; an earlier demo's contents there are removed.

    Args:
        path (str, optional): The `dir=` value; None for the next free `runs/demo`, `runs/demo2`, ... in the current
            directory.

    Returns:
        (Path): The folder (absolute), existing and holding only the marker file.

    Raises:
        FileExistsError: If `path` is a file, or a folder with anything in it that no earlier demo wrote.
    """
    if path is None:
        folder = Path("runs") / "demo"
        for n in range(2, 10_000):
            if not folder.exists():
                break
            folder = Path("runs") / f"demo{n}"
    else:
        folder = Path(path).expanduser()  # `dir=~/demo` from a shell that did not expand it
        if folder.exists() and not folder.is_dir():
            raise FileExistsError(f"dir={path} is a file; the demo needs a new, empty or earlier demo folder.")
        if folder.is_dir() and any(folder.iterdir()):
            others = sorted(p.name for p in folder.iterdir() if p.name not in ENTRIES)
            if not (folder / MARKER).is_file() or others:
                found = f"holds {', '.join(others[:3])}{', ...' if len(others) > 3 else ''}" if others else "has files"
                raise FileExistsError(
                    f"dir={path} {found} that no earlier demo wrote; the demo does not write into other data. Use a "
                    "new or empty folder, or leave out dir= to write to runs/demo*."
                )
            for name in ENTRIES[1:]:  # an earlier demo's results: replaced, as a re-run of it
                shutil.rmtree(folder / name, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("Made by `ultralytics-weighted demo`; a later demo with dir= here replaces it.\n")
    return folder.resolve()


def _variant(options: dict) -> str:
    """Return the balanced `compare` variant (e.g. 'mean', 'auto@0.5+balance_floor=1') for the balancing keys.

    Args:
        options (dict): The demo's options; `class_balance`, `balance_agg` and the other balancing keys are removed
            from it (they belong to the balanced run only, not to the stock one).

    Returns:
        (str): The variant name.
    """
    from ultralytics_weighted.extensions.config import balance_strength, balancing_on, check_balance_args
    from ultralytics_weighted.extensions.keys import DEFAULTS

    keys = {k: options.pop(k) for k in DEFAULTS if k in options}
    check_balance_args(keys)
    keys.setdefault("class_balance", True)  # the demo's balanced run balances unless told a strength
    if not balancing_on(keys):
        raise ValueError("class_balance=0 turns balancing off; the demo compares stock with balanced training.")
    strength = balance_strength(keys.pop("class_balance"))
    agg = keys.pop("balance_agg", DEFAULTS["balance_agg"])
    parts = [agg if strength == 1 else f"{agg}@{strength:g}"]
    return "+".join(parts + [f"{k}={v}" for k, v in keys.items() if v != DEFAULTS[k]])


def delta_heading(seeds: int) -> str:
    """Return the demo table's Δ heading: a 95% interval needs 2+ seeds; 1 seed measures evaluation noise only."""
    return "Δ AP50 [95%]" if seeds > 1 else "Δ AP50 [evaluation noise only]"


def ap50_table(comparison, classes: list, variant: str, balanced: dict) -> list[str]:
    """Return the demo's markdown table: per class (and all) train instances, share per epoch, AP50 stock vs balanced.

    Args:
        comparison (Comparison): What `run_comparison` returned.
        classes (list): Class ids of each train image's objects.
        variant (str): Name of the balanced variant ('none' is stock).
        balanced (dict): `balance_stats` of the balanced variant's (fully balanced) epochs.

    Returns:
        (list[str]): Markdown table lines; Δ AP50 with its interval and verdict (see `compare`): a 95% interval from 2
            seeds on, the evaluation noise alone (no seed-to-seed spread) from 1 seed, as the heading says.
    """
    names = comparison.names
    stock = balance_stats(classes, len(names), None)
    head = ["class", "train instances", "share/epoch stock", "share/epoch balanced", "stock AP50", "balanced AP50"]
    seeds = sum(run["variant"] == "none" for run in comparison.runs)
    lines = ["| " + " | ".join([*head, delta_heading(seeds)]) + " |", "|" + "---|" * (len(head) + 1)]
    for c in [c for c in sorted(names) if stock["instances"][c]] + ["all"]:
        a, b = comparison.row("ap50", c, "none"), comparison.row("ap50", c, variant)
        delta = f"{b['delta']:+.3f} [{b['lo']:+.3f}, {b['hi']:+.3f}] {b['verdict']}"
        if c == "all":
            cells = ["**all**", str(int(stock["instances"].sum())), "100%", "100%"]
        else:
            cells = [str(names[c]), str(stock["instances"][c]), f"{stock['share_after'][c]:.1%}"]
            cells.append(f"{balanced['share_after'][c]:.1%}")
        lines.append("| " + " | ".join([*cells, f"{a['mean']:.3f}", f"{b['mean']:.3f}", delta]) + " |")
    return lines


def run_demo(options: dict) -> Path:
    """Generate the dataset, print its balance table, train stock and balanced, and print the AP50 table.

    Args:
        options (dict): `dir`, `images`, `seeds`, `class_balance`, `balance_agg` and any `yolo train` key=value.

    Returns:
        (Path): The demo folder.
    """
    from ultralytics.cfg import DEFAULT_CFG_DICT, get_cfg, smart_value

    from ultralytics_weighted.commands.compare import parse_variants, run_comparison
    from ultralytics_weighted.commands.synthetic import make_dataset
    from ultralytics_weighted.extensions.config import check_keys
    from ultralytics_weighted.host.labels import load_label_classes

    start = time.time()
    if chosen := [k for k in SET_BY_DEMO if k in options]:
        raise ValueError(f"{', '.join(chosen)}: set by the demo itself; use `ultralytics-weighted compare` for that.")
    check_keys(options, {*DEFAULT_CFG_DICT, *DEMO_KEYS}, "demo")
    options = {k: smart_value(v) if isinstance(v, str) and k != "dir" else v for k, v in options.items()}
    path, images, seeds = options.pop("dir", None), int(options.pop("images", IMAGES)), int(options.pop("seeds", 1))
    if images < 20 or seeds < 1:
        raise ValueError(f"images={images} and seeds={seeds}: the demo needs images >= 20 and seeds >= 1.")
    variant = _variant(options)
    train = {**TRAIN, **options}
    get_cfg(overrides={**train, "mode": "train"})  # bad values fail here, before anything is written
    folder = demo_folder(path)
    print(
        f"ultralytics-weighted demo: generating a long-tail dataset in {folder / 'dataset'} ({images} train images at "
        f"{train['imgsz']} px, 'rare' in every {RARE_EVERY}th labelled image; {VAL_IMAGES} val images)",
        flush=True,
    )
    data = make_dataset(folder / "dataset", "detect", images, VAL_IMAGES, int(train["imgsz"]), RARE_EVERY)
    classes, names, _ = load_label_classes({"data": str(data)})
    schedule = parse_variants(variant)[0].schedule(classes, len(names), int(train["epochs"]))
    p = schedule.balanced_probabilities
    print("\nThe balance table that balanced training logs at its start:")
    print("\n".join(balance_report(classes, names, p, schedule.strength, schedule.agg, schedule=schedule)))

    settings = " ".join(f"{k}={v}" for k, v in train.items())
    print(
        f"\nTraining stock (none) and balanced ({variant}) with otherwise identical settings, {seeds} seed(s) each: "
        f"{settings}. Logs: {folder / 'compare' / 'runs'}/*/train.log",
        flush=True,
    )
    compare = {"data": str(data), "variants": f"none,{variant}", "seeds": seeds, **train}
    command = "ultralytics-weighted compare " + " ".join(shlex.quote(f"{k}={v}") for k, v in compare.items())
    comparison = run_comparison({**compare, "project": str(folder), "name": "compare"}, command)  # prints progress
    out = comparison.folder

    table = ap50_table(comparison, classes, variant, schedule.figures)
    minutes, seconds = divmod(round(time.time() - start), 60)
    print(
        f"\nDone in {minutes} min {seconds} s. Everything is in {folder}:\n"
        f"  {data}  the generated dataset\n"
        f"  {out / 'compare.md'}, compare.csv, compare.png  the comparison (compare.png: per-class AP50)\n"
        f"  {out / 'runs'}  the training runs (weights, results.csv, train.log)\n"
        f"\nAP50 on the val split ({VAL_IMAGES} images), stock vs balanced; share/epoch = expected share of each "
        "class's objects among those drawn per epoch:\n"
    )
    print("\n".join(table))
    return folder


def main(options: dict) -> int:
    """Run `demo` from parsed key=value options; errors are one line on stderr.

    Args:
        options (dict): See `run_demo`.

    Returns:
        (int): Exit code: 0, 2 for bad arguments or a folder that is not the demo's, 1 if training failed, 130 on
            Ctrl-C.
    """
    try:
        run_demo(options)
    except (ValueError, TypeError, SyntaxError, FileExistsError) as e:
        print(f"ultralytics-weighted demo: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as e:
        print(f"ultralytics-weighted demo: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except (Interrupted, KeyboardInterrupt) as e:  # Ctrl-C: compare has ended every training it started
        print(f"ultralytics-weighted demo: {str(e) or INTERRUPTED}", file=sys.stderr)
        return 130
    return 0
