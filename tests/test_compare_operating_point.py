# ultralytics-weighted, AGPL-3.0 license
"""compare's detection operating point: P/R/F1 of the single-label `predict` path, beside AP, with intervals."""

from __future__ import annotations

import csv
import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import run

from ultralytics_weighted.commands.compare.metrics import detection_ap, detection_operating_point, run_metrics

# one image, two classes; object A (class 1, the rare one) and object B (class 0), in xyxy pixels
OBJECTS = {"target_cls": np.array([1, 0]), "target_image": np.array([0, 0])}
BOXES = np.array([[5.0, 5.0, 10.0, 10.0], [25.0, 25.0, 10.0, 10.0], [60.0, 60.0, 10.0, 10.0]])  # xywh: on A, B, none
SCORES = np.array([[0.6, 0.5], [0.9, 0.1], [0.1, 0.3]])  # class 0, class 1 per box: box 0 on A says class 0 first


def single_label(scores: np.ndarray, conf: float = 0.25) -> dict:
    """Return the operating point's detections of the three boxes, through the validation child's own NMS call."""
    import torch

    from ultralytics_weighted.host.validation import operating_point_detections

    raw = torch.tensor(np.concatenate([BOXES, scores], 1).T[None], dtype=torch.float32)  # (1, 4 + nc, boxes)
    args = SimpleNamespace(iou=0.7, single_cls=False, agnostic_nms=False, max_det=300)
    (kept,) = operating_point_detections(SimpleNamespace(args=args), raw, conf)
    cls, conf_, x = kept["cls"].numpy().astype(int), kept["conf"].numpy(), kept["bboxes"][:, 0].numpy()
    on = np.where(x < 15, 1, np.where(x < 40, 0, -1))  # the object each kept box lies on (by its x), -1: none
    return {"tp": (cls == on)[:, None], "conf": conf_, "pred_cls": cls, "pred_image": np.zeros(len(cls), int)}


def test_operating_point_counts_the_argmax_class_that_tau_changes_while_ap_stays():
    plain = single_label(SCORES)
    # box 0 (on A) keeps only its argmax, class 0: a false positive for class 0 and A missed; box 2 is class 1 at 0.3
    assert sorted(zip(plain["pred_cls"].tolist(), plain["tp"][:, 0].tolist())) == [(0, False), (0, True), (1, False)]
    out = detection_operating_point(plain | OBJECTS, 2, np.ones((1, 1)), train_instances=np.array([90, 10]))
    hand = {"precision": (1 / 2, 0 / 1), "recall": (1 / 1, 0 / 1), "f1": (2 * 0.5 * 1 / 1.5, 0.0)}
    for metric, (c0, c1) in hand.items():
        assert (out[metric, 0][0], out[metric, 1][0]) == pytest.approx((c0, c1))
        assert out[metric, "all"][0] == pytest.approx((c0 + c1) / 2)
    assert out["prior_recall", "all"][0] == pytest.approx(0.9 * 1 + 0.1 * 0)

    # τ adds to the rare class's logit (here +1): box 0's argmax becomes class 1, which finds A
    logits = np.log(SCORES / (1 - SCORES)) + np.array([0.0, 1.0])
    corrected = single_label(1 / (1 + np.exp(-logits)))
    assert sorted(zip(corrected["pred_cls"].tolist(), corrected["tp"][:, 0].tolist())) == [
        (0, True),
        (1, False),
        (1, True),
    ]
    out = detection_operating_point(corrected | OBJECTS, 2, np.ones((1, 1)), train_instances=np.array([90, 10]))
    hand = {"precision": (1 / 1, 1 / 2), "recall": (1 / 1, 1 / 1), "f1": (1.0, 2 * 0.5 * 1 / 1.5)}
    for metric, (c0, c1) in hand.items():
        assert (out[metric, 0][0], out[metric, 1][0]) == pytest.approx((c0, c1))

    # AP ranks every class of every box (the validator's multi-label NMS): class 1's ranking, so its AP, is unchanged
    def ap(scores):
        box, cls = np.nonzero(scores > 0.001)
        on = np.array([1, 0, -1])[box]
        tp = (cls == on)[:, None]
        return detection_ap(tp, scores[box, cls], cls, np.zeros(len(box)), *OBJECTS.values(), 2, np.ones((1, 1)))

    assert ap(SCORES)[0, 1, 0] == ap(1 / (1 + np.exp(-logits)))[0, 1, 0]


