#!/usr/bin/env python3
# ultralytics-weighted, AGPL-3.0 license
"""Regenerate `patches/`: class-balanced training as a `git am` series against an Ultralytics release.

Usage:
    python tools/make_patches.py                   # rewrite patches/*.patch and patches/series.json
    python tools/make_patches.py --check           # exit 1 if the committed patches differ from what would be written
    python tools/make_patches.py --version X       # move the series to release X (the newest supported release)
    python tools/make_patches.py --tree DIR        # also keep the patched git tree (all commits) in DIR
    python tools/make_patches.py --sdist FILE      # use this sdist instead of downloading it

The series holds no code of its own: everything that decides how to balance lives in this package's upstream-bound
modules, copied byte for byte (`COPIED`); the upstream files only call them, through small call-site diffs kept as real
files in `patches/src/call-sites/` (made against the release, applied with `git apply`, linted here with Ultralytics'
ruff settings and tested by `.ci/patched`). Deterministically (fixed author, dates, git configuration, diff options):

    1. Finds the release: the one `patches/series.json` names (`--version` moves it).
    2. Downloads its sdist with `pip download --no-deps --no-binary :all:` into a cache folder (once).
    3. Turns the sdist into a git tree (one base commit).
    4. Makes one commit per patch: copies the upstream-bound modules, adds the train keys' lines to `default.yaml`
       (read from `extensions/keys.py`'s `DEFAULT_CFG_YAML`, right after `AFTER_KEY`), applies the commit's
       call-site diffs (a diff that no longer applies stops this script with the file to update), copies the new
       upstream files kept under `patches/src/`, and lints every changed upstream file with `patches/src/ruff.toml`.
    5. Writes each commit with `git format-patch` into `patches/`, plus `patches/series.json`.

The series is the plugin's core only: the keys `CORE_KEYS` (their lines, defaults and descriptions from
`DEFAULT_CFG_YAML`), the `balance_agg` choices `balance.AGGREGATIONS` (all read with `ast`; nothing of the package is
imported), the sampler and the trainer wiring. The plugin's extensions (auto, the floor/ramp/start schedule, user
weights, priors, reports) are not in it. Every run prints the library lines the code patches add (`library_lines`,
blank lines and docstrings included, tests and docs not) and stops when they exceed MAX_LIBRARY_LINES.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATCHES = ROOT / "patches"
SRC = PATCHES / "src"
CALL_SITES = SRC / "call-sites"
PACKAGE = ROOT / "ultralytics_weighted"
KEYS_MODULE = PACKAGE / "extensions" / "keys.py"  # the train keys (DEFAULT_CFG_YAML, CORE_KEYS, AFTER_KEY)

# Identity and dates of every commit, so that the output only depends on the inputs
AUTHOR = ("ultralytics-weighted", "ultralytics-weighted@users.noreply.github.com")
DATE = "2026-11-26T00:00:00+00:00"

# The upstream-bound modules: upstream path -> this package's file, copied byte for byte (the one source of truth;
# they import each other relatively, so the package and ultralytics/data/ hold the same code)
COPIED = {
    "ultralytics/data/balance.py": PACKAGE / "core" / "balance.py",
    "ultralytics/data/sampler.py": PACKAGE / "core" / "sampler.py",
    "ultralytics/data/balanced_training.py": PACKAGE / "core" / "balanced_training.py",
}
MAX_LIBRARY_LINES = 300  # the core's size budget: library lines the code patches add (tests and docs not counted)
DEFAULT_YAML = "ultralytics/cfg/default.yaml"

# The upstream docs are not in the sdist: the docs patch is made against a stub holding only the two table rows around
# the new ones (as in docs/en/macros/train-args.md upstream), and written with one line of context.
TRAIN_ARGS_MD = "docs/en/macros/train-args.md"
FRACTION_ROW = (
    "| `fraction`        | `float`                  | `1.0`    | Specifies the fraction of the dataset to use for training. "  # noqa: E501  (the upstream row, verbatim)
    "Allows for training on a subset of the full dataset, useful for experiments or when resources are limited."
    + " " * 137
    + " |"
)
PROFILE_ROW = (
    "| `profile`         | `bool`                   | `False`  | Enables profiling of ONNX and TensorRT speeds during "
    "training, useful for optimizing model deployment." + " " * 209 + " |"
)
DOCS_STUB = f"<!-- stub: base of the docs patch -->\n{FRACTION_ROW}\n{PROFILE_ROW}\n<!-- stub -->\n"
TABLE_WIDTHS = (17, 24, 8, 310)  # column widths of the train-args table upstream
GUIDE_MD = "docs/en/guides/class-balanced-training.md"


@dataclass(frozen=True)
class Commit:
    """One patch of the series."""

    subject: str
    body: str
    copies: tuple[str, ...] = ()  # upstream paths filled from COPIED
    default_keys: bool = False  # add the keys' lines (DEFAULT_CFG_YAML) to default.yaml
    call_sites: tuple[str, ...] = ()  # diffs in patches/src/call-sites/, applied with `git apply`
    new_files: tuple[str, ...] = ()  # upstream paths filled from patches/src/<path>
    docs: bool = False  # made against DOCS_STUB, one line of context, not applied in CI


@dataclass(frozen=True)
class Key:
    """One train key as `DEFAULT_CFG_YAML` states it: `name: default # (type) description`."""

    name: str
    default: str
    type: str
    description: str
    line: str


# ---------------------------------------------------------------------------------------------------------------------
# Values read from the package (never imported: this script must not activate the plugin or need its dependencies)


def module_constant(path: Path, name: str):
    """Return the literal value assigned to `name` at module level in `path`."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit(f"make_patches: {path.relative_to(ROOT)} has no module-level constant {name}")


