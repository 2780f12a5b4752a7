# ultralytics-weighted, AGPL-3.0 license
"""Weights from the data YAML (`class_weights`, `source_weights`, `image_weights` file): shares, refusals, training."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import balance_table, plain, run

from ultralytics_weighted.commands.synthetic import make_dataset
from ultralytics_weighted.core.sampler import BalancedSampler
from ultralytics_weighted.extensions.auto import AUTO_TOLERANCE
from ultralytics_weighted.extensions.schedule import BalanceSchedule, weighted_probabilities
from ultralytics_weighted.extensions.shares import balance_stats

SINGLE = [np.array([0])] * 12 + [np.array([1])] * 6 + [np.array([2])] * 2  # one object per image
CROWDS = [np.array([0, 0, 1])] * 6 + [np.array([0])] * 8 + [np.array([1, 2])] * 3 + [np.array([2])] * 2


def shares(classes, p):
    return balance_stats(classes, 3, p)["share_after"]


def test_class_weights_multiply_the_balanced_target_share():
    m = np.array([1.0, 1.0, 2.0])  # class_weights: {rare: 2}
    p = weighted_probabilities(SINGLE, 3, "mean", 1.0, class_multipliers=m)
    np.testing.assert_allclose(shares(SINGLE, p), m / m.sum())  # exact with one object per image


def test_class_weights_without_balancing_scale_the_stock_frequencies():
    m = np.array([1.0, 3.0, 1.0])
    p = weighted_probabilities(SINGLE, 3, "mean", 0.0, class_multipliers=m)
    counts = np.array([12, 6, 2])
    np.testing.assert_allclose(shares(SINGLE, p), counts * m / (counts * m).sum())


def test_auto_solves_for_the_weighted_targets():
    m = np.array([1.0, 1.0, 2.0])  # reachable: rare objects are alone in 2 images
    p = weighted_probabilities(CROWDS, 3, "auto", 1.0, class_multipliers=m)
    ratio = shares(CROWDS, p) / (m / m.sum())
    assert ratio.max() / ratio.min() <= AUTO_TOLERANCE


def test_image_weights_multiply_the_probabilities():
    v = np.arange(1.0, len(SINGLE) + 1)
    np.testing.assert_allclose(weighted_probabilities(SINGLE, 3, "mean", 0.0, image_multipliers=v), v / v.sum())
    p = weighted_probabilities(CROWDS, 3, "auto", 1.0, image_multipliers=np.r_[np.full(10, 3.0), np.ones(9)])
    ratio = shares(CROWDS, p) * 3  # auto still reaches equal shares, closest to the weighted distribution
    assert ratio.max() / ratio.min() <= AUTO_TOLERANCE


def test_auto_below_full_strength_aims_at_the_image_weighted_counts():
    v = np.r_[np.ones(14), np.full(5, 3.0)]  # the 5 images with rare class 2 weigh 3: instances count 3 times
    counts = np.bincount(np.concatenate(CROWDS), weights=np.repeat(v, [len(c) for c in CROWDS]))  # 20, 15, 15
    target = np.sqrt(counts) / np.sqrt(counts).sum()  # t_c ∝ n_c ** (1 - strength), not the raw 20, 9, 5
    ratio = shares(CROWDS, weighted_probabilities(CROWDS, 3, "auto", 0.5, image_multipliers=v)) / target
    assert ratio.max() / ratio.min() <= AUTO_TOLERANCE


@pytest.mark.parametrize("strength, agg", [(0.0, "mean"), (1.0, "mean"), (1.0, "auto")])
def test_source_shares_are_exact_and_classes_balanced_within(strength, agg):
    sources = np.r_[np.zeros(14, int), np.ones(5, int)]  # 14 images from source 0, 5 from source 1
    p = weighted_probabilities(CROWDS, 3, agg, strength, sources=sources, source_shares=np.array([0.25, 0.75]))
    np.testing.assert_allclose(np.bincount(sources, weights=p), [0.25, 0.75])
    inner = weighted_probabilities(CROWDS[:14], 3, agg, strength)  # source 0 balanced on its own labels
    np.testing.assert_allclose(p[:14] / p[:14].sum(), inner)


def test_the_plot_marks_the_targets_of_the_weights(monkeypatch, tmp_path):
    from matplotlib.axes import Axes

    from ultralytics_weighted.extensions.report import plot_balance

    m = np.array([1.0, 1.0, 2.0])  # class_weights: {rare: 2}
    figures = BalanceSchedule(SINGLE, 3, 1.0, "mean", multipliers={"class_multipliers": m}).figures
    np.testing.assert_allclose(figures["target"], m / m.sum())
    sources = {"sources": np.r_[np.zeros(12, int), np.ones(8, int)], "source_shares": np.array([0.5, 0.5])}
    mixed = BalanceSchedule(
        SINGLE, 3, 0.0, "mean", multipliers=sources
    ).figures  # source 0: class 0 only, half the draws
    np.testing.assert_allclose(mixed["target"], [0.5 + 0.5 * 0, 0.5 * 6 / 8, 0.5 * 2 / 8])
    marks = []
    scatter = Axes.scatter
    monkeypatch.setattr(
        Axes, "scatter", lambda self, x, y, *a, **k: marks.append(list(y)) or scatter(self, x, y, *a, **k)
    )
    plot_balance(figures, ["common", "medium", "rare"], tmp_path / "plot.png")
    np.testing.assert_allclose(marks[0], 100 * m / m.sum())  # not the unweighted 33.3% each


def test_sampler_slices_and_resume_stay_exact_with_weights():
    multipliers = {"class_multipliers": np.array([1.0, 1.0, 2.0]), "image_multipliers": np.linspace(0.5, 2, 19)}
    schedule = BalanceSchedule(CROWDS, 3, 1.0, "mean", epochs=3, multipliers=multipliers)
    reference = BalancedSampler(schedule.probabilities, 3, 2, 0, schedule.epoch_size)
    whole = reference.global_draw(2).tolist()
    rebuilt = [None] * len(whole)
    for rank in range(2):  # DDP: every rank draws the same sequence and keeps positions rank, rank + 2, ...
        sampler = BalancedSampler(schedule.probabilities, 3, 2, rank, schedule.epoch_size)
        sampler.set_epoch(2)  # resume: a fresh sampler at epoch 2 draws what an uninterrupted one would
        rebuilt[rank::2] = list(sampler)
    assert rebuilt == whole
    expected = reference.epoch_size * schedule.probabilities(2)  # 19 images: 20 draws, a multiple of the 2 ranks
    counts = np.bincount(whole, minlength=len(CROWDS))
    assert (np.abs(counts - expected) < 1).all()  # systematic: floor or ceil of the expected draws


@pytest.fixture(scope="module")
def weighted(tmp_path_factory):
    """Two train sources, class_weights, source_weights and an image_weights file; returns (root, write)."""
    root = tmp_path_factory.mktemp("weighted")
    base = make_dataset(root / "a", n_train=16, n_val=4)
    make_dataset(root / "b", n_train=6, n_val=2, seed=1)
    first = sorted((root / "a" / "images" / "train").iterdir())[0].name
    (root / "a" / "weights.csv").write_text(f"image,weight\nimages/train/{first},4\n")
    text = base.read_text().replace("train: images/train", f"train: [images/train, {root / 'b' / 'images' / 'train'}]")

    def write(name: str, extra: str) -> Path:
        path = root / "a" / name
        path.write_text(text + extra)
        return path

    good = write("with_weights.yaml", "class_weights: {rare: 2}\nsource_weights: [1, 1]\nimage_weights: weights.csv\n")
    return root, write, good


BAD = [
    ("class_weights: {rair: 2}\n", "class_weights: unknown class name 'rair'"),
    ("class_weights: [1, 2]\n", "class_weights: 2 weights for 3 classes"),
    ("class_weights: [1, -1, 1]\n", "class_weights: entry 1 (medium) is -1"),
    ("class_weights: [1, .nan, 1]\n", "class_weights: entry 1 (medium) is nan"),
    ("class_weights: [1, .inf, 1]\n", "class_weights: entry 1 (medium) is inf"),
    ("class_weights: [1, heavy, 1]\n", "class_weights: entry 1 (medium) is not a number"),
    ("class_weights: [0, 0, 0]\n", "class_weights: all weights are 0"),
    ("source_weights: {images/other: 2}\n", "source_weights: 'images/other' is not in train:"),
    ("image_weights: missing.csv\n", "image_weights: cannot read"),
    ("image_weights: stray.csv\n", "image_weights: 1 image(s) in"),
]


@pytest.mark.parametrize("extra, message", BAD)
def test_bad_weights_are_refused_in_one_line_before_anything_is_written(weighted, extra, message, tmp_path):
    from ultralytics import YOLO

    root, write, _ = weighted
    (root / "a" / "stray.csv").write_text("images/train/nope.jpg,2\n")
    data = write("bad.yaml", extra)
    cache = root / "a" / "labels" / "train.cache"
    cache.unlink(missing_ok=True)
    with pytest.raises(ValueError) as error:
        YOLO("yolo11n.yaml").train(data=str(data), epochs=1, imgsz=64, device="cpu", project=str(tmp_path / "runs"))
    assert str(error.value).startswith(f"{data}: {message}") and "\n" not in str(error.value)
    assert not (tmp_path / "runs").exists() and not cache.exists()  # no run folder, no label scan


def load_weights(weighted, extra: str):
    """Write the fixture's YAML with `extra` weight keys and return `DataWeights.load` of it (ValueError if refused)."""
    from ultralytics_weighted.host.user_weights import DataWeights

    _, write, _ = weighted
    return DataWeights.load(write("check.yaml", extra))


