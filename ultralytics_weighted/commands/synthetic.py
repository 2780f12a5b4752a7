# ultralytics-weighted, AGPL-3.0 license
"""Tiny, deliberately class-imbalanced synthetic datasets in Ultralytics YOLO layout.

The generator depends only on numpy and OpenCV (both installed with ultralytics) and is used by the test-suite and the
``demo`` command. Every class is drawn with its own colour and shape (class 0 "common": green rectangles, class 1
"medium": red circles, class 2 "rare": yellow upright triangles; for OBB all classes are rotated rectangles told apart
by colour), so a model can in principle learn them.

Training split layout (default arguments):
    - Labelled images hold 1-3 objects each. Class 2 ("rare") appears only in every ``rare_every``-th labelled image,
      and every other rare image also holds a class 0 ("common") object (co-occurrence). Class 1 ("medium") appears in
      every third non-rare image, class 0 in every non-rare image.
    - The last ``backgrounds`` images are background images with an empty label file.

The validation split holds every class at least once, so that per-class mAP is defined.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

CLASS_NAMES = ("common", "medium", "rare")  # default names
TASKS = ("detect", "segment", "pose", "obb")
CLASS_COLORS = ((40, 190, 60), (220, 50, 50), (240, 215, 40))  # RGB per class: green, red, yellow
KPT_SHAPE = (3, 3)  # pose: 3 keypoints (top, left, right) with (x, y, visibility)
FLIP_IDX = (0, 2, 1)  # pose: left/right keypoints swap under a horizontal flip

_KPT_FRAC = np.array([[0.5, 0.2], [0.25, 0.8], [0.75, 0.8]])  # pose keypoints (top, left, right) as box fractions
_MARGIN = 0.02  # gap between an object and its grid cell border, fraction of imgsz
_SIDE = (0.24, 0.44)  # axis-aligned object side range, fraction of imgsz (always fits a half-image cell)
_OBB_SIDE = (0.22, 0.32)  # rotated rectangle side range, fraction of imgsz (fits a half-image cell at any angle)


def _train_classes(j: int, rare_every: int, rng: np.random.Generator) -> list[int]:
    """Return the class ids of the objects in labelled training image ``j`` (1-3 objects, imbalanced by design)."""
    if j % rare_every == 0:  # rare image; every other one also holds a common object (co-occurrence)
        return [2, 0] if (j // rare_every) % 2 == 0 else [2]
    classes = [0]
    if j % 3 == 1:
        classes.append(1)
    if rng.random() < 0.3:
        classes.append(0)
    return classes


def _val_classes(j: int, n_val: int, rng: np.random.Generator) -> list[int]:
    """Return the class ids of validation image ``j``; the first images jointly hold every class at least once."""
    nc = len(CLASS_NAMES)
    classes = [c for c in range(nc) if c % min(n_val, nc) == j] if j < nc else [j % nc]
    if len(classes) < 3 and rng.random() < 0.5:
        classes.append(0)
    return classes


def _shape_polygon(cls: int, x1: float, y1: float, w: float, h: float) -> np.ndarray:
    """Return the (N, 2) pixel polygon (N >= 4) of the shape of class ``cls`` inscribed in box (x1, y1, w, h)."""
    if cls == 1:  # circle (ellipse when w != h) as a 24-gon
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        return np.stack([x1 + w / 2 * (1 + np.cos(t)), y1 + h / 2 * (1 + np.sin(t))], axis=1)
    if cls == 2:  # upright triangle, edge midpoints added so that segment polygons have >= 4 points
        tri = np.array([[x1 + w / 2, y1], [x1 + w, y1 + h], [x1, y1 + h]])
        mid = (tri + np.roll(tri, -1, axis=0)) / 2
        return np.stack([tri, mid], axis=1).reshape(-1, 2)
    return np.array([[x1, y1], [x1 + w, y1], [x1 + w, y1 + h], [x1, y1 + h]])  # rectangle


def _place_objects(classes: list[int], task: str, imgsz: int, rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
    """Place one object per class id in distinct cells of a 2x2 grid so that objects never overlap or leave the image.

    Args:
        classes (list[int]): Class id of each object, at most 4.
        task (str): Dataset task; 'obb' draws every object as a randomly rotated rectangle.
        imgsz (int): Image side in pixels.
        rng (np.random.Generator): Random generator.

    Returns:
        (list[tuple[int, np.ndarray]]): (class id, (N, 2) pixel polygon) per object.
    """
    cell, m = imgsz / 2, _MARGIN * imgsz
    objects = []
    for cls, k in zip(classes, rng.permutation(4)):
        x0, y0 = (k % 2) * cell, (k // 2) * cell
        if task == "obb":
            w, h = rng.uniform(*_OBB_SIDE, size=2) * imgsz
            theta = rng.uniform(0, np.pi)
            c, s = np.cos(theta), np.sin(theta)
            ex, ey = (abs(w * c) + abs(h * s)) / 2, (abs(w * s) + abs(h * c)) / 2  # half extents of the rotated box
            cx, cy = rng.uniform(x0 + m + ex, x0 + cell - m - ex), rng.uniform(y0 + m + ey, y0 + cell - m - ey)
            corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
            poly = corners @ np.array([[c, s], [-s, c]]) + (cx, cy)
        else:
            w, h = rng.uniform(*_SIDE, size=2) * imgsz
            if cls == 1:
                h = w  # circles stay round
            x1, y1 = rng.uniform(x0 + m, x0 + cell - m - w), rng.uniform(y0 + m, y0 + cell - m - h)
            poly = _shape_polygon(cls, x1, y1, w, h)
        objects.append((cls, poly))
    return objects


def _render(objects: list[tuple[int, np.ndarray]], imgsz: int, rng: np.random.Generator) -> np.ndarray:
    """Draw filled, class-coloured polygons on a noisy grey background and return the (imgsz, imgsz, 3) RGB image."""
    img = np.empty((imgsz, imgsz, 3), dtype=np.uint8)
    img[:] = np.clip(rng.integers(90, 160) + rng.integers(-10, 11, size=3), 0, 255)  # greyish, slightly tinted
    for cls, poly in objects:
        color = np.clip(np.array(CLASS_COLORS[cls]) + rng.integers(-15, 16, size=3), 0, 255)
        # labels treat pixel i as [i, i + 1) while OpenCV puts pixel centres on integers, hence -0.5; shift=4 keeps
        # 4 fractional bits for sub-pixel accuracy
        pts = np.round((poly - 0.5) * 16).astype(np.int32)
        cv2.fillPoly(img, [pts], tuple(int(v) for v in color), lineType=cv2.LINE_AA, shift=4)
    noise = rng.normal(0, 8, size=img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def _label_line(cls: int, poly: np.ndarray, task: str, imgsz: int) -> str:
    """Format one YOLO label line with normalized coordinates for ``task`` from an object's pixel polygon."""
    p = np.clip(poly / imgsz, 0.0, 1.0)
    if task in {"segment", "obb"}:
        values = p.ravel()
    else:
        (x1, y1), (x2, y2) = p.min(0), p.max(0)
        w, h = x2 - x1, y2 - y1
        values = np.array([(x1 + x2) / 2, (y1 + y2) / 2, w, h])
        if task == "pose":  # top, left and right keypoints inside the box, all visible (v=2)
            kpts = np.array([x1, y1]) + _KPT_FRAC * (w, h)
            values = np.concatenate([values, np.hstack([kpts, np.full((3, 1), 2.0)]).ravel()])
    return " ".join([str(cls)] + [f"{v:.6f}" for v in values])


