# ultralytics-weighted, AGPL-3.0 license
"""Real training through the stock CLI and Python API: every task, train-only balancing, partners, conflicts."""

from __future__ import annotations

import csv
import sys
import sysconfig

import numpy as np
import pytest
from conftest import YOLO, balance_table, captured_log, plain, run

import ultralytics

import ultralytics_weighted  # noqa: F401  (explicit activation; the startup hook does the same)
from ultralytics_weighted import BalancedSampler
from ultralytics_weighted.host.release import is_supported
from ultralytics_weighted.host.training import BalancedDatasetMixin, _WeightedPartners

TRAIN = dict(epochs=1, imgsz=64, batch=8, device="cpu", plots=False, workers=0, seed=0, verbose=False)
# RT-DETR selects 300 queries among its anchors: below 8.4.150 Ultralytics fails if there are fewer (imgsz < 128)
RTDETR_IMGSZ = 64 if is_supported(ultralytics.__version__, ">=8.4.150") else 128


@pytest.fixture(scope="module")
def balanced(datasets, tmp_path_factory):
    """A yolo11n trained 1 epoch with class_balance=True, balance_agg='mean' through the Python API."""
    from ultralytics import YOLO as Model

    model = Model("yolo11n.yaml")
    model.train(
        data=str(datasets("detect")),
        class_balance=True,
        balance_agg="mean",
        **TRAIN,
        project=str(tmp_path_factory.mktemp("runs")),
        name="balanced",
    )
    return model


def test_model_train_kwargs(datasets, tmp_path):
    from ultralytics import YOLO as Model

    model = Model("yolo11n.yaml")
    model.train(
        data=str(datasets("detect")),
        class_balance=0.5,
        balance_agg="median",
        **TRAIN,
        project=str(tmp_path),
        name="run",
    )
    dataset = model.trainer.train_loader.dataset
    assert isinstance(dataset, BalancedDatasetMixin)
    assert (dataset.balance_schedule.strength, dataset.balance_schedule.agg) == (0.5, "median")
    assert isinstance(model.trainer.train_loader.sampler, BalancedSampler)


def test_rtdetr_trains_balanced_through_python(datasets, tmp_path):
    from ultralytics import RTDETR
    from ultralytics.models.rtdetr.val import RTDETRDataset

    model = RTDETR("rtdetr-l.yaml")
    model.train(
        data=str(datasets("detect")),
        class_balance=True,
        balance_agg="max",
        **{**TRAIN, "batch": 4, "imgsz": RTDETR_IMGSZ},
        project=str(tmp_path),
        name="run",
    )
    dataset = model.trainer.train_loader.dataset
    assert isinstance(dataset, RTDETRDataset) and isinstance(dataset, BalancedDatasetMixin)
    assert type(model.trainer.test_loader.dataset) is RTDETRDataset  # validation stays stock


def test_only_the_train_loader_is_balanced(balanced):
    from ultralytics.data.dataset import YOLODataset

    trainer = balanced.trainer
    train, val = trainer.train_loader, trainer.test_loader
    assert isinstance(train.dataset, YOLODataset) and isinstance(train.dataset, BalancedDatasetMixin)
    assert isinstance(train.sampler, BalancedSampler) and len(train.sampler) == len(train.dataset)
    assert type(val.dataset) is YOLODataset and not isinstance(val.sampler, BalancedSampler)


def test_train_loader_with_worker_processes_yields_the_systematic_draw(balanced):
    trainer = balanced.trainer
    trainer.args.workers = 2  # Ultralytics sets 0 for CPU training; loaders themselves run workers on CPU too
    loader = trainer.get_dataloader(trainer.data["train"], batch_size=4, rank=-1, mode="train")
    try:
        assert loader.num_workers == 2 and isinstance(loader.sampler, BalancedSampler)
        dataset = loader.dataset
        index = {f: i for i, f in enumerate(dataset.im_files)}
        expected = len(dataset) * dataset.balanced_probabilities
        exposure = np.zeros(len(dataset))
        for epoch in range(3):
            counts = np.zeros(len(dataset))
            for batch in loader:
                np.add.at(counts, [index[f] for f in batch["im_file"]], 1)
            assert ((counts == np.floor(expected)) | (counts == np.ceil(expected))).all(), f"epoch {epoch}"
            assert counts.sum() == len(dataset)  # epoch length as stock
            exposure += counts
        rare = [i for i, label in enumerate(dataset.labels) if 2 in label["cls"]]
        assert exposure[rare].sum() > 3 * len(rare)  # rare images drawn more than once per epoch on average
    finally:
        loader.close()


