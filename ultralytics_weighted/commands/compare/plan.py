# ultralytics-weighted, AGPL-3.0 license
"""compare's plan: its options checked, each variant's train settings and data, and every variant x seed as a Run.

Everything here fails before any training: an unknown key, a bad variant or count, a variant whose keys or data
weights do not pass their checks, a variant whose own data has other val images.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ultralytics_weighted.commands.compare.runs import Run
from ultralytics_weighted.commands.compare.summary import RESAMPLES
from ultralytics_weighted.commands.compare.variants import Variant, parse_variants
from ultralytics_weighted.extensions.shares import balance_stats
from ultralytics_weighted.host.validation import CHECKPOINTS, OPERATING_CONF

FIXED_KEYS = {"seed", "name", "project", "exist_ok", "plots"}  # set per run by compare itself
COMPARE_KEYS = {
    "data",
    "variants",
    "seeds",
    "project",
    "name",
    "parallel",
    "resamples",
    "checkpoint",
    "operating_conf",
    "report",
}  # compare's own options


def _count(options: dict, key: str, default: int) -> int:
    """Pop `options[key]` as a whole number of at least 1 (`seeds`, `parallel`), with the key in any error."""
    value = options.pop(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key}={value} must be a whole number, e.g. {key}={default}.")
    if value < 1:
        raise ValueError(f"{key}={value} must be at least 1.")
    return value


@dataclass
class Options:
    """compare's options, checked: what to compare, how often, where to, and the train keys every run shares."""

    variants: list[Variant]
    data: str
    seeds: int
    parallel: int
    resamples: int
    out: Path  # the comparison's folder
    train: dict  # the `yolo train` keys of every run, less FIXED_KEYS (compare sets those per run)
    label_keys: dict  # the train keys that change which labels training reads
    checkpoint: str = "last"  # the weights each run is evaluated with (`CHECKPOINTS`)
    operating_conf: float = OPERATING_CONF  # detection's operating point: the confidence its P/R/F1 are counted at


def parse_options(options: dict) -> Options:
    """Return compare's options checked and parsed; an unknown key, a bad variant or count fails in one line."""
    from ultralytics.cfg import smart_value
    from ultralytics.utils import DEFAULT_CFG_DICT

    from ultralytics_weighted.extensions.config import check_keys

    options = dict(options)
    check_keys(options, {*DEFAULT_CFG_DICT, *COMPARE_KEYS}, "compare")  # one line, not Ultralytics' whole help
    variants = parse_variants(options.pop("variants", "none,mean,sum,auto"))  # before smart_value: 'none' is no None
    options = {k: smart_value(str(v)) if isinstance(v, str) else v for k, v in options.items()}
    data = options.pop("data", None)
    if not data:
        raise ValueError("data=... is required.")
    seeds, parallel, resamples = (
        _count(options, key, default) for key, default in (("seeds", 3), ("parallel", 1), ("resamples", RESAMPLES))
    )
    checkpoint = str(options.pop("checkpoint", "last"))
    if checkpoint not in CHECKPOINTS:
        raise ValueError(
            f"checkpoint={checkpoint} must be last (each run's final weights, the default) or best (Ultralytics' "
            "best.pt, picked on the same val split compare reports, so biased upward)."
        )
    operating_conf = options.pop("operating_conf", OPERATING_CONF)
    if isinstance(operating_conf, bool) or not isinstance(operating_conf, (int, float)) or not 0 < operating_conf < 1:
        raise ValueError(
            f"operating_conf={operating_conf} must be a confidence between 0 and 1 (exclusive), e.g. "
            f"operating_conf={OPERATING_CONF} (Ultralytics' predict default), fixed before the runs."
        )
    # absolute: Ultralytics puts a relative `project` under its runs folder and the task, not where compare looks
    project = Path(str(options.pop("project", "runs/compare"))).expanduser().resolve()
    out = project / str(options.pop("name", _default_name(str(data))))
    label_keys = {k: options[k] for k in ("task", "classes", "fraction") if k in options}
    train = {k: v for k, v in options.items() if k not in FIXED_KEYS}
    return Options(
        variants, data, seeds, parallel, resamples, out, train, label_keys, checkpoint, float(operating_conf)
    )


def _default_name(data: str) -> str:
    """Return the default name of a comparison on `data`: its dataset folder, so two datasets never share one.

    A data YAML is named after the folder that holds it (datasets/coco8/data.yaml -> coco8; a YAML that Ultralytics
    finds by name after its stem), a classification folder after itself (datasets/cls -> cls, not its parent, which
    other datasets share).

    Examples:
        >>> _default_name("datasets/coco8/data.yaml"), _default_name("coco8.yaml"), _default_name("imagenet10")
        ('coco8', 'coco8', 'imagenet10')
    """
    path = Path(data).expanduser()
    if path.is_dir() or not path.suffix:  # a classification folder, or a dataset Ultralytics names (mnist160)
        return path.resolve().name if path.is_dir() else path.name
    return (path.resolve().parent.name if path.is_file() else path.parent.name) or path.stem


