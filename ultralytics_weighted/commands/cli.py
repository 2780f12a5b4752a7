# ultralytics-weighted, AGPL-3.0 license
"""Command line `ultralytics-weighted COMMAND [key=value ...]`, in Ultralytics' key=value style.

Commands:
    stats     compare the aggregations on a dataset's labels, without training
    compare   train variants x seeds with otherwise identical settings and report per-class AP
    adjust    restore the data's class prior in a balanced model (tau), as a new checkpoint
    patch     check, apply or revert the upstream patch series on an Ultralytics source tree
    demo      train stock and balanced on a generated long-tail dataset and compare per-class AP
    version   print the package version
    help      print this help
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import sys

USAGE = "Usage: ultralytics-weighted COMMAND [key=value ...]"
COMMAND_HELP = {
    "stats": """\
  stats data=PATH [class_balance=1.0] [split=train] [format=table|json] [plot=FILE.png] [balance_agg=mean]
        [balance_floor=0] [balance_ramp=0] [balance_start=0] [balance_rfs_threshold=0.001] [epochs=100] [task=...]
        [classes=...] [fraction=...] [single_cls=...]
      Read the split's labels the way training does (data.yaml for detect/segment/pose/obb, or a classification
      folder) and print one row per aggregation (none, mean, max, median, sum, auto, rfs): max/min class share,
      effective sample size, coverage, largest expected draws of one image per epoch, each class's expected share,
      and the images per epoch where an aggregation grows the epoch (rfs: round(sum of the LVIS repeat factors)).
      format=json prints the same as JSON; plot=FILE.png saves the class balance plot for balance_agg (into an
      existing folder). Rows and plot apply the weights of the data YAML (class_weights, ...) as training does. Only the
      report goes to stdout (Ultralytics' own messages go to stderr), so `format=json | python -m json.tool` works.
""",
    "compare": """\
  compare data=PATH [variants=none,mean,sum,auto] [seeds=3] [parallel=1] [resamples=1000] [project=runs/compare]
        [name=NAME] [checkpoint=last | best] [model=yolo11n.yaml | yolo11n-cls.yaml] [epochs=...] [imgsz=...]
        [any yolo train key=value]
  compare report=FOLDER
      Train every variant x seed (parallel=N runs at once; a finished run with the same settings and data is skipped
      when re-run), validate each run's final weights (checkpoint=best: best.pt) on the val split (detection: AP50,
      AP50-95; classification folder: per-class recall, top-1, accuracy at the train class frequencies and balanced
      accuracy) and write compare.md, compare.csv, compare.json and compare.png: per class each variant's mean ± std
      over seeds, its paired Δ to the first variant with a 95% interval (a t-interval over seeds widened by the val
      images' noise, resamples=N) and the verdict better / worse / not established (Holm across classes), the
      decision rule per variant, the τ dial of balanced classifiers, and the training time and images trained.
      report=FOLDER recomputes the reports of a finished comparison from its folder, without training. A variant
      is none (stock), an aggregation (mean, max, median, sum, auto, rfs), an aggregation@strength (mean@0.5), a
      train key=value (cls_pw=1.0), or such parts joined by + (mean+balance_floor=1, rfs+balance_rfs_threshold=0.01).
      A part tau=T evaluates the base variant's trained runs with the class prior corrected by T as `adjust` does
      (mean+tau=1 = the runs of mean, corrected; nothing is trained again).
""",
    "adjust": """\
  adjust model=PATH tau=T [save=PATH] [exist_ok=True]
      Write a copy of a checkpoint trained with class_balance whose class logits get tau * log(share before / share
      trained) per class, in the bias of the head's class-logit layers: tau=1 restores the data's class prior (overall
      accuracy first), tau=0 keeps the balanced one (rare classes first). The copy goes to save=PATH or next to the
      model (best.pt -> best-tau1.pt), never over it nor over an existing file unless exist_ok=True, and works with
      stock Ultralytics; adjusting it again adds taus.
""",
    "patch": """\
  patch check=PATH | apply=PATH | revert=PATH
      Add class balancing natively to an Ultralytics checkout or installed package with the patch series in
      patches/ (refused when the tree's version differs from the release the series was made for). The flags of
      earlier releases (--check PATH) still work.
""",
    "demo": """\
  demo [dir=PATH] [images=400] [epochs=6] [balance_agg=mean] [any yolo train key=value]
      Generate a synthetic long-tail detection dataset ('rare' in every 10th image), train stock and balanced
      (class_balance=True) with otherwise identical settings on CPU, and print the balance table and the per-class
      AP50 of both. Results go to runs/demo, runs/demo2, ... (or dir=PATH: an empty or new folder, or an earlier
      demo's, which is replaced). About 2 minutes on 2 CPU cores.
""",
    "version": """\
  version
      Print the ultralytics-weighted version.
""",
    "help": """\
  help [COMMAND]
      Print this help, or one command's.
""",
}
HELP = f"""\
{USAGE}

{"".join(COMMAND_HELP.values())}
Training itself needs no command from this package: `yolo train data=mine.yaml class_balance=True balance_agg=sum`.
"""
STATS_KEYS = ("split", "format", "plot")  # stats' own keys; every other key is an Ultralytics train key


def command_help(command: str) -> str:
    """Return the usage line and the help of one command (the whole help for an unknown one)."""
    return f"{USAGE}\n\n{COMMAND_HELP[command]}" if command in COMMAND_HELP else HELP


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


@contextlib.contextmanager
def report_to_stdout():
    """Send everything printed or logged inside the block to stderr, and yield the real stdout for the report.

    Ultralytics logs to stdout (label scans, its settings banner on first use) and so do its progress bars; a
    command whose output is meant for a pipe or a file writes only that to stdout.

    Yields:
        (TextIO): The stdout the report is written to.
    """
    report = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        from ultralytics.utils import LOGGER  # a first import inside the block binds Ultralytics' log to stderr

        moved = [h for h in LOGGER.handlers if isinstance(h, logging.StreamHandler) and h.stream is report]
        for handler in moved:
            handler.setStream(sys.stderr)
        try:
            yield report
        finally:
            for handler in moved:
                handler.setStream(report)


def check_plot_path(plot: str) -> None:
    """Refuse a `plot=` file that cannot be written as an image: an unknown suffix or a folder that does not exist.

    Raises:
        ValueError: If the suffix is not an image format matplotlib writes, or the path is a folder.
        FileNotFoundError: If the file's folder does not exist (it is not made: a typo would go unnoticed).
    """
    from pathlib import Path

    from matplotlib.backend_bases import FigureCanvasBase

    path, formats = Path(plot), FigureCanvasBase.get_supported_filetypes()
    if path.is_dir():
        raise ValueError(f"plot={plot} is a folder; give a file, e.g. plot={path / 'balance.png'}.")
    if path.suffix.lower().lstrip(".") not in formats:
        raise ValueError(
            f"plot={plot}: '{path.suffix or path.name}' is not an image file type; use plot=FILE.png (or "
            f"{', '.join(sorted(f'.{f}' for f in formats if f != 'png'))})."
        )
    if not path.absolute().parent.is_dir():
        raise FileNotFoundError(f"plot={plot}: the folder {path.absolute().parent} does not exist (it is not made).")


def stats(options: dict[str, str]) -> int:
    """Print the balance figures of every aggregation for a dataset, as a table or JSON; errors as one line.

    Args:
        options (dict[str, str]): `data` (required), `class_balance`, `split`, `format`, `plot`, `balance_agg` and other
            Ultralytics train keys that change which labels are used (`task`, `classes`, `fraction`, `single_cls`).

    Returns:
        (int): Exit code: 0, or 2 with a one-line message on stderr for bad arguments or data.
    """
    try:
        with report_to_stdout() as report:
            return _stats(options, report)
    except (OSError, ValueError, TypeError, SyntaxError) as e:  # OSError: also a failed download (ConnectionError)
        message = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(e)).split())  # Ultralytics colours and wraps its messages
        print(f"ultralytics-weighted stats: {message}", file=sys.stderr)
        return 2


def _stats(options: dict[str, str], report) -> int:
    """Run `stats`, writing the report to `report` (see `stats`)."""
    from ultralytics.cfg import DEFAULT_CFG_DICT, get_cfg, smart_value

    from ultralytics_weighted.core.balanced_training import dataset_label_classes
    from ultralytics_weighted.extensions.config import balancing_on, check_balance_args, check_keys
    from ultralytics_weighted.extensions.keys import DEFAULTS
    from ultralytics_weighted.extensions.report import (
        balance_settings,
        compare_aggregations,
        format_aggregation_table,
        nothing_to_balance,
        plot_balance,
        rfs_warning,
        schedule_lines,
    )
    from ultralytics_weighted.extensions.schedule import schedule_from_args
    from ultralytics_weighted.host.labels import load_label_dataset
    from ultralytics_weighted.host.surface import data_weights

    values = {k: smart_value(v) for k, v in options.items()}
    split, fmt, plot = values.pop("split", "train"), str(values.pop("format", "table")), values.pop("plot", None)
    values.setdefault("class_balance", 1.0)
    if "data" not in values:
        raise ValueError("data=... is required (see `ultralytics-weighted stats --help`).")
    if fmt not in {"table", "json"}:
        raise ValueError(f"format={fmt} is not valid, use format=table or format=json.")
    check_keys(values, {*DEFAULT_CFG_DICT, *STATS_KEYS}, "stats")
    check_balance_args(values)
    if plot:
        check_plot_path(str(plot))  # before the label scan
    cfg = get_cfg(overrides={**values, "mode": "train"}) if split == "train" else None
    weights = data_weights(cfg) if cfg and str(cfg.data).endswith((".yaml", ".yml")) else None  # before the labels
    dataset, names, task = load_label_dataset(values, split)
    classes = dataset_label_classes(dataset)
    multipliers = weights.multipliers(dataset.im_files) if weights else None
    # without epochs=, the schedule of a training with Ultralytics' default epochs
    schedule = schedule_from_args({"epochs": DEFAULT_CFG_DICT["epochs"], **values}, classes, len(names), multipliers)
    strength, agg = schedule.strength, schedule.agg
    rows = compare_aggregations(  # as training draws
        classes, len(names), strength, schedule.floor, multipliers, schedule.threshold
    )
    p = schedule.balanced_probabilities
    note = nothing_to_balance(classes, names)  # instead of a table of identical rows
    # with the data YAML's weights, class_balance=0 still draws by them (the rows show it): not "every image once"
    off = (
        None
        if balancing_on(values, weights)
        else "class_balance=0 is off: training samples every image once per epoch, as here."
    )
    # every report has an rfs row: warn when it repeats nothing (on stderr, beside the scan log: stdout is the report)
    sys.stderr.writelines(f"WARNING ⚠️ {w}\n" for w in filter(None, [rfs_warning(classes, names, schedule.threshold)]))
    if fmt == "json":
        summary = {"data": str(values["data"]), "split": split, "task": task, "class_balance": strength}
        keys = ("balance_floor", "balance_ramp", "balance_start", "balance_rfs_threshold")
        summary.update({k: values.get(k, DEFAULTS[k]) for k in keys})
        summary.update(epochs=schedule.epochs, stock_epochs=schedule.start_epoch)
        rows = [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in rows]
        result = {**summary, "images": len(classes), "names": names, "note": note or off, "aggregations": rows}
        if weights:
            result["weights"] = weights.summary(classes, dataset.im_files, p, strength)
        print(json.dumps(result, indent=2, allow_nan=False), file=report)
    else:
        backgrounds = sum(len(c) == 0 for c in classes)
        head = f"{values['data']} ({split}, {task}): {len(classes)} images, {backgrounds} backgrounds, "
        if note:  # no table follows: the header says why
            print(f"{head}{balance_settings(strength, None, schedule)}: {note}", file=report)
        else:
            print(
                f"{head}{balance_settings(strength, None, schedule)}; expected share of each class per epoch by "
                "aggregation:",
                file=report,
            )
            print("\n".join(format_aggregation_table(rows, names) + schedule_lines(schedule)), file=report)
        if off and not note:
            print(off, file=report)
        if weights:
            print("\n".join(weights.report(classes, dataset.im_files, p, strength)), file=report)
    if plot:
        path = plot_balance(
            schedule.figures,
            names,
            plot,
            strength,
            f"{values['data']} ({split}), {balance_settings(strength, agg, schedule)}",
        )
        print(f"saved {path}", file=sys.stderr if fmt == "json" else report)
    return 0


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
        print(command_help(args[0]) if args else HELP)
        return 0
    if command in COMMAND_HELP and {"help", "-h", "--help"} & set(args):
        print(command_help(command))
        return 0
    if command in {"version", "--version"}:
        from ultralytics_weighted import __version__

        print(__version__)
        return 0
    if command in {"stats", "compare", "demo"}:
        from ultralytics_weighted.host.release import UnsupportedUltralyticsError, check_host

        try:
            check_host()  # these commands balance: say so at once on an unsupported Ultralytics release
        except UnsupportedUltralyticsError as e:
            print(f"ultralytics-weighted {command}: {e}", file=sys.stderr)
            return 1
    return _run_command(command, args)


def _run_command(command: str, args: list[str]) -> int:
    """Run one command (stats, compare, adjust, patch, demo) with its arguments and return its exit code.

    Each command's module is imported only when it runs, so that `help` and `version` start fast.
    """
    if command == "stats":
        return stats(parse_key_values(args))
    if command == "compare":
        from ultralytics_weighted.commands.compare import main as compare

        return compare(parse_key_values(args))
    if command == "adjust":
        from ultralytics_weighted.commands.adjust import main as adjust

        return adjust(parse_key_values(args))
    if command == "patch":
        from ultralytics_weighted.commands.patching import main as patch

        return patch(args)
    if command == "demo":
        from ultralytics_weighted.commands.demo import main as demo

        return demo(parse_key_values(args))
    print(f"ultralytics-weighted: unknown command '{command}'.\n\n{HELP}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