def test_val_loader_yields_every_image_once_in_order(balanced):
    trainer = balanced.trainer
    loader = trainer.get_dataloader(trainer.data["val"], batch_size=4, rank=-1, mode="val")
    files = [f for batch in loader for f in batch["im_file"]]
    assert files == list(loader.dataset.im_files)
    assert len(set(files)) == len(files) == 8


def test_validation_metrics_are_identical_with_the_flag_on_and_off(balanced, datasets):
    from ultralytics import YOLO as Model

    model = Model(balanced.trainer.best)
    kwargs = dict(data=str(datasets("detect")), imgsz=64, batch=4, device="cpu", plots=False, verbose=False)
    on, off = model.val(class_balance=True, balance_agg="sum", **kwargs), model.val(class_balance=False, **kwargs)
    assert on.results_dict == off.results_dict
    np.testing.assert_array_equal(on.box.maps, off.box.maps)


def test_partners_follow_the_weights_with_cache_ram(balanced):
    from ultralytics.data.augment import BaseMixTransform, Compose, Mosaic

    trainer = balanced.trainer
    trainer.args.cache, trainer.args.mixup, trainer.args.cutmix = "ram", 1.0, 1.0
    dataset = trainer.build_dataset(trainer.data["train"], mode="train", batch=8)
    mix, stack = [], [dataset.transforms]
    while stack:
        t = stack.pop()
        stack.extend(
            t.transforms if isinstance(t, Compose) else [t.pre_transform] if isinstance(t, BaseMixTransform) else []
        )
        if isinstance(t, BaseMixTransform):
            mix.append(t)
    assert {type(t).__name__ for t in mix} >= {"Mosaic", "MixUp", "CutMix"}
    assert all(isinstance(t.get_indexes, _WeightedPartners) for t in mix)
    mosaic = next(t for t in mix if isinstance(t, Mosaic))
    np.random.seed(0)
    drawn = np.concatenate([mosaic.get_indexes() for _ in range(20000)])  # 3 partners each
    frequency = np.bincount(drawn, minlength=len(dataset)) / drawn.size
    assert 0.5 * np.abs(frequency - dataset.balanced_probabilities).sum() < 0.02  # total variation distance


def test_stock_dataset_and_partners_when_balancing_is_off(balanced):
    from ultralytics.data.augment import Mosaic
    from ultralytics.data.dataset import YOLODataset

    trainer = balanced.trainer
    trainer.args.class_balance, trainer.args.cache = False, "ram"
    dataset = trainer.build_dataset(trainer.data["train"], mode="train", batch=8)
    assert type(dataset) is YOLODataset
    mosaic = dataset.transforms.transforms[0].transforms[0]
    assert isinstance(mosaic, Mosaic) and "get_indexes" not in vars(mosaic)
    trainer.args.class_balance = True


def test_feature_off_trains_exactly_like_stock(datasets, yolo, tmp_path):
    def losses(env):
        project = tmp_path / env["ULTRALYTICS_WEIGHTED_HOOK"]
        out = yolo(datasets("detect"), project, "seed=3", env=env)
        assert out.returncode == 0, out.stdout[-3000:]
        assert not balance_table(out.stdout)
        rows = list(csv.DictReader((project / "run" / "results.csv").open()))
        return [{k: v for k, v in row.items() if k.strip() != "time"} for row in rows]

    assert losses({"ULTRALYTICS_WEIGHTED_HOOK": "1"}) == losses({"ULTRALYTICS_WEIGHTED_HOOK": "0"})


def test_rect_is_refused_before_training(datasets, tmp_path):
    from ultralytics import YOLO as Model

    with pytest.raises(ValueError, match="'rect=True' cannot be combined with class_balance"):
        Model("yolo11n.yaml").train(
            data=str(datasets("detect")), class_balance=True, rect=True, **TRAIN, project=str(tmp_path), name="run"
        )
    assert not list(tmp_path.iterdir())  # refused before the trainer made its run folder