def _write_split(
    root: Path, split: str, task: str, classes_per_image: list[list[int]], imgsz: int, rng: np.random.Generator
) -> None:
    """Write the images and label files of one split, removing files left over from an earlier generation."""
    im_dir, lb_dir = root / "images" / split, root / "labels" / split
    for d in (im_dir, lb_dir):
        d.mkdir(parents=True, exist_ok=True)
    stale = [*im_dir.glob(f"{split}_*.jpg"), *lb_dir.glob(f"{split}_*.txt"), root / "labels" / f"{split}.cache"]
    for f in stale:
        f.unlink(missing_ok=True)
    for i, classes in enumerate(classes_per_image):
        objects = _place_objects(classes, task, imgsz, rng)
        stem = f"{split}_{i:04d}"
        cv2.imwrite(str(im_dir / f"{stem}.jpg"), _render(objects, imgsz, rng)[..., ::-1])  # RGB to BGR for OpenCV
        lines = [_label_line(cls, poly, task, imgsz) for cls, poly in objects]
        (lb_dir / f"{stem}.txt").write_text("".join(f"{line}\n" for line in lines))


def make_dataset(
    root: str | Path,
    task: str = "detect",
    n_train: int = 24,
    n_val: int = 8,
    imgsz: int = 64,
    rare_every: int = 6,
    backgrounds: int = 2,
    seed: int = 0,
) -> Path:
    """Generate a tiny, deliberately class-imbalanced dataset in Ultralytics YOLO layout.

    Writes ``root/images/{train,val}/*.jpg``, ``root/labels/{train,val}/*.txt`` and ``root/data.yaml``. Labelled
    training images hold 1-3 objects: class 0 "common" is in most images, class 1 "medium" in fewer, class 2 "rare"
    only in every ``rare_every``-th labelled image (every other one of those also holds a common object). The last
    ``backgrounds`` training images have empty label files. Every class appears in the validation split at least once.
    Output is deterministic given ``seed``; files of an earlier generation in the same split folders are replaced.

    Args:
        root (str | Path): Dataset directory, created if missing.
        task (str): One of 'detect', 'segment', 'pose' or 'obb'; selects the label format.
        n_train (int): Number of training images, background images included.
        n_val (int): Number of validation images.
        imgsz (int): Image side in pixels (square RGB images).
        rare_every (int): Class 2 appears in every ``rare_every``-th labelled training image, starting with the first.
        backgrounds (int): Number of background training images (empty label files) at the end of the training split.
        seed (int): Seed for ``np.random.default_rng``.

    Returns:
        (Path): Path of the written ``data.yaml``.

    Examples:
        >>> import tempfile
        >>> from ultralytics_weighted.commands.synthetic import class_counts, make_dataset
        >>> root = tempfile.mkdtemp()
        >>> data = make_dataset(root, task="detect", n_train=24, n_val=8)
        >>> data.name
        'data.yaml'
        >>> counts = class_counts(root)
        >>> counts[0] > counts[2] > 0
        True
    """
    import yaml  # installed with ultralytics; imported lazily to keep module import light

    if task not in TASKS:
        raise ValueError(f"Invalid task '{task}', valid choices are {TASKS}.")
    if imgsz < 32:
        raise ValueError(f"imgsz must be >= 32, got {imgsz}.")
    if n_val < 1 or rare_every < 1 or backgrounds < 0:
        raise ValueError(
            f"Need n_val >= 1, rare_every >= 1 and backgrounds >= 0, got {n_val}, {rare_every}, {backgrounds}"
        )
    if n_train <= backgrounds:
        raise ValueError(f"n_train ({n_train}) must exceed backgrounds ({backgrounds}) to leave labelled images.")

    root = Path(root).resolve()
    rng = np.random.default_rng(seed)
    n_labelled = n_train - backgrounds
    train = [_train_classes(j, rare_every, rng) for j in range(n_labelled)] + [[] for _ in range(backgrounds)]
    val = [_val_classes(j, n_val, rng) for j in range(n_val)]
    _write_split(root, "train", task, train, imgsz, rng)
    _write_split(root, "val", task, val, imgsz, rng)

    data = {
        "path": str(root),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(CLASS_NAMES)),
    }
    if task == "pose":
        data["kpt_shape"] = list(KPT_SHAPE)
        data["flip_idx"] = list(FLIP_IDX)
    yaml_path = root / "data.yaml"
    yaml_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return yaml_path