def test_run_metrics_adds_the_operating_point_only_where_stored_at_its_confidence():
    rng = np.random.default_rng(0)
    n = 40
    stored = {
        "tp": rng.random((n, 10)) < 0.5,
        "conf": rng.random(n),
        "pred_cls": rng.integers(0, 3, n),
        "pred_image": rng.integers(0, 10, n),
        "target_cls": rng.integers(0, 3, 30),
        "target_image": rng.integers(0, 10, 30),
    }
    single = {"op_hit": rng.random(12) < 0.5, "op_conf": 0.25 + 0.7 * rng.random(12), "op_cls": rng.integers(0, 3, 12)}
    single |= {"op_image": rng.integers(0, 10, 12), "op_threshold": np.float64(0.25)}
    weights = np.concatenate([np.ones((1, 10)), rng.integers(0, 3, (5, 10))])
    out = run_metrics(stored | single, 3, weights, np.array([50, 30, 20]), operating_conf=0.25)
    mine = detection_operating_point(
        {"tp": single["op_hit"][:, None], "conf": single["op_conf"], "pred_cls": single["op_cls"]}
        | {"pred_image": single["op_image"], **{k: stored[k] for k in ("target_cls", "target_image")}},
        3,
        weights,
        0.25,
        np.array([50, 30, 20]),
    )
    for key, values in mine.items():
        np.testing.assert_array_equal(out[key], values)
    assert ("ap50", "all") in out and ("prior_recall", "all") in out
    # stored at another confidence, or not at all (a folder of an earlier compare): AP only
    for other in (run_metrics(stored | single, 3, weights, operating_conf=0.5), run_metrics(stored, 3, weights, None)):
        assert ("ap50", "all") in other and not any(m in ("precision", "recall", "f1") for m, _ in other)
    assert not any(m == "recall" for m, _ in run_metrics(stored, 3, weights, operating_conf=0.25))
    # nothing above the threshold (an early model): precision, recall and F1 0, not an error
    none = {k: v[:0] for k, v in single.items() if k != "op_threshold"} | {"op_threshold": np.float64(0.25)}
    out = run_metrics(stored | none, 3, weights, operating_conf=0.25)
    assert all(np.nan_to_num(out[m, c]).max() == 0 for m in ("precision", "recall", "f1") for c in (0, 1, 2, "all"))


def compare(*args, cwd):
    return run([sys.executable, "-m", "ultralytics_weighted.commands.cli", "compare", *args], cwd=cwd, timeout=600)