def train_keys(default_cfg_yaml: str) -> list[Key]:
    """Parse the `DEFAULT_CFG_YAML` lines into keys, stopping on a line that does not follow default.yaml's style."""
    keys = []
    for line in default_cfg_yaml.splitlines():
        match = re.fullmatch(r"(\w+): (\S+) # \(([^)]+)\) (.+)", line)
        if not match:
            raise SystemExit(f"make_patches: DEFAULT_CFG_YAML line not in default.yaml style: {line!r}")
        keys.append(Key(*match.groups(), line=line + "\n"))
    return keys


def target_version() -> str:
    """Return the release the committed series is made for (`patches/series.json`); `--version` moves it."""
    series_json = PATCHES / "series.json"
    if not series_json.exists():
        raise SystemExit("make_patches: no patches/series.json yet; pass --version X (the newest supported release)")
    return json.loads(series_json.read_text(encoding="utf-8"))["ultralytics"]


# ---------------------------------------------------------------------------------------------------------------------
# The series: commit messages (prose) and which copies, keys, call-site diffs and new files each commit holds


def series(keys: list[Key], aggregations: tuple[str, ...]) -> list[Commit]:
    """Return the commits of the series, with the keys and choices read from the package filled in."""
    names = [k.name for k in keys]
    listed = ", ".join(f"`{n}`" for n in names[:-1]) + f" and `{names[-1]}`"
    bullets = "\n".join(
        textwrap.fill(f"- `{k.name}` ({k.type}, default {k.default}): {k.description}", 74, subsequent_indent="  ")
        for k in keys
    )
    return [
        Commit(
            subject="Add class-balanced image probabilities and `BalancedSampler`",
            body="""\
Rare classes are seen far less often than common ones during training, and
the only built-in remedy, `cls_pw`, reweights the classification loss: it
cannot show the model more rare objects and leaves the box, DFL, mask and
keypoint losses as they are. Users have asked for sampling-based balancing
for years (e.g. #2703, #6027, #15184, #20921).

This adds the two self-contained building blocks, with no caller yet:

- `ultralytics/data/balance.py` (numpy only, vectorized): one sampling
  probability per image. Class c weighs (total instances / instances of c)
  ** strength, an image the aggregation (mean, max, median or sum) of its
  objects' class weights; labelled images share the mass they hold under
  uniform sampling, background images keep theirs.
- `ultralytics/data/sampler.py`: `BalancedSampler`, one systematic
  (low-variance) draw per epoch, a pure function of (seed, epoch), so each
  image is drawn floor(N p) or ceil(N p) times. Under DDP every rank draws
  the same sequence and keeps a disjoint, equal share.
""",
            copies=("ultralytics/data/balance.py", "ultralytics/data/sampler.py"),
        ),
        Commit(
            subject="Add class-balanced sampling train arguments",
            body=f"""\
Train arguments for class-balanced sampling, off by default:

{bullets}

`check_cfg()` checks them with the existing rules: `class_balance` is a
fraction key (True = 1.0), `balance_agg` a str key; an unknown
`balance_agg` is refused when the train dataset is built.
""",
            default_keys=True,
            call_sites=("0002-check-the-keys-in-check_cfg.diff",),
        ),
        Commit(
            subject="Balance the train loader when `class_balance` is set",
            body="""\
With `class_balance` on, the detect, segment, pose, obb, RT-DETR and
classify trainers draw the training images of every epoch from
class-balanced probabilities. The decisions live in one new module,
`ultralytics/data/balanced_training.py`; the trainers only call it:

- `build_dataset()` ends with `balance_train_dataset()`: in train mode the
  probabilities are computed from the labels training really uses (after
  `classes` and `fraction`) and one line logs the max/min class share
  before and per epoch.
- `get_dataloader()` passes `train_sampler()`, a `BalancedSampler` over
  them, through the new `sampler` argument of `build_dataloader()`; under
  DDP each rank gets its share. Validation loaders are untouched.
- The sampler follows the trainer's epoch (also when resuming).

`check_class_balance()` runs right after `check_resume()`, before the run
folder is made: `rect=True` is an error, tasks and trainers whose datasets
are not balanced yet (semantic, depth, YOLO-World, YOLOE) raise
NotImplementedError, `single_cls=True` and `cls_pw > 0` warn. With
`class_balance=False` (the default) every code path is the one before.
""",
            copies=("ultralytics/data/balanced_training.py",),
            call_sites=("0003-trainers-call-balanced_training.diff",),
        ),
        Commit(
            subject="Add class-balanced training tests",
            body="""\
Offline CPU tests on a tiny synthetic, deliberately imbalanced dataset made
in the test: argument validation, the probabilities and the sampler (exact
floor/ceil counts, determinism, DDP shards), the balanced train loader and
its log line, validation left stock, classification, the refused and
warned settings, and resume.
""",
            new_files=("tests/test_class_balance.py",),
        ),
        Commit(
            subject="Add class-balanced training docs",
            body=f"""\
Document {listed} in the train arguments table and add a guide: when to
balance, how the weights and the sampler work, how to read the balance
table, how to choose the strength and the aggregation
({", ".join(f"`{a}`" for a in aggregations)}), and how it relates to `cls_pw`.
""",
            new_files=(GUIDE_MD,),
            docs=True,
        ),
    ]


