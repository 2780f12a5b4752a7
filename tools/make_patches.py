#!/usr/bin/env python3
# ultralytics-weighted, AGPL-3.0 license
"""Regenerate `patches/`: class-balanced training as a `git am` series of two pull requests for an Ultralytics release.

Usage:
    python tools/make_patches.py                   # rewrite patches/*.patch and patches/series.json
    python tools/make_patches.py --check           # exit 1 if the committed patches differ from what would be written
    python tools/make_patches.py --version X       # move the series to release X (the newest supported release)
    python tools/make_patches.py --tree DIR        # also keep the patched git tree (all commits) in DIR
    python tools/make_patches.py --sdist FILE      # use this sdist instead of downloading it

The series is two pull requests: PR A, generic (`build_dataloader(..., sampler=None)` and the trainer setting the epoch
of any train sampler that has `set_epoch`, with its test), and PR B, the class-balance core on top of it. It holds no
code of its own: everything that decides how to balance lives in this package's core modules, copied byte for byte
(`COPIED`); the upstream files only call them, through small call-site diffs kept as real files in
`patches/src/call-sites/` (made against the release, applied with `git apply`, linted here with Ultralytics' ruff
settings and tested by `.ci/patched`). Deterministically (fixed author, dates, git configuration, diff options):

    1. Finds the release: the one `patches/series.json` names (`--version` moves it).
    2. Downloads its sdist with `pip download --no-deps --no-binary :all:` into a cache folder (once).
    3. Turns the sdist into a git tree (one base commit).
    4. Makes one commit per patch: copies the core modules, adds the core keys' lines to `default.yaml` (read from
       `extensions/keys.py`'s `DEFAULT_CFG_YAML`, right after `AFTER_KEY`, with `balance_agg` listing the
       core's `AGGREGATIONS`), applies the commit's call-site diffs (a diff that no longer applies stops this script
       with the file to update), copies the new upstream files kept under `patches/src/`, and lints every changed
       upstream file with `patches/src/ruff.toml`.
    5. Checks that the texts say what the patched tree does (`check_claims`): every function, class and path the commit
       messages, the docs, the default.yaml lines and `PR.md` name exists in the tree (a commit message's, at that
       commit), every `balance_agg` / `class_balance` value they name is accepted by the patched `get_cfg` and the
       core, and a setting a sentence says warns (or raises) is named in a warning (or a raising function) of the
       series' code. A claim that does not hold stops the script, also with `--check`.
    6. Writes each commit with `git format-patch` into `patches/`, plus `patches/series.json`.

The series is the plugin's core only: the keys `CORE_KEYS` (their lines, defaults and descriptions from
`DEFAULT_CFG_YAML`), the `balance_agg` choices `balance.AGGREGATIONS` (all read with `ast`; nothing of the package is
imported), the sampler and the trainer wiring. The plugin's extensions (auto, the floor/ramp/start schedule, user
weights, priors, reports) are not in it. Every run prints the library lines each pull request adds (`library_lines`,
blank lines and docstrings included, tests and docs not) and stops when the series' total exceeds MAX_LIBRARY_LINES.
Step 5 imports the patched tree in a subprocess (this script again, `--probe`), so it needs Ultralytics' dependencies.
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
from dataclasses import dataclass, replace
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
MAX_LIBRARY_LINES = 300  # the series' size budget: library lines its code patches add (tests and docs not counted)
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

    pr: str  # the pull request it belongs to: "A" (generic) or "B" (the class-balance core, on top of A)
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
            pr="A",
            subject="Add `sampler` to `build_dataloader()`, set any train sampler's epoch",
            body="""\
A trainer or an integration that wants its own order of train images (a
curriculum, hard examples, class balance) has to rebuild the loader that
`build_dataloader()` returns, copying its settings: a DataLoader's sampler
cannot be replaced once it is built.

- `build_dataloader(..., sampler=None)`: a given sampler is used instead of
  the default one (the loader's shuffling, or `DistributedSampler` /
  `ContiguousDistributedSampler` under DDP) and yields this rank's indices.
  With `sampler=None` nothing changes.
