# ultralytics-weighted, AGPL-3.0 license
"""Command line `ultralytics-weighted COMMAND [key=value ...]`, in Ultralytics' key=value style.

Commands:
    stats     compare the aggregations on a dataset's labels, without training
    compare   train variants x seeds with otherwise identical settings and report per-class AP
    patch     check, apply or revert the upstream patch series on an Ultralytics source tree
    demo      generate a small imbalanced dataset and run a short balanced `yolo train` on CPU
    version   print the package version
    help      print this help
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HELP = """\
Usage: ultralytics-weighted COMMAND [key=value ...]

  stats data=PATH [class_balance=1.0] [split=train] [format=table|json] [plot=FILE.png] [balance_agg=mean]
        [task=...] [classes=...] [fraction=...]
      Read the split's labels the way training does (data.yaml for detect/segment/pose/obb, or a classification
      folder) and print one row per aggregation (none, mean, max, median, sum, ...): max/min class share, effective
      sample size, coverage, largest expected repeats of one image per epoch, and each class's expected share.
      format=json prints the same as JSON; plot=FILE.png saves the class balance plot for balance_agg.
  compare data=PATH [variants=none,mean,sum,auto] [seeds=3] [project=runs/compare] [name=NAME] [model=yolo11n.yaml]
        [epochs=...] [imgsz=...] [any yolo train key=value]
      Train every variant x seed (sequentially; finished runs are skipped when re-run), validate each run's best
      weights on the val split and write compare.md, compare.csv and compare.png. A variant is none (stock), an
      aggregation (mean, max, median, sum, auto), an aggregation@strength (mean@0.5) or a train key=value (cls_pw=1.0).
  patch --check PATH | --apply PATH | --revert PATH
      Add class balancing natively to an Ultralytics checkout or installed package with the patch series in
      patches/ (refused when the tree's version differs from the release the series was made for).
  demo [dir=PATH] [epochs=3] [imgsz=96] [class_balance=True] [balance_agg=mean] [any yolo train key=value]
      Generate a small synthetic imbalanced detection dataset (3 classes, 'rare' about 8x rarer than 'common') and run
      `yolo train ... class_balance=True` on CPU; the balance table is logged at train start. Without dir= everything
      goes to a temporary folder that is removed afterwards.
  version
      Print the ultralytics-weighted version.
  help
      Print this help.

Training itself needs no command from this package: `yolo train data=mine.yaml class_balance=True balance_agg=sum`.
"""


def parse_key_values(args: list[str]) -> dict[str, str]:
    """Parse `key=value` arguments (values stay strings; the `yolo` CLI converts them itself).

    Args:
        args (list[str]): Command line arguments after the command.

    Returns:
        (dict[str, str]): The arguments by key.

    Raises:
        SystemExit: If an argument is not of the form key=value.

    Examples:
        >>> parse_key_values(["epochs=3", "dir=/tmp/demo"])
        {'epochs': '3', 'dir': '/tmp/demo'}
    """
    parsed = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise SystemExit(f"ultralytics-weighted: '{arg}' is not a key=value argument.\n\n{HELP}")
        parsed[key.strip()] = value.strip()
    return parsed


def stats(options: dict[str, str]) -> int:
    """Print the balance figures of every aggregation for a dataset, as a table or JSON.

    Args:
        options (dict[str, str]): `data` (required), `class_balance`, `split`, `format`, `plot`, `balance_agg` and other
            Ultralytics train keys that change which labels are used (`task`, `classes`, `fraction`, `single_cls`).

    Returns:
        (int): Exit code.
    """
    from ultralytics.cfg import smart_value

    from ultralytics_weighted.balance import BalanceSchedule, balance_settings, balance_stats
    from ultralytics_weighted.config import balance_strength, check_balance_args
    from ultralytics_weighted.integration import load_label_classes
    from ultralytics_weighted.report import compare_aggregations, format_aggregation_table, plot_balance

    values = {k: smart_value(v) for k, v in options.items()}
    split, fmt, plot = values.pop("split", "train"), str(values.pop("format", "table")), values.pop("plot", None)
    values.setdefault("class_balance", 1.0)
    if "data" not in values:
        raise SystemExit(f"ultralytics-weighted stats: data=... is required.\n\n{HELP}")
    if fmt not in {"table", "json"}:
        raise SystemExit(f"ultralytics-weighted stats: format={fmt} is not valid, use format=table or format=json.")
    check_balance_args(values)
    strength = balance_strength(values["class_balance"])
    floor, ramp = values.get("balance_floor", 0.0), values.get("balance_ramp", 0.0)
    classes, names, task = load_label_classes(values, split)
    rows = compare_aggregations(classes, len(names), strength, floor)
    agg = values.get("balance_agg", "mean")  # checked above by check_balance_args
    schedule = BalanceSchedule(classes, len(names), strength, agg, floor, ramp, values.get("epochs", 100))
    if fmt == "json":
        summary = {"data": str(values["data"]), "split": split, "task": task, "class_balance": strength}
        summary.update(balance_floor=floor, balance_ramp=ramp)
        print(json.dumps({**summary, "images": len(classes), "names": names, "aggregations": rows}, indent=2))
    else:
        backgrounds = sum(len(c) == 0 for c in classes)
        print(
            f"{values['data']} ({split}, {task}): {len(classes)} images, {backgrounds} backgrounds, "
            f"{balance_settings(strength, None, schedule)}; expected share of each class per epoch by aggregation:"
        )
        print("\n".join(format_aggregation_table(rows, names) + schedule.describe()))
    if plot:
        p = schedule.probabilities(schedule.full_strength_epoch)
        path = plot_balance(
            balance_stats(classes, len(names), p, schedule.epoch_size),
            names,
            plot,
            strength,
            f"{values['data']} ({split}), {balance_settings(strength, agg, schedule)}",
        )
        print(f"saved {path}", file=sys.stderr if fmt == "json" else sys.stdout)
    return 0


def demo(options: dict[str, str]) -> int:
    """Generate a small imbalanced dataset and train on it with balancing, through the stock `yolo` CLI.

    Args:
        options (dict[str, str]): `dir` (keep the dataset and run there) and any `yolo train` key=value overrides.

    Returns:
        (int): The exit code of `yolo train`.
    """
    from ultralytics_weighted.compare import yolo_command
    from ultralytics_weighted.synthetic import make_dataset

    keep = options.pop("dir", None)
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="ultralytics_weighted_demo_"))
    try:
        data = make_dataset(root / "dataset", task="detect", n_train=48, n_val=12, imgsz=96, rare_every=8)
        train = {
            "model": "yolo11n.yaml",  # built from YAML: no weights to download
            "data": str(data),
            "class_balance": "True",
            "balance_agg": "mean",
            "epochs": "3",
            "imgsz": "96",
            "batch": "16",
            "device": "cpu",
            "plots": "False",  # plotting would download a font
            "project": str(root / "runs"),
            "name": "demo",
            "exist_ok": "True",
            **options,
        }
        cmd = [*yolo_command(), "train", *(f"{k}={v}" for k, v in train.items())]
        print(f"ultralytics-weighted demo: dataset {data}\n$ {' '.join(cmd)}", flush=True)
        return subprocess.call(cmd, env={**os.environ, "YOLO_OFFLINE": "1"})
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the `ultralytics-weighted` command line.

    Args:
        argv (list[str], optional): Arguments without the program name; defaults to sys.argv[1:].

    Returns:
        (int): Exit code.
    """
    argv = sys.argv[1:] if argv is None else argv
    command, args = (argv[0], argv[1:]) if argv else ("help", [])
    if command in {"help", "-h", "--help"}:
        print(HELP)
        return 0
    if command in {"version", "--version"}:
        from ultralytics_weighted import __version__

        print(__version__)
        return 0
    if command in {"stats", "compare", "demo"}:
        from ultralytics_weighted.integration import UnsupportedUltralyticsError, check_host

        try:
            check_host()  # these commands balance: say so at once on an unsupported Ultralytics release
        except UnsupportedUltralyticsError as e:
            print(f"ultralytics-weighted {command}: {e}", file=sys.stderr)
            return 1
    if command == "stats":
        return stats(parse_key_values(args))
    if command == "compare":
        from ultralytics_weighted.compare import main as compare

        return compare(parse_key_values(args))
    if command == "patch":
        from ultralytics_weighted.patching import main as patch

        return patch(args)
    if command == "demo":
        return demo(parse_key_values(args))
    print(f"ultralytics-weighted: unknown command '{command}'.\n\n{HELP}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