def class_counts(root: str | Path, split: str = "train") -> dict[int, int]:
    """Count labelled instances per class id in ``root/labels/<split>/*.txt``.

    Every default class id (0 .. len(CLASS_NAMES) - 1) is present in the result, with 0 when unused; other class ids
    found in the files are added. Empty label files (background images) contribute nothing.

    Args:
        root (str | Path): Dataset directory, as passed to ``make_dataset``.
        split (str): Split folder name under ``root/labels``, e.g. 'train' or 'val'.

    Returns:
        (dict[int, int]): Instances per class id, sorted by class id.

    Examples:
        >>> import tempfile
        >>> from ultralytics_weighted.commands.synthetic import class_counts, make_dataset
        >>> root = tempfile.mkdtemp()
        >>> _ = make_dataset(root, task="segment")
        >>> sorted(class_counts(root, "val"))
        [0, 1, 2]
    """
    lb_dir = Path(root) / "labels" / split
    if not lb_dir.is_dir():
        raise FileNotFoundError(f"Label directory '{lb_dir}' not found.")
    counts = dict.fromkeys(range(len(CLASS_NAMES)), 0)
    for f in sorted(lb_dir.glob("*.txt")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                cls = int(float(line.split()[0]))
                counts[cls] = counts.get(cls, 0) + 1
    return dict(sorted(counts.items()))


def make_classification_dataset(
    root: str | Path, counts: dict[str, int] | None = None, n_val: int = 4, imgsz: int = 32, seed: int = 0
) -> Path:
    """Write a tiny, imbalanced ImageFolder-style classification dataset and return its root.

    Layout: ``root/train/<class>/*.jpg`` and ``root/val/<class>/*.jpg``. Each class is one coloured shape (the
    detection classes' shapes and colours, cycling for more than 3 classes) on a noisy background. A class with count 0
    gets an empty train folder (``val`` always holds ``n_val`` images of every class).

    Args:
        root (str | Path): Output directory.
        counts (dict[str, int], optional): Training images per class name; default {'common': 30, 'medium': 8,
            'rare': 3}.
        n_val (int): Validation images per class.
        imgsz (int): Image side in pixels.
        seed (int): Random seed.

    Returns:
        (Path): The dataset root, to pass as ``data=`` to ``yolo classify train``.

    Examples:
        >>> import tempfile
        >>> root = make_classification_dataset(tempfile.mkdtemp(), {"cat": 5, "dog": 1})
        >>> sorted(p.name for p in (root / "train").iterdir()), len(list((root / "train" / "cat").iterdir()))
        (['cat', 'dog'], 5)
    """
    counts = {"common": 30, "medium": 8, "rare": 3} if counts is None else counts
    root, rng = Path(root), np.random.default_rng(seed)
    for split in ("train", "val"):
        for k, (name, n) in enumerate(counts.items()):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n if split == "train" else n_val):
                side = imgsz * rng.uniform(0.5, 0.8)
                x1, y1 = rng.uniform(0, imgsz - side, size=2)
                image = _render([(k % len(CLASS_COLORS), _shape_polygon(k % 3, x1, y1, side, side))], imgsz, rng)
                cv2.imwrite(str(folder / f"{split}_{i:04d}.jpg"), image[..., ::-1])  # RGB to BGR
    return root