def test_source_weights_mapping_keeps_unnamed_sources_at_weight_1(weighted):
    root = weighted[0]
    second = root / "b" / "images" / "train"
    np.testing.assert_allclose(
        load_weights(weighted, f"source_weights: {{{second}: 2}}\n").source_shares, [1 / 3, 2 / 3]
    )
    np.testing.assert_allclose(load_weights(weighted, "source_weights: {images/train: 0}\n").source_shares, [0, 1])
    with pytest.raises(ValueError, match="source_weights: all weights are 0"):
        load_weights(weighted, f"source_weights: {{images/train: 0, {second}: 0}}\n")


def test_an_image_weights_file_of_zeros_only_excludes_those_images(weighted):
    root = weighted[0]
    train = sorted((root / "a" / "images" / "train").iterdir())
    (root / "a" / "exclude.csv").write_text(f"images/train/{train[3].name},0\n")
    weights = load_weights(weighted, "image_weights: exclude.csv\n")
    files = [str(f) for f in train]
    assert weights.multipliers(files)["image_multipliers"].tolist() == [1.0] * 3 + [0.0] + [1.0] * (len(train) - 4)
    both = [*train, *sorted((root / "b" / "images" / "train").iterdir())]
    (root / "a" / "all.csv").write_text("".join(f"{f},0\n" for f in both))  # every train image at 0: nothing left
    with pytest.raises(ValueError, match="image_weights: all weights are 0"):
        load_weights(weighted, "image_weights: all.csv\n")