- `BaseTrainer` calls `set_epoch(epoch)` every epoch on a train sampler
  that has the method, not only under DDP, so a given sampler follows the
  trainer's epoch, also in a resumed run. The single-process default
  (the loader's `RandomSampler`) has no `set_epoch`: stock training is
  unchanged.

`tests/test_dataloader_sampler.py` tests both offline on CPU, with a tiny
dataset written by the test.
""",
            call_sites=("0001-build_dataloader-takes-a-sampler.diff",),
            new_files=("tests/test_dataloader_sampler.py",),
        ),
        Commit(
            pr="B",
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
            pr="B",
            subject="Add class-balanced sampling train arguments",
            body=f"""\
Train arguments for class-balanced sampling, off by default:

{bullets}

`check_cfg()` checks them with the existing rules: `class_balance` is a
fraction key (True = 1.0), `balance_agg` a str key; an unknown
`balance_agg` is refused when the train dataset is built.
""",
            default_keys=True,
            call_sites=("0003-check-the-keys-in-check_cfg.diff",),
        ),
        Commit(
            pr="B",
            subject="Balance the train loader when `class_balance` is set",
            body="""\
With `class_balance` on, the detect, segment, pose, obb, RT-DETR and
classify trainers draw the training images of every epoch from
class-balanced probabilities. The decisions live in one new module,
`ultralytics/data/balanced_training.py`; the trainers only call it:

- `build_dataset()` ends with `balance_train_dataset()`: in train mode the
  probabilities are computed from the labels training really uses (after
  `classes` and `fraction`), and one line logs the max/min class share
  before and per epoch. It warns when `cls_pw` is set as well.
- `get_dataloader()` passes `train_sampler()`, a `BalancedSampler` over
  them, to the `sampler` argument of `build_dataloader()`; under DDP each
  rank gets its share. The trainer sets the sampler's epoch as it does for
  any sampler with `set_epoch()`, so a resumed run continues with its
  epochs' draws. Validation loaders are untouched.
- `BaseTrainer` calls `check_balanced_loader()` once the train loader is
  built, before the first epoch. It raises NotImplementedError when
  `class_balance` is on and the train loader does not draw with a
  `BalancedSampler`, naming the trainer and the reason: `rect=True` keeps
  the images in aspect-ratio order, or the trainer's datasets are not
  balanced yet (semantic, depth, YOLO-World, YOLOE).

With `class_balance=False` (the default) every code path is the one before.
""",
            copies=("ultralytics/data/balanced_training.py",),
            call_sites=("0004-trainers-call-balanced_training.diff",),
        ),
        Commit(
            pr="B",
            subject="Add class-balanced training tests",
            body="""\
Offline CPU tests on a tiny synthetic, deliberately imbalanced dataset made
in the test: argument validation, the probabilities and the sampler (exact
floor/ceil counts, determinism, DDP shards), the balanced train loader and
its log line, validation left stock, classification, and resume. They also
check that `rect=True` and a trainer that does not balance are refused
before the first epoch. The `cls_pw` warning is tested too.
""",
            new_files=("tests/test_class_balance.py",),
        ),
        Commit(
            pr="B",
            subject="Add class-balanced training docs",
            body=f"""\
Document {listed} in the train arguments table and add a guide: when to
balance, how the weights and the sampler work, how to read the balance
log line, how to choose the strength and the aggregation
({", ".join(f"`{a}`" for a in aggregations)}), and how it relates to `cls_pw`.
""",
            new_files=(GUIDE_MD,),
            docs=True,
        ),
    ]


def core_key(key: Key, aggregations: tuple[str, ...]) -> Key:
    """Return a train key as the core states it: `balance_agg` lists the core's `AGGREGATIONS` as its values.

    `DEFAULT_CFG_YAML` is the plugin's: its `balance_agg` line also lists the values only the plugin accepts.
    """
    if key.name != "balance_agg":
        return key
    head, found, _ = key.description.partition(" i.e. ")
    if not found:
        raise SystemExit(f"make_patches: the balance_agg line lists no values after ' i.e. ': {key.line!r}")
    description = f"{head} i.e. {', '.join(aggregations)}"
    return replace(key, description=description, line=key.line.replace(key.description, description))


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


# ---------------------------------------------------------------------------------------------------------------------
# What the texts claim, checked against the patched tree


CAMEL_CASE = r"[A-Z][a-z0-9]+([A-Z][a-z0-9]*)+"  # a class name such as BalancedSampler (not YOLO, not Sampler)


def listed_values(key: Key) -> set[str]:
    """Return the values a key's description lists after ' i.e. ' (the first word of each item: 'auto (solved)')."""
    return set(values_after_ie(key.description))


def values_after_ie(sentence: str) -> list[str]:
    """Return the first word of each comma-separated item after 'i.e.' in a sentence, up to '.', ';' or '|'."""
    found = re.search(r"i\.e\. ([\w ,()]+)", sentence)
    return [item.split()[0] for item in found.group(1).split(",") if item.strip()] if found else []


def sentences(text: str) -> list[str]:
    """Split prose into sentences: paragraphs, list items, table rows and lines of YAML, then at sentence ends."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)  # fenced examples hold no prose
    blocks = re.split(r"\n\s*\n|\n(?=\s*(?:[-*|#] |\w+: ))", text)
    return [part for block in blocks for part in re.split(r"(?<=[.!?])\s+(?=[A-Z`(])", " ".join(block.split()))]


def tree_names(tree: Path, env: dict, revision: str) -> tuple[set[str], set[str], set[str]]:
    """Return the functions defined, the CamelCase names used in Python files, and the files, at a revision."""
    defs = git(tree, env, "grep", "-h", "-o", "-E", r"def \w+", revision, "--", "*.py")
    camel = git(tree, env, "grep", "-h", "-o", "-w", "-E", CAMEL_CASE, revision, "--", "*.py")
    files = git(tree, env, "ls-tree", "-r", "--name-only", revision)
    return set(re.findall(r"def (\w+)", defs)), set(re.findall(r"\w+", camel)), set(files.split())


def missing_names(text: str, names: tuple[set[str], set[str], set[str]]) -> list[str]:
    """Return the functions `name()`, classes `CamelCase` and files `ultralytics/...` a text names that do not exist.

    Only names in backticks count (code the text refers to); a class may also be one of `torch.utils.data` (`probe`).
    """
    defs, camel, files = names
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S))
    missing = []
    for span in spans:
        function = re.fullmatch(r"(?:[A-Za-z_][\w.]*\.)?([A-Za-z_]\w*)\(.*\)", span)
        if function and not span.startswith(("np.", "torch.")) and function.group(1) not in defs:
            missing.append(f"function `{span}` (no `def {function.group(1)}` in the tree)")
        elif re.fullmatch(CAMEL_CASE, span) and span not in camel:
            missing.append(f"class `{span}` (not used in the tree's Python files)")
        elif re.fullmatch(r"(?:ultralytics|tests)/[\w/.-]+\.\w+", span) and span not in files:
            missing.append(f"file `{span}`")
    return missing


def behaviour(tree: Path, paths: list[str]) -> tuple[set[str], set[str]]:
    """Return the words of the series' `LOGGER.warning(...)` calls and of its functions that raise, in `paths`."""
    warned, raising = set(), set()
    for path in paths:
        source = (tree / path).read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "warning":
                warned |= set(re.findall(r"\w+", ast.get_source_segment(source, node)))
            elif isinstance(node, ast.FunctionDef) and any(isinstance(n, ast.Raise) for n in ast.walk(node)):
                raising |= set(re.findall(r"\w+", ast.get_source_segment(source, node)))
    return warned, raising


def unbacked_behaviour(text: str, keys: set[str], warned: set[str], raising: set[str]) -> list[str]:
    """Return the settings a sentence says warn (or raise) that no warning (or raising function) of the series names."""
    problems = []
    for sentence in sentences(text):
        named = {name for name in re.findall(r"`(\w+)", sentence) if name in keys}
        if re.search(r"\bwarn", sentence, flags=re.I) and named - warned:
            problems.append(f"{sorted(named - warned)} said to warn, but no warning of the series names it: {sentence}")
        if re.search(r"\b(raise|error|refuse)", sentence, flags=re.I) and named - raising:
            problems.append(f"{sorted(named - raising)} said to raise, but no raising function names it: {sentence}")
    return problems


def claimed_values(text: str, agg_values: set[str]) -> set[tuple[str, str]]:
    """Return the (key, value) pairs a text names for the core keys.

    They are `key=value` (examples included), the values listed after 'i.e.' in a sentence about `balance_agg`, and any
    `balance_agg` value in backticks (`agg_values`: the plugin's list, so also the values only the plugin accepts).
    """
    claims = set(re.findall(r"\b(class_balance|balance_agg)=[\"']?([\w.]+)", text))
    claims |= {("balance_agg", v) for s in sentences(text) if "balance_agg" in s for v in values_after_ie(s)}
    claims |= {("balance_agg", v) for v in re.findall(r"`(\w+)`", text) if v in agg_values}
    return claims


def probe_tree(tree: Path, work: Path, claims: set[tuple[str, str]], classes: set[str]) -> tuple[list, list]:
    """Return the claimed key values the patched tree refuses and the classes torch.utils.data lacks (`--probe`)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "ULTRALYTICS_WEIGHTED_HOOK": "0", "YOLO_OFFLINE": "1"}
    env["YOLO_CONFIG_DIR"] = str(work / "config")  # the probe's Ultralytics settings, not the user's
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--probe"],
        input=json.dumps({"values": sorted(claims), "classes": sorted(classes)}),
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"make_patches: importing the patched tree failed (Ultralytics' dependencies?):\n{out.stderr}")
    result = json.loads(out.stdout.splitlines()[-1])
    if not Path(result["ultralytics"]).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"make_patches: the probe imported {result['ultralytics']}, not the patched tree")
    return result["refused"], result["unknown"]


def probe(claims: dict) -> dict:
    """Answer `probe_tree` in the process that has the patched tree on sys.path (`--probe`).

    Returns the `key=value` claims `get_cfg` or the core refuses, as (key, value, reason), and the claimed class names
    that `torch.utils.data` does not have.
    """
    import numpy as np
    import torch.utils.data
    import yaml

    import ultralytics
    from ultralytics.cfg import get_cfg
    from ultralytics.data.balance import image_probabilities

    refused = []
    for key, text in claims["values"]:
        try:
            cfg = get_cfg(overrides={key: yaml.safe_load(text)})
            image_probabilities([np.array([0]), np.array([1])], 2, cfg.balance_agg, float(cfg.class_balance))
        except Exception as e:
            refused.append((key, text, f"`{key}={text}` is refused: {type(e).__name__}: {e}"))
    unknown = [name for name in claims["classes"] if not hasattr(torch.utils.data, name)]
    return {"ultralytics": ultralytics.__file__, "refused": refused, "unknown": unknown}


def check_claims(tree: Path, env: dict, work: Path, base: str, made: list, agg_values: set[str]) -> None:
    """Stop unless the series' texts say what its code does (step 5 of the module docstring).

    The texts: each commit message (checked at its commit), the lines the series adds to non-Python files
    (default.yaml, the docs rows, the guide) and `patches/PR.md` (checked at the last commit).
    """
    final = made[-1][2]
    texts = [(f"{name} (commit message)", commit_message(commit), revision) for commit, name, revision in made]
    for path in git(tree, env, "diff", "--name-only", "--diff-filter=AM", base, final).split():
        if not path.endswith(".py"):
            added = git(tree, env, "diff", "-U0", base, final, "--", path).splitlines()
            lines = [line[1:] for line in added if line.startswith("+") and not line.startswith("+++")]
            texts.append((path, "\n".join(lines) if path == GUIDE_MD else "\n\n".join(lines), final))
    texts.append(("patches/PR.md", (PATCHES / "PR.md").read_text(encoding="utf-8"), final))
    keys = set(re.findall(r"^(\w+):", (tree / DEFAULT_YAML).read_text(encoding="utf-8"), flags=re.M))
    warned, raising = behaviour(tree, list(COPIED))
    names, problems, claims, classes = {}, [], {}, {}
    for label, text, revision in texts:
        names[revision] = names.get(revision) or tree_names(tree, env, revision)
        for problem in missing_names(text, names[revision]) + unbacked_behaviour(text, keys, warned, raising):
            if problem.startswith("class `"):  # unless torch.utils.data has it (asked in the probe)
                classes.setdefault(problem.split("`")[1], []).append(f"{label}: {problem}")
            else:
                problems.append(f"{label}: {problem}")
        for claim in claimed_values(text, agg_values):
            claims.setdefault(claim, []).append(label)
    refused, unknown = probe_tree(tree, work, set(claims), set(classes))
    problems += [f"{label}: {why}" for key, value, why in refused for label in claims[key, value]]
    problems += [problem for name in unknown for problem in classes[name]]
    if problems:
        raise SystemExit("make_patches: the texts claim what the patched tree does not do:\n  " + "\n  ".join(problems))


def check_pr_sizes(pull_requests: list[dict]) -> None:
    """Stop unless each PR's section of `patches/PR.md` states the library lines the PR adds ("**N lines of ...")."""
    text = (PATCHES / "PR.md").read_text(encoding="utf-8")
    for pr in pull_requests:
        stated = re.search(rf"^## PR {pr['name']}:.*?^\*\*(\d+) lines of library code\*\*", text, flags=re.M | re.S)
        if not stated or int(stated.group(1)) != pr["library_lines"]["total"]:
            raise SystemExit(
                f"make_patches: patches/PR.md's section '## PR {pr['name']}:' must say "
                f"'**{pr['library_lines']['total']} lines of library code**' (the lines PR {pr['name']} adds)"
            )


def build(version: str, sdist: Path, work: Path, out: Path) -> dict:
    """Build the series in `work` and write the patch files and series.json into `out`; return series.json's data."""
    aggregations = tuple(module_constant(PACKAGE / "core" / "balance.py", "AGGREGATIONS"))
    core_keys = module_constant(KEYS_MODULE, "CORE_KEYS")
    plugin_keys = train_keys(module_constant(KEYS_MODULE, "DEFAULT_CFG_YAML"))
    keys = [core_key(k, aggregations) for k in plugin_keys if k.name in core_keys]
    after_key = module_constant(KEYS_MODULE, "AFTER_KEY")
    check_sources(aggregations, keys)
    env = git_env(work / "home")
    (work / "home").mkdir()
    tree = work / "tree"
    sdist_tree(sdist, tree, env)
    base = git(tree, env, "rev-parse", "HEAD").strip()
    made = []  # (commit, patch file name, revision)
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
        made.append((commit, Path(name).name, git(tree, env, "rev-parse", "HEAD").strip()))
    check_claims(tree, env, work, base, made, listed_values(next(k for k in plugin_keys if k.name == "balance_agg")))
    pull_requests, start = [], base
    for pr in dict.fromkeys(commit.pr for commit, _, _ in made):
        part = [(commit, name, revision) for commit, name, revision in made if commit.pr == pr]
        end = [revision for commit, _, revision in part if not commit.docs][-1]
        pull_requests.append(
            {
                "name": pr,
                "patches": [name for commit, name, _ in part if not commit.docs],
                "docs": [name for commit, name, _ in part if commit.docs],
                "tests": [path for commit, _, _ in part for path in commit.new_files if path.startswith("tests/")],
                "library_lines": library_lines(tree, env, f"{start}..{end}"),
            }
        )
        start = end
    check_pr_sizes(pull_requests)
    data = {
        "ultralytics": version,
        "sdist": sdist.name,
        "sdist_sha256": hashlib.sha256(sdist.read_bytes()).hexdigest(),
        "pull_requests": pull_requests,
        "patches": [name for pr in pull_requests for name in pr["patches"]],  # every code patch, in order
        "docs": [name for pr in pull_requests for name in pr["docs"]],
        "library_lines": library_lines(tree, env, f"{base}..{start}"),
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


def report_size(data: dict) -> None:
    """Print the library lines each pull request adds and stop when the series' total exceeds MAX_LIBRARY_LINES."""
    for pr in data["pull_requests"]:
        lines = pr["library_lines"]
        files = ", ".join(f"{k.removeprefix('ultralytics/')} {v}" for k, v in lines.items() if k != "total")
        print(f"PR {pr['name']}: {lines['total']} lines of library code added to Ultralytics ({files})")
    total = data["library_lines"]["total"]
    print(f"series: {total} lines of library code in all (tests and docs not counted)")
    if total > MAX_LIBRARY_LINES:
        raise SystemExit(f"make_patches: the series adds {total} library lines, above {MAX_LIBRARY_LINES}")


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
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)  # check_claims, in the patched tree
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(json.load(sys.stdin))))
        return 0

    version = args.version or target_version()
    cache = args.cache or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ultralytics-weighted"
    sdist = args.sdist.resolve() if args.sdist else fetch_sdist(version, cache)
    if args.sdist and sdist.name != f"ultralytics-{version}.tar.gz":
        raise SystemExit(f"make_patches: {sdist.name} is not the sdist of ultralytics {version}")
    with tempfile.TemporaryDirectory(prefix="make_patches_") as tmp:
        work, out = Path(tmp), Path(tmp) / "out"
        out.mkdir()
        data = build(version, sdist, work, out)
        report_size(data)
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
