# ultralytics-weighted, AGPL-3.0 license
"""Weights from the data YAML: per-class `class_weights`, per-source `source_weights`, per-image `image_weights` file.

A plugin extension: it reads and checks the three keys of a detection data YAML (dataset properties live there, as
`names` and `train:` do) and returns plain numpy multipliers for `BalanceSchedule(..., multipliers=...)`, which passes
them to `weighted_probabilities`. Everything is checked before any label scan or run folder (`DataWeights.load`,
called from the trainer's `check_resume` wrapper and by `stats`); each problem is one line naming the file, the key and
what is wrong.

    class_weights: [1, 2, 1]            # or {person: 2}: a factor on each class's target share (unnamed classes 1)
    source_weights: [1, 1]              # or {images/own: 3}: each train: source's share of the draws per epoch
    image_weights: weights.csv          # CSV 'image,weight', image paths relative to the dataset root `path:`
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

KEYS = ("class_weights", "source_weights", "image_weights")


def _number(file: str, key: str, label: str, value) -> float:
    """Return `value` as a finite float >= 0, or raise ValueError naming the file, key and entry."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(str(value).strip()) if isinstance(value, str) else None
        except ValueError:
            value = None
        if value is None:
            raise ValueError(f"{file}: {key}: {label} is not a number, weights are numbers >= 0.")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{file}: {key}: {label} is {value:g}, weights are finite numbers >= 0.")
    return float(value)