def test_image_weights_errors_name_the_file_line_and_conflicting_duplicates(weighted):
    root = weighted[0]
    first = sorted((root / "a" / "images" / "train").iterdir())[0].name
    csv = root / "a" / "lines.csv"
    csv.write_text(f"# excluded by review\nimage,weight\n\nimages/train/{first},2,x\n")
    with pytest.raises(ValueError, match=r"lines.csv line 4 has 3 fields"):
        load_weights(weighted, "image_weights: lines.csv\n")
    csv.write_text(f"image,weight\nimages/train/{first},heavy\n")
    with pytest.raises(ValueError, match=r"lines.csv line 2 \(images/train/.*\) is not a number"):
        load_weights(weighted, "image_weights: lines.csv\n")
    csv.write_text(f"image,weight\nimages/train/{first},2\n# again\n./images/train/{first},3\n")
    with pytest.raises(
        ValueError, match=r"lines.csv lines 2 and 4 give ./images/train/\S+ different weights \(2 and 3\)"
    ):
        load_weights(weighted, "image_weights: lines.csv\n")
    csv.write_text(f"images/train/{first},2\nimages/train/{first},2\n")  # the same weight twice: no ambiguity
    assert list(load_weights(weighted, "image_weights: lines.csv\n").image_table.values()) == [2.0]


