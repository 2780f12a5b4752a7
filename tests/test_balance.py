# ultralytics-weighted, AGPL-3.0 license
"""Per-image probabilities, the core's and the plugin's: hand-computed cases, backgrounds, edge cases, scale."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ultralytics_weighted.core import balance
from ultralytics_weighted.core.balance import AGGREGATIONS, image_probabilities
from ultralytics_weighted.extensions.config import ALL_AGGREGATIONS
from ultralytics_weighted.extensions.report import balance_report, nothing_to_balance
from ultralytics_weighted.extensions.schedule import weighted_probabilities
from ultralytics_weighted.extensions.shares import balance_stats, coverage, effective_sample_size

A = np.array


def labels(*images):
    return [A(c, dtype=np.int64) for c in images]


# counts: class 0 = 4, class 1 = 3, class 2 = 2 (total 9) -> weights 9/4, 9/3, 9/2 = 2.25, 3, 4.5 at strength 1
MIXED = labels([0, 1, 2], [0, 0, 0, 2], [1, 1])


@pytest.mark.parametrize(
    "agg, image_values",
    [
        ("mean", [(2.25 + 3 + 4.5) / 3, (3 * 2.25 + 4.5) / 4, 3]),
        ("max", [4.5, 4.5, 3]),
        ("median", [3, 2.25, 3]),
        ("sum", [2.25 + 3 + 4.5, 3 * 2.25 + 4.5, 6]),
    ],
)
def test_each_aggregation_matches_hand_computation(agg, image_values):
    expected = A(image_values) / sum(image_values)
    np.testing.assert_allclose(image_probabilities(MIXED, nc=3, agg=agg), expected)


@pytest.mark.parametrize("agg", AGGREGATIONS)
@pytest.mark.parametrize(
    "n, nc, block",  # 8- and 16-bit class ranks; 8-, 16-, 32- and 64-bit sort keys; one block or many, some all empty
    [(50, 3, 7), (50, 3, 2**18), (400, 300, 64), (2000, 40, 2**18), (300, 20000, 2**18), (2000, 40, 1)],
)
def test_each_aggregation_is_its_definition_image_by_image(agg, n, nc, block, monkeypatch):
    monkeypatch.setattr(balance, "IMAGES_PER_BLOCK", block)
    rng = np.random.default_rng(nc)
    data = [rng.integers(0, nc, rng.integers(0, 9)) for _ in range(n)]  # crowds, single objects and backgrounds
    data[0] = np.arange(nc)  # every class present: weights from (total / count) of each
    counts = np.bincount(np.concatenate(data), minlength=nc)
    weights = counts.sum() / counts
    value = np.array([getattr(np, agg)(weights[c]) if len(c) else 0.0 for c in data])  # np.mean, np.max, ...
    labelled = value > 0
    expected = np.full(n, 1 / n)
    expected[labelled] = value[labelled] / value[labelled].sum() * labelled.sum() / n
    np.testing.assert_allclose(image_probabilities(data, nc, agg), expected, rtol=1e-12)


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
def test_strength_is_the_power_of_inverse_frequency(strength):
    data = labels([0], [0], [0], [1])  # counts 3 and 1: weights (4/3)**s and 4**s
    w0, w1 = (4 / 3) ** strength, 4**strength
    expected = A([w0, w0, w0, w1]) / (3 * w0 + w1)
    np.testing.assert_allclose(image_probabilities(data, nc=2, agg="mean", strength=strength), expected)


def test_strength_zero_is_uniform_for_single_object_images():
    np.testing.assert_allclose(image_probabilities(labels([0], [0], [1]), nc=2, strength=0.0), np.full(3, 1 / 3))


def test_single_object_images_are_exactly_balanced():
    data = labels([0], [0], [0], [0], [1])
    stats = balance_stats(data, 2, image_probabilities(data, 2))
    np.testing.assert_allclose(stats["share_after"], [0.5, 0.5])
    assert stats["imbalance_before"] == pytest.approx(4.0)
    assert stats["imbalance_after"] == pytest.approx(1.0)


def test_backgrounds_keep_their_uniform_share():
    data = labels([0], [0], [0], [1], [], [])  # 4 labelled + 2 backgrounds of N = 6
    p = image_probabilities(data, nc=2, agg="max")
    np.testing.assert_allclose(p[4:], [1 / 6, 1 / 6])
    assert p[:4].sum() == pytest.approx(4 / 6)
    np.testing.assert_allclose(p[3] / p[0], 3.0)  # inverse frequency among labelled images


def test_absent_classes_change_nothing():
    data = labels([0], [0], [2])
    np.testing.assert_allclose(image_probabilities(data, nc=3), image_probabilities(labels([0], [0], [1]), nc=2))
    stats = balance_stats(data, 3, image_probabilities(data, nc=3))
    assert stats["instances"][1] == 0 and stats["share_after"][1] == 0
    assert stats["imbalance_after"] == pytest.approx(1.0)  # over present classes only


@pytest.mark.parametrize("agg", ALL_AGGREGATIONS)
def test_every_labelled_image_keeps_a_positive_probability(agg):
    rng = np.random.default_rng(0)
    data = [rng.integers(0, 5, rng.integers(1, 6)) for _ in range(200)] + [np.zeros(0, dtype=int)] * 10
    p = weighted_probabilities(data, nc=5, agg=agg, strength=1.0)
    assert (p > 0).all() and p.sum() == pytest.approx(1.0) and p.dtype == np.float64


def test_edge_cases_empty_and_all_background():
    assert image_probabilities([], nc=3).shape == (0,)
    np.testing.assert_allclose(image_probabilities(labels([], []), nc=3), [0.5, 0.5])


def test_ultralytics_label_shape_n_by_1_float_is_accepted():
    data = [A([[0.0], [1.0]], dtype=np.float32), np.zeros((0, 1), dtype=np.float32), A([[1.0]], dtype=np.float32)]
    np.testing.assert_allclose(image_probabilities(data, nc=2), image_probabilities(labels([0, 1], [], [1]), nc=2))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="balance_agg"):
        image_probabilities(MIXED, 3, agg="foo")
    with pytest.raises(ValueError, match="class_balance"):
        image_probabilities(MIXED, 3, strength=2.0)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        image_probabilities(MIXED, 2)


def test_figures_ess_and_coverage():
    assert effective_sample_size(np.full(10, 0.1)) == pytest.approx(1.0)
    assert effective_sample_size(A([1.0, 0, 0, 0])) == pytest.approx(0.25)
    assert coverage(np.full(10, 0.1)) == pytest.approx(1.0)  # systematic: every image exactly once
    assert coverage(np.full(1000, 0.001), "multinomial") == pytest.approx(1 - (1 - 0.001) ** 1000)  # ~63%
    assert coverage(A([0.5, 0.25, 0.25, 0.0])) == pytest.approx((1 + 1 + 1 + 0) / 4)


def test_a_million_images_take_well_under_a_second_per_aggregation():
    rng = np.random.default_rng(0)
    n = 1_000_000
    lengths = rng.integers(0, 14, n)
    flat = rng.integers(0, 20, lengths.sum())
    data = [c.reshape(-1, 1) for c in np.split(flat.astype(np.float32), np.cumsum(lengths)[:-1])]
    for agg in ALL_AGGREGATIONS:
        start = time.perf_counter()
        p = weighted_probabilities(data, nc=20, agg=agg)
        assert time.perf_counter() - start < 5.0  # order of magnitude only; real timings belong in a benchmark
        assert p.shape == (n,)


@pytest.mark.parametrize("agg", ALL_AGGREGATIONS)
def test_nothing_to_balance_gives_uniform_draws_with_every_aggregation(agg):
    crowded = labels([0, 0, 0], [0], [0, 0], [])  # one class: sum would favour the crowded images
    np.testing.assert_allclose(weighted_probabilities(crowded, nc=2, agg=agg), np.full(4, 0.25))
    assert "only one class has labels" in nothing_to_balance(crowded, ["car", "bus"])
    assert "no train image has labels" in nothing_to_balance(labels([], []), ["car", "bus"])
    assert nothing_to_balance(MIXED, ["a", "b", "c"]) is None


@pytest.mark.parametrize("agg", ALL_AGGREGATIONS)
def test_strength_zero_is_off_with_every_aggregation(agg):
    np.testing.assert_allclose(weighted_probabilities(MIXED, nc=3, agg=agg, strength=0.0), np.full(3, 1 / 3))


def test_the_report_says_nothing_to_balance_once_without_a_table():
    lines = balance_report(labels([], [], []), ["car", "bus"], np.full(3, 1 / 3), 1.0, "sum")
    assert len(lines) == 1 and lines[0].startswith("class_balance=1 balance_agg=sum: 3 train images; no train image")


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("agg", AGGREGATIONS)
def test_the_plugin_draws_exactly_as_the_core_without_its_extensions(agg, strength):
    # the upstream series and the plugin must train alike for the keys they share: same probabilities, bit for bit
    rng = np.random.default_rng(0)
    data = [rng.integers(0, 6, rng.integers(0, 5)) for _ in range(300)]
    np.testing.assert_array_equal(
        weighted_probabilities(data, 6, agg, strength), image_probabilities(data, 6, agg, strength)
    )