def test_a_final_batch_of_one_from_balance_floor_names_balance_floor_and_leaves_no_folder(datasets, yolo, tmp_path):
    from ultralytics_weighted.extensions.schedule import BalanceSchedule
    from ultralytics_weighted.host.labels import load_label_classes

    data = datasets("detect")
    stock = len(load_label_classes({"data": str(data)})[0])
    grown = BalanceSchedule(load_label_classes({"data": str(data)})[0], 3, 0.5, floor=1).epoch_size
    batch = next(b for b in range(2, grown) if grown % b == 1 and stock % b != 1)  # only the grown epoch ends in 1
    args = ["class_balance=0.5", "balance_floor=1", "imgsz=32", f"batch={batch}"]
    out = yolo(data, tmp_path / "balanced", *args)
    assert out.returncode != 0 and f"balance_floor=1 grows the epoch from {stock} to {grown} images" in out.stdout
    assert f"at batch={batch} its final batch holds 1 image: final batch=1 training at imgsz=32" in out.stdout
    suggested = int(out.stdout.split("(e.g. batch=")[1].split(",")[0])
    assert grown % suggested != 1 and stock % suggested != 1
    assert not (tmp_path / "balanced" / "run").exists()  # nothing was trained: no run folder is left
    out = yolo(data, tmp_path / "stock", "imgsz=32", f"batch={batch}")  # the same settings train as stock
    assert out.returncode == 0, out.stdout[-3000:]


def interrupted_after_first_epoch(data, project, **keys):
    """Train 2 epochs of a balanced run that stops after the first one; return its last.pt (to resume)."""
    from ultralytics import YOLO as Model

    class Stop(Exception):
        pass

    def stop_after_first_epoch(trainer):
        raise Stop

    model = Model("yolo11n.yaml")
    model.add_callback("on_fit_epoch_end", stop_after_first_epoch)
    with pytest.raises(Stop):
        model.train(
            data=str(data), class_balance=True, **{**TRAIN, "epochs": 2}, project=str(project), name="run", **keys
        )
    return project / "run" / "weights" / "last.pt"


def test_resuming_a_balanced_run_without_the_plugin_names_it(datasets, tmp_path):
    # with the startup hook off the error says so (already on bb7f842); without the package, the checkpoint's arguments
    # name it (#27 rough edge 13)
    last = interrupted_after_first_epoch(datasets("detect"), tmp_path)
    out = run([*YOLO, "train", "resume", f"model={last}"], cwd=tmp_path, env={"ULTRALYTICS_WEIGHTED_HOOK": "0"})
    assert out.returncode != 0 and "'class_balance' is not a valid YOLO argument" in plain(out.stdout)
    assert "are keys of ultralytics-weighted, whose startup hook is switched off" in plain(out.stdout)
    # the package not installed: nothing of it runs (-S skips the .pth files, so neither the startup hook nor an
    # editable install's path), yet the checkpoint's own arguments make Ultralytics' error name it
    site_packages = sysconfig.get_paths()["purelib"]
    code = (
        f"import sys; sys.path.append({site_packages!r}); from ultralytics import YOLO\n"
        f"try:\n    YOLO({str(last)!r}).train(resume=True)\n"
        "finally:\n    assert not [m for m in sys.modules if m.startswith('ultralytics_weighted')], 'plugin imported'\n"
    )
    out = run([sys.executable, "-S", "-c", code], cwd=tmp_path)
    assert out.returncode != 0 and "'class_balance' is not a valid YOLO argument" in plain(out.stdout)
    assert "'ultralytics_weighted' is not a valid YOLO argument" in plain(out.stdout)
    assert "plugin imported" not in out.stdout


def test_single_cls_and_cls_pw_warn(datasets, tmp_path):
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.models.yolo.detect import DetectionTrainer

    args = dict(model="yolo11n.yaml", data=str(datasets("detect")), class_balance=True, **TRAIN, project=str(tmp_path))
    with captured_log() as log:
        trainer = DetectionTrainer(overrides={**args, "single_cls": True, "name": "single"})
    assert any("'single_cls=True' merges all classes into one, so class_balance has no effect" in m for m in log)
    trainer.model = trainer.get_model(cfg="yolo11n.yaml", verbose=False)
    assert type(trainer.build_dataset(trainer.data["train"], mode="train", batch=8)) is YOLODataset
    with captured_log() as log:
        DetectionTrainer(overrides={**args, "cls_pw": 1.0, "name": "cls_pw"})
    assert any("cls_pw=1.0 (loss weighting) both favour rare classes" in m for m in log)


@pytest.mark.parametrize(
    "trainer, model, task",
    [
        ("ultralytics.models.yolo.world.WorldTrainer", "yolov8s-worldv2.yaml", "detect"),
        ("ultralytics.models.yolo.semantic.SemanticSegmentationTrainer", "yolo26n-sem.yaml", "semantic"),
        ("ultralytics.models.yolo.depth.DepthTrainer", "yolo26n-depth.yaml", "depth"),
    ],
)
def test_unsupported_tasks_fail_before_training(trainer, model, task, datasets, tmp_path):
    import importlib

    module, name = trainer.rsplit(".", 1)
    trainer_class = getattr(importlib.import_module(module), name)
    args = dict(
        model=model, task=task, data=str(datasets("segment")), class_balance=True, **TRAIN, project=str(tmp_path)
    )
    with pytest.raises(NotImplementedError, match=f"class_balance is not supported for task={task} with {name}"):
        trainer_class(overrides=args)
    assert not list(tmp_path.iterdir())  # refused before the trainer made its run folder