def train_args_rows(keys: list[Key]) -> str:
    """Return the keys' rows of docs/en/macros/train-args.md, padded like the table upstream."""
    rows = []
    for i, k in enumerate(keys):
        guide = " See the [class-balanced training guide](../guides/class-balanced-training.md)." if i == 0 else ""
        types = " or ".join(f"`{t.strip()}`" for t in k.type.split("|"))
        default = f"`{k.default}`" if k.default[0].isdigit() or k.default in {"True", "False"} else f"`'{k.default}'`"
        rows.append((f"`{k.name}`", types, default, k.description[0].upper() + k.description[1:] + "." + guide))
    for row in rows:
        if any(len(cell) > width for cell, width in zip(row, TABLE_WIDTHS)):
            raise SystemExit(f"make_patches: a train-args.md cell is wider than the upstream table: {row}")
    return "".join("| " + " | ".join(c.ljust(w) for c, w in zip(row, TABLE_WIDTHS)) + " |\n" for row in rows)


# ---------------------------------------------------------------------------------------------------------------------
# Building the tree and the patches


def git_env(home: Path) -> dict[str, str]:
    """Return an environment that makes git's output independent of the user's configuration, clock and locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME=AUTHOR[0],
        GIT_AUTHOR_EMAIL=AUTHOR[1],
        GIT_AUTHOR_DATE=DATE,
        GIT_COMMITTER_NAME=AUTHOR[0],
        GIT_COMMITTER_EMAIL=AUTHOR[1],
        GIT_COMMITTER_DATE=DATE,
        LC_ALL="C",
        TZ="UTC",
    )
    return env


def git(tree: Path, env: dict, *args: str) -> str:
    """Run git in `tree` and return its stdout."""
    out = subprocess.run(["git", *args], cwd=tree, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"make_patches: git {' '.join(args)} failed:\n{out.stdout}{out.stderr}")
    return out.stdout


def fetch_sdist(version: str, cache: Path) -> Path:
    """Return the release's sdist, downloading it with pip into `cache` if it is not there yet."""
    sdist = cache / f"ultralytics-{version}.tar.gz"
    if not sdist.exists():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        out = subprocess.run([*cmd, f"ultralytics=={version}", "-d", str(cache)], capture_output=True, text=True)
        if out.returncode or not sdist.exists():
            raise SystemExit(f"make_patches: pip download of ultralytics=={version} failed:\n{out.stdout}{out.stderr}")
    return sdist


