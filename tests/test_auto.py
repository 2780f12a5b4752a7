# ultralytics-weighted, AGPL-3.0 license
"""balance_agg=auto: solved maximum-entropy probabilities, their targets, bounds, unreachable targets and speed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from ultralytics_weighted.extensions.auto import AUTO_MAX_DRAWS, AUTO_MIN_DRAWS, AUTO_TOLERANCE, target_shares
from ultralytics_weighted.extensions.config import ALL_AGGREGATIONS, check_aggregation
from ultralytics_weighted.extensions.schedule import weighted_probabilities
from ultralytics_weighted.extensions.shares import balance_stats

FIXED = ALL_AGGREGATIONS[:4]
TRAFFIC_LIGHTS = Path(os.environ.get("TRAFFIC_LIGHTS", "/work/shared/datasets/traffic-lights"))


def labels(*images):
    return [np.array(c, dtype=np.int64) for c in images]


def hard_labels(n_images: int = 3000, seed: int = 0) -> list[np.ndarray]:
    """A multi-object label set that fixed aggregations cannot balance: 8 classes, 25x instance imbalance.

    Class 0 is common, 1-2 medium, 3-7 rare. A quarter of the images are crowds of class 0 only (4-11 objects), 40% are
    street scenes of 2-7 objects of classes 0-2 (60/25/15%), 20% are such scenes plus 1-3 rare objects, and 15% hold
    1-3 rare objects with at most one common one: 58% of the rare objects share their image with 2-7 common ones.
    """
    rng = np.random.default_rng(seed)
    common = [0.6, 0.25, 0.15]
    out = []
    for kind in rng.choice(4, n_images, p=[0.25, 0.40, 0.20, 0.15]):
        if kind == 0:
            c = np.zeros(rng.integers(4, 12), dtype=np.int64)
        elif kind == 1:
            c = rng.choice(3, rng.integers(2, 8), p=common)
        elif kind == 2:
            c = np.concatenate([rng.choice(3, rng.integers(2, 8), p=common), rng.integers(3, 8, rng.integers(1, 4))])
        else:
            c = np.concatenate([rng.integers(3, 8, rng.integers(1, 4)), rng.choice(3, rng.integers(0, 2), p=common)])
        out.append(rng.permutation(c))
    return out


def zipf_labels(n_images: int, nc: int = 20, mean_objects: float = 7.0, seed: int = 0) -> list[np.ndarray]:
    """Random labels: Poisson(mean_objects) objects per image, class c drawn with probability ∝ 1 / (c + 1)."""
    rng = np.random.default_rng(seed)
    lengths = rng.poisson(mean_objects, n_images)
    p = 1.0 / np.arange(1, nc + 1)
    flat = rng.choice(nc, lengths.sum(), p=p / p.sum())
    return np.split(flat, np.cumsum(lengths)[:-1])


HARD = hard_labels()


def figures(data, nc, agg, strength=1.0):
    p = weighted_probabilities(data, nc, agg=agg, strength=strength)
    return p, balance_stats(data, nc, p)


def on_target(stats, strength):
    """Max/min over present classes of (expected share / target share): the solver's own stopping measure."""
    t = target_shares(stats["instances"], strength)
    present = t > 0
    ratio = stats["share_after"][present] / t[present]
    return ratio.max() / ratio.min()


def test_auto_and_rfs_follow_the_core_aggregations_and_pass_the_check():
    assert ALL_AGGREGATIONS == ("mean", "max", "median", "sum", "auto", "rfs")  # the plugin's two after the core's four
    check_aggregation("auto")
    check_aggregation("rfs")
    with pytest.raises(ValueError, match="mean, max, median, sum, auto, rfs"):
        check_aggregation("solve")


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_single_object_images_get_the_inverse_frequency_answer_exactly(strength):
    data = labels(*[[0]] * 300, *[[1]] * 120, *[[2]] * 50, *[[3]] * 30)
    p, stats = figures(data, 4, "auto", strength)
    np.testing.assert_allclose(p, weighted_probabilities(data, 4, agg="mean", strength=strength), rtol=1e-12)
    assert on_target(stats, strength) == pytest.approx(1.0, abs=1e-9)


