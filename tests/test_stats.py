# ultralytics-weighted, AGPL-3.0 license
"""`ultralytics-weighted stats` and the class balance plot: what a user looks at before and at train start."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run

from ultralytics_weighted.extensions.config import ALL_AGGREGATIONS
from ultralytics_weighted.extensions.schedule import balance_stats, weighted_probabilities
from ultralytics_weighted.host.labels import load_label_classes

PNG = b"\x89PNG\r\n\x1a\n"


def stats(*args, cwd):
    return run([sys.executable, "-m", "ultralytics_weighted.commands.cli", "stats", *args], cwd=cwd)


def test_stats_json_matches_the_weights_training_uses(datasets, tmp_path):
    data = datasets("detect")
    out = stats(f"data={data}", "class_balance=0.5", "format=json", cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:]
    report = json.loads(out.stdout[out.stdout.index("{") :])
    assert report["images"] == 24 and report["task"] == "detect" and report["class_balance"] == 0.5
    assert [r["agg"] for r in report["aggregations"]] == ["none", *ALL_AGGREGATIONS]
    classes, names, _ = load_label_classes({"data": str(data)})
    for row in report["aggregations"][1:]:
        p = weighted_probabilities(classes, len(names), row["agg"], 0.5)
        expected = balance_stats(classes, len(names), p)
        assert row["imbalance"] == pytest.approx(expected["imbalance_after"])
        assert row["ess"] == pytest.approx(expected["ess"]) and row["coverage"] == pytest.approx(expected["coverage"])
        assert row["max_draws"] == pytest.approx(len(classes) * p.max())
        np.testing.assert_allclose(row["shares"], expected["share_after"])
    none = report["aggregations"][0]
    assert none["ess"] == pytest.approx(1.0) and none["coverage"] == pytest.approx(1.0)
    assert none["imbalance"] == pytest.approx(26 / 4)  # 26 common vs 4 rare instances, as in the data


def test_stats_shows_the_late_start_as_training_will(datasets, tmp_path):
    args = f"data={datasets('detect')}", "balance_start=0.75", "epochs=20", "balance_floor=1"
    out = stats(*args, "format=json", cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:]
    report = json.loads(out.stdout[out.stdout.index("{") :])
    assert (report["balance_start"], report["epochs"], report["stock_epochs"]) == (0.75, 20, 15)
    table = stats(*args, cwd=tmp_path).stdout
    assert "class_balance=1 balance_floor=1 balance_start=0.75; expected share" in table
    assert "balance_start=0.75: stock sampling in epochs 1-15 (" in table and "balanced from epoch 16 of 20" in table
    out = stats(f"data={datasets('detect')}", "balance_start=1.0", cwd=tmp_path)
    assert out.returncode != 0 and "'balance_start=1.0' is an invalid value" in out.stdout


def test_stats_table_and_plot(datasets, tmp_path):
    out = stats(f"data={datasets('detect')}", f"plot={tmp_path / 'balance.png'}", "balance_agg=max", cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:]
    lines = out.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("agg "))
    assert lines[header].split()[-3:] == ["common", "medium", "rare"]
    assert [line.split()[0] for line in lines[header + 1 : header + 2 + len(ALL_AGGREGATIONS)]] == [
        "none",
        *ALL_AGGREGATIONS,
    ]
    assert "24 images, 2 backgrounds" in out.stdout
    assert (tmp_path / "balance.png").read_bytes()[:8] == PNG


def test_stats_uses_the_labels_training_uses(datasets, tmp_path):
    classes, _, _ = load_label_classes({"data": str(datasets("detect")), "classes": [0, 2]})
    assert sum(len(c) for c in classes) == 26 + 4 and all(1 not in c for c in classes)
    classes, _, _ = load_label_classes({"data": str(datasets("detect")), "fraction": 0.5})
    assert len(classes) == 12


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "data=... is required"),
        (["format=xml"], "format=xml is not valid"),
        (["class_balance=2"], "'class_balance=2' is an invalid value"),
        (["balance_agg=foo"], "'balance_agg=foo' is an invalid value"),
    ],
)
def test_stats_refuses_bad_arguments(args, message, datasets, tmp_path):
    data = [] if not args else [f"data={datasets('detect')}"]
    out = stats(*data, *args, cwd=tmp_path)
    assert out.returncode != 0 and message in out.stdout


def test_trainer_writes_the_plot_when_plots_is_on(datasets, tmp_path):
    from ultralytics.models.yolo.detect import DetectionTrainer

    args = dict(model="yolo11n.yaml", data=str(datasets("detect")), class_balance=True, imgsz=64, device="cpu")
    for plots in (True, False):
        trainer = DetectionTrainer(overrides={**args, "plots": plots, "project": str(tmp_path), "name": str(plots)})
        trainer.model = trainer.get_model(cfg="yolo11n.yaml", verbose=False)
        trainer.build_dataset(trainer.data["train"], mode="train", batch=8)
        assert (trainer.save_dir / "class_balance.png").exists() is plots
    assert (tmp_path / "True" / "class_balance.png").read_bytes()[:8] == PNG


def stats_split(*args, cwd, env=None):
    """Run `stats` with stdout and stderr kept apart."""
    import os
    import subprocess

    cmd = [sys.executable, "-m", "ultralytics_weighted.commands.cli", "stats", *args]
    return subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300)


def test_stats_json_is_all_of_stdout(datasets, tmp_path):
    # a fresh Ultralytics settings folder: its first-use banner is logged too, and the label scan always is
    env = {"YOLO_CONFIG_DIR": str(tmp_path / "fresh-settings")}
    out = stats_split(f"data={datasets('detect')}", "format=json", f"plot={tmp_path / 'p.png'}", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["images"] == 24  # the whole of stdout is the JSON document
    assert "Scanning" in out.stderr and "Settings" in out.stderr and "saved" in out.stderr


def test_stats_table_is_all_of_stdout(datasets, tmp_path):
    out = stats_split(f"data={datasets('detect')}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[0].startswith(f"{datasets('detect')} (train, detect): 24 images")
    assert len(out.stdout.splitlines()) == 2 + 1 + len(ALL_AGGREGATIONS)  # summary, header, none + aggregations


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_stats_without_labels_says_nothing_to_balance(fmt, datasets, tmp_path):
    out = stats_split(f"data={datasets('detect')}", "classes=7", f"format={fmt}", "plot=p.png", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("nothing to balance") == 1 and "nan" not in out.stdout.lower()
    if fmt == "json":
        report = json.loads(out.stdout)  # strict JSON: no NaN
        assert "no train image has labels" in report["note"]
        assert all(r["imbalance"] is None for r in report["aggregations"])
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG


def test_stats_single_class_rows_are_uniform(datasets, tmp_path):
    out = stats_split(f"data={datasets('detect')}", "classes=0", "format=json", cwd=tmp_path)
    report = json.loads(out.stdout)
    assert "only one class has labels" in report["note"]
    assert all(r["ess"] == pytest.approx(1.0) and r["max_draws"] == pytest.approx(1.0) for r in report["aggregations"])


def test_stats_class_balance_zero_is_off_as_in_training(datasets, tmp_path):
    out = stats_split(f"data={datasets('detect')}", "class_balance=0", "format=json", cwd=tmp_path)
    rows = json.loads(out.stdout)["aggregations"]
    assert [r["agg"] for r in rows] == ["none", *ALL_AGGREGATIONS]
    for row in rows:  # sum used to favour images with more objects at strength 0
        assert row["ess"] == pytest.approx(1.0) and row["shares"] == pytest.approx(rows[0]["shares"])
    table = stats_split(f"data={datasets('detect')}", "class_balance=0", cwd=tmp_path).stdout
    assert "class_balance=0 is off" in table


def test_stats_help_is_the_stats_help(tmp_path):
    for flag in ("--help", "-h", "help"):
        out = stats_split(flag, cwd=tmp_path)
        assert out.returncode == 0 and out.stderr == ""
        assert out.stdout.startswith("Usage: ultralytics-weighted") and "stats data=PATH" in out.stdout
        assert "compare data=PATH" not in out.stdout  # only the stats part


@pytest.mark.parametrize(
    "args, message",
    [
        (["data=/missing.yaml"], "ultralytics-weighted stats: '/missing.yaml' does not exist"),
        (["foo=1"], "'foo' is not a valid key"),
        (["clases=0"], "'clases' is not a valid key (similar: classes"),
        # a classification folder that is not here is a typo, never a download (conftest sets YOLO_OFFLINE=1)
        (["data=/missing/folder"], "data=/missing/folder: no such folder (a local path is never downloaded)"),
        (["data=missing-folder"], "data=missing-folder: no such folder here or in"),
        (["balance_floor=inf"], "'balance_floor=inf' is an invalid value: not a finite number"),
        (["class_balance=nan"], "'class_balance=nan' is an invalid value: not a finite number"),
        (["balance_floor=1e9"], "Valid 'balance_floor' values are between 0.0 and 1 ("),
    ],
)
def test_stats_errors_are_one_line(args, message, datasets, tmp_path):
    data = [] if args[0].startswith("data=") else [f"data={datasets('detect')}"]
    out = stats_split(*data, *args, cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [out.stderr.strip()] and message in out.stderr
    assert "Traceback" not in out.stderr and "yolo TASK MODE ARGS" not in out.stderr  # no stack, no `yolo` help


def test_stats_on_images_without_a_labels_folder_names_the_folder_in_one_line(datasets, tmp_path):
    import shutil

    data = datasets("detect")
    copy = Path(shutil.copytree(data.parent, tmp_path / "nolabels", ignore=shutil.ignore_patterns("labels", "*.cache")))
    yaml = copy / data.name
    yaml.write_text(yaml.read_text().replace(str(data.parent), str(copy)))  # the copy's own images
    out = stats_split(f"data={yaml}", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    error = out.stderr.strip().splitlines()[-1]  # after Ultralytics' own scan log, which goes to stderr
    assert error.startswith(f"ultralytics-weighted stats: no labels for the train images in {copy / 'labels'}")
    assert ".cache" not in error and "\x1b[" not in error  # no file that does not exist, no colour codes
    assert "Traceback" not in out.stderr


def test_stats_on_a_detection_root_without_a_data_yaml_is_refused_without_copying_it(datasets, tmp_path):
    import shutil

    root = Path(shutil.copytree(datasets("detect").parent, tmp_path / "det", ignore=shutil.ignore_patterns("*.yaml")))
    out = stats_split(f"data={root}", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.strip() == (
        f"ultralytics-weighted stats: data={root} is a detection dataset (images/ and labels/), not a classification "
        "folder (train/<class>/): give a data YAML (path:, train:, val:, names:) for it: "
        "https://docs.ultralytics.com/datasets/detect"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["det"]  # no det_split/ beside it


@pytest.mark.parametrize(
    "plot, message",
    [
        ("out.txt", "plot=out.txt: '.txt' is not an image file type; use plot=FILE.png (or "),
        ("missing/dir/x.png", "plot=missing/dir/x.png: the folder {cwd}/missing/dir does not exist (it is not made)."),
        (".", "plot=. is a folder; give a file, e.g. plot=balance.png."),
    ],
)
def test_stats_refuses_a_plot_path_before_the_label_scan(plot, message, datasets, tmp_path):
    out = stats_split(f"data={datasets('detect')}", f"plot={plot}", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("ultralytics-weighted stats: " + message.format(cwd=tmp_path)), out.stderr
    assert "Scanning" not in out.stderr and not (tmp_path / "missing").exists()  # no labels read, no folder made


def test_stats_without_labels_says_so_in_the_header_instead_of_announcing_a_table(datasets, tmp_path):
    out = stats_split(f"data={datasets('detect')}", "classes=7", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == [
        f"{datasets('detect')} (train, detect): 24 images, 24 backgrounds, class_balance=1: no train image has labels "
        "(24 images, all backgrounds), so there is nothing to balance: every image is drawn once per epoch, as without "
        "class_balance."
    ]
