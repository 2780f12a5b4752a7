# ultralytics-weighted, AGPL-3.0 license
"""balance_floor, balance_ramp and balance_start: grown epochs that skip no image, strengths that rise per epoch, stock
epochs before balancing starts, in real training."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import YOLO, captured_log, run

from ultralytics_weighted import BalancedSampler, weighted_probabilities
from ultralytics_weighted.extensions.report import balance_report, floor_warning, schedule_lines
from ultralytics_weighted.extensions.schedule import BalanceSchedule

RNG = np.random.default_rng(3)
# 400 images: a common class in crowds, a rare class alone or with the common one, and a few backgrounds
LABELS = [RNG.choice(3, size=RNG.integers(1, 5), p=[0.8, 0.15, 0.05]) for _ in range(380)] + [np.zeros(0, int)] * 20


def draw_counts(schedule: BalanceSchedule, epoch: int, seed: int = 0) -> np.ndarray:
    sampler = BalancedSampler(schedule.probabilities, seed, 1, 0, schedule.epoch_size)
    return np.bincount(sampler.global_draw(epoch), minlength=len(LABELS))


@pytest.mark.parametrize("floor", [0.5, 0.75, 1.0])
@pytest.mark.parametrize("agg", ["mean", "sum", "auto"])
def test_floor_draws_every_image_at_least_floor_times_and_counts_are_floor_or_ceil(floor, agg):
    schedule = BalanceSchedule(LABELS, 3, 1.0, agg, floor=floor)
    p = weighted_probabilities(LABELS, 3, agg, 1.0)
    assert schedule.epoch_size == math.ceil(np.maximum(len(p) * p, floor).sum() - 1e-9) > len(LABELS)
    expected = schedule.epoch_size * schedule.probabilities(0)
    assert (expected >= floor - 1e-9).all()  # no image is skipped for another's extra draws
    assert (expected >= len(p) * p - 1e-9).all()  # the images the weights favour keep their extra draws
    for seed in range(5):
        counts = draw_counts(schedule, epoch=seed, seed=seed)
        assert counts.sum() == schedule.epoch_size
        assert (counts >= math.floor(floor)).all()
        assert ((counts == np.floor(expected)) | (counts == np.ceil(expected))).all()


def test_table_states_the_grown_epoch_that_the_sampler_draws():
    schedule = BalanceSchedule(LABELS, 3, 1.0, "mean", floor=1.0)
    p = schedule.probabilities(0)
    line = balance_report(LABELS, ["a", "b", "c"], p, 1.0, "mean", schedule=schedule)[-1]
    growth = schedule.epoch_size / len(LABELS) - 1
    assert line.endswith(
        f"coverage 100.0% of images per epoch, epoch 400 -> {schedule.epoch_size} images ({growth:+.0%})"
    )
    assert len(BalancedSampler(schedule.probabilities, epoch_size=schedule.epoch_size)) == schedule.epoch_size


def test_without_floor_and_ramp_the_draws_are_those_of_the_plain_sampler():
    p = weighted_probabilities(LABELS, 3, "mean")
    schedule = BalanceSchedule(LABELS, 3, 1.0, "mean", epochs=10)
    plain, scheduled = (
        BalancedSampler(p, seed=4),
        BalancedSampler(schedule.probabilities, 4, None, None, schedule.epoch_size),
    )
    assert schedule.epoch_size == len(LABELS)
    for epoch in range(3):
        assert np.array_equal(plain.global_draw(epoch), scheduled.global_draw(epoch))


def test_ramp_strengths_follow_the_schedule_and_each_epoch_draws_its_own():
    schedule = BalanceSchedule(LABELS, 3, 0.8, "mean", ramp=0.5, epochs=9)  # full strength from epoch 4 (0-based)
    assert [schedule.strength_at(e) for e in range(9)] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 0.8, 0.8, 0.8, 0.8])
    assert schedule.full_strength_epoch == 4
    for epoch in (0, 2, 5):
        want = weighted_probabilities(LABELS, 3, "mean", schedule.strength_at(epoch))
        np.testing.assert_array_equal(schedule.probabilities(epoch), want)
    np.testing.assert_allclose(schedule.probabilities(0), 1 / len(LABELS))  # epoch 1 is instance-balanced (stock)
    assert "from epoch 5 of 9 on" in schedule_lines(schedule)[0]

    # resume: a sampler moved to epoch e by set_epoch draws e's probabilities, exactly as an uninterrupted one
    straight = BalancedSampler(schedule.probabilities, seed=1)
    draws = [list(straight) for _ in range(6)]
    resumed = BalancedSampler(schedule.probabilities, seed=1)
    resumed.set_epoch(3)
    assert [list(resumed), list(resumed), list(resumed)] == draws[3:6]


def test_floor_with_ramp_keeps_one_epoch_length_that_covers_every_epoch():
    schedule = BalanceSchedule(LABELS, 3, 1.0, "sum", floor=1.0, ramp=1.0, epochs=6)
    lengths = [
        np.maximum(len(LABELS) * weighted_probabilities(LABELS, 3, "sum", schedule.strength_at(e)), 1.0).sum()
        for e in range(6)
    ]
    assert schedule.epoch_size == math.ceil(max(lengths) - 1e-9)
    for epoch in range(6):
        assert (draw_counts(schedule, epoch) >= 1).all()


@pytest.mark.parametrize("agg", ["mean", "sum", "auto"])
def test_start_samples_every_image_once_before_and_balanced_after(agg):
    schedule = BalanceSchedule(LABELS, 3, 1.0, agg, epochs=10, start=0.7)  # stock in epochs 0-6 (0-based)
    assert (schedule.start_epoch, schedule.full_strength_epoch, schedule.epoch_size) == (7, 7, len(LABELS))
    balanced = weighted_probabilities(LABELS, 3, agg, 1.0)
    for epoch in range(10):
        want = np.full(len(LABELS), 1 / len(LABELS)) if epoch < 7 else balanced
        np.testing.assert_array_equal(schedule.probabilities(epoch), want)
    assert [schedule.strength_at(e) for e in range(10)] == [0.0] * 7 + [1.0] * 3
    for epoch in range(7):
        assert (draw_counts(schedule, epoch, seed=epoch) == 1).all()  # a permutation, as stock shuffling draws
    rare = np.array([2 in c for c in LABELS])
    assert draw_counts(schedule, 7)[rare].mean() > 2  # balanced: the rare class' images repeat
    assert schedule_lines(schedule) == [
        "balance_start=0.7: stock sampling in epochs 1-7, balanced from epoch 8 of 10; the figures above are those of "
        "the balanced epochs."
    ]


@pytest.mark.parametrize(
    "start, epochs, stock",
    [(0.75, 20, 15), (0.7, 10, 7), (0.29, 100, 29), (0.5, 3, 1), (0.99, 10, 9), (0.3, 1, 0), (0.1, 5, 0)],
)
def test_start_epoch_is_the_fraction_of_the_epochs_rounded_down_and_leaves_one_balanced(start, epochs, stock):
    schedule = BalanceSchedule(LABELS, 3, 1.0, epochs=epochs, start=start)
    assert schedule.start_epoch == stock  # 0.29 * 100 is 28.999... in floats: still 29 stock epochs
    assert schedule.probabilities(epochs - 1) is not None and schedule.strength_at(epochs - 1) == 1.0
    if not stock:
        assert f"leaves no stock epoch, balanced from epoch 1 of {epochs}" in schedule_lines(schedule)[0]


def test_start_with_ramp_rises_from_the_start_epoch_over_ramp_times_the_remaining_epochs():
    schedule = BalanceSchedule(LABELS, 3, 0.8, "mean", ramp=0.5, epochs=13, start=0.5)  # 6 stock, ramp over 3 epochs
    want = [0.0] * 6 + [0.0, 0.8 / 3, 1.6 / 3, 0.8, 0.8, 0.8, 0.8]
    assert [schedule.strength_at(e) for e in range(13)] == pytest.approx(want)
    assert (schedule.start_epoch, schedule.full_strength_epoch) == (6, 9)
    np.testing.assert_array_equal(schedule.probabilities(7), weighted_probabilities(LABELS, 3, "mean", 0.8 / 3))
    assert schedule_lines(schedule) == [
        "balance_start=0.5: stock sampling in epochs 1-6, balanced from epoch 7 of 13",
        "balance_ramp=0.5: class_balance rises linearly from 0 in epoch 7 to 0.8 from epoch 10 of 13 on; the figures "
        "above are those of the balanced epochs.",
    ]


def test_start_with_floor_keeps_the_balanced_epoch_length_and_draws_it_uniformly_before():
    schedule = BalanceSchedule(LABELS, 3, 1.0, "sum", floor=1.0, ramp=1.0, epochs=6, start=0.5)
    balanced_lengths = [
        np.maximum(len(LABELS) * weighted_probabilities(LABELS, 3, "sum", schedule.strength_at(e)), 1.0).sum()
        for e in (3, 4, 5)
    ]
    assert schedule.epoch_size == math.ceil(max(balanced_lengths) - 1e-9) > len(LABELS)  # the stock epochs set none
    share = schedule.epoch_size / len(LABELS)  # the cost: each stock epoch draws that many images per image
    for epoch in range(3):
        counts = draw_counts(schedule, epoch, seed=epoch)
        assert counts.sum() == schedule.epoch_size and set(counts) <= {math.floor(share), math.ceil(share)}
    for epoch in range(3, 6):
        assert (draw_counts(schedule, epoch) >= 1).all()
    first_line = schedule_lines(schedule)[0]
    assert f"stock sampling in epochs 1-3 ({schedule.epoch_size} uniform draws per epoch)" in first_line


def test_resumed_sampler_draws_what_an_uninterrupted_one_draws_across_the_start():
    schedule = BalanceSchedule(LABELS, 3, 1.0, "mean", floor=1.0, epochs=6, start=0.5)
    straight = BalancedSampler(schedule.probabilities, 5, 1, 0, schedule.epoch_size)
    draws = [list(straight) for _ in range(6)]
    for stop in (1, 3, 4):  # resumed in the stock epochs, at the start, after it
        resumed = BalancedSampler(schedule.probabilities, 5, 1, 0, schedule.epoch_size)
        resumed.set_epoch(stop)
        assert [list(resumed) for _ in range(stop, 6)] == draws[stop:]


@pytest.mark.parametrize(
    "arg, error",
    [
        ("balance_floor=-1", "'balance_floor=-1' is an invalid value"),
        ("balance_floor=yes", "'balance_floor=yes' is of invalid type str"),
        ("balance_ramp=1.5", "'balance_ramp=1.5' is an invalid value"),
        ("balance_ramp=True", "'balance_ramp=True' is of invalid type bool"),
        ("balance_start=1", "'balance_start=1' is an invalid value. Valid 'balance_start' values are at least 0.0 and"),
        ("balance_start=-0.1", "'balance_start=-0.1' is an invalid value"),
        ("balance_start=True", "'balance_start=True' is of invalid type bool"),
        ("balance_start=half", "'balance_start=half' is of invalid type str"),
    ],
)
def test_bad_floor_and_ramp_fail_before_any_data_is_loaded(arg, error, datasets, yolo, tmp_path):
    out = yolo(datasets("detect"), tmp_path / "runs", "class_balance=True", arg)
    assert out.returncode != 0 and error in out.stdout
    assert "Scanning" not in out.stdout and not (tmp_path / "runs").exists()


def test_training_with_floor_and_ramp_grows_the_loader_and_follows_the_ramp(datasets, tmp_path):
    from ultralytics import YOLO as Model

    seen = []

    def record(trainer):
        sampler = trainer.train_loader.sampler
        seen.append(
            (
                trainer.epoch,
                sampler._last_drawn,
                trainer.train_loader.dataset.balance_schedule.strength_at(trainer.epoch),
            )
        )

    model = Model("yolo11n.yaml")
    model.add_callback("on_train_epoch_end", record)
    with captured_log() as log:
        model.train(
            data=str(datasets("detect")),
            class_balance=True,
            balance_floor=1,
            balance_ramp=1.0,
            epochs=3,
            imgsz=64,
            batch=8,
            device="cpu",
            plots=False,
            workers=0,
            val=False,
            project=str(tmp_path),
            name="run",
        )
    trainer = model.trainer
    schedule = trainer.train_loader.dataset.balance_schedule
    n = len(trainer.train_loader.dataset)
    assert (schedule.floor, schedule.ramp, schedule.epochs) == (1.0, 1.0, 3)
    assert schedule.epoch_size > n and len(trainer.train_loader) == math.ceil(schedule.epoch_size / 8)
    assert seen == [(0, 0, 0.0), (1, 1, 0.5), (2, 2, 1.0)]  # balance_ramp=1: full strength in the last epoch
    table = "\n".join(line for line in log if "max/min class share" in line or "balance_ramp=1:" in line)
    assert f"epoch {n} -> {schedule.epoch_size} images" in table  # the length the loader really has
    assert "class_balance rises linearly from 0 in epoch 1 to 1 from epoch 3 of 3 on" in table


@pytest.mark.parametrize("value", [1.0, 1, -0.5, math.nan, math.inf, -math.inf, True, "0.5", None])
def test_bad_start_fails_in_python_before_any_run_folder(value, datasets, tmp_path):
    from ultralytics import YOLO as Model

    error = TypeError if isinstance(value, (bool, str)) or value is None else ValueError
    with pytest.raises(error, match=f"'balance_start={value}' is"):
        Model("yolo11n.yaml").train(
            data=str(datasets("detect")), class_balance=True, balance_start=value, project=str(tmp_path / "runs")
        )
    with pytest.raises(error, match=f"'balance_start={value}' is"):
        Model("yolo11n.yaml").train(data=str(datasets("detect")), project=str(tmp_path / "runs"), balance_start=value)
    assert not (tmp_path / "runs").exists()


def test_bad_start_in_a_cfg_file_fails_before_any_run_folder(datasets, tmp_path):
    cfg = tmp_path / "late.yaml"
    cfg.write_text("class_balance: True\nbalance_start: .nan\n")  # YAML's NaN: a float that no range check passes
    args = [f"cfg={cfg}", f"data={datasets('detect')}", "model=yolo11n.yaml", f"project={tmp_path / 'runs'}"]
    out = run([*YOLO, "train", *args], cwd=tmp_path)
    assert out.returncode != 0 and "'balance_start=nan' is an invalid value" in out.stdout
    assert "Scanning" not in out.stdout and not (tmp_path / "runs").exists()


def test_training_starts_late_and_a_resumed_run_draws_what_an_uninterrupted_one_draws(datasets, tmp_path):
    from ultralytics import YOLO as Model

    class Stop(Exception):
        pass

    seen = []

    def record(trainer):
        sampler = trainer.train_loader.sampler
        seen.append((trainer.epoch, sampler._last_drawn, sampler.global_draw(trainer.epoch).tolist()))

    def stop_after_first_epoch(trainer):
        raise Stop

    train = dict(epochs=2, imgsz=64, batch=8, device="cpu", plots=False, workers=0, seed=3, val=False)
    model = Model("yolo11n.yaml")
    model.add_callback("on_train_epoch_end", record)
    model.add_callback("on_fit_epoch_end", stop_after_first_epoch)
    with captured_log() as log, pytest.raises(Stop):
        model.train(data=str(datasets("detect")), class_balance=True, balance_start=0.5, **train, project=str(tmp_path))
    table = "\n".join(log)
    assert "class_balance=1 balance_agg=mean balance_start=0.5: 24 train images" in table
    assert "balance_start=0.5: stock sampling in epoch 1, balanced from epoch 2 of 2" in table
    resumed = Model(tmp_path / "train" / "weights" / "last.pt")
    resumed.add_callback("on_train_epoch_end", record)
    resumed.train(resume=True)
    schedule = resumed.trainer.train_loader.dataset.balance_schedule
    assert (resumed.trainer.start_epoch, resumed.trainer.args.balance_start, schedule.start_epoch) == (1, 0.5, 1)
    assert [(epoch, drawn) for epoch, drawn, _ in seen] == [(0, 0), (1, 1)]  # the sampler followed the resumed trainer
    uninterrupted = BalancedSampler(schedule.probabilities, 3, 1, 0, schedule.epoch_size)
    assert [draw for _, _, draw in seen] == [list(uninterrupted), list(uninterrupted)]
    assert sorted(seen[0][2]) == list(range(24))  # epoch 1: every image once, as stock
    assert len(set(seen[1][2])) < 24  # epoch 2: balanced, the rare images repeat


def test_floor_above_one_is_refused_and_a_floor_that_undoes_the_balance_is_warned_about():
    with pytest.raises(ValueError, match=r"floor must lie in \[0, 1\]"):
        BalanceSchedule(LABELS, 3, 1.0, "mean", floor=1e9)  # would build a gigantic epoch
    labels = [np.array([0, 0, 1])] + [np.array([0])] * 2 + [np.array([1])]
    undone, stock, without, floored = BalanceSchedule(labels, 2, 1.0, "sum", floor=1.0).floor_effect()
    assert floored == pytest.approx(stock) and without < stock and undone == pytest.approx(1.0)
    assert "takes back 100% of the balance" in floor_warning(BalanceSchedule(labels, 2, 1.0, "sum", floor=1.0))
    assert floor_warning(BalanceSchedule(labels, 2, 1.0, "sum")) is None  # no floor: nothing taken back
