#!/usr/bin/env python3
# ultralytics-weighted, AGPL-3.0 license
"""Regenerate `patches/`: class-balanced training as a `git am` series against an Ultralytics release.

Usage:
    python tools/make_patches.py                   # rewrite patches/*.patch and patches/series.json
    python tools/make_patches.py --check           # exit 1 if the committed patches differ from what would be written
    python tools/make_patches.py --tree DIR        # also keep the patched git tree (all commits) in DIR
    python tools/make_patches.py --sdist FILE      # use this sdist instead of downloading it

What it does, deterministically (fixed author, dates, git configuration and diff options):
    1. Finds the release: the one `patches/series.json` names (`--version X` moves the series to the newest supported
       release X).
    2. Downloads its sdist with `pip download --no-deps --no-binary :all:` into a cache folder (once).
    3. Turns the sdist into a git tree (one base commit).
    4. Makes one commit per logical change: copies `ultralytics_weighted/balance.py` and `ultralytics_weighted/sampler.py`
       byte for byte, applies the anchored search/replace edits below to existing upstream files (each anchor must occur
       exactly once, otherwise this script stops and names the edit), and copies the new upstream files kept under
       `patches/src/`.
    5. Writes each commit with `git format-patch` into `patches/`, plus `patches/series.json` (release, sdist hash,
       order of the patches).

Values that must not drift are read from the package when this runs: the `default.yaml` lines from
`ultralytics_weighted.config.DEFAULT_CFG_YAML` and the `balance_agg` choices from `ultralytics_weighted.balance.AGGREGATIONS`
(both parsed with `ast`, nothing is imported).
"""

# ruff: noqa: E501  (the edits below quote upstream lines verbatim as anchors)

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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATCHES = ROOT / "patches"
SRC = PATCHES / "src"
PACKAGE = ROOT / "ultralytics_weighted"

# Identity and dates of every commit, so that the output only depends on the inputs
AUTHOR = ("ultralytics-weighted", "ultralytics-weighted@users.noreply.github.com")
DATE = "2026-11-26T00:00:00+00:00"

# Files copied byte for byte from this package into the upstream tree (the one source of truth)
COPIED = {"ultralytics/data/balance.py": PACKAGE / "balance.py", "ultralytics/data/sampler.py": PACKAGE / "sampler.py"}

# The upstream docs are not in the sdist: the docs patch is made against a stub holding only the two table rows around
# the new ones (as in docs/en/macros/train-args.md upstream), and written with one line of context.
TRAIN_ARGS_MD = "docs/en/macros/train-args.md"
FRACTION_ROW = (
    "| `fraction`        | `float`                  | `1.0`    | Specifies the fraction of the dataset to use for training. "
    "Allows for training on a subset of the full dataset, useful for experiments or when resources are limited."
    + " " * 137
    + " |"
)
PROFILE_ROW = (
    "| `profile`         | `bool`                   | `False`  | Enables profiling of ONNX and TensorRT speeds during "
    "training, useful for optimizing model deployment." + " " * 209 + " |"
)
DOCS_STUB = f"<!-- stub: base of the docs patch -->\n{FRACTION_ROW}\n{PROFILE_ROW}\n<!-- stub -->\n"
GUIDE_MD = "docs/en/guides/class-balanced-training.md"


@dataclass(frozen=True)
class Edit:
    """Replace `anchor`, which must occur exactly once in upstream file `path`, by `text`."""

    path: str
    anchor: str
    text: str


def after(path: str, anchor: str, text: str) -> Edit:
    """Insert `text` right after the unique `anchor`."""
    return Edit(path, anchor, anchor + text)


def before(path: str, anchor: str, text: str) -> Edit:
    """Insert `text` right before the unique `anchor`."""
    return Edit(path, anchor, text + anchor)


@dataclass(frozen=True)
class Commit:
    """One patch of the series."""

    subject: str
    body: str
    edits: tuple[Edit, ...] = ()
    copies: tuple[str, ...] = ()  # upstream paths filled from COPIED
    new_files: tuple[str, ...] = ()  # upstream paths filled from patches/src/<path>
    docs: bool = False  # made against DOCS_STUB, one line of context, not applied in CI


# ---------------------------------------------------------------------------------------------------------------------
# Values read from the package (never imported: this script must not activate the plugin or need its dependencies)


