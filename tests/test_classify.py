# ultralytics-weighted, AGPL-3.0 license
"""Class balancing for classification: `yolo classify train class_balance=True` on ImageFolder datasets."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest
from conftest import YOLO, captured_log, plain, run

import ultralytics_weighted  # noqa: F401
from ultralytics_weighted import BalancedSampler
from ultralytics_weighted.commands.synthetic import make_classification_dataset
from ultralytics_weighted.host.training import BalancedDatasetMixin

COUNTS = {"common": 30, "medium": 8, "rare": 3}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_classification_dataset(tmp_path_factory.mktemp("cls"), COUNTS)


def trainer_for(data, tmp_path, **overrides):
    from ultralytics.models.yolo.classify import ClassificationTrainer

    args = dict(model="yolo11n-cls.yaml", data=str(data), imgsz=32, device="cpu", plots=False, project=str(tmp_path))
    return ClassificationTrainer(overrides={**args, "class_balance": True, **overrides})


def test_yolo_classify_train_cli_logs_the_balanced_table(folder, tmp_path):
    cmd = [
        *YOLO,
        "classify",
        "train",
        "model=yolo11n-cls.yaml",
        f"data={folder}",
        "class_balance=True",
        "balance_agg=max",
        "epochs=1",
        "imgsz=32",
        "plots=False",
        f"project={tmp_path}",
        "name=run",
    ]
    out = run(cmd, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:]
    log = plain(out.stdout)
    assert "balance: class_balance=1 balance_agg=max: 41 train images, expected share" in log
    assert re.search(r"balance:\s+rare\s+3\s+3\s+7\.3%\s+33\.3%", log)  # inverse frequency: exactly a third each
    assert "max/min class share 10.00 -> 1.00" in log
    assert log.count("balance_agg=max does not apply to classification") == 1  # said once, to a user who set it
    assert (tmp_path / "run" / "weights" / "best.pt").exists()


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_train_loader_class_frequencies_match_the_target(folder, tmp_path, strength):
    trainer = trainer_for(folder, tmp_path, class_balance=strength, name=f"s{strength}")
    loader = trainer.get_dataloader(trainer.data["train"], batch_size=16, rank=-1, mode="train")
    assert isinstance(loader.dataset, BalancedDatasetMixin) and isinstance(loader.sampler, BalancedSampler)
    seen = np.zeros(3)
    for _ in range(60):  # 60 epochs x 41 draws, through the real loader (images, transforms, collate)
        for batch in loader:
            seen += np.bincount(batch["cls"].numpy(), minlength=3)
    n = np.array(list(COUNTS.values()), dtype=float)
    target = n ** (1 - strength) / (n ** (1 - strength)).sum()
    # tolerance 0.02 absolute per class: systematic draws fix each image's count to floor/ceil of N * p_i per epoch
    np.testing.assert_allclose(seen / seen.sum(), target, atol=0.02)


def test_val_loader_yields_every_image_once_and_is_not_balanced(folder, tmp_path):
    trainer = trainer_for(folder, tmp_path, name="val")
    trainer.model = trainer.get_model(cfg="yolo11n-cls.yaml", verbose=False)
    loader = trainer.get_dataloader(trainer.data["val"], batch_size=4, rank=-1, mode="val")
    assert not isinstance(loader.dataset, BalancedDatasetMixin) and not isinstance(loader.sampler, BalancedSampler)
    labels = np.concatenate([batch["cls"].numpy() for batch in loader])
    assert np.bincount(labels, minlength=3).tolist() == [4, 4, 4]  # every val image once (stock order: shuffled)


def test_same_seed_same_draws_different_seed_different(folder, tmp_path):
    def first_epochs(seed, name):
        trainer = trainer_for(folder, tmp_path, seed=seed, name=name)
        sampler = trainer.get_dataloader(trainer.data["train"], batch_size=16, rank=-1, mode="train").sampler
        return [list(sampler) for _ in range(2)]

    a, b, c = first_epochs(0, "a"), first_epochs(0, "b"), first_epochs(1, "c")
    assert a == b and a != c and a[0] != a[1]


def test_empty_and_single_class_folders_behave_clearly(tmp_path):
    with captured_log() as records:
        empty = make_classification_dataset(tmp_path / "empty", {"common": 6, "medium": 2, "ghost": 0})
        trainer = trainer_for(empty, tmp_path, name="empty")
        dataset = trainer.build_dataset(trainer.data["train"], mode="train")
        assert dataset.balanced_probabilities.tolist() == pytest.approx([1 / 12] * 6 + [1 / 4] * 2)
        assert any("no training images for ghost: never drawn" in m for m in records)

        single = make_classification_dataset(tmp_path / "single", {"only": 5})
        trainer = trainer_for(single, tmp_path, name="single")
        dataset = trainer.build_dataset(trainer.data["train"], mode="train")
        assert not isinstance(dataset, BalancedDatasetMixin)  # nothing to balance: the stock dataset, stock shuffling
        assert any("only one class has labels, so there is nothing to balance" in m for m in records)


def test_stats_reads_a_classification_folder(folder, tmp_path):
    out = run(
        [sys.executable, "-m", "ultralytics_weighted.commands.cli", "stats", f"data={folder}", "format=json"],
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-2000:]
    report = json.loads(out.stdout[out.stdout.index("{") :])
    assert report["task"] == "classify" and report["images"] == 41
    rows = {r["agg"]: r for r in report["aggregations"]}
    assert rows["none"]["imbalance"] == pytest.approx(10.0) and rows["mean"]["imbalance"] == pytest.approx(1.0)


def test_balance_agg_is_not_said_to_not_apply_when_it_was_not_set(folder, tmp_path):
    with captured_log() as log:
        trainer = trainer_for(folder, tmp_path, name="default-agg")
        trainer.get_dataloader(trainer.data["train"], batch_size=16, rank=-1, mode="train")
    text = "\n".join(log)
    assert "class_balance=1 balance_agg=mean: 41 train images" in text  # the table was logged
    assert "does not apply" not in text  # the user never set balance_agg: nothing to say about it