def test_detection_compare_reports_the_operating_point_with_intervals_beside_ap(datasets, tmp_path):
    args = [f"data={datasets('detect')}", "variants=none,mean,mean+tau=1", "seeds=1", "epochs=1", "imgsz=64"]
    args += ["batch=8", "resamples=100", f"project={tmp_path}", "name=cmp"]
    out = compare(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:]
    folder = tmp_path / "cmp"
    md = (folder / "compare.md").read_text()
    assert json.loads((folder / "setup.json").read_text())["operating_conf"] == 0.25
    assert "## AP50" in md and "Operating point: the boxes Ultralytics' `predict` returns" in md
    assert "confidence ≥ 0.25" in md
    for title in ("Precision", "Recall", "F1"):
        table = md.split(f"## {title} at the operating point")[1].split("\n## ")[0]
        assert "| **all** (mean over classes) | 37 |" in table
        for name in ("common", "rare"):  # per class, each variant (τ included) with its Δ and interval
            row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
            assert row.count(" [") == 2 and row.count(", ") >= 2, row
    assert "| **recall at train class frequencies** | 37 |" in md
    rows = list(csv.DictReader((folder / "compare.csv").open()))
    summary = {(r["variant"], r["metric"], r["class"]): r for r in rows if r["kind"] == "summary"}
    for variant in ("mean", "mean+tau=1"):
        for metric in ("precision", "recall", "f1"):
            r = summary[variant, metric, "rare"]
            assert float(r["lo"]) <= float(r["delta"]) <= float(r["hi"]) and r["verdict"] and r["p_adjusted"]
    # what each run stored: its single-label detections at the operating point, the τ variant's from its own weights
    for name in ("per_image.npz", "per_image-tau1.npz"):
        with np.load(folder / "runs" / "mean-seed0" / name) as f:
            stored = dict(f)
        assert float(stored["op_threshold"]) == 0.25 and (stored["op_conf"] >= 0.25).all()
        assert len(stored["op_hit"]) == len(stored["op_cls"]) == len(stored["op_image"])

    # the child's single-label NMS reads the validator's own batch: at a threshold this 1-epoch model passes, each
    # image's most confident single-label box is also the validator's (the top score is the top of its class there)
    from ultralytics_weighted.host.validation import validate

    validate(folder / "runs" / "mean-seed0" / "weights" / "last.pt", datasets("detect"), {"imgsz": 64, "batch": 8},
             tmp_path / "low.npz", 0.001)  # fmt: skip
    with np.load(tmp_path / "low.npz") as f:
        low = dict(f)
    assert len(low["op_conf"]) > 0 and (low["op_conf"] >= 0.001).all() and float(low["op_threshold"]) == 0.001
    for i in np.unique(low["op_image"]):
        top = np.flatnonzero(low["op_image"] == i)[np.argmax(low["op_conf"][low["op_image"] == i])]
        mine = (low["pred_image"] == i) & (low["pred_cls"] == low["op_cls"][top])
        assert np.isclose(low["conf"][mine], low["op_conf"][top]).any()

    # report= recomputes the reports byte for byte
    reports = {name: (folder / name).read_bytes() for name in ("compare.md", "compare.csv", "compare.json")}
    again = compare(f"report={folder}", cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-3000:]
    assert {name: (folder / name).read_bytes() for name in reports} == reports

    # a folder of an earlier compare (no single-label detections stored): AP as before, the operating point unavailable
    for npz in (folder / "runs").glob("*/per_image*.npz"):
        with np.load(npz) as f:
            old = {k: v for k, v in f.items() if not k.startswith("op_")}
        np.savez_compressed(npz, **old)
    old = compare(f"report={folder}", cwd=tmp_path)
    assert old.returncode == 0, old.stdout[-3000:]
    md = (folder / "compare.md").read_text()
    assert "Operating point (confidence ≥ 0.25, IoU 0.5): unavailable" in md and "## AP50" in md
    assert "at the operating point" not in md

    # another operating_conf validates the runs again, without training
    other = compare(*args, "operating_conf=0.01", cwd=tmp_path)
    assert other.returncode == 0, other.stdout[-3000:]
    assert "training ..." not in other.stdout
    assert "confidence ≥ 0.01" in (folder / "compare.md").read_text()
    with np.load(folder / "runs" / "none-seed0" / "per_image.npz") as f:
        assert float(f["op_threshold"]) == 0.01


@pytest.mark.parametrize("value", ["0", "1.5", "high", "True"])
def test_operating_conf_outside_0_1_fails_in_one_line(value):
    from ultralytics_weighted.commands.compare.plan import parse_options

    assert parse_options({"data": "x.yaml"}).operating_conf == 0.25
    assert parse_options({"data": "x.yaml", "operating_conf": "0.1"}).operating_conf == 0.1
    with pytest.raises(ValueError, match=f"operating_conf={value} must be a confidence between 0 and 1"):
        parse_options({"data": "x.yaml", "operating_conf": value})