def module_constant(path: Path, name: str):
    """Return the literal value assigned to `name` at module level in `path`."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit(f"make_patches: {path.relative_to(ROOT)} has no module-level constant {name}")


def target_version() -> str:
    """Return the release the committed series is made for (`patches/series.json`); `--version` moves it."""
    series_json = PATCHES / "series.json"
    if not series_json.exists():
        raise SystemExit("make_patches: no patches/series.json yet; pass --version X (the newest supported release)")
    return json.loads(series_json.read_text(encoding="utf-8"))["ultralytics"]


# ---------------------------------------------------------------------------------------------------------------------
# The series. Edits use the upstream text of the release verbatim as anchors; a new release that changed one of them
# stops this script with the file and anchor to look at.


def series(aggregations: tuple[str, ...], default_cfg_yaml: str) -> list[Commit]:
    """Return the commits of the series, with the values that come from the package filled in."""
    choices = ", ".join(aggregations)
    agg_doc = ", ".join(f"`{a}`" for a in aggregations)
    agg_bullet = textwrap.fill(
        f"- `balance_agg`: how an image's objects combine their class weights, one of {choices} (default mean).",
        width=74,
        subsequent_indent="  ",
    )
    return [
        Commit(
            subject="Add class-balanced image weights and `BalancedSampler`",
            body="""\
