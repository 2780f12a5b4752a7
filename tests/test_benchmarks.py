# ultralytics-weighted, AGPL-3.0 license
"""The long-tail benchmarks' preparation (benchmarks/longtail_crops.py, longtail_detection.py, longtail_composite.py,
convergence_trial.py, gpu_longtail_detection.py) on tiny fake datasets.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
ATTRIBUTION = "Fake boxes drawn by the test, CC0"
COLOURS = {0: (0, 0, 255), 1: (0, 255, 0), 2: (255, 0, 0), 3: (0, 255, 255)}  # BGR, one per class


def load(name: str):
    """Import a script of benchmarks/ as a module."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_yolo_dataset(root: Path, images: dict[str, list[list[int]]], names: list[str]) -> Path:
    """Write a YOLO detection dataset: per split, one 64 px image per class list, one filled box per class entry.

    Box k of an image is a 12x12 square of its class's colour on a grey background, at column 4 + 14 k, row 26.
    """
    for split, image_classes in images.items():
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i, classes in enumerate(image_classes):
            image, lines = np.full((64, 64, 3), 128, np.uint8), []
            for k, cls in enumerate(classes):
                x0 = 4 + 14 * k
                image[26:38, x0 : x0 + 12] = COLOURS[cls]
                lines.append(f"{cls} {(x0 + 6) / 64:.6f} {32 / 64:.6f} {12 / 64:.6f} {12 / 64:.6f}")
            cv2.imwrite(str(root / "images" / split / f"{split}{i:03d}.png"), image)
            if lines:
                (root / "labels" / split / f"{split}{i:03d}.txt").write_text("\n".join(lines) + "\n")
    data = {"train": "images/train", "val": "images/val", "names": names}
    (root / "data.yaml").write_text(f"# {ATTRIBUTION}\n{yaml.safe_dump(data)}")
    return root


@pytest.fixture(scope="module")
def crops_source(tmp_path_factory):
    """Train boxes per class: a 12, b 40, c 30, d 20 (class id order is not the frequency order); val + test a bit."""
    train = [[0]] * 12 + [[1, 1]] * 20 + [[2, 2, 2]] * 10 + [[3, 1]] * 20  # b: 40 + 20 = 60 boxes
    evaluation = {"val": [[0, 1], [2], [3, 3], []], "test": [[0], [1, 2, 3]]}
    return fake_yolo_dataset(tmp_path_factory.mktemp("css"), {"train": train, **evaluation}, ["a", "b", "c", "d"])


def crop_counts(folder: Path) -> dict[str, int]:
    """Return the number of crops per class folder."""
    return {d.name: len(list(d.glob("*.jpg"))) for d in sorted(folder.iterdir())}


def test_crops_fall_exponentially_from_the_most_available_class(crops_source, tmp_path):
    crops = load("longtail_crops")
    manifest = crops.build(crops_source, tmp_path / "out", imgsz=16, head=24, ratio=8, seed=0)
    counts = crop_counts(tmp_path / "out" / "train")
    # available: b 60, c 30, d 20, a 12, so b is the head (24) and a the tail (24 / 8); 24 * 8 ** (-rank / 3)
    assert counts == {"b": 24, "c": 12, "d": 6, "a": 3}
    assert {name: c["train"] for name, c in manifest["classes"].items()} == counts
    assert {name: c["available"] for name, c in manifest["classes"].items()} == {"a": 12, "b": 60, "c": 30, "d": 20}
    assert (manifest["seed"], manifest["ratio"], manifest["head"]) == (0, 8, 24)
    assert manifest["attribution"] == [ATTRIBUTION]
    image = cv2.imread(str(next((tmp_path / "out" / "train" / "a").glob("*.jpg"))))
    assert image.shape == (16, 16, 3)


def test_a_class_never_keeps_more_crops_than_it_has(crops_source, tmp_path):
    crops = load("longtail_crops")
    manifest = crops.build(crops_source, tmp_path / "out", imgsz=16, head=50, ratio=2, seed=0)
    assert {name: c["train"] for name, c in manifest["classes"].items()} == {"b": 50, "c": 30, "d": 20, "a": 12}


