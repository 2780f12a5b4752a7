# ultralytics-weighted, AGPL-3.0 license
"""The data YAML's weights as written, parsed and checked into numpy arrays (numpy and the standard library only).

`host/user_weights.py` resolves the data YAML through Ultralytics (its `path:` and `train:` sources, their images) and
calls these parsers with what it resolved; each problem is one ValueError line naming the file, the key and what is
wrong. The keys themselves are declared in `keys.DATA_YAML_KEYS`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np


def weight_number(file: str, key: str, label: str, value) -> float:
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


def not_all_zero(file: str, key: str, values: np.ndarray) -> np.ndarray:
    """Return `values`, or raise ValueError when every weight is 0 (nothing would be drawn)."""
    if not values.any():
        raise ValueError(f"{file}: {key}: all weights are 0, so nothing would be drawn.")
    return values


def parse_class_weights(file: str, value, names: dict) -> np.ndarray | None:
    """Return the factor of each class from a `class_weights` list or mapping (by name or id), None if not set.

    Examples:
        >>> parse_class_weights("data.yaml", {"bus": 3}, {0: "car", 1: "bus"}).tolist()
        [1.0, 3.0]
    """
    key, nc = "class_weights", len(names)
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) != nc:
            raise ValueError(f"{file}: {key}: {len(value)} weights for {nc} classes, give one per class in order.")
        m = np.array([weight_number(file, key, f"entry {i} ({names[i]})", w) for i, w in enumerate(value)])
        return not_all_zero(file, key, m)
    if not isinstance(value, dict):
        raise ValueError(f"{file}: {key}: expected a list (one weight per class) or a mapping class name: weight.")
    ids = {str(name): i for i, name in names.items()}
    m = np.ones(nc)
    for name, w in value.items():
        if isinstance(name, int) and not isinstance(name, bool):  # a class id, as Ultralytics' `names:` is keyed
            if name not in names:
                raise ValueError(f"{file}: {key}: class id {name} is not in names: (ids 0 to {nc - 1}).")
            m[name] = weight_number(file, key, f"{name} ({names[name]})", w)
            continue
        if str(name) not in ids:
            raise ValueError(
                f"{file}: {key}: unknown class name '{name}' (classes: {', '.join(ids)}; or a class id 0 to {nc - 1})."
            )
        m[ids[str(name)]] = weight_number(file, key, f"'{name}'", w)
    return not_all_zero(file, key, m)


def parse_source_weights(file: str, value, sources: list[str], written, root: Path) -> np.ndarray | None:
    """Return each `train:` source's share of the draws (summing to 1) from `source_weights`, None if not set.

    `sources` are the resolved `train:` paths, `written` the `train:` value as written in the YAML, `root` its `path:`.
    """
    key = "source_weights"
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) != len(sources):
            raise ValueError(
                f"{file}: {key}: {len(value)} weights for {len(sources)} train sources, give one per train: entry."
            )
        shares = np.array(
            [weight_number(file, key, f"entry {i} ({s})", w) for i, (s, w) in enumerate(zip(sources, value))]
        )
    elif isinstance(value, dict):
        written = [str(s) for s in (written if isinstance(written, list) else [written])]
        shares = np.ones(len(sources))  # an unnamed source keeps weight 1, as an unnamed class does
        named = {}
        for path, w in value.items():
            # as written in train:, or the same folder resolved (an absolute key is itself under `root /`)
            matches = [
                i
                for i, (s, r) in enumerate(zip(written, sources))
                if r == str((root / str(path)).resolve()) or s == str(path)
            ]
            if not matches:
                raise ValueError(f"{file}: {key}: '{path}' is not in train: ({', '.join(written)}).")
            if matches[0] in named:
                raise ValueError(f"{file}: {key}: '{named[matches[0]]}' and '{path}' name the same train: source.")
            named[matches[0]] = path
            shares[matches[0]] = weight_number(file, key, f"'{path}'", w)
    else:
        raise ValueError(f"{file}: {key}: expected a list (one weight per train: entry) or a mapping path: weight.")
    shares = not_all_zero(file, key, shares)
    return shares / shares.sum()


def read_image_weights(file: str, value, root: Path) -> tuple[str | None, dict]:
    """Return the resolved `image_weights` CSV and its table (resolved image path -> weight); (None, {}) if not set.

    Whether the listed images are train images is checked by the caller, which knows them.
    """
    key = "image_weights"
    if value is None:
        return None, {}
    path = Path(value) if Path(value).is_absolute() else root / value
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)  # line_num: the file line a row ends on (blank and comment lines counted)
            rows = [(reader.line_num, row) for row in reader if row and not row[0].startswith("#")]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{file}: {key}: cannot read {path} ({e.__class__.__name__}: {e}).") from None
    if rows and rows[0][1][:2] == ["image", "weight"]:  # optional header
        rows = rows[1:]
    table, first_line = {}, {}
    for line, row in rows:
        if len(row) != 2:
            raise ValueError(f"{file}: {key}: {path} line {line} has {len(row)} fields, expected 'image,weight'.")
        image = Path(row[0].strip())
        image = str((image if image.is_absolute() else root / image).resolve())
        weight = weight_number(file, key, f"{path} line {line} ({row[0]})", row[1])
        if image in table and table[image] != weight:  # which one was meant? (the same weight again is harmless)
            raise ValueError(
                f"{file}: {key}: {path} lines {first_line[image]} and {line} give {row[0].strip()} different "
                f"weights ({table[image]:g} and {weight:g}); list each image once."
            )
        table[image] = weight
        first_line.setdefault(image, line)
    return str(path), table