def test_strength_zero_keeps_the_data_shares_with_uniform_sampling():
    p, stats = figures(HARD, 8, "auto", strength=0.0)
    np.testing.assert_allclose(p, 1 / len(HARD), rtol=1e-9)
    np.testing.assert_allclose(stats["share_after"], stats["share_before"], rtol=1e-9)


def test_strength_half_hits_square_root_targets():
    _, stats = figures(HARD, 8, "auto", strength=0.5)
    assert on_target(stats, 0.5) <= AUTO_TOLERANCE
    assert on_target(figures(HARD, 8, "mean", strength=0.5)[1], 0.5) > 1.5  # a fixed aggregation misses them by far


def test_hard_set_auto_reaches_the_tolerance_and_beats_every_fixed_aggregation():
    _, auto = figures(HARD, 8, "auto")
    assert auto["imbalance_before"] > 20
    assert auto["imbalance_after"] <= AUTO_TOLERANCE
    for agg in FIXED:
        assert auto["imbalance_after"] < figures(HARD, 8, agg)[1]["imbalance_after"]


def test_hard_set_auto_is_more_balanced_than_every_fixed_aggregation_at_equal_or_higher_ess():
    # balancing costs diversity: at strength 1 auto buys exact balance with a lower ESS than the fixed aggregations,
    # which stop far from balance. Compared at the same ESS (auto's strength lowered until its ESS reaches theirs),
    # auto must be at least as balanced: its strength sweep dominates each fixed aggregation's single point
    sweep = [figures(HARD, 8, "auto", strength)[1] for strength in np.linspace(0, 1, 101)]
    for agg in FIXED:
        fixed = figures(HARD, 8, agg)[1]
        assert any(s["ess"] >= fixed["ess"] and s["imbalance_after"] <= fixed["imbalance_after"] for s in sweep), (
            f"{agg}: imbalance {fixed['imbalance_after']:.3f} at ESS {fixed['ess']:.3f} is not dominated"
        )


def test_floor_and_cap_hold_and_bind():
    p, _ = figures(HARD, 8, "auto")
    draws = len(p) * p  # expected draws per epoch
    assert draws.min() >= AUTO_MIN_DRAWS * (1 - 1e-9) and draws.max() <= AUTO_MAX_DRAWS * (1 + 1e-9)
    assert draws.min() == pytest.approx(AUTO_MIN_DRAWS) and draws.max() == pytest.approx(AUTO_MAX_DRAWS)  # both bind


def test_backgrounds_keep_their_uniform_share_and_change_nothing_else():
    rng = np.random.default_rng(1)
    data = list(HARD)
    backgrounds = np.sort(rng.choice(len(data) + 500, 500, replace=False))
    for i in backgrounds:
        data.insert(int(i), np.zeros(0, dtype=np.int64))
    p, n = weighted_probabilities(data, 8, agg="auto"), len(data)
    is_background = np.zeros(n, dtype=bool)
    is_background[backgrounds] = True
    np.testing.assert_allclose(p[is_background], 1 / n, rtol=1e-12)
    np.testing.assert_allclose(
        p[~is_background] * n / len(HARD), weighted_probabilities(HARD, 8, agg="auto"), rtol=1e-9
    )


def test_unreachable_targets_a_class_tied_to_another_gets_the_best_trade_off():
    # class 1 only ever appears next to two objects of class 0: its share stays below half of class 0's, so equal
    # shares are out of reach (imbalance >= 2 for any sampling); the result must still be a sound distribution
    data = labels(*[[0, 0, 1]] * 60, *[[0]] * 200, *[[2]] * 80, *[[3, 3]] * 40)
    p, auto = figures(data, 4, "auto")
    assert np.isfinite(p).all() and p.sum() == pytest.approx(1.0) and (p > 0).all()
    draws = len(p) * p
    assert draws.min() >= AUTO_MIN_DRAWS * (1 - 1e-9) and draws.max() <= AUTO_MAX_DRAWS * (1 + 1e-9)
    assert 2.0 - 1e-9 <= auto["imbalance_after"] <= 2.1  # close to the structural limit
    for agg in FIXED:
        assert auto["imbalance_after"] <= figures(data, 4, agg)[1]["imbalance_after"]