def test_every_evaluation_box_becomes_one_crop_of_its_class(crops_source, tmp_path):
    crops = load("longtail_crops")
    manifest = crops.build(crops_source, tmp_path / "out", imgsz=16, head=24, ratio=8, seed=0)
    # val + test boxes: a 2, b 2, c 2, d 3, all kept whatever head and ratio are
    assert crop_counts(tmp_path / "out" / "val") == {"a": 2, "b": 2, "c": 2, "d": 3}
    assert sorted((r["image"], r["box"]) for r in manifest["val"]) == [
        ("test/test000.png", 0),
        ("test/test001.png", 0),
        ("test/test001.png", 1),
        ("test/test001.png", 2),
        ("val/val000.png", 0),
        ("val/val000.png", 1),
        ("val/val001.png", 0),
        ("val/val002.png", 0),
        ("val/val002.png", 1),
    ]
    for record in manifest["val"] + manifest["train"]:  # the crop shows its box: the centre has the class's colour
        crop = cv2.imread(str(tmp_path / "out" / record["crop"]))
        cls = "abcd".index(Path(record["crop"]).parent.name)
        assert np.abs(crop[8, 8].astype(int) - COLOURS[cls]).max() < 40, record


def test_crop_selection_is_deterministic_by_seed(crops_source, tmp_path):
    crops = load("longtail_crops")
    chosen = {}
    for name, seed in (("first", 0), ("again", 0), ("other", 1)):
        manifest = crops.build(crops_source, tmp_path / name, imgsz=16, head=24, ratio=8, seed=seed)
        chosen[name] = [(r["image"], r["box"]) for r in manifest["train"]]
    assert chosen["first"] == chosen["again"]
    assert chosen["first"] != chosen["other"]
    assert Counter(r[0].split("/")[0] for r in chosen["other"]) == {"train": 45}  # train crops only from train


def test_ultralytics_reads_the_crops_as_a_classification_dataset(crops_source, tmp_path):
    from ultralytics.data.utils import check_cls_dataset

    load("longtail_crops").build(crops_source, tmp_path / "out", imgsz=16, head=24, ratio=8, seed=0)
    data = check_cls_dataset(str(tmp_path / "out"))
    assert data["nc"] == 4
    assert data["names"] == {0: "a", 1: "b", 2: "c", 3: "d"}
    assert Path(data["val"]) == tmp_path / "out" / "val"


@pytest.fixture(scope="module")
def roboflow_source(tmp_path_factory):
    """A Roboflow-style export: 12 photos, each under its train split in 3 versions `p<k>_jpg.rf.<v>.png`; val/test
    hold other photos once. Photo k holds class 0, and class 1 when k % 3 == 0, and class 2 when k % 4 == 0.
    """
    root = fake_yolo_dataset(
        tmp_path_factory.mktemp("rf"),
        {"train": [[0] + [1] * (k % 3 == 0) + [2] * (k % 4 == 0) for k in range(12) for _ in range(3)]},
        ["a", "b", "c"],
    )
    for kind in ("images", "labels"):
        for i, file in enumerate(sorted((root / kind / "train").iterdir())):
            k, version = divmod(i, 3)
            target = root / kind / ("val" if k in (10, 11) else "train") / f"p{k:02d}_jpg.rf.{version}{file.suffix}"
            target.parent.mkdir(exist_ok=True)
            if k in (10, 11) and version:  # val/test photos come once
                file.unlink()
            else:
                file.rename(target)
    return root


def test_by_source_pools_the_splits_and_never_shares_a_photo_between_train_and_evaluation(roboflow_source, tmp_path):
    crops = load("longtail_crops")
    manifest = crops.build(roboflow_source, tmp_path / "out", imgsz=16, head=50, ratio=1, seed=0, by_source=2)
    photo = lambda record: record["image"].split("/")[1].split(".rf.")[0]  # noqa: E731
    train_photos, eval_photos = {photo(r) for r in manifest["train"]}, {photo(r) for r in manifest["val"]}
    assert not train_photos & eval_photos
    assert len(train_photos | eval_photos) == 12  # every photo is used, pooled from train and val
    for records in (manifest["train"], manifest["val"]):  # one version of each photo: the first by name
        assert {r["image"].split("/")[1] for r in records} == {f"{p}.rf.0.png" for p in {photo(r) for r in records}}
    # photos holding b: 0, 3, 6, 9; holding c: 0, 4, 8. At least 2 evaluation boxes of every class
    assert min(c["val"] for c in manifest["classes"].values()) >= 2
    expected = {  # counted from the photo numbers of each side
        "a": (len(train_photos), len(eval_photos)),
        "b": tuple(sum(int(p[1:3]) % 3 == 0 for p in side) for side in (train_photos, eval_photos)),
        "c": tuple(sum(int(p[1:3]) % 4 == 0 for p in side) for side in (train_photos, eval_photos)),
    }
    assert {n: (c["available"], c["val"]) for n, c in manifest["classes"].items()} == expected
    again = crops.build(roboflow_source, tmp_path / "again", imgsz=16, head=50, ratio=1, seed=0, by_source=2)
    assert again["val"] == manifest["val"]
    with pytest.raises(ValueError, match="fewer than 5 evaluation boxes"):  # only 4 photos hold b
        crops.build(roboflow_source, tmp_path / "too-many", imgsz=16, head=50, ratio=1, seed=0, by_source=5)


