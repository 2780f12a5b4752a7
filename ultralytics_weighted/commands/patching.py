# ultralytics-weighted, AGPL-3.0 license
"""Add class balancing to an Ultralytics tree natively, with the patch series in `patches/` (no plugin needed after).

Usage:
    ultralytics-weighted patch check=PATH    # report whether the series applies, is applied, or cannot be applied
    ultralytics-weighted patch apply=PATH    # apply it (no-op if it is already applied)
    ultralytics-weighted patch revert=PATH   # take it out again
    python -m ultralytics_weighted.commands.patching check=PATH   # the same, without `ultralytics-weighted`

key=value as every other command; the flags of earlier releases (`--check PATH`) still work.

PATH is an Ultralytics source checkout (the folder that holds `ultralytics/__init__.py`) or an installed `ultralytics`
package folder (e.g. `.venv/lib/python3.11/site-packages/ultralytics`). The series was made for one Ultralytics release
(`patches/series.json`); a tree of any other version is refused. The code patches are applied with `git apply` (it
works outside git repositories too) or, where git is missing, with `patch -p1`; all of them are checked before any is
applied. The tests patch is applied to checkouts only and the docs patch never (releases have no docs folder; apply it
to a clone of the Ultralytics repository with `git am`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ultralytics_weighted.extensions.keys import CORE_KEYS
from ultralytics_weighted.host.release import package_version

PROG = "ultralytics-weighted patch"


class PatchError(Exception):
    """A problem to report to the user in one message (exit code 1)."""


def patches_dir() -> Path:
    """Return the folder holding the patch series: inside the installed package, or `patches/` of a source checkout."""
    here = Path(__file__).resolve().parents[1]  # the package folder
    for folder in (here / "patches", here.parent / "patches"):
        if (folder / "series.json").is_file():
            return folder
    raise PatchError("the patch series is missing (no patches/series.json next to ultralytics_weighted).")


def load_series(folder: Path) -> dict:
    """Return `series.json`: the release the series is for and its patch files in order."""
    series = json.loads((folder / "series.json").read_text(encoding="utf-8"))
    missing = [name for name in series["patches"] if not (folder / name).is_file()]
    if missing:
        raise PatchError(f"patch files missing from {folder}: {', '.join(missing)}")
    return series


def locate(path: Path) -> tuple[Path, Path, str]:
    """Return (root the patch paths are relative to, ultralytics package folder, 'checkout' or 'package') for PATH."""
    path = path.expanduser().resolve()
    if not path.exists():
        raise PatchError(f"{path} does not exist.")
    if (path / "ultralytics" / "__init__.py").is_file():
        return path, path / "ultralytics", "checkout"
    if path.name == "ultralytics" and (path / "__init__.py").is_file():
        return path.parent, path, "package"
    if (path / "__init__.py").is_file() and (path / "cfg" / "default.yaml").is_file():
        raise PatchError(
            f"{path} looks like an ultralytics package folder, but it is named '{path.name}': the patch paths start "
            "with ultralytics/, so the folder must be named 'ultralytics' (rename or copy it to .../ultralytics)."
        )
    raise PatchError(
        f"{path} is not an Ultralytics tree: expected a checkout holding ultralytics/__init__.py, or an installed "
        "ultralytics package folder (python -c 'import ultralytics, os; print(os.path.dirname(ultralytics.__file__))')."
    )


def tree_version(package: Path) -> str:
    """Return `__version__` of an ultralytics package folder, read from its `__init__.py` without importing it."""
    version = package_version(package)
    if not version:
        raise PatchError(f"{package / '__init__.py'} defines no __version__.")
    return version


def file_diffs(text: str) -> list[tuple[str, str]]:
    """Split `git format-patch` output into (path, diff) pairs, one per file, without the mail header and stat."""
    chunks = re.split(r"^(?=diff --git )", text, flags=re.M)[1:]
    diffs = []
    for chunk in chunks:
        path = re.match(r"diff --git a/(\S+) b/(\S+)", chunk).group(2)
        diffs.append((path, chunk.split("\n-- \n", 1)[0]))  # drop a trailing signature, if any
    return diffs


def series_diff(folder: Path, series: dict, kind: str) -> str:
    """Return the code patches as one diff in series order, limited to what exists in a tree of this kind.

    A file two patches change (`engine/trainer.py`: PR A and PR B) appears twice, in order: `git apply` follows it
    from one patch to the next, and `patch -p1` applies the sections one after the other.
    """
    keep = ("ultralytics/",) if kind == "package" else ("ultralytics/", "tests/")
    diffs = [d for name in series["patches"] for d in file_diffs((folder / name).read_text(encoding="utf-8"))]
    return "".join(diff for path, diff in diffs if path.startswith(keep))


def apply_tool(root: Path, diff: str, check: bool, reverse: bool = False) -> subprocess.CompletedProcess:
    """Run `git apply` (or `patch -p1` without git) on `diff` in `root`; `check` only tests whether it would apply."""
    if shutil.which("git"):
        cmd = ["git", "apply", "--whitespace=nowarn"] + ["--check"] * check + ["-R"] * reverse
        # search no repository above root: git would otherwise apply the paths relative to an enclosing repository
        env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(root.parent)}
    elif not shutil.which("patch"):
        raise PatchError("neither git nor patch is installed; install one of them to apply the series.")
    elif check:  # `patch --dry-run` cannot follow a file through two sections: apply to a copy of the files instead
        with tempfile.TemporaryDirectory() as copy:
            for path in {p for p, _ in file_diffs(diff)}:
                if (root / path).is_file():
                    (Path(copy) / path).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(root / path, Path(copy) / path)
            return apply_tool(Path(copy), diff, check=False, reverse=reverse)
    else:
        cmd = ["patch", "-p1", "--forward", "--batch", "--silent"] + ["-R"] * reverse
        env = dict(os.environ)
        if reverse:  # the sections in reverse order: a file's later changes come out first
            diff = "".join(d for _, d in reversed(file_diffs(diff)))
    return subprocess.run(cmd, cwd=root, env=env, input=diff, text=True, capture_output=True)


def state(root: Path, diff: str) -> str:
    """Return 'applicable', 'applied' or 'conflict' for the series in the tree at `root`."""
    if apply_tool(root, diff, check=True).returncode == 0:
        return "applicable"
    if apply_tool(root, diff, check=True, reverse=True).returncode == 0:
        return "applied"
    return "conflict"


def run(action: str, path: Path, folder: Path | None = None) -> str:
    """Check, apply or revert the series on the tree at `path` and return the message to print."""
    folder = folder or patches_dir()
    series = load_series(folder)
    root, package, kind = locate(path)
    version, wanted = tree_version(package), series["ultralytics"]
    if version != wanted:
        raise PatchError(
            f"{package} is ultralytics {version}, but the patch series is for ultralytics {wanted}; refusing to patch "
            f"another release. Use an ultralytics {wanted} tree (pip install ultralytics=={wanted}, or git checkout "
            f"v{wanted}), or regenerate the series with `python tools/make_patches.py --version {version}`."
        )
    diff = series_diff(folder, series, kind)
    current = state(root, diff)
    what = f"{kind} {root if kind == 'checkout' else package} (ultralytics {version})"
    if current == "conflict":
        raise PatchError(f"the class-balance series does not apply to {what}: the tree has local changes.")
    if action == "check":
        return {
            "applicable": f"The class-balance series ({len(series['patches'])} patches) applies cleanly to {what}.",
            "applied": f"The class-balance series is already applied to {what}.",
        }[current]
    if (action, current) in {("apply", "applied"), ("revert", "applicable")}:
        return f"Nothing to do: the class-balance series is {'already' if current == 'applied' else 'not'} in {what}."
    out = apply_tool(root, diff, check=False, reverse=action == "revert")
    if out.returncode:
        raise PatchError(f"applying the series failed:\n{out.stdout}{out.stderr}")
    if action == "revert":
        return f"Reverted the class-balance series in {what}."
    return (
        f"Applied the class-balance series to {what}: {', '.join(f'`{k}`' for k in CORE_KEYS)} are now Ultralytics "
        "train arguments (the series is the core: the plugin's other keys and commands are not in it). An "
        "ultralytics-weighted plugin installed beside it adds its keys and table on top of the native core."
    )


ACTIONS = ("check", "apply", "revert")
PATCH_KEYS = (*ACTIONS, "patches")  # patches=DIR: another series (tests)


def parse_arguments(argv: list[str]) -> dict[str, str]:
    """Return the `patch` options from `key=value` arguments (or the earlier `--key PATH` / `--key=PATH` flags).

    Args:
        argv (list[str]): Arguments after `patch`, e.g. ['check=/path/to/ultralytics'] or ['--check', '/path'].

    Returns:
        (dict[str, str]): The options by key: exactly one of check, apply or revert, and maybe patches.

    Raises:
        ValueError: One line naming the argument that is malformed, unknown, repeated or missing.

    Examples:
        >>> parse_arguments(["check=/src/ultralytics"]), parse_arguments(["--apply", "site/ultralytics"])
        ({'check': '/src/ultralytics'}, {'apply': 'site/ultralytics'})
        >>> parse_arguments(["check"])
        Traceback (most recent call last):
        ...
        ValueError: 'check' is not a key=value argument: give check=PATH, apply=PATH or revert=PATH.
    """
    options, rest = {}, list(argv)
    while rest:
        arg = rest.pop(0)
        if arg.startswith("--"):  # the flags of earlier releases: --check PATH or --check=PATH
            key, sep, value = arg[2:].partition("=")
            if not sep and key in PATCH_KEYS:
                if not rest:
                    raise ValueError(f"'{arg}' needs a path: give {key}=PATH.")
                value = rest.pop(0)
        else:
            key, sep, value = arg.partition("=")
            if not sep or not key:
                raise ValueError(f"'{arg}' is not a key=value argument: give check=PATH, apply=PATH or revert=PATH.")
        if key not in PATCH_KEYS:
            raise ValueError(f"'{arg}' is not a valid argument: give check=PATH, apply=PATH or revert=PATH.")
        if key in options:
            raise ValueError(f"{key}= is given twice.")
        if not value.strip():
            raise ValueError(f"{key}= has no path.")
        options[key] = value.strip()
    if len(actions := [k for k in ACTIONS if k in options]) != 1:
        given = f" (given: {', '.join(f'{k}=' for k in actions)})" if actions else ""
        raise ValueError(f"give one of check=PATH, apply=PATH or revert=PATH{given}.")
    return options


def main(argv: list[str] | None = None) -> int:
    """Run the `patch` command with command line arguments `argv`; return the exit code.

    Args:
        argv (list[str], optional): Arguments after `patch`, e.g. ['check=/path/to/ultralytics'] (the earlier
            ['--check', '/path/to/ultralytics'] still works); default sys.argv[1:].

    Returns:
        (int): 0 on success, 1 if the series cannot be checked or applied (the reason is printed), 2 on usage errors
            (one line on stderr).
    """
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    if {"help", "-h", "--help"} & set(argv):
        print(__doc__.strip())
        return 0
    try:
        options = parse_arguments(argv)
    except ValueError as e:
        print(f"{PROG}: {e} See `ultralytics-weighted patch --help`.", file=sys.stderr)
        return 2
    action = next(k for k in ACTIONS if k in options)
    patches = Path(options["patches"]) if "patches" in options else None
    try:
        print(run(action, Path(options[action]), patches))
    except PatchError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