def _not_all_zero(file: str, key: str, values: np.ndarray) -> np.ndarray:
    if not values.any():
        raise ValueError(f"{file}: {key}: all weights are 0, so nothing would be drawn.")
    return values


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
        if not any(k in raw for k in KEYS):
            return None
        info = check_det_dataset(file)  # resolves `path:` and the train sources as training does
        names, train = info["names"], info["train"]
        sources = [str(s) for s in (train if isinstance(train, list) else [train])]
        return cls(
            file,
            names,
            cls._class_weights(file, raw.get("class_weights"), names),
            sources,
            cls._source_weights(file, raw.get("source_weights"), sources, raw.get("train"), Path(info["path"])),
            *cls._image_weights(file, raw.get("image_weights"), sources, Path(info["path"])),
        )

    @staticmethod
    def _class_weights(file: str, value, names: dict) -> np.ndarray | None:
        key, nc = "class_weights", len(names)
        if value is None:
            return None
        if isinstance(value, list):
            if len(value) != nc:
                raise ValueError(f"{file}: {key}: {len(value)} weights for {nc} classes, give one per class in order.")
            m = np.array([_number(file, key, f"entry {i} ({names[i]})", w) for i, w in enumerate(value)])
            return _not_all_zero(file, key, m)
        if not isinstance(value, dict):
            raise ValueError(f"{file}: {key}: expected a list (one weight per class) or a mapping class name: weight.")
        ids = {str(name): i for i, name in names.items()}
        m = np.ones(nc)
        for name, w in value.items():
            if str(name) not in ids:
                raise ValueError(f"{file}: {key}: unknown class name '{name}' (classes: {', '.join(ids)}).")
            m[ids[str(name)]] = _number(file, key, f"'{name}'", w)
        return _not_all_zero(file, key, m)

    @staticmethod
    def _source_weights(file: str, value, sources: list[str], written, root: Path) -> np.ndarray | None:
        key = "source_weights"
        if value is None:
            return None
        if isinstance(value, list):
            if len(value) != len(sources):
                raise ValueError(
                    f"{file}: {key}: {len(value)} weights for {len(sources)} train sources, give one per train: entry."
                )
            shares = np.array(
                [_number(file, key, f"entry {i} ({s})", w) for i, (s, w) in enumerate(zip(sources, value))]
            )
        elif isinstance(value, dict):
            written = [str(s) for s in (written if isinstance(written, list) else [written])]
            shares = np.zeros(len(sources))
            for path, w in value.items():
                matches = [i for i, (s, r) in enumerate(zip(written, sources)) if str(path) in {s, r, str(root / path)}]
                if not matches:
                    raise ValueError(f"{file}: {key}: '{path}' is not in train: ({', '.join(written)}).")
                shares[matches[0]] = _number(file, key, f"'{path}'", w)
        else:
            raise ValueError(f"{file}: {key}: expected a list (one weight per train: entry) or a mapping path: weight.")
        shares = _not_all_zero(file, key, shares)
        return shares / shares.sum()

    @staticmethod
    def _image_weights(file: str, value, sources: list[str], root: Path) -> tuple[str | None, dict]:
        key = "image_weights"
        if value is None:
            return None, {}
        path = Path(value) if Path(value).is_absolute() else root / value
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                rows = [row for row in csv.reader(f) if row and not row[0].startswith("#")]
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"{file}: {key}: cannot read {path} ({e.__class__.__name__}: {e}).") from None
        if rows and rows[0][:2] == ["image", "weight"]:  # optional header
            rows = rows[1:]
        table = {}
        for line, row in enumerate(rows, 1):
            if len(row) != 2:
                raise ValueError(f"{file}: {key}: {path} row {line} has {len(row)} fields, expected 'image,weight'.")
            image = Path(row[0].strip())
            image = str((image if image.is_absolute() else root / image).resolve())
            table[image] = _number(file, key, f"{path} row {line} ({row[0]})", row[1])
        known = {str(Path(f).resolve()) for files in image_files(sources) for f in files}
        if unknown := [image for image in table if image not in known]:
            raise ValueError(
                f"{file}: {key}: {len(unknown)} image(s) in {path} are not in the train set, e.g. {unknown[0]}."
            )
        _not_all_zero(file, key, np.array(list(table.values()) or [1.0]))
        return str(path), table

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

    def report(self, classes: list[np.ndarray], im_files: list[str], p: np.ndarray, strength: float) -> list[str]:
        """Return the lines shown after the balance table: where the weights came from and what they do.

        Per class: its weight, share before (instances, stock sampling), target (∝ share before ** (1 - strength) x
        weight) and the expected share per epoch under p; per source: images, share of the images, target and expected
        share of the draws.
        """
        from ultralytics_weighted.core.balance import flatten_labels

        cls, lengths = flatten_labels(classes)
        nc = len(self.names)
        set_by = [
            k for k, on in zip(KEYS, (self.class_multipliers, self.source_shares, self.image_file)) if on is not None
        ]
        lines = [f"weights from {self.file} ({', '.join(set_by)}):"]
        if self.image_file:
            listed = sum(str(Path(f).resolve()) in self.image_table for f in im_files)
            lines.append(f"image_weights: {listed} of {len(im_files)} train images weighted by {self.image_file}")
        if self.class_multipliers is not None:
            before = np.bincount(cls, minlength=nc).astype(np.float64)
            target = np.where(before > 0, before ** (1 - strength), 0.0) * self.class_multipliers
            after = np.bincount(cls, weights=np.repeat(p, lengths), minlength=nc)
            w = max(len("class"), *(len(str(n)) for n in self.names.values()))
            lines.append(f"{'class':>{w}} {'weight':>7} {'share before':>13} {'target':>7} {'share per epoch':>16}")
            for c in np.flatnonzero(before):
                lines.append(
                    f"{self.names[c]!s:>{w}} {self.class_multipliers[c]:>7g} {before[c] / before.sum():>13.1%} "
                    f"{target[c] / target.sum():>7.1%} {after[c] / after.sum():>16.1%}"
                )
        if self.source_shares is not None:
            index = self.source_index([str(Path(f).resolve()) for f in im_files])
            images = np.bincount(index, minlength=len(self.sources))
            drawn = np.bincount(index, weights=p, minlength=len(self.sources))
            w = max(len("source"), *(len(s) for s in self.sources))
            lines.append(f"{'source':>{w}} {'images':>8} {'share before':>13} {'target':>7} {'share per epoch':>16}")
            for k, source in enumerate(self.sources):
                lines.append(
                    f"{source:>{w}} {images[k]:>8d} {images[k] / images.sum():>13.1%} {self.source_shares[k]:>7.1%} "
                    f"{drawn[k]:>16.1%}"
                )
        return lines