@pytest.fixture(scope="module")
def detection_source(tmp_path_factory):
    """20 train images with the rare class 1 (and class 0), 30 with class 0 only; val + test hold both."""
    train = [[0, 1]] * 20 + [[0]] * 30
    evaluation = {"val": [[0, 1], [0]], "test": [[1], [0, 0], []]}
    return fake_yolo_dataset(tmp_path_factory.mktemp("det"), {"train": train, **evaluation}, ["common", "rare"])


def test_detection_keeps_a_seeded_part_of_the_rare_images_and_the_evaluation_whole(detection_source, tmp_path):
    detection = load("longtail_detection")
    manifest = detection.build(detection_source, tmp_path / "out", rare=["rare"], keep=0.25, seed=0)
    train = sorted(p.name for p in (tmp_path / "out" / "images" / "train").iterdir())
    assert len(train) == 30 + 5
    assert set(manifest["kept_rare_images"]) <= set(train)
    assert not set(manifest["dropped_images"]) & set(train)
    assert manifest["boxes"]["train"] == {"common": 35, "rare": 5}
    assert manifest["boxes"]["eval"] == {"common": 4, "rare": 2}
    assert manifest["attribution"] == [ATTRIBUTION]
    for split, n in (("val", 2), ("test", 3)):
        assert len(list((tmp_path / "out" / "images" / split).iterdir())) == n
    again = detection.build(detection_source, tmp_path / "again", rare=["rare"], keep=0.25, seed=0)
    other = detection.build(detection_source, tmp_path / "other", rare=["rare"], keep=0.25, seed=1)
    assert again["kept_rare_images"] == manifest["kept_rare_images"] != other["kept_rare_images"]
    assert json.loads((tmp_path / "out" / "manifest.json").read_text()) == manifest


def test_detection_data_yaml_evaluates_on_val_and_test(detection_source, tmp_path, monkeypatch):
    from ultralytics.data.utils import check_det_dataset

    load("longtail_detection").build(detection_source, tmp_path / "out", rare=["rare"], keep=0.25, seed=0)
    monkeypatch.chdir(tmp_path)  # the absolute path: works from anywhere
    data = check_det_dataset(str(tmp_path / "out" / "data.yaml"))
    assert data["val"] == [str(tmp_path / "out" / "images" / s) for s in ("val", "test")]
    assert data["train"] == str(tmp_path / "out" / "images" / "train")
    assert data["names"] == {0: "common", 1: "rare"}


def test_detection_refuses_an_unknown_rare_class(detection_source, tmp_path):
    with pytest.raises(ValueError, match="rare classes must be among"):
        load("longtail_detection").build(detection_source, tmp_path / "out", rare=["Rare"], keep=0.25)
    assert not (tmp_path / "out").exists()


COMPOSITE = {"imgsz": 32, "head": 24, "ratio": 8, "objects": (1, 3), "size": (0.3, 0.5), "eval_per_class": 5}


def label_rows(folder: Path) -> dict[str, list[list[float]]]:
    """Return the label rows (class, x, y, w, h) of every label file in a folder, by image stem."""
    return {f.stem: [[float(v) for v in line.split()] for line in f.read_text().splitlines()] for f in folder.iterdir()}


