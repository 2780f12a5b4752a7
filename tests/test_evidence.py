# ultralytics-weighted, AGPL-3.0 license
"""What `compare` establishes: per-image metrics as Ultralytics computes them, and intervals with known answers."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from ultralytics_weighted.commands.compare import summarize
from ultralytics_weighted.commands.compare.intervals import familywise, paired_delta
from ultralytics_weighted.commands.compare.metrics import (
    class_recall,
    detection_ap,
    detection_operating_point,
    resample_weights,
    run_metrics,
)
from ultralytics_weighted.commands.compare.rule import decision_rule, tau_frontier


def detections(rng, n_images=60, nc=4, found=(0.9, 0.7, 0.5, 0.3)):
    """Per-image detection results as a validator stores them: each object found (true positive up to a random IoU
    threshold) with the class's probability, plus false positives; a true positive never outnumbers the objects."""
    tp, conf, pred_cls, pred_image, target_cls, target_image = [], [], [], [], [], []
    for i in range(n_images):
        for c in rng.integers(0, nc, rng.integers(1, 4)):
            target_cls.append(c), target_image.append(i)
            if rng.random() < found[c]:
                tp.append(np.arange(10) < rng.integers(1, 11)), conf.append(rng.uniform(0.3, 1)), pred_cls.append(c)
                pred_image.append(i)
        for _ in range(rng.integers(0, 4)):
            tp.append(np.zeros(10, bool)), conf.append(rng.uniform(0, 0.8)), pred_cls.append(rng.integers(0, nc))
            pred_image.append(i)
    arrays = (tp, conf, pred_cls, pred_image, target_cls, target_image)
    return dict(zip(("tp", "conf", "pred_cls", "pred_image", "target_cls", "target_image"), map(np.array, arrays)))


def test_detection_ap_is_ultralytics_ap_on_the_whole_set_and_on_any_subset():
    from ultralytics.utils.metrics import ap_per_class

    rng = np.random.default_rng(0)
    d = detections(rng)
    full = detection_ap(*d.values(), 4, np.ones((1, 60)))[0]
    expected = ap_per_class(d["tp"], d["conf"], d["pred_cls"], d["target_cls"])[5]
    assert 0.2 < expected[:, 0].mean() < 0.9  # a case where AP50 is far from 0 and 1
    np.testing.assert_allclose(full, expected, atol=1e-12)
    # a resample that leaves images out (weights 0/1) is Ultralytics' AP on the remaining images
    keep = rng.random((3, 60)) < 0.6
    subsets = detection_ap(*d.values(), 4, keep.astype(float))
    for k, row in enumerate(keep):
        p, t = row[d["pred_image"]], row[d["target_image"]]
        sub = ap_per_class(d["tp"][p], d["conf"][p], d["pred_cls"][p], d["target_cls"][t])
        np.testing.assert_allclose(subsets[k][sub[6]], sub[5], atol=1e-12)


def test_detection_bootstrap_is_fast_enough():
    import time

    rng = np.random.default_rng(1)
    d = detections(rng, n_images=200, nc=10, found=np.linspace(0.9, 0.2, 10))
    weights = resample_weights(200, 1000)
    start = time.perf_counter()
    ap = detection_ap(*d.values(), 10, weights)
    assert time.perf_counter() - start < 30  # one run, 1,000 resamples: 0.6 s measured on a busy 2-core machine
    assert ap.shape == (1000, 10, 10) and np.isfinite(ap).all()


def test_class_recall_weights_count_images():
    true, pred = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])
    recall, top1 = class_recall(true, pred, 3, np.array([[1, 1, 1, 1, 1], [3, 0, 1, 0, 1]]))
    np.testing.assert_allclose(recall, [[0.5, 1.0, 0.0], [1.0, 1.0, 0.0]])
    np.testing.assert_allclose(top1, [3 / 5, 4 / 5])