def test_unreachable_targets_the_cap_bounds_a_lone_rare_image():
    data = labels(*[[0]] * 999, [1])  # equal shares would need 500 draws of one image per epoch
    p, stats = figures(data, 2, "auto")
    assert np.isfinite(p).all() and p.sum() == pytest.approx(1.0)
    assert len(p) * p[-1] == pytest.approx(AUTO_MAX_DRAWS)
    assert stats["imbalance_after"] == pytest.approx(99.0)  # 10 of 1000 draws: the best the cap allows
    assert len(p) * weighted_probabilities(data, 2, agg="mean")[-1] == pytest.approx(
        500.0
    )  # fixed aggregations have no cap


def test_absent_classes_are_ignored():
    sparse = [c * 3 + 1 for c in HARD]  # ids 1, 4, ..., 22 of nc = 30: most ids have no instance
    np.testing.assert_array_equal(
        weighted_probabilities(sparse, 30, agg="auto"), weighted_probabilities(HARD, 8, agg="auto")
    )
    stats = balance_stats(sparse, 30, weighted_probabilities(sparse, 30, agg="auto"))
    assert stats["share_after"][0] == 0 and stats["imbalance_after"] <= AUTO_TOLERANCE


def test_deterministic_and_independent_of_image_order():
    first, second = weighted_probabilities(HARD, 8, agg="auto"), weighted_probabilities(HARD, 8, agg="auto")
    np.testing.assert_array_equal(first, second)
    order = np.random.default_rng(2).permutation(len(HARD))
    np.testing.assert_allclose(weighted_probabilities([HARD[i] for i in order], 8, agg="auto"), first[order], rtol=1e-6)


def test_contract_on_random_labels():
    for seed in range(5):
        data = zipf_labels(2000, nc=12, mean_objects=3.0, seed=seed)
        p = weighted_probabilities(data, 12, agg="auto")
        assert p.dtype == np.float64 and p.sum() == pytest.approx(1.0) and (p > 0).all()
        labelled = np.array([len(c) > 0 for c in data])
        np.testing.assert_allclose(p[~labelled], 1 / len(p))
        draws = len(p) * p[labelled]
        assert draws.min() >= AUTO_MIN_DRAWS * (1 - 1e-9) and draws.max() <= AUTO_MAX_DRAWS * (1 + 1e-9)
        mean = balance_stats(data, 12, weighted_probabilities(data, 12, agg="mean"))["imbalance_after"]
        assert balance_stats(data, 12, p)["imbalance_after"] <= mean


def test_speed_order_of_magnitude():
    data = zipf_labels(100_000)  # 700k instances, targets out of reach: both solver phases run
    start = time.perf_counter()
    p = weighted_probabilities(data, 20, agg="auto")
    assert time.perf_counter() - start < 10.0  # measured about 0.3 s; real timings are in docs/auto.md
    assert p.shape == (100_000,)


@pytest.mark.skipif(not (TRAFFIC_LIGHTS / "labels" / "train").is_dir(), reason="cinTA_v2 traffic-light labels absent")
def test_traffic_lights_are_balanced_with_diversity_left():
    data = []  # cinTA_v2 (Roboflow Universe, wawan-pradana/cinta_v2), CC BY 4.0: 3 classes, 2,097 train images
    for file in sorted((TRAFFIC_LIGHTS / "labels" / "train").glob("*.txt")):
        rows = np.loadtxt(file, ndmin=2)
        data.append(rows[:, 0].astype(np.int64) if rows.size else np.zeros(0, dtype=np.int64))
    p, stats = figures(data, 3, "auto")
    assert len(data) == 2097 and stats["imbalance_before"] > 4
    assert stats["imbalance_after"] <= 1.05 and stats["ess"] >= 0.6