def test_composite_train_instances_fall_exponentially_and_the_evaluation_is_balanced(crops_source, tmp_path):
    manifest = load("longtail_composite").build(crops_source, tmp_path / "out", seed=0, **COMPOSITE)
    train, val = (label_rows(tmp_path / "out" / "labels" / split) for split in ("train", "val"))
    names = "abcd"
    # usable train boxes: b 60, c 30, d 20, a 12 -> 24 * 8 ** (-rank / 3) pasted instances
    assert Counter(names[int(r[0])] for rows in train.values() for r in rows) == {"b": 24, "c": 12, "d": 6, "a": 3}
    assert Counter(names[int(r[0])] for rows in val.values() for r in rows) == {"a": 5, "b": 5, "c": 5, "d": 5}
    assert all(1 <= len(rows) <= 3 for rows in [*train.values(), *val.values()])
    assert {n: c["train"] for n, c in manifest["classes"].items()} == {"a": 3, "b": 24, "c": 12, "d": 6}
    assert {n: c["eval_distinct"] for n, c in manifest["classes"].items()} == {"a": 2, "b": 2, "c": 2, "d": 3}
    assert manifest["images"] == {"train": len(train), "val": len(val)}
    assert manifest["attribution"] == [ATTRIBUTION]
    assert (tmp_path / "out" / "data.yaml").read_text().startswith(f"# {ATTRIBUTION}\n# Composite")
    for record in manifest["train"] + manifest["val"]:  # each pasted box shows its class; no two overlap
        image = cv2.imread(str(tmp_path / "out" / "images" / record["image"]))
        assert image.shape == (32, 32, 3)
        corners = []
        for obj in record["objects"]:
            x, y, w, h = (v * 32 for v in obj["xywh"])
            assert 0 <= x - w / 2 and x + w / 2 <= 32 and 0 <= y - h / 2 and y + h / 2 <= 32, record
            assert np.abs(image[int(y), int(x)].astype(int) - COLOURS[obj["cls"]]).max() < 40, record
            corners.append((x - w / 2, y - h / 2, x + w / 2, y + h / 2))
        for i, (a0, b0, a1, b1) in enumerate(corners):
            assert all(
                a0 >= c1 - 1e-6 or c0 >= a1 - 1e-6 or b0 >= d1 - 1e-6 or d0 >= b1 - 1e-6
                for c0, d0, c1, d1 in corners[:i]
            )


def test_composite_evaluation_derives_from_val_and_test_only(crops_source, tmp_path):
    manifest = load("longtail_composite").build(crops_source, tmp_path / "out", seed=0, **COMPOSITE)
    for split, sources in (("train", {"train"}), ("val", {"val", "test"})):
        records = manifest[split]
        assert {r["background"].split("/")[0] for r in records} <= sources
        assert {o["source"].split("/")[0] for r in records for o in r["objects"]} <= sources
    # every val + test box is used, a box twice only where its class has fewer than 5 (here every class)
    used = Counter((o["source"], o["box"]) for r in manifest["val"] for o in r["objects"])
    assert len(used) == 9 and set(used.values()) <= {1, 2, 3}
    drawn = Counter((o["source"], o["box"]) for r in manifest["train"] for o in r["objects"])
    assert set(drawn.values()) == {1}  # train instances: distinct boxes


def test_composite_is_deterministic_by_seed(crops_source, tmp_path):
    composite = load("longtail_composite")
    built = {
        name: composite.build(crops_source, tmp_path / name, seed=s, **COMPOSITE)
        for name, s in (("first", 0), ("again", 0), ("other", 1))
    }
    for split in ("train", "val"):
        assert built["first"][split] == built["again"][split] != built["other"][split]
        for record in built["first"][split]:
            first, again = (tmp_path / name / "images" / record["image"] for name in ("first", "again"))
            assert first.read_bytes() == again.read_bytes()
    assert {n: c["train"] for n, c in built["other"]["classes"].items()} == {"a": 3, "b": 24, "c": 12, "d": 6}


def test_ultralytics_reads_the_composite_as_a_detection_dataset(crops_source, tmp_path, monkeypatch):
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    load("longtail_composite").build(crops_source, tmp_path / "out", seed=0, **COMPOSITE)
    monkeypatch.chdir(tmp_path)  # the absolute path: works from anywhere
    data = check_det_dataset(str(tmp_path / "out" / "data.yaml"))
    assert data["names"] == {0: "a", 1: "b", 2: "c", 3: "d"}
    assert data["val"] == str(tmp_path / "out" / "images" / "val")
    for split, expected in (("train", {1: 24, 2: 12, 3: 6, 0: 3}), ("val", {0: 5, 1: 5, 2: 5, 3: 5})):
        dataset = YOLODataset(img_path=data[split], imgsz=32, augment=False, data=data, task="detect")
        assert Counter(int(c) for label in dataset.labels for c in label["cls"].ravel()) == expected