def test_class_weights_keyed_by_class_id_as_names_is(weighted):
    weights = load_weights(weighted, "class_weights: {2: 3, medium: 2}\n")  # names: {0: common, 1: medium, 2: rare}
    assert weights.class_multipliers.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match=r"class_weights: class id 5 is not in names: \(ids 0 to 2\)"):
        load_weights(weighted, "class_weights: {5: 3}\n")


def test_yolo_train_and_stats_show_the_configured_weights(weighted, yolo, tmp_path):
    _, _, good = weighted
    out = yolo(good, tmp_path / "runs", "class_balance=True")
    assert out.returncode == 0, out.stdout[-3000:]
    table = balance_table(out.stdout)
    assert any(line.startswith(f"weights from {good} (class_weights, source_weights, image_weights)") for line in table)
    rare = next(line.split() for line in table if line.split()[:2] == ["rare", "2"])
    assert rare[3] == "50.0%"  # target: equal shares x {rare: 2} of 3 classes
    sources = [line.split() for line in table if line.split()[0].endswith("images/train")]
    assert [s[3] for s in sources] == ["50.0%", "50.0%"] and [s[4] for s in sources] == ["50.0%", "50.0%"]
    stats = run([sys.executable, "-m", "ultralytics_weighted.commands.cli", "stats", f"data={good}"], cwd=tmp_path)
    assert stats.returncode == 0, stats.stdout[-3000:]
    text = plain(stats.stdout)
    assert "image_weights: 1 of 22 train images weighted by" in text
    assert [line for line in table if line.split()[:2] == ["rare", "2"]][0] in text  # the same row as training


@pytest.mark.parametrize("agg", ["mean", "auto"])
def test_stats_rows_show_the_shares_training_draws_with_the_data_weights(weighted, agg, yolo, tmp_path):
    root, write, _ = weighted
    data = write(
        "class_source.yaml", f"class_weights: {{rare: 3}}\nsource_weights: {{{root / 'b' / 'images' / 'train'}: 2}}\n"
    )
    out = yolo(data, tmp_path / "runs", "class_balance=True", f"balance_agg={agg}")
    assert out.returncode == 0, out.stdout[-3000:]
    table = balance_table(out.stdout)
    head = next(i for i, line in enumerate(table) if line.split()[:2] == ["class", "instances"])
    trained = {line.split()[0]: line.split()[4] for line in table[head + 1 : head + 4]}  # share per epoch
    summary = table[head + 4]  # max/min class share before -> after, ESS, coverage
    cli = [sys.executable, "-m", "ultralytics_weighted.commands.cli", "stats", f"data={data}", f"balance_agg={agg}"]
    stats = run(cli, cwd=tmp_path)
    assert stats.returncode == 0, stats.stdout[-3000:]
    lines = plain(stats.stdout).splitlines()
    names = next(line for line in lines if line.startswith("agg ")).split()[-3:]
    row = next(line.split() for line in lines if line.startswith(f"{agg} "))
    assert dict(zip(names, row[-3:])) == trained  # the same expected share per class as the training log
    imbalance, ess, coverage = row[1], row[2], row[3]
    assert f"-> {imbalance}, effective sample size {ess}, coverage {coverage}" in summary
    out = run([*cli, "format=json"], cwd=tmp_path).stdout  # stderr (Ultralytics' log) merged in: the JSON follows
    report = json.loads(out[out.index("{\n") :])
    weights = report["weights"]
    assert weights["keys"] == ["class_weights", "source_weights"]
    rare = next(r for r in weights["classes"] if r["name"] == "rare")
    assert rare["weight"] == 3.0 and isinstance(rare["share_per_epoch"], float)
    assert [r["target"] for r in weights["sources"]] == pytest.approx([1 / 3, 2 / 3])
    shares = next(r for r in report["aggregations"] if r["agg"] == agg)["shares"]
    assert f"{shares[2]:.1%}" == trained["rare"] == f"{rare['share_per_epoch']:.1%}"


