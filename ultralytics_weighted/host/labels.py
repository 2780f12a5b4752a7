# ultralytics-weighted, AGPL-3.0 license
"""A split's labels read the way training reads them (no image loaded): for `stats`, `compare` and `demo`.

Builds the dataset with Ultralytics' own builders and settings (`data`, `task`, `classes`, `fraction`, `single_cls`),
so that the commands count exactly the labels a training would balance. Imports Ultralytics only when called.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import numpy as np


def check_local_folder(data: str) -> None:
    """Refuse a classification `data` that Ultralytics would try to download although it names a local folder.

    Ultralytics looks a folder up as given, then under its datasets folder, and downloads `<name>.zip` from its assets
    when neither exists. A path (with a folder separator) that does not exist is a typo, never a download; a bare name
    is only downloaded when online (`YOLO_OFFLINE` unset).

    Args:
        data (str): The `data` value of a classification dataset.

    Raises:
        FileNotFoundError: If `data` is a path that does not exist, a bare name not found while offline, or a
            detection dataset's folder (images/ and labels/, no train/), which Ultralytics would split into a copy.
    """
    from ultralytics.utils import DATASETS_DIR, ONLINE

    text = str(data)
    if text.lower().startswith(("http:/", "https:/")) or text.lower().endswith((".zip", ".tar", ".gz")):
        return  # an archive or URL: a download (or unpacking) is what was asked for
    path = Path(text).expanduser()
    folder = path if path.is_dir() else DATASETS_DIR / path
    if folder.is_dir() and not (folder / "train").is_dir() and all((folder / k).is_dir() for k in ("images", "labels")):
        # Ultralytics would take it for unsplit class folders and copy its images into a new `<folder>_split/`
        yamls = sorted(folder.glob("*.y*ml"))
        raise FileNotFoundError(
            f"data={text} is a detection dataset (images/ and labels/), not a classification folder (train/<class>/): "
            + (
                f"give its data YAML, e.g. data={yamls[0]}."
                if yamls
                else "give a data YAML (path:, train:, val:, "
                "names:) for it: https://docs.ultralytics.com/datasets/detect"
            )
        )
    if folder.is_dir():
        return
    if len(path.parts) > 1:
        raise FileNotFoundError(f"data={text}: no such folder (a local path is never downloaded).")
    if not ONLINE:
        raise FileNotFoundError(
            f"data={text}: no such folder here or in {DATASETS_DIR}, and it is not downloaded offline (YOLO_OFFLINE)."
        )


def load_label_classes(overrides: dict, split: str = "train") -> tuple[list[np.ndarray], dict, str]:
    """Build a split's dataset the way training does and return its label classes, without loading any image.

    Args:
        overrides (dict): Ultralytics train keys, at least `data`; `task`, `classes`, `fraction`, `single_cls` count.
        split (str): 'train', 'val' or 'test'.

    Returns:
        classes (list[np.ndarray]): Class ids of each image's objects (one id per image for classification).
        names (dict): Class names by class id.
        task (str): The task the data was read for ('classify' for a folder dataset without a `task` key).
    """
    from ultralytics_weighted.host.native import core_module  # Ultralytics' own core on a patched tree

    dataset, names, task = load_label_dataset(overrides, split)
    return core_module("balanced_training").dataset_label_classes(dataset), names, task


def load_label_dataset(overrides: dict, split: str = "train") -> tuple[Any, dict, str]:
    """Build a split's dataset the way training does (labels only, no image loaded), for `load_label_classes`.

    Args:
        overrides (dict): Ultralytics train keys, at least `data`; `task`, `classes`, `fraction`, `single_cls` count.
        split (str): 'train', 'val' or 'test'.

    Returns:
        dataset (YOLODataset | ClassificationDataset): The built dataset (`im_files` and labels in training's order).
        names (dict): Class names by class id.
        task (str): The task the data was read for ('classify' for a folder dataset without a `task` key).
    """
    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_yolo_dataset
    from ultralytics.data.dataset import ClassificationDataset
    from ultralytics.data.utils import check_cls_dataset, check_det_dataset, get_split_fraction

    overrides = dict(overrides)
    data = str(overrides.get("data") or "")
    if "task" not in overrides and not data.endswith((".yaml", ".yml")):
        overrides["task"] = "classify"  # as Ultralytics: a folder (or a name without .yaml) is a classification set
    cfg = get_cfg(overrides={**overrides, "mode": "train"})
    if cfg.task == "classify":
        check_local_folder(cfg.data)
        info = check_cls_dataset(cfg.data, split=split)
        cfg.fraction = get_split_fraction(cfg.fraction, split)
        # newer releases align the class folders to the data's names; older ones take no `names`
        names = {"names": info["names"]} if "names" in inspect.signature(ClassificationDataset).parameters else {}
        dataset = ClassificationDataset(str(info[split]), cfg, augment=False, prefix=split, **names)
    else:
        info = check_det_dataset(cfg.data)
        if not info.get(split):
            raise FileNotFoundError(f"data={cfg.data} has no '{split}' split.")
        try:
            dataset = build_yolo_dataset(cfg, info[split], cfg.batch, info, mode="train" if split == "train" else "val")
        except ValueError as e:  # Ultralytics names its label cache, which it does not write when there are no labels
            if not (found := re.search(r"No labels found in (\S+)\.cache", str(e))):
                raise
            raise FileNotFoundError(
                f"no labels for the {split} images in {found.group(1)}/ (Ultralytics reads one .txt per image from a "
                "labels/ folder beside images/: https://docs.ultralytics.com/datasets)."
            ) from None
    names = {0: "item"} if cfg.single_cls else info["names"]  # the datasets map every label to 0 with single_cls
    return dataset, names, cfg.task