def test_resume_keeps_balancing(datasets, tmp_path):
    from ultralytics import YOLO as Model

    # 2 epochs, balance_ramp=1: strength 0 in epoch 0, full strength in epoch 1
    last = interrupted_after_first_epoch(
        datasets("detect"), tmp_path, balance_agg="sum", balance_floor=1, balance_ramp=1.0
    )
    resumed = Model(last)
    resumed.train(resume=True)
    trainer = resumed.trainer
    assert trainer.start_epoch == 1 and trainer.args.class_balance is True and trainer.args.balance_agg == "sum"
    assert isinstance(trainer.train_loader.dataset, BalancedDatasetMixin)
    sampler, schedule = trainer.train_loader.sampler, trainer.train_loader.dataset.balance_schedule
    assert (
        sampler.epoch == 2 and sampler._last_drawn == 1
    )  # epoch 1 was drawn: the sampler followed the resumed trainer
    assert (schedule.floor, schedule.ramp, schedule.strength_at(1)) == (1.0, 1.0, 1.0)  # the schedule continued
    assert len(sampler) == schedule.epoch_size > len(trainer.train_loader.dataset)  # the grown epoch, after resume too


def build_train_dataset(data, tmp_path, **overrides):
    """Build the train dataset as training does, with the log it writes; plots on, as by default."""
    from ultralytics.models.yolo.detect import DetectionTrainer

    args = dict(model="yolo11n.yaml", data=str(data), imgsz=64, device="cpu", project=str(tmp_path), name="run")
    with captured_log() as log:
        trainer = DetectionTrainer(overrides={**args, "plots": True, **overrides})
        trainer.model = trainer.get_model(cfg="yolo11n.yaml", verbose=False)
        dataset = trainer.build_dataset(trainer.data["train"], mode="train", batch=8)
    return dataset, log, trainer


@pytest.mark.parametrize("agg", ["mean", "sum", "auto"])
def test_no_labels_left_trains_as_stock_with_one_message(agg, datasets, tmp_path):
    from ultralytics.data.dataset import YOLODataset

    # classes=[7] filters out every label: the train images are all backgrounds
    dataset, log, trainer = build_train_dataset(
        datasets("detect"), tmp_path, class_balance=True, balance_agg=agg, classes=[7]
    )
    assert type(dataset) is YOLODataset  # stock dataset, stock loader
    said = [m for m in log if "nothing to balance" in m]
    assert len(said) == 1 and "no train image has labels (24 images, all backgrounds)" in said[0]
    assert not any("nan" in m or "share per epoch" in m for m in log)
    assert not (trainer.save_dir / "class_balance.png").exists()


@pytest.mark.parametrize("agg", ["sum", "max"])
def test_single_class_samples_uniformly_and_says_so(agg, datasets, tmp_path):
    from ultralytics.data.dataset import YOLODataset

    # classes=[0]: only 'common' labels are left; with sum, images with two common objects used to weigh double
    dataset, log, _ = build_train_dataset(
        datasets("detect"), tmp_path, class_balance=True, balance_agg=agg, classes=[0]
    )
    assert type(dataset) is YOLODataset
    said = [m for m in log if "nothing to balance" in m]
    assert (
        len(said) == 1
        and "only one class has labels, so there is nothing to balance (every label is common)" in said[0]
    )
    assert not any("effective sample size" in m for m in log)  # no table that contradicts the message


@pytest.mark.parametrize(
    "overrides, note",
    [
        ({"balance_agg": "sum"}, "balance_agg=sum has no effect without class_balance (class_balance=False)"),
        ({"balance_agg": "auto", "class_balance": 0.0}, "balance_agg=auto has no effect without class_balance"),
        ({}, None),  # defaults: nothing to say
        ({"balance_agg": "sum", "class_balance": True}, None),
    ],
)
def test_balance_keys_without_class_balance_get_one_note(overrides, note, datasets, tmp_path):
    from ultralytics.models.yolo.detect import DetectionTrainer

    args = dict(model="yolo11n.yaml", data=str(datasets("detect")), **TRAIN, project=str(tmp_path), name="run")
    with captured_log() as log:
        DetectionTrainer(overrides={**args, **overrides})
    notes = [m for m in log if "has no effect without class_balance" in m]
    assert notes == [] if note is None else (len(notes) == 1 and note in notes[0])
