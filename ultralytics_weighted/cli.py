# ultralytics-weighted, AGPL-3.0 license
"""Command line `ultralytics-weighted COMMAND [key=value ...]`, in Ultralytics' key=value style.

Commands:
    demo      generate a small imbalanced dataset and run a short balanced `yolo train` on CPU
    version   print the package version
    help      print this help
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HELP = """\
Usage: ultralytics-weighted COMMAND [key=value ...]

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


def yolo_command() -> list[str]:
    """Return the command that runs the stock `yolo` CLI of this interpreter's Ultralytics."""
    script = Path(sys.executable).parent / "yolo"
    if script.is_file():
        return [str(script)]
    found = shutil.which("yolo")
    return [found] if found else [sys.executable, "-c", "from ultralytics.cfg import entrypoint; entrypoint()"]


def demo(options: dict[str, str]) -> int:
    """Generate a small imbalanced dataset and train on it with balancing, through the stock `yolo` CLI.

    Args:
        options (dict[str, str]): `dir` (keep the dataset and run there) and any `yolo train` key=value overrides.

    Returns:
        (int): The exit code of `yolo train`.
    """
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
    if command == "demo":
        return demo(parse_key_values(args))
    print(f"ultralytics-weighted: unknown command '{command}'.\n\n{HELP}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