def test_stats_with_class_balance_off_shows_the_draws_of_the_weights_alone(weighted, tmp_path):
    _, write, _ = weighted
    data = write("off.yaml", "class_weights: {rare: 3}\n")
    cli = [sys.executable, "-m", "ultralytics_weighted.commands.cli", "stats", f"data={data}", "class_balance=0"]
    out = run([*cli, "format=json"], cwd=tmp_path).stdout
    report = json.loads(out[out.index("{\n") :])
    assert report["note"] is None  # not "training samples every image once per epoch": the weights still apply
    rare = next(r for r in report["weights"]["classes"] if r["name"] == "rare")
    assert rare["share_per_epoch"] > 1.5 * rare["share_before"]  # stock frequencies x 3, renormalized
    rows = {row["agg"]: row["shares"][2] for row in report["aggregations"]}
    assert rows["none"] == rows["mean"] == pytest.approx(rare["share_per_epoch"])  # the weights alone, agg mean
    assert "is off: training samples every image once" not in run(cli, cwd=tmp_path).stdout


def test_a_resumed_run_with_class_weights_draws_what_an_uninterrupted_one_draws(datasets, tmp_path):
    from ultralytics import YOLO

    from ultralytics_weighted.core.balanced_training import dataset_label_classes
    from ultralytics_weighted.host.labels import load_label_dataset
    from ultralytics_weighted.host.user_weights import DataWeights

    class Stop(Exception):
        pass

    def stop_after_first_epoch(trainer):
        raise Stop

    data = tmp_path / "class_weights.yaml"
    data.write_text(datasets("detect").read_text() + "class_weights: {rare: 2}\n")
    seen = []  # (epoch, the sampler's global draw of it)

    def record(trainer):
        seen.append((trainer.epoch, trainer.train_loader.sampler.global_draw(trainer.epoch)))

    train = dict(epochs=2, imgsz=64, batch=8, device="cpu", plots=False, workers=0, seed=3, val=False)
    model = YOLO("yolo11n.yaml")
    model.add_callback("on_train_epoch_end", record)
    model.add_callback("on_fit_epoch_end", stop_after_first_epoch)
    with pytest.raises(Stop):
        model.train(data=str(data), class_balance=True, **train, project=str(tmp_path / "runs"))
    resumed = YOLO(tmp_path / "runs" / "train" / "weights" / "last.pt")
    resumed.add_callback("on_train_epoch_end", record)
    resumed.train(resume=True)
    assert resumed.trainer.start_epoch == 1 and [epoch for epoch, _ in seen] == [0, 1]

    dataset = load_label_dataset({"data": str(data)})[0]  # the weights as the YAML sets them, read on their own
    classes, weights = dataset_label_classes(dataset), DataWeights.load(data).multipliers(dataset.im_files)
    np.testing.assert_array_equal(weights["class_multipliers"], [1, 1, 2])
    for multipliers in (weights, None):
        schedule = BalanceSchedule(classes, 3, 1.0, "mean", epochs=2, multipliers=multipliers)
        uninterrupted = BalancedSampler(schedule.probabilities, 3, 1, 0, schedule.epoch_size)
        same = [draw.tolist() for _, draw in seen] == [list(uninterrupted), list(uninterrupted)]
        assert same == (multipliers is not None)  # the weighted draws, also after resuming; not the unweighted ones


