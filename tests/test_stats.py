# ultralytics-weighted, AGPL-3.0 license
"""`ultralytics-weighted stats` and the class balance plot: what a user looks at before and at train start."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import run

from ultralytics_weighted.balance import AGGREGATIONS, balance_stats, image_weights
from ultralytics_weighted.integration import load_label_classes

PNG = b"\x89PNG\r\n\x1a\n"


def stats(*args, cwd):
    return run([sys.executable, "-m", "ultralytics_weighted.cli", "stats", *args], cwd=cwd)


def test_stats_json_matches_the_weights_training_uses(datasets, tmp_path):
    data = datasets("detect")
    out = stats(f"data={data}", "class_balance=0.5", "format=json", cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:]
    report = json.loads(out.stdout[out.stdout.index("{") :])
    assert report["images"] == 24 and report["task"] == "detect" and report["class_balance"] == 0.5
    assert [r["agg"] for r in report["aggregations"]] == ["none", *AGGREGATIONS]
    classes, names, _ = load_label_classes({"data": str(data)})
    for row in report["aggregations"][1:]:
        p = image_weights(classes, len(names), row["agg"], 0.5)
        expected = balance_stats(classes, len(names), p)
        assert row["imbalance"] == pytest.approx(expected["imbalance_after"])
        assert row["ess"] == pytest.approx(expected["ess"]) and row["coverage"] == pytest.approx(expected["coverage"])
        assert row["max_repeats"] == pytest.approx(len(classes) * p.max())
        np.testing.assert_allclose(row["shares"], expected["share_after"])
    none = report["aggregations"][0]
    assert none["ess"] == pytest.approx(1.0) and none["coverage"] == pytest.approx(1.0)
    assert none["imbalance"] == pytest.approx(26 / 4)  # 26 common vs 4 rare instances, as in the data


def test_stats_table_and_plot(datasets, tmp_path):
    out = stats(f"data={datasets('detect')}", f"plot={tmp_path / 'balance.png'}", "balance_agg=max", cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:]
    lines = out.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("agg "))
    assert lines[header].split()[-3:] == ["common", "medium", "rare"]
    assert [line.split()[0] for line in lines[header + 1 : header + 2 + len(AGGREGATIONS)]] == ["none", *AGGREGATIONS]
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