def fake_comparison(tmp_path, recall_by_variant: dict, seeds=3, per_class=100, seed=0):
    """Write a classification comparison's folder (compare.json, run folders) without training: each run predicts
    each class right with the given probability."""
    names = {0: "head", 1: "tail"}
    true = np.repeat(np.arange(2), per_class)
    runs = []
    for variant, recall in recall_by_variant.items():
        for s in range(seeds):
            folder = tmp_path / "runs" / f"{variant}-seed{s}"
            folder.mkdir(parents=True)
            rng = np.random.default_rng([seed, s])  # per seed: variants with equal recall predict alike
            right = rng.random(len(true)) < np.asarray(recall)[true]
            pred = np.where(right, true, 1 - true)
            probs = np.eye(2, dtype=np.float32)[pred]
            images = np.array([f"{names[c]}/{i}.jpg" for i, c in enumerate(true)])
            np.savez_compressed(folder / "per_image.npz", true=true, pred=pred, probs=probs, images=images)
            result = {"variant": variant, "seed": s, "train_seconds": 10.0 + s, "val_seconds": 1.0, "epochs": 2}
            result |= {"images": 400, "epoch_size": 200, "task": "classify", "all": {"top1": 0.0}, "classes": {}}
            (folder / "metrics.json").write_text(json.dumps(result))
            runs.append(str(folder.relative_to(tmp_path)))
    share = {"instances": [300, 10], "share_after": [0.5, 0.5], "epoch_size": 200}
    setup = {"command": "", "task": "classify", "names": names, "runs": runs, "resamples": 1000}
    setup |= {"variants": [{"name": v, "overrides": {}} for v in recall_by_variant]}
    setup["shares"] = {v: share for v in recall_by_variant}
    (tmp_path / "compare.json").write_text(json.dumps(setup))
    return tmp_path


def test_identical_runs_are_not_established(tmp_path):
    comparison = summarize(fake_comparison(tmp_path, {"none": [0.9, 0.3], "same": [0.9, 0.3]}))
    assert comparison.row("recall", "tail", "none")["std"] > 0.01  # the seeds differ ...
    for metric, cls in (("recall", "head"), ("recall", "tail"), ("top1", "all"), ("balanced_accuracy", "all")):
        row = comparison.row(metric, cls, "same")  # ... but each seed's pair is identical
        assert row["delta_by_seed"] == [0.0, 0.0, 0.0] and row["delta"] == 0.0
        assert row["lo"] == row["hi"] == 0.0 and row["verdict"] == "not established", row


def simulated(true, recall, seeds, seed_sd, rng, weights):
    """Per seed, recall of class 1 on every resample of a classifier whose per-class hit rate varies by seed."""
    runs = []
    for _ in range(seeds):
        p = np.clip(np.asarray(recall) + rng.normal(0, seed_sd, len(recall)), 0, 1)
        pred = np.where(rng.random(len(true)) < p[true], true, 1 - true)
        runs.append(class_recall(true, pred, 2, weights)[0][:, 1])
    return np.stack(runs, 1)  # (1 + B, S)


@pytest.mark.parametrize(
    "planted, seeds, expected",
    [(0.0, 3, "not established"), (0.0, 5, "not established"), (0.3, 5, "better"), (-0.3, 5, "worse")],
)
def test_interval_calibration(planted, seeds, expected):
    # 100 simulated comparisons: training varies recall by seed (sd 0.05), 100 val images per class. A planted 0.3 is
    # found at 5 seeds; at 3 seeds (t with 2 degrees of freedom) only 76-85 times in 100, the price of an interval
    # that covers (the seed bootstrap it replaced called it 97 times and a non-difference 17 times in 100 where the
    # seeds dominate: benchmarks/calibration.py)
    rng = np.random.default_rng(0)
    true = np.repeat(np.arange(2), 100)
    weights = np.concatenate([np.ones((1, 200)), resample_weights(200, 500)])
    verdicts = []
    for k in range(100):
        base = simulated(true, [0.9, 0.4], seeds, 0.05, rng, weights)
        variant = simulated(true, [0.9, 0.4 + planted], seeds, 0.05, rng, weights)
        both = np.stack([base, variant], 1)  # (1 + B, 2, S)
        verdicts.append(paired_delta(both[0], both[1:], seed=k)["verdict"])
    assert verdicts.count(expected) >= 90  # no difference: rarely claimed; a planted one of 0.3: nearly always found


