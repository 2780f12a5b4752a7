# ultralytics-weighted, AGPL-3.0 license
"""`compare` variants with tau (`mean+tau=1`): the trained runs of the base variant, corrected, not retrained."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import run

from ultralytics_weighted.commands.compare import parse_variants, summarize
from ultralytics_weighted.host.priors import correct_checkpoint
from ultralytics_weighted.host.validation import result_files, validate


def compare(*args, cwd):
    return run([sys.executable, "-m", "ultralytics_weighted.commands.cli", "compare", *args], cwd=cwd, timeout=600)


def stored(path):
    with np.load(path) as f:
        return dict(f)


@pytest.mark.parametrize(
    "variants, message",
    [
        ("none,none+tau=1", "variant 'none+tau=1': tau corrects the prior of a balanced run"),
        ("none,tau=1", "variant 'tau=1': tau corrects the prior of a balanced run"),
        ("none,cls_pw=1.0+tau=1", "variant 'cls_pw=1.0+tau=1': tau corrects the prior of a balanced run"),
        ("mean+tau=-1", "variant 'mean+tau=-1': tau=-1 must be a finite number >= 0"),
        ("mean+tau=nan", "variant 'mean+tau=nan': tau=nan must be a finite number >= 0"),
        ("mean+tau=abc", "variant 'mean+tau=abc': tau=abc must be a finite number >= 0"),
        ("mean+tau=1+tau=0.5", "variant 'mean+tau=1+tau=0.5' sets tau twice"),
    ],
)
def test_bad_tau_variants_fail_with_one_line(variants, message, datasets, tmp_path):
    out = compare(f"data={datasets('detect')}", f"variants={variants}", f"project={tmp_path}", cwd=tmp_path)
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"ultralytics-weighted compare: {message}")
    assert not list(tmp_path.rglob("*.pt"))


def test_tau_variant_parts():
    variants = parse_variants("none,mean,mean+tau=1,auto@0.5+balance_floor=1+tau=0.5")
    assert [(v.name, v.tau, v.base) for v in variants] == [
        ("none", None, None),
        ("mean", None, None),
        ("mean+tau=1", 1.0, "mean"),
        ("auto@0.5+balance_floor=1+tau=0.5", 0.5, "auto@0.5+balance_floor=1"),
    ]
    # a tau variant trains exactly as its base variant, in its folder
    assert variants[2].overrides == variants[1].overrides and variants[2].slug == variants[1].slug
    assert variants[3].overrides == parse_variants("auto@0.5+balance_floor=1")[0].overrides


def test_detection_tau_variants_share_the_trained_runs(datasets, tmp_path):
    common = [f"data={datasets('detect')}", "seeds=1", "epochs=1", "imgsz=64", "batch=8", "resamples=100"]
    common += [f"project={tmp_path}", "name=cmp"]
    out = compare("variants=none,mean,mean+tau=0,mean+tau=1", *common, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:]
    assert out.stdout.count("training ...") == 2  # none and mean: the tau variants train nothing
    folder = tmp_path / "cmp"
    runs = folder / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["mean-seed0", "none-seed0"]
    mean = runs / "mean-seed0"
    for tau in (0.0, 1.0):  # the corrected checkpoint, validated, next to the trained one
        files = result_files(mean, tau)
        assert files["weights"].exists() and files["per_image"].exists()
        metrics = json.loads(files["metrics"].read_text())
        assert metrics["train_shared_with"] == "mean" and metrics["variant"] == f"mean+tau={tau:g}"
        base = json.loads((mean / "metrics.json").read_text())
        assert (metrics["train_seconds"], metrics["images"]) == (base["train_seconds"], base["images"])
    # tau=0 is the trained model: the same per-image results, so the same row in every table
    base, zero = stored(mean / "per_image.npz"), stored(mean / "per_image-tau0.npz")
    assert base.keys() == zero.keys() and all(np.array_equal(base[k], zero[k]) for k in base)
    comparison = summarize(folder)
    for metric, cls in (("ap50", "all"), ("ap50", "rare"), ("ap50_95", "common")):
        a, b = comparison.row(metric, cls, "mean"), comparison.row(metric, cls, "mean+tau=0")
        assert (a["mean"], a["delta"], a["lo"], a["hi"]) == (b["mean"], b["delta"], b["lo"], b["hi"])
    md = (folder / "compare.md").read_text()
    assert "| mean+tau=1 | Δ mean+tau=1 [95%] |" in md
    seconds = json.loads((mean / "metrics.json").read_text())["train_seconds"]
    assert f"| 1 | 24 | 1.00x | {seconds:.1f} | shared with mean |" in md

    best, log = mean / "weights" / "best.pt", (mean / "train.log").read_text()
    stamp = best.stat().st_mtime_ns
    again = compare("variants=none,mean,mean+tau=0,mean+tau=1,mean+tau=0.5", *common, cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "training ..." not in again.stdout and again.stdout.count("finished earlier, skipped") == 4
    assert "mean+tau=0.5 seed 0: AP50" in again.stdout and "shared with mean" in again.stdout
    assert best.stat().st_mtime_ns == stamp and (mean / "train.log").read_text().startswith(log)
    assert result_files(mean, 0.5)["per_image"].exists()


def test_classification_tau_equals_validating_the_adjusted_checkpoint(tmp_path):
    from ultralytics_weighted.commands.synthetic import make_classification_dataset

    data = make_classification_dataset(tmp_path / "cls", {"common": 30, "medium": 8, "rare": 3}, n_val=6, imgsz=32)
    args = ["variants=none,mean+tau=0,mean+tau=1", "seeds=1", "epochs=1", "imgsz=32", "batch=16", "resamples=100"]
    out = compare(f"data={data}", *args, f"project={tmp_path}", "name=cmp", cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:]
    assert out.stdout.count("training ...") == 2  # none, and mean once for both tau variants (mean is not reported)
    mean = tmp_path / "cmp" / "runs" / "mean-seed0"
    base, zero, one = (stored(result_files(mean, tau)["per_image"]) for tau in (None, 0.0, 1.0))
    assert np.array_equal(zero["pred"], base["pred"]) and np.allclose(zero["probs"], base["probs"], atol=1e-6)
    assert not np.allclose(one["probs"], base["probs"], atol=1e-3)  # tau=1 moves the probabilities
    assert not result_files(mean, 1.0)["weights"].exists()  # classification corrects the stored probabilities

    adjusted = tmp_path / "adjusted.pt"
    correct_checkpoint(mean / "weights" / "best.pt", 1.0, adjusted)
    val = validate(adjusted, str(data), {"imgsz": 32, "batch": 16}, tmp_path / "adjusted.npz")
    direct = stored(tmp_path / "adjusted.npz")
    assert np.array_equal(direct["images"], one["images"]) and np.array_equal(direct["true"], one["true"])
    assert np.array_equal(direct["pred"], one["pred"]) and np.allclose(direct["probs"], one["probs"], atol=1e-5)
    metrics = json.loads(result_files(mean, 1.0)["metrics"].read_text())
    assert metrics["all"]["top1"] == pytest.approx(val["all"]["top1"]) and metrics["task"] == "classify"
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| none | mean+tau=0 | Δ mean+tau=0 [95%] | mean+tau=1 | Δ mean+tau=1 [95%] |" in md
