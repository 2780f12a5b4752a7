# ultralytics-weighted, AGPL-3.0 license
"""Weights from the data YAML: per-class `class_weights`, per-source `source_weights`, per-image `image_weights` file.

A plugin extension: it reads and checks the three keys of a detection data YAML (dataset properties live there, as
`names` and `train:` do) and returns plain numpy multipliers for `BalanceSchedule(..., multipliers=...)`, which passes
them to `weighted_probabilities`. The values are parsed by `extensions/data_weights.py` (numpy only); this module
resolves the YAML, its `path:`, `train:` sources and their images through Ultralytics. Everything is checked before
any label scan or run folder (`DataWeights.load`, called from the trainer's `check_resume` wrapper and by `stats`);
each problem is one line naming the file, the key and what is wrong.

    class_weights: [1, 2, 1]            # or {person: 2} or {1: 2}: a factor on each class's target share (unnamed 1)
    source_weights: [1, 1]              # or {images/own: 3}: each train: source's share of the draws (unnamed 1)
    image_weights: weights.csv          # CSV 'image,weight', image paths relative to the dataset root `path:`

A weight 0 excludes (a class, a source, the images a CSV lists) as long as something is left to draw; an image the CSV
does not list keeps weight 1, so a CSV of zeros is an exclusion list. An image listed twice with different weights is
refused (which one was meant?); repeating the same weight is accepted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ultralytics_weighted.extensions.data_weights import (
    not_all_zero,
    parse_class_weights,
    parse_source_weights,
    read_image_weights,
)
from ultralytics_weighted.extensions.keys import DATA_YAML_KEYS


def image_files(sources: list[str]) -> list[list[str]]:
    """Return the image files of each `train:` source, as Ultralytics' datasets expand them (no labels read)."""
    from ultralytics.data.base import BaseDataset

    expand = SimpleNamespace(prefix="", fraction=1.0)  # get_img_files reads only these two attributes
    return [BaseDataset.get_img_files(expand, source) for source in sources]