def variant_settings(variants: list[Variant], data: str, train: dict) -> tuple[dict, dict]:
    """Return each variant's train settings (`get_cfg`) and its data YAML weights (`DataWeights`, or None) by name.

    Every run's keys and data weights must pass their checks before any label scan or training; an error names the
    variant.
    """
    from ultralytics.cfg import get_cfg
    from ultralytics.utils import DEFAULT_CFG_DICT

    from ultralytics_weighted.extensions.config import check_keys
    from ultralytics_weighted.host.surface import data_weights

    cfgs, weights = {}, {}
    for v in variants:
        try:
            check_keys(v.overrides, set(DEFAULT_CFG_DICT), "compare")  # one line, not Ultralytics' whole help
            cfgs[v.name] = get_cfg(overrides={"data": data, **train, **v.overrides, "mode": "train"})
            weights[v.name] = data_weights(cfgs[v.name])  # as training reads them: one line naming file and key
        except (ValueError, TypeError, SyntaxError) as e:
            raise type(e)(f"variant '{v.name}': {e}") from None
    return cfgs, weights


class Splits:
    """The data splits a comparison reads, each read once: `splits(data, split)` returns one as training reads it."""

    def __init__(self, label_keys: dict):
        """Read the splits with `label_keys` (task, classes, fraction), the train keys that select labels."""
        self.label_keys, self.read = label_keys, {}

    def __call__(self, data: str, split: str = "train") -> tuple[list[np.ndarray], list[str], dict, str]:
        """Return a data's split as training reads it: label classes, image files, class names and task."""
        from ultralytics_weighted.core.balanced_training import dataset_label_classes
        from ultralytics_weighted.host.labels import load_label_dataset

        if (data, split) not in self.read:
            dataset, names, task = load_label_dataset({"data": data, **self.label_keys}, split)
            files = getattr(dataset, "im_files", None) or [sample[0] for sample in dataset.samples]  # classify
            self.read[data, split] = dataset_label_classes(dataset), [str(f) for f in files], names, task
        return self.read[data, split]


def check_same_val(variants: list[Variant], cfgs: dict, data: str, splits: Splits) -> None:
    """Raise ValueError for a variant whose own data (`data=` part) has other val images or class names than `data`.

    compare pairs every run on the same val images, so each variant's data must validate on them.
    """
    names, val_images = splits(data)[2], splits(data, "val")[1]
    for v in variants:
        if str(variant_data := cfgs[v.name].data) == str(data):
            continue
        other_val, other_names = splits(variant_data, "val")[1:3]
        if sorted(map(os.path.realpath, other_val)) != sorted(map(os.path.realpath, val_images)):
            raise ValueError(
                f"variant '{v.name}': data={variant_data} has other val images than data={data}, and compare "
                "pairs every run on the same ones: give it the same val: split."
            )
        if other_names != names:
            raise ValueError(f"variant '{v.name}': data={variant_data} names other classes than data={data}.")


def shared_train_keys(train: dict, task: str, parallel: int) -> dict:
    """Return the train keys every run trains and validates with: a default model for the task, workers split.

    The default model is built from YAML (nothing to download); parallel runs share the machine's CPU cores for data
    loading, so each gets its share of the dataloader workers.
    """
    train = {"model": "yolo11n-cls.yaml" if task == "classify" else "yolo11n.yaml", **train}
    if parallel > 1:
        from ultralytics.utils import DEFAULT_CFG

        train["workers"] = max(1, int(train.get("workers", DEFAULT_CFG.workers)) // parallel)
    return train


def labels_digest(*splits: list[np.ndarray]) -> str:
    """Return a short digest of the label classes of one or more splits (image order and every class id count)."""
    digest = hashlib.sha256()
    for classes in splits:
        digest.update(np.array([len(c) for c in classes], dtype=np.int64).tobytes())
        digest.update(np.concatenate([np.asarray(c, dtype=np.int64).reshape(-1) for c in classes] or [[]]).tobytes())
    return digest.hexdigest()[:16]


def plan_runs(options: Options, cfgs: dict, weights: dict, splits: Splits, train: dict) -> tuple[list[Run], dict]:
    """Return every variant x seed as a labelled Run, and per variant what its balanced epochs draw (`balance_stats`).

    A run's key holds its train keys, a digest of the train and val labels, of its data YAML weights where it has
    any, and the versions; a tau variant's run shares the folder, train keys and key of its base variant's run, so
    both are trained once.
    """
    from ultralytics import __version__ as ultralytics_version

    from ultralytics_weighted import __version__

    names, val_classes = splits(options.data)[2], splits(options.data, "val")[0]
    versions = {"ultralytics": ultralytics_version, "ultralytics-weighted": __version__}
    runs, shares = [], {}
    for v in options.variants:
        own_classes, own_images = splits(cfgs[v.name].data)[:2]  # the variant's train split (its own data)
        multipliers = weights[v.name].multipliers(own_images) if weights[v.name] else None
        schedule = v.schedule(own_classes, len(names), cfgs[v.name].epochs, multipliers)
        shares[v.name] = schedule.figures if schedule else balance_stats(own_classes, len(names))
        keyed = {"labels": labels_digest(own_classes, val_classes)}
        keyed |= {"weights": weights[v.name].digest()} if weights[v.name] else {}
        for seed in range(options.seeds):
            folder = options.out / "runs" / f"{v.slug}-seed{seed}"
            args = {**train, "data": options.data, **v.overrides, "seed": seed}
            extra = {"project": str(options.out / "runs"), "name": folder.name, "exist_ok": True, "plots": False}
            key = {"args": {k: str(x) for k, x in args.items()}, **keyed, "versions": versions}
            size = shares[v.name]["epoch_size"]
            runs.append(
                Run(v, seed, folder, {**args, **extra}, key, size, "", options.checkpoint, options.operating_conf)
            )
    for k, run in enumerate(runs, 1):
        run.label = f"[{k}/{len(runs)}] {run.variant.name} seed {run.seed}"
    return runs, shares