def test_composite_refuses_settings_that_make_no_images(crops_source, tmp_path):
    with pytest.raises(ValueError, match="objects"):
        load("longtail_composite").build(crops_source, tmp_path / "out", **{**COMPOSITE, "objects": (0, 2)})
    with pytest.raises(ValueError, match="usable train and eval boxes"):  # 12 px boxes, none of 13 px or more
        load("longtail_composite").build(crops_source, tmp_path / "out", min_box=13, **COMPOSITE)


def test_convergence_trial_reads_ap50_per_epoch_and_checks_the_last_fifth(tmp_path):
    trial = load("convergence_trial")
    header = "                  epoch,             time,    metrics/mAP50(B),   metrics/mAP50-95(B)"
    curves = {"rising": [0.02 * e for e in range(1, 21)], "levelled": [min(0.3, 0.03 * e) for e in range(1, 21)]}
    for name, ap50 in curves.items():
        (tmp_path / name).mkdir()
        rows = [f"{e:>23},{e * 3.5:>17},{v:>20},{v / 2:>22}" for e, v in enumerate(ap50, 1)]
        (tmp_path / name / "results.csv").write_text("\n".join([header, *rows]) + "\n")
        assert trial.read_ap50(tmp_path / name) == pytest.approx(ap50)
    assert trial.last_fifth_rise(curves["rising"]) == pytest.approx((0.08, 0.08))  # epochs 16-20: 4 x 0.02
    assert trial.last_fifth_rise(curves["levelled"]) == pytest.approx((0.0, 0.0))
    assert not trial.report(tmp_path / "rising") and trial.report(tmp_path / "levelled")
    script = [sys.executable, str(BENCHMARKS / "convergence_trial.py"), "--report"]
    out = subprocess.run([*script, str(tmp_path / "rising")], capture_output=True, text=True, check=True).stdout
    assert "fitted rise +0.0800" in out and "NOT CONVERGED" in out and "0.400" in out


def test_the_gpu_benchmark_dry_run_runs_the_cpu_benchmark_s_variants_from_scratch(tmp_path):
    from ultralytics.cfg import DEFAULT_CFG_DICT

    from ultralytics_weighted.commands.compare.variants import parse_variants

    script = [sys.executable, str(BENCHMARKS / "gpu_longtail_detection.py"), "--dry-run"]
    folders = ["--carry", str(tmp_path / "carry"), "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]
    out = subprocess.run([*script, *folders, "epochs=3"], capture_output=True, text=True, check=True).stdout
    command = next(line for line in out.splitlines() if line.startswith("ultralytics-weighted compare "))
    keys = dict(arg.split("=", 1) for arg in command.split()[2:])
    variants = load("longtail_composite").VARIANTS
    assert keys["variants"] == variants
    assert variants.split(",") == [
        "none", "cls_pw=0.25", "cls_pw=0.5", "mean", "auto", "rfs", "mean+balance_floor=1", "mean+tau=0.5", "mean+tau=1"
    ]  # fmt: skip
    assert (keys["seeds"], keys["val"], keys["epochs"], keys["model"]) == ("3", "False", "3", "yolo11n.yaml")
    assert keys["data"] == str(tmp_path / "work" / "data" / "construction-safety-longtail" / "data.yaml")
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()  # nothing unpacked, nothing run
    # compare's grammar reads every variant but rfs (issue 25 item 2 adds it) as it is spelled here
    parsed = parse_variants(",".join(v for v in variants.split(",") if v != "rfs"))
    assert [v.overrides for v in parsed if v.name.startswith("cls_pw")] == [{"cls_pw": 0.25}, {"cls_pw": 0.5}]
    assert "cls_pw" in DEFAULT_CFG_DICT


def test_the_polars_stand_in_reads_results_csv_as_polars_does():
    polars = pytest.importorskip("polars")
    spec = importlib.util.spec_from_file_location("standin", BENCHMARKS / "polars_standin" / "polars" / "__init__.py")
    standin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(standin)
    results = b"epoch,time,train/box_loss,metrics/mAP50(B),lr/pg0\n1,3.5,1.2,0,0.01\n2,7,1.1,0.05,\n"  # ints, gaps
    expected = polars.read_csv(results, infer_schema_length=None).to_dict(as_series=False)
    assert standin.read_csv(results, infer_schema_length=None).to_dict(as_series=False) == expected
    rows = [{"class": "rare", "box-p": 0.5, "images": 3}, {"class": "common", "box-p": 0.25, "images": 10}]
    assert standin.DataFrame(rows).write_csv() == polars.DataFrame(rows).write_csv()
