# ultralytics-weighted, AGPL-3.0 license
"""The balanced sampler: systematic counts, determinism, epochs, exposure, and DDP shards on real gloo processes."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from ultralytics_weighted import BalancedSampler, weighted_probabilities
from ultralytics_weighted.core.sampler import systematic_draw
from ultralytics_weighted.extensions.schedule import BalanceSchedule
from ultralytics_weighted.extensions.shares import balance_stats

RNG = np.random.default_rng(0)
P = RNG.random(500) ** 4  # skewed: many images with expected count < 1
P /= P.sum()


def test_each_image_is_drawn_floor_or_ceil_of_its_expected_count():
    for seed in range(20):
        counts = np.bincount(systematic_draw(P, len(P), np.random.default_rng(seed)), minlength=len(P))
        expected = len(P) * P
        assert ((counts == np.floor(expected)) | (counts == np.ceil(expected))).all()
        assert counts.sum() == len(P)


def test_systematic_draws_skip_far_fewer_images_than_multinomial():
    n = len(P)
    systematic = np.unique(systematic_draw(P, n, np.random.default_rng(1))).size / n
    multinomial = np.unique(np.random.default_rng(1).choice(n, size=n, p=P)).size / n
    assert systematic > multinomial + 0.05
    assert systematic == pytest.approx(np.minimum(1, n * P).mean(), abs=0.03)


def test_same_seed_same_sequence_and_epochs_differ():
    a, b, c = BalancedSampler(P, seed=7), BalancedSampler(P, seed=7), BalancedSampler(P, seed=8)
    epoch0_a, epoch0_b, epoch0_c = list(a), list(b), list(c)
    assert epoch0_a == epoch0_b and epoch0_a != epoch0_c
    assert list(a) != epoch0_a  # the second iteration is epoch 1: a new draw
    assert len(a) == len(P) and len(epoch0_a) == len(P)  # epoch length as with stock shuffling


def test_every_order_of_the_draw_is_equally_likely():
    # uniform probabilities, one draw per image: the draw is a permutation, each of the 6 equally often over seeds
    orders = Counter(tuple(BalancedSampler(np.full(3, 1 / 3), seed=s).global_draw(0).tolist()) for s in range(6000))
    assert len(orders) == 6
    assert all(abs(count - 1000) < 150 for count in orders.values())  # 5 standard deviations of a count


def test_epochs_count_themselves_and_prefetch_safe_set_epoch():
    reference = BalancedSampler(P, seed=3)
    draws = [reference.global_draw(e).tolist() for e in range(4)]

    # no set_epoch at all (Ultralytics without DDP): epochs 0, 1, 2 in turn
    plain = BalancedSampler(P, seed=3)
    assert [list(plain) for _ in range(3)] == draws[:3]

    # DDP order with an early (prefetching) iterator: set_epoch(e) arrives after epoch e was already drawn
    ddp = BalancedSampler(P, seed=3)
    ddp.set_epoch(0)
    got = [list(ddp)]  # epoch 0
    got.append(list(ddp))  # prefetch at the end of epoch 0 draws epoch 1
    ddp.set_epoch(1)  # the trainer's set_epoch(1) comes late and must not redraw or skip
    got.append(list(ddp))  # epoch 2
    assert got == draws[:3]

    # resume: set_epoch jumps to the trainer's epoch
    resumed = BalancedSampler(P, seed=3)
    resumed.set_epoch(2)
    assert list(resumed) == draws[2] and list(resumed) == draws[3]


def test_empirical_class_exposure_matches_expected_shares():
    rng = np.random.default_rng(5)
    classes = [rng.choice(3, size=rng.integers(1, 4), p=[0.8, 0.15, 0.05]) for _ in range(300)]
    p = weighted_probabilities(classes, nc=3, agg="mean")
    expected = balance_stats(classes, 3, p)["share_after"]
    sampler = BalancedSampler(p, seed=0)
    seen = np.zeros(3)
    for _ in range(200):  # 200 epochs x 300 draws
        for i in sampler:
            seen += np.bincount(classes[i], minlength=3)
    # tolerance: 0.01 absolute per class share over 60,000 draws (observed error is a few 1e-3)
    np.testing.assert_allclose(seen / seen.sum(), expected, atol=0.01)


def test_bad_weights_and_rank_are_refused():
    with pytest.raises(ValueError):
        BalancedSampler(np.zeros(3))
    with pytest.raises(ValueError):
        BalancedSampler(np.array([0.5, -0.1, 0.6]))
    with pytest.raises(ValueError):
        BalancedSampler(P, num_replicas=2, rank=2)


LABELS = [np.array([0, 0]) if i % 10 else np.array([1]) for i in range(101)]  # class 1 in every 10th image


def late_start_schedule() -> BalanceSchedule:
    """balance_floor=1, balance_start=0.5, 2 epochs: epoch 0 draws the grown epoch uniformly, epoch 1 balanced."""
    return BalanceSchedule(LABELS, 2, 1.0, "mean", floor=1.0, epochs=2, start=0.5)


SOURCES = (np.arange(101) >= 60).astype(np.int64)  # images 0-59 from train: source 0, 60-100 from source 1
WEIGHTS = {  # data YAML weights as `DataWeights.multipliers` gives them: class_weights, source_weights, image_weights
    "class_multipliers": np.array([1.0, 3.0]),
    "sources": SOURCES,
    "source_shares": np.array([0.25, 0.75]),
    "image_multipliers": np.linspace(0.5, 2.0, 101),
}


def weighted_schedule() -> BalanceSchedule:
    """Class-balanced with user weights of all three kinds (no floor, which would mix in uniform draws), 2 epochs."""
    return BalanceSchedule(LABELS, 2, 1.0, "mean", epochs=2, multipliers=WEIGHTS)


SCHEDULES = {"late start": late_start_schedule, "weighted": weighted_schedule}


def _ddp_worker(rank: int, world_size: int, store: str, out: str, epoch_size: int | str | None) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size)
    try:
        if epoch_size in SCHEDULES:  # the sampler training builds from a schedule (`BalancedDatasetMixin.sampler`)
            schedule = SCHEDULES[epoch_size]()
            sampler = BalancedSampler(schedule.probabilities, seed=11, epoch_size=schedule.epoch_size)
        else:
            sampler = BalancedSampler(P[:101], seed=11, epoch_size=epoch_size)  # 101 images: not divisible by 2 ranks
        assert (sampler.rank, sampler.num_replicas) == (rank, world_size)  # taken from torch.distributed
        shards = []
        for epoch in range(2):
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
        gathered = [None] * world_size
        dist.all_gather_object(gathered, shards)
        if rank == 0:
            with open(out, "w") as f:
                json.dump(gathered, f)
        dist.barrier()  # both ranks done before either tears gloo down (as in test_priors' DDP worker)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(
    "epoch_size, total",
    [
        (None, 102),
        (131, 132),
        ("late start", 2 * ((late_start_schedule().epoch_size + 1) // 2)),
        ("weighted", 2 * ((weighted_schedule().epoch_size + 1) // 2)),
    ],
)  # stock length, a grown epoch, a schedule that starts balancing in epoch 1, and one with data YAML weights
def test_ddp_shards_on_real_gloo_processes(epoch_size, total, tmp_path):
    world_size, out = 2, tmp_path / "shards.json"
    args = (world_size, str(tmp_path / "store"), str(out), epoch_size)
    mp.spawn(_ddp_worker, args=args, nprocs=world_size, join=True)
    gathered = json.loads(out.read_text())  # [rank][epoch] -> indices
    if epoch_size == "late start":
        schedule = late_start_schedule()
        reference = BalancedSampler(schedule.probabilities, 11, world_size, 0, schedule.epoch_size)
        stock, balanced = (np.bincount(reference.global_draw(e), minlength=101) for e in (0, 1))
        assert set(stock) == {1, 2} and balanced[::10].min() > stock[::10].max()  # uniform, then the rare repeat
    elif epoch_size == "weighted":
        schedule = weighted_schedule()
        reference = BalancedSampler(schedule.probabilities, 11, world_size, 0, schedule.epoch_size)
        p = schedule.probabilities(1)
        np.testing.assert_allclose(np.bincount(SOURCES, weights=p), WEIGHTS["source_shares"])  # the weights act
        for epoch in range(2):  # the global draw (its length rounded up for 2 ranks): floor or ceil of its expectation
            counts = np.bincount(reference.global_draw(epoch), minlength=101)
            assert (np.abs(counts - reference.epoch_size * p) < 1).all()
    else:
        reference = BalancedSampler(P[:101], seed=11, num_replicas=world_size, rank=0, epoch_size=epoch_size)
    for epoch in range(2):
        whole = reference.global_draw(epoch).tolist()
        assert len(whole) == total  # rounded up to a multiple of 2 ranks
        slices = [gathered[r][epoch] for r in range(world_size)]
        assert len(slices[0]) == len(slices[1]) == total // 2
        rebuilt = [None] * len(whole)
        for r, part in enumerate(slices):
            rebuilt[r::world_size] = part  # each rank owns positions r, r + 2, ...: disjoint, together all of them
        assert rebuilt == whole
    assert gathered[0][0] != gathered[0][1]  # a new draw each epoch on every rank