Rare classes are seen far less often than common ones during training, and
the only built-in remedy, `cls_pw`, reweights the classification loss: it
cannot show the model more rare objects and leaves the box, DFL, mask and
keypoint losses as they are. Users have asked for sampling-based balancing
for years (e.g. #2703, #6027, #15184, #20921).

This adds the two self-contained building blocks, with no caller yet:

- `ultralytics/data/balance.py` (numpy only, vectorized): one sampling
  probability per image. Class c weighs (total instances / instances of c)
  ** strength, an image the aggregation (`balance_agg`) of its objects'
  class weights; labelled images share the mass they hold under uniform
  sampling, background images keep theirs. `balance_stats()` gives the expected class
  shares per epoch, the effective sample size and the image coverage.
- `ultralytics/data/sampler.py`: `BalancedSampler`, one systematic
  (low-variance) draw of len(dataset) indices per epoch, a pure function of
  (seed, epoch), so each image is drawn floor(N p) or ceil(N p) times. Under
  DDP every rank draws the same sequence and keeps a disjoint, equal share.
""",
            copies=tuple(COPIED),
        ),
        Commit(
            subject="Add `class_balance` and `balance_agg` train arguments",
            body=f"""\
Two train arguments for class-balanced sampling, off by default:

- `class_balance`: False (default), True (= 1.0, inverse class frequency) or
  a strength in [0.0, 1.0] (0.5 = square root, as in LVIS repeat-factor
  sampling).
{agg_bullet}

`check_cfg()` validates both before any data is read, in the style of the
existing checks, so `balance_agg=foo` or `class_balance=2` fail with the
valid values named. The choices are kept in `CFG_BALANCE_AGGREGATIONS` so
that validating the config does not import the data pipeline.
""",
            edits=(
                after("ultralytics/cfg/default.yaml", _line_of("fraction: "), default_cfg_yaml),
                after(
                    "ultralytics/cfg/__init__.py",
                    'CFG_STR_KEYS = frozenset({"optimizer", "split", "copy_paste_mode", "auto_augment"})\n',
                    "# 'balance_agg' choices, the image weight aggregations of ultralytics.data.balance\n"
                    f"CFG_BALANCE_AGGREGATIONS = {py_tuple(aggregations)}\n",
                ),
                after(
                    "ultralytics/cfg/__init__.py",
                    "        - Fraction keys use [0.0, 1.0]; dataset fraction also accepts counts and [train, val, test] "
                    "lists.\n",
                    "        - `class_balance` takes a bool or a strength in [0.0, 1.0]; `balance_agg` one of "
                    "`CFG_BALANCE_AGGREGATIONS`.\n",
                ),
                Edit(
                    "ultralytics/cfg/__init__.py",
                    '    typed_keys = CFG_FLOAT_KEYS | CFG_FRACTION_KEYS | CFG_INT_KEYS | CFG_BOOL_KEYS | CFG_STR_KEYS | {"scale", "compile"}\n',  # noqa: E501
                    "    typed_keys = CFG_FLOAT_KEYS | CFG_FRACTION_KEYS | CFG_INT_KEYS | CFG_BOOL_KEYS | CFG_STR_KEYS\n"
                    '    typed_keys |= {"scale", "compile", "class_balance", "balance_agg"}\n',
                ),
                before(
                    "ultralytics/cfg/__init__.py",
                    '            elif k == "compile" and not isinstance(v, (bool, str)):',
                    CHECK_CFG_BRANCHES,
                ),
            ),
        ),
        Commit(
            subject="Balance the train loader when `class_balance` is set",
            body="""\
With `class_balance` on, the detect, segment, pose, obb, RT-DETR and
classify trainers draw the training images of every epoch from
class-balanced probabilities:

- `build_dataset()` calls the dataset's `set_class_balance()` in train
  mode (`YOLODataset`, which RT-DETR's dataset extends, and
  `ClassificationDataset`). It computes the probabilities from the labels
  training really uses (after `classes` and `fraction`) and logs a table:
  instances, images, share before and expected share per epoch of each
  class, with the imbalance, effective sample size and coverage.
- `get_dataloader()` gives the train loader the trainer's
  `class_balance_sampler()`, a `BalancedSampler`, through the new `sampler`
  argument of `build_dataloader()`; under DDP each rank gets its share.
  Validation loaders are untouched.
- MixUp, CutMix, CopyPaste and Mosaic with `cache=ram` pick their partner
  images from the same probabilities instead of uniformly. Mosaic's buffer
  of recent images already holds balanced draws and is kept.
- The trainer calls `set_epoch()` on the balanced sampler every epoch (not
  only under DDP), so resumed runs continue with the draws of their epochs.

Settings it cannot honor are reported before training: `rect=True` is an
error (rectangular batches fix the image order), tasks and trainers whose
datasets are not balanced yet (semantic, depth, YOLO-World, YOLOE) raise
NotImplementedError, `single_cls=True` warns and trains without balancing,
and `cls_pw > 0` warns that loss weighting and sampling compensate twice.
With `class_balance=False` (the default) every code path is the one before
this change.
""",
            edits=wiring_edits(quoted_or(aggregations)),
        ),
        Commit(
            subject="Add class-balanced training tests",
            body="""\
Offline CPU tests on a tiny synthetic, deliberately imbalanced dataset made
in the test: argument validation, the weights and the sampler (exact
floor/ceil counts, determinism, DDP shards), the balanced train loader and
its log table, weighted mix partners with `cache=ram`, validation left
stock, classification, the refused and warned settings, and resume.
""",
            new_files=("tests/test_class_balance.py",),
        ),
        Commit(
            subject="Add class-balanced training docs",
            body=f"""\
Document `class_balance` and `balance_agg` in the train arguments table and
add a guide: when to balance, how the weights and the sampler work, how to
read the balance table, how to choose the strength and the aggregation
({agg_doc}), and how it relates to `cls_pw`.
""",
            edits=(after(TRAIN_ARGS_MD, FRACTION_ROW + "\n", train_args_rows(aggregations)),),
            new_files=(GUIDE_MD,),
            docs=True,
        ),
    ]


def _line_of(prefix: str) -> str:
    """Anchor on the whole line starting with `prefix` (resolved against the file when the edit is applied)."""
    return f"\0line:{prefix}"


def py_tuple(items: tuple[str, ...]) -> str:
    """Return a tuple of strings as ruff formats it, e.g. '("mean", "max")'."""
    return "(" + ", ".join(f'"{i}"' for i in items) + ("," if len(items) == 1 else "") + ")"


def quoted_or(names: tuple[str, ...]) -> str:
    """Return "'a', 'b' or 'c'" for docstrings."""
    quoted = [f"'{n}'" for n in names]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(quoted) > 1 else quoted[0]


def train_args_rows(aggregations: tuple[str, ...]) -> str:
    """Return the two rows of docs/en/macros/train-args.md, padded like the table upstream."""
    rows = [
        (
            "`class_balance`",
            "`bool` or `float`",
            "`False`",
            "Draws training images so that rare classes are seen about as often as common ones: `True` (= `1.0`) "
            "by inverse class frequency, a value in `0.0 - 1.0` sets the strength (`0.5` = square root). Training only, "
            "see the [class-balanced training guide](../guides/class-balanced-training.md).",
        ),
        (
            "`balance_agg`",
            "`str`",
            "`'mean'`",
            "How an image's objects combine their class weights when `class_balance` is on: "
            + ", ".join(f"`{a}`" for a in aggregations)
            + ". `max` lets one rare object lift the whole image; `sum` also favors crowded images.",
        ),
    ]
    widths = (17, 24, 8, 310)
    for row in rows:
        if any(len(cell) > width for cell, width in zip(row, widths)):
            raise SystemExit(f"make_patches: a train-args.md cell is wider than the upstream table: {row}")
    return "".join("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |\n" for row in rows)


CHECK_CFG_BRANCHES = """\
            elif k == "class_balance":  # True/False, or a sampling strength in [0.0, 1.0]
                if not isinstance(v, FLOAT_OR_INT):
                    if hard:
                        raise TypeError(
                            f"'{k}={v}' is of invalid type {type(v).__name__}. "
                            f"Valid '{k}' types are bool (i.e. '{k}=True') or float (i.e. '{k}=0.5')."
                        )
                    cfg[k] = v = float(v)
                if not isinstance(v, bool) and not (0.0 <= v <= 1.0):
                    raise ValueError(
                        f"'{k}={v}' is an invalid value. Valid '{k}' values are True, False or a strength between 0.0 "
                        "and 1.0 (1.0 = inverse class frequency, 0.5 = square root)."
                    )
            elif k == "balance_agg":
                if not isinstance(v, str):
                    if hard:
                        raise TypeError(
                            f"'{k}={v}' is of invalid type {type(v).__name__}. "
                            f"Valid '{k}' values are {', '.join(CFG_BALANCE_AGGREGATIONS)}."
                        )
                    cfg[k] = v = str(v)
                if v not in CFG_BALANCE_AGGREGATIONS:
                    raise ValueError(
                        f"'{k}={v}' is an invalid value. Valid '{k}' values are {', '.join(CFG_BALANCE_AGGREGATIONS)}."
                    )
"""

DATASET_HELPER = r'''

def log_class_balance(
    classes: list[np.ndarray], names: dict, probabilities: np.ndarray, strength: float, agg: str, task: str = "detect"
) -> None:
    """Log what class-balanced sampling does: each class's share before and per epoch, and its cost in diversity.

    Args:
        classes (list[np.ndarray]): Class ids of each image's objects, in dataset order.
        names (dict): Class names by class id.
        probabilities (np.ndarray): Sampling probability of each image.
        strength (float): Balancing strength (`class_balance`).
        agg (str): Aggregation of the image weights (`balance_agg`).
        task (str): Training task; classification has one label per image.
    """
    lines = balance_report(classes, names, probabilities, strength, agg, task)
    prefix = colorstr("balance: ")
    LOGGER.info("\n".join(prefix + line for line in lines))
'''

YOLO_DATASET_METHODS = r'''
    def set_class_balance(self, strength: float, agg: str = "mean") -> None:
        """Draw training images, and the partner images of mix augmentations, by class-balanced probabilities.

        Class c weighs (total instances / instances of c) ** strength and an image the `agg` of its objects' class
        weights, computed from the labels in use (after `classes` filtering and `fraction`). Labelled images share the
        probability mass they hold under uniform sampling in proportion to their weights; background images keep
        theirs. The trainer draws every epoch from `image_probabilities` with a `BalancedSampler`, and MixUp, CutMix,
        CopyPaste and Mosaic (with `cache='ram'`) pick their partners from them through `balanced_indexes`.

        Args:
            strength (float): Balancing strength in (0.0, 1.0]; 1.0 is inverse class frequency, 0.5 its square root.
            agg (str): How an image's objects combine their class weights: {AGG_CHOICES}.
        """
        classes = [label["cls"].reshape(-1) for label in self.labels]
        self.image_probabilities = image_weights(classes, len(self.data["names"]), agg, float(strength))
        self.cumulative_probabilities = np.cumsum(self.image_probabilities)
        if RANK in {-1, 0}:
            log_class_balance(classes, self.data["names"], self.image_probabilities, float(strength), agg)

    def balanced_indexes(self, n: int) -> np.ndarray:
        """Draw `n` image indexes with replacement by the class-balanced probabilities, e.g. mix augmentation partners.

        Args:
            n (int): Number of indexes to draw.

        Returns:
            (np.ndarray): Image indexes of shape (n,).
        """
        u = np.random.random(n) * self.cumulative_probabilities[-1]
        return np.searchsorted(self.cumulative_probabilities, u, side="right").clip(max=len(self.labels) - 1)
'''

CLASSIFICATION_DATASET_METHOD = r'''
    def set_class_balance(self, strength: float, agg: str, names: dict[int, str]) -> None:
        """Draw training images by class-balanced probabilities: class c weighs (images / images of c) ** strength.

        Args:
            strength (float): Balancing strength in (0.0, 1.0]; 1.0 is inverse class frequency, 0.5 its square root.
            agg (str): Aggregation of the class weights in an image; with one label per image every value is the same.
            names (dict[int, str]): Class names by class index.
        """
        classes = [np.array([sample[1]]) for sample in self.samples]
        self.image_probabilities = image_weights(classes, len(names), agg, float(strength))
        if RANK in {-1, 0}:
            log_class_balance(classes, names, self.image_probabilities, float(strength), agg, task="classify")
'''

TRAINER_METHODS = '''\
    def check_class_balance(self):
        """Refuse or warn about settings that class-balanced train sampling (`class_balance`) cannot honor.

        Raises:
            NotImplementedError: If the task or this trainer's datasets cannot be balanced yet.
            ValueError: If `rect=True` is combined with `class_balance`.
        """
        tasks = ("classify", "detect", "obb", "pose", "segment")
        if self.args.task not in tasks or not self.supports_class_balance:
            raise NotImplementedError(
                f"class_balance is not supported for task={self.args.task} with {type(self).__name__} yet. "
                f"Balanced training works for {', '.join(tasks)} (YOLO and RT-DETR models); "
                "set class_balance=False to train this model."
            )
        if self.args.rect:
            raise ValueError(
                "'rect=True' cannot be combined with class_balance: rectangular training fixes each image's batch (and "
                "shape) by aspect ratio, while balanced sampling draws images in a new order every epoch. "
                "Use rect=False to balance, or class_balance=False to keep rectangular batches."
            )
        if RANK in {-1, 0}:
            prefix = colorstr("balance: ")
            if self.args.single_cls:
                LOGGER.warning(
                    f"{prefix}'single_cls=True' merges all classes into one, so class_balance has no effect."
                )
            if self.args.cls_pw:
                LOGGER.warning(
                    f"{prefix}class_balance (sampling) and cls_pw={self.args.cls_pw} (loss weighting) both favour rare "
                    "classes; together they compensate twice. Consider cls_pw=0.0."
                )

    def class_balance_sampler(self, dataset, rank: int = -1) -> BalancedSampler | None:
        """Return the train sampler of a class-balanced dataset, or None for a dataset that is not balanced.

        Args:
            dataset (Dataset): Train dataset, balanced by its `set_class_balance` method when `class_balance` is set.
            rank (int): Process rank; -1 without DDP. Under DDP the sampler takes the world size and global rank from
                torch.distributed, so that every rank draws the same sequence and keeps its own share.

        Returns:
            (BalancedSampler | None): A sampler drawing from `dataset.image_probabilities`, seeded with `args.seed`.
        """
        probabilities = getattr(dataset, "image_probabilities", None)
        if probabilities is None:
            return None
        replicas, sampler_rank = (1, 0) if rank == -1 else (None, None)
        return BalancedSampler(probabilities, self.args.seed, replicas, sampler_rank)

'''


def balance_train_dataset(*extra: str) -> str:
    """Return the lines that balance a train dataset in a trainer's build_dataset() and return it."""
    args = ", ".join(["self.args.class_balance", "self.args.balance_agg", *extra])
    return f"""\
        if mode == "train" and self.args.class_balance and not self.args.single_cls:
            dataset.set_class_balance({args})
        return dataset
"""


SUPPORTS_NOT = "\n    supports_class_balance = False  # multi-modal and grounding datasets are not class-balanced yet\n"
SUPPORTS = "\n    supports_class_balance = True  # build_dataset() applies args.class_balance to train datasets\n"


def wiring_edits(agg_choices: str) -> tuple[Edit, ...]:
    """Return the edits that wire class-balanced sampling into the trainers, datasets and augmentations."""
    return (
        # ultralytics/data/dataset.py: YOLODataset (RTDETRDataset is a subclass) and ClassificationDataset balance
        before(
            "ultralytics/data/dataset.py",
            "from .base import BaseDataset\n",
            "from .balance import balance_report, image_weights\n",
        ),
        Edit(
            "ultralytics/data/dataset.py",
            "from ultralytics.utils import LOCAL_RANK, LOGGER, NUM_THREADS, TQDM, IterableSimpleNamespace, colorstr\n",
            "from ultralytics.utils import LOCAL_RANK, LOGGER, NUM_THREADS, RANK, TQDM, IterableSimpleNamespace, colorstr\n",
        ),
        before("ultralytics/data/dataset.py", "\n\nclass YOLODataset(BaseDataset):\n", DATASET_HELPER),
        after(
            "ultralytics/data/dataset.py",
            "        use_obb (bool): Indicates if oriented bounding boxes should be used.\n"
            "        data (dict): Dataset configuration dictionary.\n",
            "        image_probabilities (np.ndarray | None): Class-balanced sampling probability of each image, if set.\n",
        ),
        after(
            "ultralytics/data/dataset.py",
            "        close_mosaic: Disable mosaic, copy_paste, mixup and cutmix augmentations and build transformations.\n",
            "        set_class_balance: Draw training images and mix partners by class-balanced probabilities.\n"
            "        balanced_indexes: Draw image indexes by the class-balanced probabilities.\n",
        ),
        after(
            "ultralytics/data/dataset.py",
            "    format_class = Format\n",
            "    image_probabilities = None  # set by set_class_balance() for class-balanced training\n",
        ),
        after(
            "ultralytics/data/dataset.py",
            "        hyp.cutmix = 0.0\n        self.transforms = self.build_transforms(hyp)\n",
            YOLO_DATASET_METHODS.replace("{AGG_CHOICES}", agg_choices),
        ),
        after(
            "ultralytics/data/dataset.py",
            "        prefix (str): Colored prefix for logging.\n",
            "        image_probabilities (np.ndarray | None): Class-balanced sampling probability of each image, if set.\n",
        ),
        Edit(
            "ultralytics/data/dataset.py",
            """        cache_images: Decode images into one contiguous RAM cache.
    \"\"\"

    def __init__(
""",
            """        cache_images: Decode images into one contiguous RAM cache.
        set_class_balance: Draw training images by class-balanced probabilities.
    \"\"\"

    image_probabilities = None  # set by set_class_balance() for class-balanced training

    def __init__(
""",
        ),
        after(
            "ultralytics/data/dataset.py",
            '    def __len__(self) -> int:\n        """Return the total number of samples in the dataset."""\n'
            "        return len(self.samples)\n",
            CLASSIFICATION_DATASET_METHOD,
        ),
        # ultralytics/data/augment.py: mix partners follow the dataset's class-balanced probabilities when it has them
        Edit(
            "ultralytics/data/augment.py",
            """            >>> print(index)  # 7
        \"\"\"
        return random.randint(0, len(self.dataset) - 1)
""",
            """            >>> print(index)  # 7
        \"\"\"
        if getattr(self.dataset, "image_probabilities", None) is not None:  # class-balanced training
            return int(self.dataset.balanced_indexes(1)[0])
        return random.randint(0, len(self.dataset) - 1)
""",
        ),
        after(
            "ultralytics/data/augment.py",
            """        if self.buffer_enabled:  # select images from buffer
            return random.choices(list(self.dataset.buffer), k=self.n - 1)
""",
            """        elif getattr(self.dataset, "image_probabilities", None) is not None:  # class-balanced training
            return self.dataset.balanced_indexes(self.n - 1).tolist()
""",
        ),
        # ultralytics/data/build.py: build_dataloader() takes a sampler
        Edit(
            "ultralytics/data/build.py",
            """    device: torch.device | str = "cuda",
) -> InfiniteDataLoader:""",
            """    device: torch.device | str = "cuda",
    sampler: torch.utils.data.Sampler | None = None,
) -> InfiniteDataLoader:""",
        ),
        after(
            "ultralytics/data/build.py",
            "        device (torch.device | str, optional): Device used by the dataloader consumer.\n",
            "        sampler (torch.utils.data.Sampler, optional): Sampler of the dataset indices, e.g. a `BalancedSampler`\n"
            "            holding this rank's share for class-balanced training. If None, indices are shuffled (or split\n"
            "            across DDP ranks) according to `shuffle` and `rank`.\n",
        ),
        Edit(
            "ultralytics/data/build.py",
            """    sampler = (
        None
        if rank == -1
        else distributed.DistributedSampler(dataset, shuffle=shuffle, seed=seed)
        if shuffle
        else ContiguousDistributedSampler(dataset)
    )
""",
            """    if sampler is None:
        sampler = (
            None
            if rank == -1
            else distributed.DistributedSampler(dataset, shuffle=shuffle, seed=seed)
            if shuffle
            else ContiguousDistributedSampler(dataset)
        )
""",
        ),
        # ultralytics/engine/trainer.py: checks before training, the balanced sampler, set_epoch every epoch
        before(
            "ultralytics/engine/trainer.py",
            "from ultralytics.data.utils import check_cls_dataset, check_det_dataset, convert_ndjson_to_yolo_if_needed\n",
            "from ultralytics.data.sampler import BalancedSampler\n",
        ),
        after(
            "ultralytics/engine/trainer.py",
            "        plots (dict): Dictionary of plots.\n",
            "        supports_class_balance (bool): Whether build_dataset() applies `class_balance` to train datasets.\n",
        ),
        after(
            "ultralytics/engine/trainer.py",
            "        build_optimizer: Construct an optimizer for the model.\n",
            "        check_class_balance: Refuse or warn about settings that class-balanced sampling cannot honor.\n"
            "        class_balance_sampler: Return the train sampler of a class-balanced dataset.\n",
        ),
        after(
            "ultralytics/engine/trainer.py",
            """        >>> trainer = DetectionTrainer(overrides={"model": "yolo26n.pt", "data": "coco8.yaml", "epochs": 1})
        >>> trainer.train()
    \"\"\"
""",
            "\n    supports_class_balance = False  # set by trainers whose build_dataset() applies args.class_balance\n",
        ),
        after(
            "ultralytics/engine/trainer.py",
            "        self.check_resume(overrides or {})\n",
            "        if self.args.class_balance:\n            self.check_class_balance()\n",
        ),
        Edit(
            "ultralytics/engine/trainer.py",
            """            self._model_train()
            if RANK != -1:
                self.train_loader.sampler.set_epoch(epoch)
""",
            """            self._model_train()
            if RANK != -1 or isinstance(self.train_loader.sampler, BalancedSampler):  # balanced draws follow epochs
                self.train_loader.sampler.set_epoch(epoch)
""",
        ),
        before("ultralytics/engine/trainer.py", "    def check_resume(self, overrides):\n", TRAINER_METHODS),
        # ultralytics/models/yolo/detect/train.py: detect, segment, pose and obb
        after(
            "ultralytics/models/yolo/detect/train.py",
            """        >>> trainer = DetectionTrainer(overrides=args)
        >>> trainer.train()
    \"\"\"
""",
            SUPPORTS,
        ),
        Edit(
            "ultralytics/models/yolo/detect/train.py",
            """        Returns:
            (Dataset): YOLO dataset object configured for the specified mode.
        \"\"\"
        gs = max(int(unwrap_model(self.model).stride.max()), 32)
        return build_yolo_dataset(self.args, img_path, batch, self.data, mode=mode, rect=mode == "val", stride=gs)
""",
            """        Returns:
            (Dataset): YOLO dataset object configured for the specified mode, class-balanced for training with
                `class_balance`.
        \"\"\"
        gs = max(int(unwrap_model(self.model).stride.max()), 32)
        dataset = build_yolo_dataset(self.args, img_path, batch, self.data, mode=mode, rect=mode == "val", stride=gs)
"""
            + balance_train_dataset(),
        ),
        Edit(
            "ultralytics/models/yolo/detect/train.py",
            """            drop_last=self.args.compile and mode == "train",
            device=self.device,
        )
""",
            """            drop_last=self.args.compile and mode == "train",
            device=self.device,
            sampler=self.class_balance_sampler(dataset, rank) if shuffle else None,
        )
""",
        ),
        # ultralytics/models/rtdetr/train.py: RT-DETR builds its own dataset
        Edit(
            "ultralytics/models/rtdetr/train.py",
            "        return RTDETRDataset(\n            img_path=img_path,\n",
            "        dataset = RTDETRDataset(\n            img_path=img_path,\n",
        ),
        after(
            "ultralytics/models/rtdetr/train.py",
            """            else get_split_fraction(self.args.fraction, "train" if mode == "train" else self.args.split),
        )
""",
            balance_train_dataset(),
        ),
        # ultralytics/models/yolo/classify/train.py: one label per image
        after(
            "ultralytics/models/yolo/classify/train.py",
            """        >>> trainer = ClassificationTrainer(overrides=args)
        >>> trainer.train()
    \"\"\"
""",
            SUPPORTS,
        ),
        Edit(
            "ultralytics/models/yolo/classify/train.py",
            """        return ClassificationDataset(
            img_path,
            self.args,
            augment=mode == "train",
            prefix="train" if mode == "train" else self.args.split,
            names=self.data["names"],
        )
""",
            """        dataset = ClassificationDataset(
            img_path,
            self.args,
            augment=mode == "train",
            prefix="train" if mode == "train" else self.args.split,
            names=self.data["names"],
        )
"""
            + balance_train_dataset('self.data["names"]'),
        ),
        Edit(
            "ultralytics/models/yolo/classify/train.py",
            """        loader = build_dataloader(
            dataset, batch_size, self.args.workers, rank=rank, drop_last=drop_last, device=self.device
        )
""",
            """        sampler = self.class_balance_sampler(dataset, rank) if mode == "train" else None
        loader = build_dataloader(
            dataset, batch_size, self.args.workers, rank=rank, drop_last=drop_last, device=self.device, sampler=sampler
        )
""",
        ),
        # YOLO-World and YOLOE build multi-modal datasets that are not balanced yet
        after(
            "ultralytics/models/yolo/world/train.py",
            """        >>> trainer = WorldTrainer(overrides=args)
        >>> trainer.train()
    \"\"\"
""",
            SUPPORTS_NOT,
        ),
        after(
            "ultralytics/models/yolo/yoloe/train.py",
            """        build_dataset: Build YOLO dataset with multi-modal support for training.
    \"\"\"
""",
            SUPPORTS_NOT,
        ),
    )


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


def apply_edit(tree: Path, edit: Edit) -> None:
    """Apply one anchored edit, stopping with a clear message unless its anchor occurs exactly once."""
    file = tree / edit.path
    if not file.exists():
        raise SystemExit(f"make_patches: {edit.path} does not exist in the upstream tree")
    text = file.read_text(encoding="utf-8")
    anchor, replacement = edit.anchor, edit.text
    if anchor.startswith("\0line:"):  # the whole line starting with a prefix
        prefix = anchor[len("\0line:") :]
        lines = [line for line in text.splitlines(keepends=True) if line.startswith(prefix)]
        anchor = lines[0] if len(lines) == 1 else anchor
        replacement = anchor + replacement[len(edit.anchor) :]
    count = text.count(anchor)
    if count != 1:
        shown = edit.anchor.replace("\0line:", "line starting with ").splitlines()[0]
        raise SystemExit(
            f"make_patches: anchor found {count} times in {edit.path} (expected once): {shown!r}...\n"
            "The upstream file changed; update this edit in tools/make_patches.py."
        )
    file.write_text(text.replace(anchor, replacement), encoding="utf-8")


def commit_message(commit: Commit) -> str:
    """Return the full commit message (subject, blank line, body)."""
    return f"{commit.subject}\n\n{commit.body}"


def check_sources(aggregations: tuple[str, ...]) -> None:
    """Stop if the hand-written guide's aggregation table and the package's `balance_agg` choices differ."""
    guide = (SRC / GUIDE_MD).read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(\w+)` +\|", guide, flags=re.M)) - {"class_balance", "balance_agg"}
    if rows != set(aggregations):
        raise SystemExit(
            f"make_patches: the balance_agg table in patches/src/{GUIDE_MD} lists {sorted(rows)}, but "
            f"ultralytics_weighted/balance.py has AGGREGATIONS = {aggregations}; update the guide."
        )


def build(version: str, sdist: Path, work: Path, out: Path) -> dict:
    """Build the series in `work` and write the patch files and series.json into `out`; return series.json's data."""
    aggregations = tuple(module_constant(PACKAGE / "balance.py", "AGGREGATIONS"))
    default_cfg_yaml = module_constant(PACKAGE / "config.py", "DEFAULT_CFG_YAML")
    check_sources(aggregations)
    if unlisted := [a for a in aggregations if a not in default_cfg_yaml]:
        print(
            f"make_patches: note: DEFAULT_CFG_YAML (config.py) does not mention balance_agg {unlisted}", file=sys.stderr
        )
    env = git_env(work / "home")
    (work / "home").mkdir()
    tree = work / "tree"
    sdist_tree(sdist, tree, env)
    names, docs = [], []
    for number, commit in enumerate(series(aggregations, default_cfg_yaml), 1):
        if commit.docs:  # not in the sdist: commit a stub (not part of the series) to diff the docs against
            (tree / TRAIN_ARGS_MD).parent.mkdir(parents=True, exist_ok=True)
            (tree / TRAIN_ARGS_MD).write_text(DOCS_STUB, encoding="utf-8")
            git(tree, env, "add", "-A")
            git(tree, env, "commit", "-q", "--no-verify", "-m", "Docs stub (not part of the series)")
        for path in commit.copies:
            shutil.copyfile(COPIED[path], tree / path)
        for edit in commit.edits:
            apply_edit(tree, edit)
        for path in commit.new_files:
            (tree / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SRC / path, tree / path)
        git(tree, env, "add", "-A")
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
    data = {
        "ultralytics": version,
        "sdist": sdist.name,
        "sdist_sha256": hashlib.sha256(sdist.read_bytes()).hexdigest(),
        "patches": names,
        "docs": docs,
        "made_by": "python tools/make_patches.py",
    }
    (out / "series.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return data


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
