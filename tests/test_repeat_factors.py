# ultralytics-weighted, AGPL-3.0 license
"""`balance_agg=rfs`: LVIS repeat-factor sampling, its grown epoch, what it refuses, in stats and training."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import balance_table, run

from ultralytics_weighted import BalancedSampler
from ultralytics_weighted.commands.compare.variants import parse_variants
from ultralytics_weighted.extensions.config import check_balance_args, check_rfs_settings
from ultralytics_weighted.extensions.repeat_factors import repeat_factors
from ultralytics_weighted.extensions.schedule import schedule_from_args
from ultralytics_weighted.host.labels import load_label_classes

# 1000 images, written as the images holding each class: class 0 in all but the 20 backgrounds (at the end), class 1 in
# 50 (f = 0.05), class 2 in images 0-3 (f = 0.004, image 0 with 5 instances: an image counts once), class 3 in image 7
# only (f = 0.001), class 4 in no image
N, NC = 1000, 5
HOLDING = {0: list(range(980)), 1: list(range(0, 500, 10)), 2: [0, 0, 0, 0, 0, 1, 2, 3], 3: [7]}
LABELS = [np.array(sorted(c for c, images in HOLDING.items() for j in images if j == i), dtype=int) for i in range(N)]


def lvis_factors(threshold: float, strength: float = 1.0) -> list[float]:
    """r_i by the LVIS definition, computed per image from the class lists (exponent s / 2: s = 1 is the sqrt)."""
    f = {c: len(set(images)) / N for c, images in HOLDING.items()}
    r_class = {c: max(1.0, (threshold / f[c]) ** (strength / 2)) for c in f}
    return [max([r_class[c] for c, images in HOLDING.items() if i in images], default=1.0) for i in range(N)]


@pytest.mark.parametrize("threshold, strength", [(0.001, 1.0), (0.01, 1.0), (0.1, 1.0), (0.1, 0.5), (0.1, 0.0)])
def test_repeat_factors_are_the_lvis_formula(threshold, strength):
    expected = lvis_factors(threshold, strength)
    np.testing.assert_allclose(repeat_factors(LABELS, NC, threshold, strength), expected)
    if (threshold, strength) == (0.01, 1.0):  # spot values: sqrt(0.01 / 0.004) for class 2, sqrt(10) for class 3
        assert expected[0] == pytest.approx(1.5811, abs=1e-4) and expected[7] == pytest.approx(math.sqrt(10))
        assert expected[10] == 1.0 and expected[999] == 1.0  # class 1 is above t; a background


@pytest.mark.parametrize("threshold", [0.01, 0.1])
def test_the_epoch_has_round_sum_r_images_each_drawn_in_proportion_to_r(threshold):
    r = np.array(lvis_factors(threshold))
    schedule = schedule_from_args(
        {"class_balance": True, "balance_agg": "rfs", "balance_rfs_threshold": threshold}, LABELS, NC
    )
    assert schedule.epoch_size == round(r.sum()) > N
    np.testing.assert_allclose(schedule.probabilities(0), r / r.sum())
    sampler = BalancedSampler(schedule.probabilities, 0, 1, 0, schedule.epoch_size)
    assert len(sampler) == len(list(sampler)) == round(r.sum())
    expected = schedule.epoch_size * r / r.sum()
    counts = np.bincount(sampler.global_draw(1), minlength=N)  # systematic draw: floor or ceil of the expectation
    assert ((counts == np.floor(expected)) | (counts == np.ceil(expected))).all()
    # DDP: the ranks' slices are one global draw of the grown epoch (rounded up to a multiple of the ranks)
    ranks = [BalancedSampler(schedule.probabilities, 0, 2, k, schedule.epoch_size) for k in range(2)]
    assert sum(len(s) for s in ranks) == 2 * math.ceil(round(r.sum()) / 2)
    assert sorted(i for s in ranks for i in s) == sorted(ranks[0].global_draw(0).tolist())


def test_ramp_and_late_start_keep_the_full_strength_epoch_and_start_from_uniform():
    r = np.array(lvis_factors(0.1))
    keys = {"class_balance": True, "balance_agg": "rfs", "balance_rfs_threshold": 0.1, "epochs": 4}
    ramped = schedule_from_args({**keys, "balance_ramp": 1.0, "balance_start": 0.25}, LABELS, NC)
    assert ramped.epoch_size == round(r.sum())
    np.testing.assert_allclose(ramped.probabilities(0), 1 / N)  # stock epoch: uniform over the grown epoch
    np.testing.assert_allclose(ramped.probabilities(1), 1 / N)  # the ramp's first epoch: strength 0, every r_i = 1
    half = np.array(lvis_factors(0.1, strength=0.5))
    np.testing.assert_allclose(ramped.probabilities(2), half / half.sum())  # s = 0.5: the exponent halves
    np.testing.assert_allclose(ramped.probabilities(3), r / r.sum())


@pytest.mark.parametrize("value", [0, 0.0, -0.1, 1.5, math.nan, math.inf])
def test_a_bad_threshold_is_refused(value):
    with pytest.raises(ValueError, match=f"'balance_rfs_threshold={value}' is an invalid value"):
        check_balance_args({"balance_rfs_threshold": value})
    with pytest.raises(TypeError, match="'balance_rfs_threshold=x' is of invalid type str"):
        check_balance_args({"balance_rfs_threshold": "x"})
    check_balance_args({"balance_rfs_threshold": 1})  # t = 1: every class in fewer than all images is repeated


@pytest.mark.parametrize(
    "keys, weights, message",
    [
        ({"balance_floor": 0.5}, None, "'balance_floor=0.5' has no effect with balance_agg=rfs"),
        ({}, {"class_multipliers": [1.0, 2.0]}, "balance_agg=rfs cannot be combined with class_weights"),
        ({"balance_agg": "mean", "balance_rfs_threshold": 0.01}, None, "applies to balance_agg=rfs only"),
    ],
)
def test_settings_that_make_no_sense_with_rfs_are_refused(keys, weights, message):
    with pytest.raises(ValueError, match=message):
        check_rfs_settings({"class_balance": True, "balance_agg": "rfs", **keys}, weights)
    check_rfs_settings({"class_balance": True, "balance_agg": "rfs", "balance_ramp": 0.5, "balance_start": 0.5})


def test_compare_variants_select_rfs_and_refuse_what_it_cannot_honour():
    variants = parse_variants("rfs,rfs@0.5,rfs+balance_rfs_threshold=0.01")
    assert [v.overrides for v in variants] == [
        {"class_balance": 1.0, "balance_agg": "rfs"},
        {"class_balance": 0.5, "balance_agg": "rfs"},
        {"class_balance": 1.0, "balance_agg": "rfs", "balance_rfs_threshold": 0.01},
    ]
    r = np.array(lvis_factors(0.01))
    assert variants[2].schedule(LABELS, NC, epochs=3).epoch_size == round(r.sum())  # the images compare trains
    with pytest.raises(ValueError, match="variant 'rfs\\+balance_floor=1': 'balance_floor=1' has no effect"):
        parse_variants("rfs+balance_floor=1")
    with pytest.raises(ValueError, match="variant 'mean\\+balance_rfs_threshold=0.01': 'balance_rfs_threshold=0.01'"):
        parse_variants("mean+balance_rfs_threshold=0.01")


def synthetic_factors(data, threshold: float) -> np.ndarray:
    """LVIS factors of the synthetic train images, from their label lists (as `lvis_factors`, on real labels)."""
    classes, names, _ = load_label_classes({"data": str(data)})
    holding = {c: {i for i, labels in enumerate(classes) if c in labels} for c in range(len(names))}
    r_class = {
        c: max(1.0, math.sqrt(threshold * len(classes) / len(images))) for c, images in holding.items() if images
    }
    return np.array([max([r_class[int(c)] for c in labels], default=1.0) for labels in classes])


def test_stats_shows_the_rfs_row_and_its_grown_epoch(datasets, tmp_path):
    data = datasets("detect")
    r = synthetic_factors(data, 0.5)
    cli = [sys.executable, "-m", "ultralytics_weighted.commands.cli", "stats", f"data={data}"]
    out = run([*cli, "balance_agg=rfs", "balance_rfs_threshold=0.5", "format=json"], cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:]
    report = json.loads(out.stdout[out.stdout.index("{") :])
    assert report["balance_rfs_threshold"] == 0.5
    rfs = next(row for row in report["aggregations"] if row["agg"] == "rfs")
    assert rfs["epoch_size"] == round(r.sum()) > 24
    assert rfs["max_draws"] == pytest.approx(round(r.sum()) * r.max() / r.sum())
    out = run([*cli, "balance_agg=rfs", "balance_rfs_threshold=0.5"], cwd=tmp_path)
    table = out.stdout
    assert "class_balance=1 balance_rfs_threshold=0.5; expected share" in table
    row = next(line for line in table.splitlines() if line.startswith("rfs "))
    assert f" {round(r.sum())} " in row  # the epoch column
    assert "repeats no image" not in out.stdout  # stdout and stderr, merged
    # LVIS's t = 0.001 on 24 images: every class is in more than 0.1% of them, so the rfs row is stock; stats says so
    default = subprocess.run([*cli, "balance_agg=rfs"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "WARNING ⚠️ balance_agg=rfs repeats no image at balance_rfs_threshold=0.001: " in default.stderr
    assert "repeats no image" not in default.stdout  # stdout stays the report alone
    refused = run([*cli, "balance_rfs_threshold=0"], cwd=tmp_path)
    assert refused.returncode == 2 and "'balance_rfs_threshold=0' is an invalid value" in refused.stdout


def test_training_with_rfs_logs_its_table_and_draws_the_grown_epoch(datasets, yolo, tmp_path):
    data = datasets("detect")
    r = synthetic_factors(data, 0.5)
    out = yolo(data, tmp_path / "runs", "class_balance=True", "balance_agg=rfs", "balance_rfs_threshold=0.5")
    assert out.returncode == 0, out.stdout[-3000:]
    table = balance_table(out.stdout)
    assert table[0].startswith("class_balance=1 balance_agg=rfs balance_rfs_threshold=0.5: 24 train images"), table
    assert any(line.endswith(f"epoch 24 -> {round(r.sum())} images ({round(r.sum()) / 24 - 1:+.0%})") for line in table)
    refused = yolo(data, tmp_path / "refused", "class_balance=True", "balance_agg=rfs", "balance_floor=1")
    assert refused.returncode != 0 and "'balance_floor=1' has no effect with balance_agg=rfs" in refused.stdout
    assert not (tmp_path / "refused").exists()  # refused before the run folder


def test_a_resumed_rfs_run_draws_what_an_uninterrupted_one_draws(datasets, tmp_path):
    from ultralytics import YOLO as Model

    class Stop(Exception):
        pass

    def stop_after_first_epoch(trainer):
        raise Stop

    seen = []

    def record(trainer):
        seen.append(trainer.train_loader.sampler.global_draw(trainer.epoch).tolist())

    keys = dict(class_balance=True, balance_agg="rfs", balance_rfs_threshold=0.5, balance_ramp=1.0, seed=3)
    train = dict(epochs=2, imgsz=64, batch=8, device="cpu", plots=False, workers=0, val=False)
    model = Model("yolo11n.yaml")
    model.add_callback("on_train_epoch_end", record)
    model.add_callback("on_fit_epoch_end", stop_after_first_epoch)
    with pytest.raises(Stop):
        model.train(data=str(datasets("detect")), **keys, **train, project=str(tmp_path))
    resumed = Model(tmp_path / "train" / "weights" / "last.pt")
    resumed.add_callback("on_train_epoch_end", record)
    resumed.train(resume=True)
    schedule = resumed.trainer.train_loader.dataset.balance_schedule
    assert (schedule.agg, schedule.threshold, schedule.strength_at(1)) == ("rfs", 0.5, 1.0)
    uninterrupted = BalancedSampler(schedule.probabilities, 3, 1, 0, schedule.epoch_size)
    assert seen == [list(uninterrupted), list(uninterrupted)]
    assert len(seen[1]) == round(synthetic_factors(datasets("detect"), 0.5).sum())


def test_the_plot_marks_no_target_share_for_rfs_which_aims_at_none(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    from ultralytics_weighted.extensions.report import plot_balance

    marked, scatter = [], Axes.scatter  # the target marks are the plot's only scatter
    monkeypatch.setattr(Axes, "scatter", lambda self, *a, **k: marked.append(k["label"]) or scatter(self, *a, **k))
    for agg in ("mean", "rfs"):
        schedule = schedule_from_args({"class_balance": True, "balance_agg": agg}, LABELS, NC)
        assert (schedule.figures["target"] is None) == (agg == "rfs")
        plot_balance(schedule.figures, [str(c) for c in range(NC)], tmp_path / f"{agg}.png", 1.0, agg)
        assert (tmp_path / f"{agg}.png").stat().st_size > 0
    assert marked == ["target share (strength 1)"]  # mean's only


def test_rfs_warns_when_its_threshold_repeats_no_image(monkeypatch):
    from types import SimpleNamespace

    from ultralytics_weighted.extensions.report import rfs_warning
    from ultralytics_weighted.extensions.schedule import BalanceSchedule
    from ultralytics_weighted.host import training

    labels = [np.array([0, 0])] * 15 + [np.array([0, 1])] * 4 + [np.array([2])]  # class 2 in 1 image of 20: f = 0.05
    names = ["car", "bus", "tram"]
    assert repeat_factors(labels, 3, 0.05).max() == 1.0  # t = f: nothing repeated (r = max(1, sqrt(t / f)) = 1)
    warning = rfs_warning(labels, names, 0.05)
    assert warning.startswith("balance_agg=rfs repeats no image at balance_rfs_threshold=0.05")
    assert "the rarest, tram, is in 5.0% (1 of 20)" in warning and warning.endswith("above 0.05 repeats tram.")
    assert repeat_factors(labels, 3, 0.051).max() > 1.0 and rfs_warning(labels, names, 0.051) is None
    # what training logs under its table
    logged = []
    monkeypatch.setattr(training.LOGGER, "warning", logged.append)
    for threshold, expected in ((0.001, 1), (0.2, 0)):
        schedule = BalanceSchedule(labels, 3, 1.0, "rfs", threshold=threshold)
        dataset = SimpleNamespace(
            balance_schedule=schedule, balance_names=names, balanced_probabilities=schedule.balanced_probabilities
        )
        logged.clear()
        training.log_balance(dataset, "detect")
        assert sum("rfs repeats no image" in line for line in logged) == expected, logged