def sdist_tree(sdist: Path, tree: Path, env: dict) -> None:
    """Unpack an sdist into `tree` (without its top folder) and commit it as the base of the series."""
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(tree.parent / "unpack", **kwargs)
    shutil.move(str(tree.parent / "unpack" / top), str(tree))
    git(tree, env, "init", "-q", "-b", "main")
    git(tree, env, "add", "-A")
    git(
        tree,
        env,
        "commit",
        "-q",
        "--no-verify",
        "-m",
        f"Ultralytics {sdist.name[len('ultralytics-') : -len('.tar.gz')]} (sdist)",
    )


def insert_after_line(tree: Path, path: str, prefix: str, text: str) -> None:
    """Insert `text` after the one line of upstream file `path` that starts with `prefix`, or stop naming the file."""
    file = tree / path
    lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    if len(at) != 1:
        raise SystemExit(f"make_patches: {len(at)} lines of {path} start with {prefix!r} (expected one)")
    lines.insert(at[0] + 1, text)
    file.write_text("".join(lines), encoding="utf-8")


def apply_call_site(tree: Path, env: dict, name: str) -> None:
    """Apply one call-site diff of patches/src/call-sites/, stopping with the file to update if it does not apply."""
    diff = CALL_SITES / name
    out = subprocess.run(["git", "apply", "--check", str(diff)], cwd=tree, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(
            f"make_patches: patches/src/call-sites/{name} does not apply to this release:\n{out.stderr}"
            "Update the diff: make the edit in a tree of the release (--tree DIR) and save `git diff` of those files."
        )
    git(tree, env, "apply", str(diff))


def ruff_findings(ruff: str, root: Path, files: list[str]) -> tuple[Counter, set[str]]:
    """Return ruff's findings per (file, rule) and the files `ruff format` would leave unchanged, under `root`."""
    config = ["--no-cache", "--config", str(SRC / "ruff.toml")]
    out = subprocess.run([ruff, "check", *config, "--output-format=json", *files], cwd=root, capture_output=True)
    findings = Counter((Path(f["filename"]).relative_to(root).as_posix(), f["code"]) for f in json.loads(out.stdout))
    check = [ruff, "format", "--check", *config]
    formatted = {f for f in files if subprocess.run([*check, f], cwd=root, capture_output=True).returncode == 0}
    return findings, formatted


def lint(tree: Path, env: dict, work: Path) -> None:
    """Stop if the commit adds ruff findings or unformatted code to upstream Python files (Ultralytics' settings).

    Upstream files are compared with themselves before the commit (a newer ruff may flag lines we never touched); new
    files must be clean. The copied modules are linted as part of this package.
    """
    changed = git(tree, env, "diff", "--name-only", "--cached", "--diff-filter=AM", "HEAD").split()
    files = [f for f in changed if f.endswith(".py") and f not in COPIED]
    ruff = shutil.which("ruff")
    if not files or not ruff:
        if files:
            print("make_patches: note: ruff is not installed, changed upstream files were not linted", file=sys.stderr)
        return
    base = work / "lint-base"
    shutil.rmtree(base, ignore_errors=True)
    existed = git(tree, env, "ls-tree", "-r", "--name-only", "HEAD", "--", *files).split()
    for f in existed:
        (base / f).parent.mkdir(parents=True, exist_ok=True)
        (base / f).write_text(git(tree, env, "show", f"HEAD:{f}"), encoding="utf-8")
    before, formatted_before = ruff_findings(ruff, base, existed) if existed else (Counter(), set())
    after, formatted_after = ruff_findings(ruff, tree, files)
    added = after - before
    unformatted = [f for f in files if f not in formatted_after and (f in formatted_before or f not in existed)]
    if added or unformatted:
        raise SystemExit(
            f"make_patches: the patch adds ruff findings {dict(added)} or unformatted files {unformatted}; run "
            f"`ruff check --config patches/src/ruff.toml` on a tree made with --tree DIR and fix the call-site diff."
        )


def commit_message(commit: Commit) -> str:
    """Return the full commit message (subject, blank line, body)."""
    return f"{commit.subject}\n\n{commit.body}"


def check_sources(aggregations: tuple[str, ...], keys: list[Key]) -> None:
    """Stop if the hand-written guide's aggregation table and the package's `balance_agg` choices differ."""
    guide = (SRC / GUIDE_MD).read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(\w+)` +\|", guide, flags=re.M)) - {k.name for k in keys}
    if rows != set(aggregations):
        raise SystemExit(
            f"make_patches: the balance_agg table in patches/src/{GUIDE_MD} lists {sorted(rows)}, but "
            f"ultralytics_weighted/core/balance.py has AGGREGATIONS = {aggregations}; update the guide."
        )


def build(version: str, sdist: Path, work: Path, out: Path) -> dict:
    """Build the series in `work` and write the patch files and series.json into `out`; return series.json's data."""
    aggregations = tuple(module_constant(PACKAGE / "core" / "balance.py", "AGGREGATIONS"))
    core_keys = module_constant(KEYS_MODULE, "CORE_KEYS")
    keys = [k for k in train_keys(module_constant(KEYS_MODULE, "DEFAULT_CFG_YAML")) if k.name in core_keys]
    after_key = module_constant(KEYS_MODULE, "AFTER_KEY")
    check_sources(aggregations, keys)
    env = git_env(work / "home")
    (work / "home").mkdir()
    tree = work / "tree"
    sdist_tree(sdist, tree, env)
    base = last_code = git(tree, env, "rev-parse", "HEAD").strip()
    names, docs = [], []
    for number, commit in enumerate(series(keys, aggregations), 1):
        if commit.docs:  # not in the sdist: commit a stub (not part of the series) to diff the docs against
            (tree / TRAIN_ARGS_MD).parent.mkdir(parents=True, exist_ok=True)
            (tree / TRAIN_ARGS_MD).write_text(DOCS_STUB, encoding="utf-8")
            git(tree, env, "add", "-A")
            git(tree, env, "commit", "-q", "--no-verify", "-m", "Docs stub (not part of the series)")
            insert_after_line(tree, TRAIN_ARGS_MD, FRACTION_ROW, train_args_rows(keys))
        for path in commit.copies:
            shutil.copyfile(COPIED[path], tree / path)
        if commit.default_keys:
            insert_after_line(tree, DEFAULT_YAML, f"{after_key}: ", "".join(k.line for k in keys))
        for name in commit.call_sites:
            apply_call_site(tree, env, name)
        for path in commit.new_files:
            (tree / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SRC / path, tree / path)
        git(tree, env, "add", "-A")
        lint(tree, env, work)
        subprocess.run(
            ["git", "commit", "-q", "--no-verify", "-F", "-"],
            cwd=tree,
            env=env,
            input=commit_message(commit),
            text=True,
            check=True,
        )
        options = ["--no-signature", "--zero-commit", "--full-index", "-N", "--start-number", str(number)]
        options += ["-U1"] if commit.docs else []
        name = git(tree, env, "format-patch", *options, "-o", str(out), "-1", "HEAD").strip()
        (docs if commit.docs else names).append(Path(name).name)
        last_code = last_code if commit.docs else git(tree, env, "rev-parse", "HEAD").strip()
    lines = library_lines(tree, env, f"{base}..{last_code}")
    data = {
        "ultralytics": version,
        "sdist": sdist.name,
        "sdist_sha256": hashlib.sha256(sdist.read_bytes()).hexdigest(),
        "patches": names,
        "docs": docs,
        "library_lines": lines,
        "made_by": "python tools/make_patches.py",
    }
    (out / "series.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return data


def library_lines(tree: Path, env: dict, commits: str) -> dict[str, int]:
    """Return the lines a range of commits adds to Ultralytics' library, per file (tests/ not counted), and the total.

    Every added line counts: code, comments, docstrings and blank lines, as `git diff --numstat` counts them.
    """
    numstat = git(tree, env, "diff", "--numstat", commits).splitlines()
    added = {}
    for row in numstat:
        plus, _, path = row.split("\t")
        if path.startswith("ultralytics/"):
            added[path] = int(plus)
    return {**dict(sorted(added.items())), "total": sum(added.values())}


def report_size(lines: dict[str, int]) -> None:
    """Print the core's size (the library lines the series adds) and stop when it exceeds MAX_LIBRARY_LINES."""
    files = ", ".join(f"{k.removeprefix('ultralytics/')} {v}" for k, v in lines.items() if k != "total")
    print(f"core series: {lines['total']} lines of library code added to Ultralytics ({files}; tests and docs not)")
    if lines["total"] > MAX_LIBRARY_LINES:
        raise SystemExit(f"make_patches: the core adds {lines['total']} library lines, above {MAX_LIBRARY_LINES}")


def generated(folder: Path) -> dict[str, bytes]:
    """Return the generated files in a folder (patch files and series.json) by name."""
    files = [*folder.glob("*.patch"), folder / "series.json"]
    return {f.name: f.read_bytes() for f in files if f.exists()}


def main(argv: list[str] | None = None) -> int:
    """Regenerate or check the patch series; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if patches/ differs from what would be written")
    parser.add_argument("--version", help="Ultralytics release (default: the one in patches/series.json)")
    parser.add_argument("--sdist", type=Path, help="use this sdist (.tar.gz) instead of downloading it")
    parser.add_argument("--cache", type=Path, help="download folder (default: ~/.cache/ultralytics-weighted)")
    parser.add_argument("--tree", type=Path, help="also copy the patched git tree to this (new) folder")
    args = parser.parse_args(argv)

    version = args.version or target_version()
    cache = args.cache or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ultralytics-weighted"
    sdist = args.sdist.resolve() if args.sdist else fetch_sdist(version, cache)
    if args.sdist and sdist.name != f"ultralytics-{version}.tar.gz":
        raise SystemExit(f"make_patches: {sdist.name} is not the sdist of ultralytics {version}")
    with tempfile.TemporaryDirectory(prefix="make_patches_") as tmp:
        work, out = Path(tmp), Path(tmp) / "out"
        out.mkdir()
        data = build(version, sdist, work, out)
        report_size(data["library_lines"])
        if args.tree:
            shutil.copytree(work / "tree", args.tree, symlinks=True)
        new, old = generated(out), generated(PATCHES)
        if args.check:
            changed = sorted(n for n in new.keys() | old.keys() if new.get(n) != old.get(n))
            if changed:
                print(f"make_patches --check: patches/ is out of date ({', '.join(changed)}).", file=sys.stderr)
                print("Run `python tools/make_patches.py` and commit the result.", file=sys.stderr)
                for name in changed[:3]:
                    diff = subprocess.run(
                        ["diff", "-u", str(PATCHES / name), str(out / name)], capture_output=True, text=True
                    ).stdout
                    print("\n".join(diff.splitlines()[:40]), file=sys.stderr)
                return 1
            print(f"make_patches --check: patches/ is up to date ({len(new) - 1} patches for ultralytics {version}).")
            return 0
        for name in old.keys() - new.keys():
            (PATCHES / name).unlink()
        for name, content in new.items():
            (PATCHES / name).write_bytes(content)
        print(f"Wrote {len(data['patches']) + len(data['docs'])} patches for ultralytics {version} to {PATCHES}:")
        for name in data["patches"] + data["docs"]:
            print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
