# Ultralytics 🚀 AGPL-3.0 License - https://ultralytics.com/license

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from torch.utils.data import RandomSampler

from tests import CFG
from ultralytics import YOLO
from ultralytics.cfg import get_cfg
from ultralytics.data import balance
from ultralytics.data.balance import AGGREGATIONS, image_probabilities
from ultralytics.data.build import build_yolo_dataset
from ultralytics.data.sampler import BalancedSampler, systematic_draw
from ultralytics.models.yolo.classify import ClassificationTrainer
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import DEFAULT_CFG_DICT, LOGGER, YAML

NAMES = {0: "common", 1: "medium", 2: "rare"}
COLORS = ((60, 190, 40), (50, 50, 220), (40, 215, 240))  # BGR per class
TRAIN = {"epochs": 1, "imgsz": 64, "batch": 8, "device": "cpu", "plots": False, "workers": 0, "seed": 0}


def make_imbalanced_dataset(root: Path, n_train: int = 24, n_val: int = 6, imgsz: int = 64) -> Path:
    """Write a tiny detection dataset: 'common' in most images, 'rare' in every 6th, 2 backgrounds; return its yaml."""
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(n):
            if split == "train" and i >= n - 2:
                classes = []  # background images
            else:
                classes = [2, 0] if i % 6 == 0 else [0, 1] if i % 3 == 1 else [0]
            img = np.full((imgsz, imgsz, 3), 114, dtype=np.uint8)
            lines = []
            for j, c in enumerate(classes):
                x1, y1, side = 4 + 30 * j, 8 + 10 * (i % 3), 24
                cv2.rectangle(img, (x1, y1), (x1 + side, y1 + side), COLORS[c], -1)
                xc, yc, wh = (x1 + side / 2) / imgsz, (y1 + side / 2) / imgsz, side / imgsz
                lines.append(f"{c} {xc:.6f} {yc:.6f} {wh:.6f} {wh:.6f}\n")
            cv2.imwrite(str(root / "images" / split / f"{i:03d}.jpg"), img)
            (root / "labels" / split / f"{i:03d}.txt").write_text("".join(lines))
    YAML.save(root / "data.yaml", {"path": str(root), "train": "images/train", "val": "images/val", "names": NAMES})
    return root / "data.yaml"


def make_imbalanced_folder(root: Path, counts: dict[str, int], imgsz: int = 32) -> Path:
    """Write a tiny classification dataset (ImageFolder layout) with `counts` train images per class; return root."""
    for split in ("train", "val"):
        for c, (name, n) in enumerate(counts.items()):
            (root / split / name).mkdir(parents=True)
            for i in range(n if split == "train" else 2):
                img = np.full((imgsz, imgsz, 3), COLORS[c], dtype=np.uint8)
                cv2.imwrite(str(root / split / name / f"{i:03d}.jpg"), img)
    return root