@dataclass
class DataWeights:
    """The weights a data YAML sets, checked, as plain numpy arrays and resolved paths.

    Attributes:
        file (str): The data YAML.
        names (dict): Class names by class id.
        class_multipliers (np.ndarray | None): Factor per class (`class_weights`), or None.
        sources (list[str]): The resolved `train:` paths, in order.
        source_shares (np.ndarray | None): Share of the draws per source (`source_weights`, summing to 1), or None.
        image_file (str | None): The resolved per-image weights file, or None.
        image_table (dict): Resolved image path -> weight from that file.
    """

    file: str
    names: dict
    class_multipliers: np.ndarray | None
    sources: list[str]
    source_shares: np.ndarray | None
    image_file: str | None
    image_table: dict

    @classmethod
    def load(cls, data: str | Path) -> DataWeights | None:
        """Read and check the weight keys of a data YAML; None if it sets none (or is not a YAML file).

        Raises:
            ValueError: One line naming the file, the key and what is wrong.
        """
        from ultralytics.data.utils import check_det_dataset
        from ultralytics.utils import YAML

        file = str(data)
        if not file.endswith((".yaml", ".yml")) or not Path(file).is_file():
            return None
        raw = YAML.load(file)
        if not any(k in raw for k in DATA_YAML_KEYS):
            return None
        info = check_det_dataset(file)  # resolves `path:` and the train sources as training does
        names, train = info["names"], info["train"]
        sources = [str(s) for s in (train if isinstance(train, list) else [train])]
        weights = cls(
            file,
            names,
            parse_class_weights(file, raw.get("class_weights"), names),
            sources,
            parse_source_weights(file, raw.get("source_weights"), sources, raw.get("train"), Path(info["path"])),
            *cls._train_image_weights(file, raw.get("image_weights"), sources, Path(info["path"])),
        )
        if weights.image_table and weights.source_shares is not None:  # a drawn source needs an image to draw
            for source, share, files in zip(sources, weights.source_shares, image_files(sources)):
                if share > 0 and files and not any(weights.image_table.get(str(Path(f).resolve()), 1.0) for f in files):
                    raise ValueError(
                        f"{file}: image_weights: every image of {source} weighs 0 in {weights.image_file}, but "
                        "source_weights draws from it; give that source weight 0 instead."
                    )
        return weights

    @staticmethod
    def _train_image_weights(file: str, value, sources: list[str], root: Path) -> tuple[str | None, dict]:
        """Read the `image_weights` file (`read_image_weights`) and check that it lists only train images."""
        key = "image_weights"
        path, table = read_image_weights(file, value, root)
        if path is None:
            return None, {}
        known = {str(Path(f).resolve()) for files in image_files(sources) for f in files}
        if unknown := [image for image in table if image not in known]:
            raise ValueError(
                f"{file}: {key}: {len(unknown)} image(s) in {path} are not in the train set, e.g. {unknown[0]}."
            )
        if len(table) == len(known):  # every train image listed: their weights alone decide (unlisted ones weigh 1)
            not_all_zero(file, key, np.array(list(table.values()) or [1.0]))
        return path, table

    def digest(self) -> str:
        """Return a short digest of the weights as training applies them: what `compare` keys a run by.

        It covers the class factors, the train sources and their shares, and every image's weight from the file, so a
        changed weight (in the YAML or in the weights file) trains again, while comments, formatting or source weights
        scaled alike (the same shares) do not.

        Examples:
            >>> w = DataWeights("data.yaml", {0: "a", 1: "b"}, np.array([1.0, 2.0]), ["images/train"], None, None, {})
            >>> len(w.digest()), w.digest() == w.digest()
            (16, True)
            >>> w.digest() == DataWeights(**{**vars(w), "class_multipliers": np.array([1.0, 3.0])}).digest()
            False
        """
        digest = hashlib.sha256()
        for values in (self.class_multipliers, self.source_shares):
            digest.update(b"none" if values is None else np.asarray(values, dtype=np.float64).tobytes())
        digest.update(json.dumps([self.sources, sorted(self.image_table.items())]).encode())
        return digest.hexdigest()[:16]

    def multipliers(self, im_files: list[str]) -> dict:
        """Return `weighted_probabilities` keyword arguments for a built train dataset's images (`dataset.im_files`)."""
        out = {}
        if self.class_multipliers is not None:
            out["class_multipliers"] = self.class_multipliers
        resolved = [str(Path(f).resolve()) for f in im_files]
        if self.image_table:
            out["image_multipliers"] = np.array([self.image_table.get(f, 1.0) for f in resolved])
        if self.source_shares is not None:
            out["sources"], out["source_shares"] = self.source_index(resolved), self.source_shares
        return out

    def source_index(self, resolved: list[str]) -> np.ndarray:
        """Return the `train:` position of each resolved image path (the first source listing it)."""
        owner = {}
        for k, files in reversed(list(enumerate(image_files(self.sources)))):
            owner.update((str(Path(f).resolve()), k) for f in files)
        return np.array([owner[f] for f in resolved], dtype=np.int64)

    def summary(self, classes: list[np.ndarray], im_files: list[str], p: np.ndarray, strength: float) -> dict:
        """Return where the weights came from and what they do, as numbers (`stats format=json`, and `report`).

        Args:
            classes (list[np.ndarray]): Class ids of each train image's objects, in dataset order.
            im_files (list[str]): The train images, in the same order.
            p (np.ndarray): The sampling probabilities of the balanced epochs (with these weights applied).
            strength (float): Balancing strength (`class_balance`).

        Returns:
            (dict): 'file', 'keys' (the weight keys set); 'image_weights' ('file', 'listed', 'images') if set; 'classes'
                if `class_weights` is set: per class present 'name', 'weight', 'share_before' (instances), 'target'
                (`weighted_target_shares`) and 'share_per_epoch' (under p); 'sources' if `source_weights` is set: per
                source 'source', 'images', 'share_before' (of the images), 'target' (its share) and 'share_per_epoch'.
        """
        from ultralytics_weighted.core.balance import flatten_labels
        from ultralytics_weighted.extensions.schedule import weighted_target_shares
        from ultralytics_weighted.extensions.shares import class_shares

        cls, lengths = flatten_labels(classes)
        nc = len(self.names)
        keys = [
            k
            for k, on in zip(DATA_YAML_KEYS, (self.class_multipliers, self.source_shares, self.image_file))
            if on is not None
        ]
        out = {"file": self.file, "keys": keys}
        if self.image_file:
            listed = sum(str(Path(f).resolve()) in self.image_table for f in im_files)
            out["image_weights"] = {"file": self.image_file, "listed": listed, "images": len(im_files)}
        if self.class_multipliers is not None:
            before, after = class_shares(cls, lengths, nc), class_shares(cls, lengths, nc, p)
            target = weighted_target_shares(classes, nc, strength, p, **self.multipliers(im_files))
            out["classes"] = [
                {
                    "name": str(self.names[c]),
                    "weight": float(self.class_multipliers[c]),
                    "share_before": float(before[c]),
                    "target": float(target[c]),
                    "share_per_epoch": float(after[c]),
                }
                for c in np.flatnonzero(before)
            ]
        if self.source_shares is not None:
            index = self.source_index([str(Path(f).resolve()) for f in im_files])
            images = np.bincount(index, minlength=len(self.sources))
            drawn = np.bincount(index, weights=p, minlength=len(self.sources))
            out["sources"] = [
                {
                    "source": source,
                    "images": int(images[k]),
                    "share_before": float(images[k] / images.sum()),
                    "target": float(self.source_shares[k]),
                    "share_per_epoch": float(drawn[k]),
                }
                for k, source in enumerate(self.sources)
            ]
        return out

    def report(self, classes: list[np.ndarray], im_files: list[str], p: np.ndarray, strength: float) -> list[str]:
        """Return the lines shown after the balance table: `summary` as text.

        Per class: its weight, share before (instances, stock sampling), target (`weighted_target_shares`) and the
        expected share per epoch under p; per source: images, share of the images, target and expected share of the
        draws.
        """
        summary = self.summary(classes, im_files, p, strength)
        lines = [f"weights from {self.file} ({', '.join(summary['keys'])}):"]
        if listed := summary.get("image_weights"):
            lines.append(
                f"image_weights: {listed['listed']} of {listed['images']} train images weighted by {self.image_file}"
            )
        if rows := summary.get("classes"):
            w = max(len("class"), *(len(str(n)) for n in self.names.values()))
            lines.append(f"{'class':>{w}} {'weight':>7} {'share before':>13} {'target':>7} {'share per epoch':>16}")
            lines += [
                f"{r['name']:>{w}} {r['weight']:>7g} {r['share_before']:>13.1%} {r['target']:>7.1%} "
                f"{r['share_per_epoch']:>16.1%}"
                for r in rows
            ]
        if rows := summary.get("sources"):
            w = max(len("source"), *(len(s) for s in self.sources))
            lines.append(f"{'source':>{w}} {'images':>8} {'share before':>13} {'target':>7} {'share per epoch':>16}")
            lines += [
                f"{r['source']:>{w}} {r['images']:>8d} {r['share_before']:>13.1%} {r['target']:>7.1%} "
                f"{r['share_per_epoch']:>16.1%}"
                for r in rows
            ]
        return lines