@pytest.fixture
def compared(tmp_path):
    """A tiny dataset and, beside it, a copy of its data YAML with class_weights; returns (data, weighted, args)."""
    data = make_dataset(tmp_path / "d", n_train=24, n_val=8)
    weighted = tmp_path / "weighted.yaml"
    weighted.write_text(data.read_text() + "class_weights: {rare: 2}\n")
    args = [f"data={data}", "seeds=1", "epochs=1", "imgsz=64", "batch=8", "resamples=50", f"project={tmp_path}"]
    return data, weighted, [*args, "name=cmp"]


def compare(*args, cwd):
    return run([sys.executable, "-m", "ultralytics_weighted.commands.cli", "compare", *args], cwd=cwd, timeout=900)


def shares_table(md: str) -> dict:
    """Return compare.md's expected shares per epoch: variant -> {class name: share in %}."""
    rows = md.split("## Expected share of each class per epoch", 1)[1].strip().splitlines()
    head, body = rows[0].strip("|").split("|"), [row.strip("|").split("|") for row in rows[2:] if row.startswith("|")]
    columns = {name.strip().removeprefix("share/epoch "): k for k, name in enumerate(head)}
    return {v: {row[0].strip(): float(row[k].strip(" %")) for row in body} for v, k in columns.items() if k > 1}


def test_compare_trains_a_variant_with_its_own_weighted_data_and_again_when_a_weight_changes(compared, tmp_path):
    from ultralytics_weighted.host.labels import load_label_classes

    data, weighted, args = compared
    args = [*args, "variants=none,auto+data=weighted.yaml"]  # the YAML relative to where compare runs, as yolo's
    classes = load_label_classes({"data": str(data)})[0]

    def expected(rare: float) -> dict:  # the shares of auto with class_weights {rare: ...}, formatted as the table
        schedule = BalanceSchedule(classes, 3, 1.0, "auto", multipliers={"class_multipliers": np.array([1, 1, rare])})
        share = balance_stats(classes, 3, schedule.probabilities(schedule.full_strength_epoch))["share_after"]
        return {name: round(100 * x, 1) for name, x in zip(("common", "medium", "rare"), share)}

    out = compare(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:]
    shares = shares_table((tmp_path / "cmp" / "compare.md").read_text())
    assert shares["auto+data=weighted.yaml"] == expected(2) != expected(1)  # the variant's own weights
    assert shares["auto+data=weighted.yaml"]["rare"] > 45  # near its target 2 / (1 + 1 + 2)
    assert shares["none"]["rare"] < 15  # stock, as the compared data has no weights

    weighted.write_text(weighted.read_text().replace("{rare: 2}", "{rare: 3}"))
    again = compare(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "none seed 0: finished earlier, skipped" in again.stdout
    assert "auto+data=weighted.yaml seed 0: settings or data changed since the earlier run (weights)" in again.stdout
    assert again.stdout.count("training ...") == 1
    assert shares_table((tmp_path / "cmp" / "compare.md").read_text())["auto+data=weighted.yaml"] == expected(3)


def test_compare_refuses_a_variant_data_that_validates_on_other_images(compared, tmp_path):
    data, weighted, args = compared
    weighted.write_text(weighted.read_text().replace("val: images/val", "val: images/train"))
    out = compare(*args, f"variants=none,mean+data={weighted}", cwd=tmp_path)
    assert out.returncode == 2 and not (tmp_path / "cmp").exists()
    assert out.stdout.strip().splitlines()[-1] == (
        f"ultralytics-weighted compare: variant 'mean+data={weighted}': data={weighted} has other val images than "
        f"data={data}, and compare pairs every run on the same ones: give it the same val: split."
    )


def test_the_floor_warning_compares_with_the_same_weights_without_the_floor():
    # "without the floor" must be the same settings, data weights included, only the floor removed
    weights = {"class_multipliers": np.array([1.0, 4.0, 1.0])}
    schedule = BalanceSchedule(CROWDS, 3, 1.0, "sum", floor=1.0, multipliers=weights)
    without = weighted_probabilities(CROWDS, 3, "sum", 1.0, **weights)
    assert schedule.floor_effect()[2] == pytest.approx(balance_stats(CROWDS, 3, without)["imbalance_after"])