class LogRecords(logging.Handler):
    """Collect the messages logged by the Ultralytics LOGGER."""

    def __init__(self):
        """Initialize an empty record list."""
        super().__init__()
        self.messages = []

    def emit(self, record):
        """Store the formatted message."""
        self.messages.append(record.getMessage())

    def __enter__(self):
        """Attach to the Ultralytics LOGGER."""
        LOGGER.addHandler(self)
        return self

    def __exit__(self, *args):
        """Detach from the Ultralytics LOGGER."""
        LOGGER.removeHandler(self)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Return the data.yaml of a tiny imbalanced detection dataset."""
    return make_imbalanced_dataset(tmp_path_factory.mktemp("imbalanced"))


@pytest.fixture(scope="module")
def balanced(data, tmp_path_factory):
    """Return a model trained for one epoch with class_balance=True and balance_agg='sum'."""
    model = YOLO(CFG)
    with LogRecords() as log:
        model.train(
            data=str(data),
            class_balance=True,
            balance_agg="sum",
            **TRAIN,
            project=str(tmp_path_factory.mktemp("runs")),
            name="balanced",
        )
    model.log = log.messages
    return model


def test_class_balance_args():
    """Test the class-balanced sampling keys: defaults (as in default.yaml), values and errors."""
    keys = list(DEFAULT_CFG_DICT)
    assert keys[keys.index("fraction") + 1 : keys.index("fraction") + 3] == ["class_balance", "balance_agg"]
    assert DEFAULT_CFG_DICT["class_balance"] is False and DEFAULT_CFG_DICT["balance_agg"] == "mean"
    for agg in AGGREGATIONS:
        assert get_cfg(overrides={"class_balance": 0.5, "balance_agg": agg}).balance_agg == agg
    assert get_cfg(overrides={"class_balance": True}).class_balance is True
    for overrides, error, match in (
        ({"balance_agg": 1}, TypeError, "'balance_agg=1' is of invalid type int"),
        ({"class_balance": 2}, ValueError, "'class_balance=2' is an invalid value"),
        ({"class_balance": -0.1}, ValueError, "'class_balance=-0.1' is an invalid value"),
        ({"class_balance": "yes"}, TypeError, "'class_balance=yes' is of invalid type str"),
        ({"class_balance": None}, TypeError, "'class_balance=None' is invalid"),
        ({"balance_agg": None}, TypeError, "'balance_agg=None' is invalid"),
    ):
        with pytest.raises(error, match=match):
            get_cfg(overrides=overrides)
    with pytest.raises(
        ValueError, match="'balance_agg=foo' is an invalid value. Valid 'balance_agg' values are \\('mean'"
    ):
        image_probabilities([np.array([0]), np.array([1])], 2, "foo")


def test_image_probabilities_and_sampler():
    """Test class-balanced probabilities, systematic draws, determinism and DDP shards."""
    labels = [np.array([0, 0]), np.array([0]), np.array([1]), np.array([], dtype=int)]
    for agg in AGGREGATIONS:
        p = image_probabilities(labels, 2, agg)
        assert p.sum() == pytest.approx(1.0) and p[3] == pytest.approx(0.25)  # backgrounds keep their share
    p = image_probabilities(labels, 2, "mean")
    assert 2 * p[0] + p[1] == pytest.approx(p[2])  # class 0 (3 instances) and class 1 (1) drawn equally often
    assert np.array_equal(image_probabilities(labels, 2, "sum", 0.0), np.full(4, 0.25))  # strength 0: uniform

    p = np.random.default_rng(0).random(101) ** 4
    p /= p.sum()
    counts = np.bincount(systematic_draw(p, 101, np.random.default_rng(1)), minlength=101)
    assert ((counts == np.floor(101 * p)) | (counts == np.ceil(101 * p))).all()

    sampler = BalancedSampler(p, seed=3)
    first, second = list(sampler), list(sampler)  # each iteration draws the next epoch
    assert len(first) == len(sampler) == 101 and first != second
    sampler.set_epoch(0)
    assert list(sampler) == first  # a pure function of (seed, epoch)
    shards = [list(BalancedSampler(p, seed=3, num_replicas=2, rank=r)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 51
    assert np.array_equal(np.sort(shards[0] + shards[1]), np.sort(BalancedSampler(p, 3, 2, 0).global_draw(0)))


@pytest.mark.parametrize("block", [1, 7, 2**18])
def test_image_probabilities_are_their_definition(block, monkeypatch):
    """Test every aggregation against its definition image by image, with blocks of images that split the labels."""
    monkeypatch.setattr(balance, "IMAGES_PER_BLOCK", block)
    rng = np.random.default_rng(block)
    labels = [rng.integers(0, 5, rng.integers(0, 6)) for _ in range(60)] + [np.arange(5)]  # backgrounds included
    counts = np.bincount(np.concatenate(labels), minlength=5)
    weights = counts.sum() / counts
    for agg in AGGREGATIONS:
        value = np.array([getattr(np, agg)(weights[c]) if len(c) else 0.0 for c in labels])  # np.mean, np.max, ...
        labelled = value > 0
        expected = np.full(len(labels), 1 / len(labels))
        expected[labelled] = value[labelled] / value[labelled].sum() * labelled.mean()
        np.testing.assert_allclose(image_probabilities(labels, 5, agg), expected, rtol=1e-12)


def test_train_class_balance(balanced):
    """Test that only the train loader is balanced, with its sampler and log line."""
    trainer = balanced.trainer
    train, val = trainer.train_loader, trainer.test_loader
    dataset = train.dataset
    assert isinstance(train.sampler, BalancedSampler) and len(train.sampler) == len(dataset) == 24
    p = train.sampler.probabilities(0)
    classes = [label["cls"].reshape(-1) for label in dataset.labels]
    np.testing.assert_allclose(p, image_probabilities(classes, 3, "sum", 1.0), rtol=1e-12)
    assert not hasattr(val.dataset, "balanced_sampling") and not isinstance(val.sampler, BalancedSampler)

    line = [m for m in balanced.log if "class_balance=1 balance_agg=sum: 24 train images" in m]
    assert line and "max/min class share" in line[0]
    rare = [i for i, label in enumerate(dataset.labels) if 2 in label["cls"]]
    assert p[rare].sum() > len(rare) / len(dataset)  # rare images are drawn more often


def test_class_balance_off(balanced):
    """Test that class_balance=False builds the stock dataset and loader."""
    trainer = balanced.trainer
    trainer.args.class_balance = False
    try:
        loader = trainer.get_dataloader(trainer.data["train"], batch_size=8, rank=-1, mode="train")
        assert not hasattr(loader.dataset, "balanced_sampling") and isinstance(loader.sampler, RandomSampler)
    finally:
        trainer.args.class_balance = True


def test_classify_class_balance(tmp_path):
    """Test that classification draws each class equally often with class_balance=True, and leaves val stock."""
    counts = {"common": 30, "medium": 8, "rare": 3}
    data = make_imbalanced_folder(tmp_path / "cls", counts)
    args = {"model": "yolo26n-cls.yaml", "data": str(data), "imgsz": 32, "device": "cpu", "plots": False}
    with LogRecords() as log:
        overrides = {**args, "class_balance": True, "balance_agg": "max", "project": str(tmp_path)}
        trainer = ClassificationTrainer(overrides=overrides)
        loader = trainer.get_dataloader(trainer.data["train"], batch_size=16, rank=-1, mode="train")
    assert isinstance(loader.sampler, BalancedSampler) and len(loader.sampler) == 41
    assert any("class_balance=1 balance_agg=max: 41 train images" in m for m in log.messages)
    seen = np.zeros(3)
    for _ in range(20):  # 20 epochs of 41 draws through the real loader
        for batch in loader:
            seen += np.bincount(batch["cls"].numpy(), minlength=3)
    np.testing.assert_allclose(seen / seen.sum(), [1 / 3] * 3, atol=0.02)
    trainer.model = trainer.get_model(cfg="yolo26n-cls.yaml", verbose=False)
    val = trainer.get_dataloader(trainer.data["val"], batch_size=4, rank=-1, mode="val")
    assert not hasattr(val.dataset, "balanced_sampling") and not isinstance(val.sampler, BalancedSampler)


def test_class_balance_conflicts(data, tmp_path):
    """Test the settings class-balanced sampling refuses before the first epoch, and those it warns about."""

    class UnbalancedTrainer(DetectionTrainer):  # as YOLO-World and YOLOE: a build_dataset() that does not balance
        def build_dataset(self, img_path, mode="train", batch=None):
            return build_yolo_dataset(self.args, img_path, batch, self.data, mode=mode, rect=mode == "val", stride=32)

    args = {"data": str(data), "class_balance": True, **TRAIN, "project": str(tmp_path)}
    wide = make_imbalanced_dataset(tmp_path / "wide")  # two aspect ratios: rect=True keeps the train loader's order
    for image in sorted((tmp_path / "wide" / "images" / "train").glob("*.jpg"))[::2]:
        cv2.imwrite(str(image), cv2.resize(cv2.imread(str(image)), (64, 32)))
    epochs = []
    model = YOLO(CFG)
    model.add_callback("on_train_epoch_start", lambda trainer: epochs.append(trainer.epoch))
    with pytest.raises(NotImplementedError, match="'rect=True' orders images by aspect ratio"):
        model.train(**{**args, "data": str(wide)}, rect=True, name="rect")
    with pytest.raises(NotImplementedError, match="UnbalancedTrainer .*its datasets are not balanced yet"):
        YOLO(CFG).train(**args, trainer=UnbalancedTrainer, name="unbalanced")
    assert not epochs  # refused before any training
    trainer = DetectionTrainer(overrides={**args, "model": CFG, "cls_pw": 0.5, "name": "warn"})
    trainer.model = trainer.get_model(cfg=CFG, verbose=False)
    with LogRecords() as log:
        trainer.build_dataset(trainer.data["train"], mode="train", batch=8)
    assert any("class_balance and cls_pw=0.5 both favour rare classes" in m for m in log.messages)
    trainer.args.single_cls = True  # one class left: every image drawn once per epoch, as stock
    dataset = trainer.build_dataset(trainer.data["train"], mode="train", batch=8)
    assert np.array_equal(dataset.balanced_sampling["probabilities"], np.full(24, 1 / 24))


def test_class_balance_resume(data, tmp_path):
    """Test that a resumed run keeps balancing and the sampler continues at the resumed epoch."""

    class Stop(Exception):
        """Interrupt training after the first epoch."""

    def stop(trainer):
        raise Stop

    model = YOLO(CFG)
    model.add_callback("on_fit_epoch_end", stop)
    with pytest.raises(Stop):
        model.train(data=str(data), class_balance=0.5, **{**TRAIN, "epochs": 2}, project=str(tmp_path), name="run")
    resumed = YOLO(tmp_path / "run" / "weights" / "last.pt")
    resumed.train(resume=True)
    trainer = resumed.trainer
    assert trainer.start_epoch == 1 and trainer.args.class_balance == 0.5
    assert isinstance(trainer.train_loader.sampler, BalancedSampler)
    assert trainer.train_loader.sampler.epoch == 2  # epoch 1 was drawn: the sampler followed the resumed trainer