def test_a_planted_difference_is_found_both_ways(tmp_path):
    comparison = summarize(fake_comparison(tmp_path, {"none": [0.9, 0.3], "balanced": [0.7, 0.6]}))
    tail, head = comparison.row("recall", "tail", "balanced"), comparison.row("recall", "head", "balanced")
    assert tail["verdict"] == "better" and tail["lo"] < 0.3 < tail["hi"]  # planted: +0.3
    assert head["verdict"] == "worse" and head["lo"] < -0.2 < head["hi"]  # planted: -0.2
    assert comparison.row("recall", "tail", "none")["mean"] == pytest.approx(0.3, abs=0.08)
    # the reports say it at a glance and keep every number
    md = (tmp_path / "compare.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("| tail |"))
    assert line.endswith("**better** |") and f"[{tail['lo']:+.3f}, {tail['hi']:+.3f}]" in line
    assert "| **balanced accuracy** |" in md and "| **top-1 accuracy** |" in md
    assert "| balanced | 200 | 2 | 400 | 1.00x | 11.0 | 33.0 |" in md  # images trained and training seconds
    rows = list(csv.DictReader((tmp_path / "compare.csv").open()))
    summary = [r for r in rows if r["kind"] == "summary" and r["variant"] == "balanced" and r["class"] == "tail"]
    assert summary[0]["verdict"] == "better" and float(summary[0]["lo"]) == pytest.approx(tail["lo"])
    # 6 runs x (2 classes, top-1, accuracy at the train class frequencies (#24: added), balanced accuracy)
    assert len([r for r in rows if r["kind"] == "run"]) == 6 * 5


def test_intervals_are_seeded_and_resamples_can_change(tmp_path):
    folder = fake_comparison(tmp_path, {"none": [0.9, 0.3], "balanced": [0.7, 0.6]})
    a, b = summarize(folder), summarize(folder)
    assert a.table == b.table  # the same resamples every time
    fewer = summarize(folder, resamples=50)
    assert (
        fewer.resamples == 50
        and fewer.row("recall", "tail", "balanced")["lo"] != a.row("recall", "tail", "balanced")["lo"]
    )


def test_run_metrics_detection_all_is_the_mean_over_classes():
    d = detections(np.random.default_rng(2))
    values = run_metrics(d, 4, np.ones((1, 60)))
    per_class = [values["ap50", c][0] for c in range(4)]
    assert values["ap50", "all"][0] == pytest.approx(np.mean(per_class))
    assert values["ap50_95", 0][0] < values["ap50", 0][0]  # stricter thresholds find fewer


def test_one_seed_gives_the_evaluation_noise_alone_and_two_seeds_a_wide_interval():
    rng = np.random.default_rng(3)
    base = rng.normal(0.5, 0.02, (300, 2))
    both = np.stack([base, base + 0.1 + rng.normal(0, 0.02, (300, 2))], 1)  # Δ on a resample: sd 0.02
    one = paired_delta(np.array([[0.5], [0.6]]), both[:, :, :1])
    assert not one["seed_level"] and one["hi"] - one["lo"] == pytest.approx(2 * 1.96 * 0.02, rel=0.1)
    two = paired_delta(np.array([[0.5, 0.5], [0.55, 0.65]]), both)  # per-seed Δ 0.05 and 0.15: t(1) = 12.7
    assert two["seed_level"] and two["lo"] < -0.5 and two["hi"] > 0.7 and two["verdict"] == "not established"


def test_familywise_verdicts_are_stricter_and_keep_the_unadjusted_interval():
    by_seed = ([0.2, 0.21, 0.19, 0.2, 0.2], [0.05, 0.04, 0.0, 0.06, 0.05])  # per-seed Δ: p 4e-7 and 0.019
    rows = [paired_delta(np.stack([np.full(5, 0.5), 0.5 + np.array(d)]), np.zeros((10, 2, 5))) for d in by_seed]
    rows += [{"delta": 0.0, "p": 0.5, "verdict": "not established", "lo": -0.1, "hi": 0.1}] * 8  # 10 classes
    controlled = familywise(rows)
    assert [r["verdict_unadjusted"] for r in controlled[:2]] == ["better", "better"]
    assert [r["verdict"] for r in controlled[:2]] == ["better", "not established"]  # 0.019 x 9 > 0.05
    assert controlled[1]["lo"] == rows[1]["lo"] and controlled[1]["p_adjusted"] > rows[1]["p"]


def test_the_rule_fails_a_wider_interval_with_the_same_delta():
    # the rule the wrong way round passed when an interval was wide; now less evidence never passes (a)
    counts = {"head": 1000, "mid": 300, "tail": 20}
    rows = {"head": {"delta": -0.005, "lo": -0.015, "verdict": "not established"}}
    rows["mid"] = {"delta": 0.0, "lo": -0.01, "verdict": "not established"}
    rows["tail"] = {"delta": 0.15, "lo": 0.05, "verdict": "better"}
    assert decision_rule(rows, counts)["a"] and decision_rule(rows, counts)["b"]
    wide = rows | {"head": rows["head"] | {"lo": -0.2}}
    outcome = decision_rule(wide, counts)
    assert not outcome["a"] and outcome["failing"] == {"head": -0.2} and outcome["outcome"].startswith("fails (a)")
    assert decision_rule(rows | {"head": rows["head"] | {"lo": float("nan")}}, counts)["a"] is False


def test_detection_operating_point_counts_detections_above_the_threshold():
    rng = np.random.default_rng(4)
    d = detections(rng)
    keep = rng.random((2, 60)) < 0.7
    out = detection_operating_point(d, 4, np.concatenate([np.ones((1, 60)), keep.astype(float)]), conf=0.5)
    for b, row in enumerate([np.ones(60, bool), *keep]):
        for c in range(4):
            det = (d["conf"] >= 0.5) & (d["pred_cls"] == c) & row[d["pred_image"]]
            tp, objects = (det & d["tp"][:, 0]).sum(), ((d["target_cls"] == c) & row[d["target_image"]]).sum()
            assert out["recall", c][b] == pytest.approx(tp / objects)
            assert out["precision", c][b] == pytest.approx(tp / det.sum())


def test_tau_frontier_at_zero_is_the_run_and_tau_trades_balanced_for_prior_accuracy():
    rng = np.random.default_rng(5)
    true = np.repeat(np.arange(3), [60, 30, 10])
    logits = rng.normal(0, 1, (100, 3)) + 1.5 * np.eye(3)[true] + np.log([1 / 3, 1 / 3, 1 / 3])  # a balanced model
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    counts = np.array([600, 300, 100])
    offsets = np.log(counts / counts.sum() / (1 / 3))  # prior_offsets(share_before, share_trained=1/3, tau=1)
    frontier = tau_frontier({"true": true, "probs": probs}, 3, np.ones((1, 100)), offsets, counts)
    plain = run_metrics({"true": true, "pred": probs.argmax(1)}, 3, np.ones((1, 100)), train_instances=counts)
    assert frontier[0.0]["balanced_accuracy"][0] == plain["balanced_accuracy", "all"][0]
    assert frontier[0.0]["prior_accuracy"][0] == pytest.approx(plain["prior_accuracy", "all"][0])
    prior = [frontier[t]["prior_accuracy"][0] for t in (0.0, 0.5, 1.0)]
    balanced = [frontier[t]["balanced_accuracy"][0] for t in (0.0, 0.5, 1.0)]
    assert prior[0] < prior[2] and balanced[0] > balanced[2]  # the dial moves along the frontier
