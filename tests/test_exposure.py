# ultralytics-weighted, AGPL-3.0 license
"""Realized exposure: the instances per class and epoch in the batches trained, stored, and used by `adjust`/τ."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import captured_log, run

import ultralytics_weighted  # noqa: F401  (explicit activation; the startup hook does the same)
from ultralytics_weighted.commands.synthetic import make_classification_dataset
from ultralytics_weighted.host.priors import PRIORS_ATTRIBUTE, correct_checkpoint

ADJUST = [sys.executable, "-m", "ultralytics_weighted.commands.cli", "adjust"]
TRAIN = dict(imgsz=64, batch=8, device="cpu", plots=False, workers=0, seed=0, val=False, verbose=False)


def read_priors(path: Path) -> dict:
    """Return the priors stored with a checkpoint's model (the EMA before stripping, the model after)."""
    from ultralytics.utils.patches import torch_load

    checkpoint = torch_load(path, map_location="cpu")
    return getattr(checkpoint.get("ema") or checkpoint["model"], PRIORS_ATTRIBUTE)


def read_exposure(path: Path) -> tuple[list[str], list[list[int]]]:
    """Return a run folder's exposure.csv as (class names, counts of each epoch)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][0] == "epoch" and [int(r[0]) for r in rows[1:]] == list(range(1, len(rows)))
    return rows[0][1:], [[int(x) for x in r[1:]] for r in rows[1:]]


def counting_trainer(base):
    """Return a subclass of a trainer that records every batch's class ids as its own `preprocess_batch` receives them,
    independently of the plugin's counting."""

    class CountingTrainer(base):
        seen: list

        def preprocess_batch(self, batch):
            self.seen = getattr(self, "seen", [])
            counts = torch.zeros(len(self.data["names"]), dtype=torch.int64)
            for c in batch["cls"].view(-1).tolist():
                counts[int(c)] += 1
            self.seen.append((self.epoch, counts))
            return super().preprocess_batch(batch)

    return CountingTrainer


@pytest.fixture(scope="module")
def detect_run(datasets, tmp_path_factory):
    """yolo11n trained 1 epoch balanced with mosaic (close_mosaic=0: by default it is off in a run's last 10 epochs),
    balance_tau=1, and a trainer that counts its batches itself."""
    from ultralytics import YOLO as Model
    from ultralytics.models.yolo.detect import DetectionTrainer

    root = tmp_path_factory.mktemp("exposure")
    model = Model("yolo11n.yaml")
    with captured_log() as log:
        model.train(
            data=str(datasets("detect")),
            trainer=counting_trainer(DetectionTrainer),
            class_balance=True,
            balance_tau=1,
            epochs=1,
            close_mosaic=0,
            **TRAIN,
            project=str(root),
            name="run",
        )
    return model.trainer, "\n".join(log)


def test_a_balanced_detection_run_stores_the_instances_of_the_batches_it_trained(detect_run):
    trainer, log = detect_run
    names = [trainer.data["names"][c] for c in range(len(trainer.data["names"]))]
    seen = np.sum([counts.numpy() for _, counts in trainer.seen], axis=0)
    assert len(trainer.seen) == len(trainer.train_loader) and seen.sum() > 0

    header, epochs = read_exposure(Path(trainer.save_dir) / "exposure.csv")
    assert header == names and epochs == [seen.tolist()]  # every instance of every batch trained, by class
    for checkpoint in ("last.pt", "best.pt"):
        priors = read_priors(Path(trainer.save_dir) / "weights" / checkpoint)
        assert priors["exposure"] == [seen.tolist()]
        np.testing.assert_allclose(priors["share_realized"], seen / seen.sum(), rtol=1e-12)
        assert priors["share_realized"] != priors["share_trained"]  # mosaic: what was seen is not what was drawn
    # the end-of-training table: nominal and realized per class, and balance_tau says which share it used
    for name, share in zip(names, seen / seen.sum()):
        assert any(line.split()[1:2] == [name] and f"{share:.1%}" in line for line in log.splitlines()), name
    line = next(line for line in log.splitlines() if "balance_tau=1 from the realized share trained" in line)
    offsets = np.log(np.array(priors["share_before"]) / priors["share_realized"])  # not the nominal share's
    assert line.endswith(f"(class logit offsets {', '.join(f'{n} {o:+.3f}' for n, o in zip(names, offsets))})")
    assert read_priors(Path(trainer.save_dir) / "weights" / "best-tau1.pt")["tau_share"] == "realized"


def test_stock_training_counts_without_changing_a_batch(datasets, tmp_path):
    """A stock run counts too (exposure.csv; no priors in its checkpoint) and trains the very batches it trains with
    the counting switched off: counting draws no random numbers and changes no batch."""
    from ultralytics import YOLO as Model
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.utils.patches import torch_load

    class Uncounted(counting_trainer(DetectionTrainer)):
        balance_exposure = "off"  # the plugin counts only where a trainer has no exposure yet (`start_counting`)

    runs = {}
    for name, trainer in (("counted", counting_trainer(DetectionTrainer)), ("uncounted", Uncounted)):
        model = Model("yolo11n.yaml")
        model.train(data=str(datasets("detect")), trainer=trainer, epochs=1, **TRAIN, project=str(tmp_path), name=name)
        runs[name] = model.trainer
    seen = {name: [c.tolist() for _, c in trainer.seen] for name, trainer in runs.items()}
    assert seen["counted"] == seen["uncounted"]  # the same batches, instance for instance
    _, epochs = read_exposure(Path(runs["counted"].save_dir) / "exposure.csv")
    assert epochs == [np.sum(seen["counted"], axis=0).tolist()]
    assert not (Path(runs["uncounted"].save_dir) / "exposure.csv").exists()
    checkpoint = torch_load(Path(runs["counted"].save_dir) / "weights" / "last.pt", map_location="cpu")
    assert getattr(checkpoint["model"], PRIORS_ATTRIBUTE, None) is None  # adjust still refuses a stock model


def test_a_classification_run_counts_one_label_per_image(tmp_path):
    from ultralytics import YOLO as Model
    from ultralytics.models.yolo.classify import ClassificationTrainer

    data = make_classification_dataset(tmp_path / "data", {"common": 30, "medium": 8, "rare": 3})
    model = Model("yolo11n-cls.yaml")
    train = {**TRAIN, "imgsz": 32, "batch": 16}  # 41 images: no final batch of one
    model.train(
        data=str(data),
        trainer=counting_trainer(ClassificationTrainer),
        class_balance=True,
        epochs=2,
        **train,
        project=str(tmp_path),
        name="run",
    )
    trainer = model.trainer
    seen = [np.sum([c.numpy() for e, c in trainer.seen if e == epoch], axis=0).tolist() for epoch in range(2)]
    _, epochs = read_exposure(Path(trainer.save_dir) / "exposure.csv")
    assert epochs == seen and [sum(e) for e in seen] == [len(trainer.train_loader.sampler)] * 2  # one per image
    assert read_priors(Path(trainer.save_dir) / "weights" / "last.pt")["exposure"] == seen


def planted(path: Path, source: Path, realized: list[float] | None) -> Path:
    """Write a copy of a balanced checkpoint whose priors hold the given realized share (None: an older checkpoint)."""
    from ultralytics.utils.patches import torch_load

    checkpoint = torch_load(source, map_location="cpu")
    for model in {id(m): m for m in (checkpoint.get("model"), checkpoint.get("ema")) if m is not None}.values():
        priors = {k: v for k, v in getattr(model, PRIORS_ATTRIBUTE).items() if k not in ("exposure", "share_realized")}
        if realized is not None:
            priors |= {"exposure": [[round(1000 * x) for x in realized]], "share_realized": realized}
        setattr(model, PRIORS_ATTRIBUTE, priors)
    torch.save(checkpoint, path)
    return path


def test_adjust_uses_the_realized_share_and_says_so(detect_run, tmp_path):
    trainer, _ = detect_run
    priors = read_priors(Path(trainer.save_dir) / "weights" / "best.pt")
    nc = len(priors["names"])
    realized = [0.5 / (nc - 1)] * (nc - 1) + [
        0.5
    ]  # far from the nominal share: half of all instances in the last class
    assert not np.allclose(realized, priors["share_trained"], atol=0.01)
    source = planted(tmp_path / "planted.pt", Path(trainer.save_dir) / "weights" / "best.pt", realized)
    expected = np.log(np.array(priors["share_before"]) / realized)
    _, offsets, corrected = correct_checkpoint(source, 1.0, tmp_path / "api.pt")
    np.testing.assert_allclose(offsets, expected, rtol=1e-9)
    assert corrected["tau_share"] == "realized" and read_priors(tmp_path / "api.pt")["tau_share"] == "realized"

    out = run([*ADJUST, f"model={source}", "tau=1", f"save={tmp_path / 'cli.pt'}"], cwd=tmp_path)
    assert out.returncode == 0, out.stdout
    assert "class logit offsets from the realized share trained" in out.stdout
    for name, share, offset in zip(priors["names"], realized, expected):
        line = next(line.split() for line in out.stdout.splitlines() if line.split()[:1] == [name])
        assert line[-2:] == [f"{share:.1%}", f"{offset:+.3f}"]


def test_an_old_checkpoint_without_exposure_falls_back_to_the_nominal_share(detect_run, tmp_path):
    trainer, _ = detect_run
    source = planted(tmp_path / "old.pt", Path(trainer.save_dir) / "weights" / "best.pt", None)
    priors = read_priors(source)
    expected = np.log(np.array(priors["share_before"]) / priors["share_trained"])
    _, offsets, corrected = correct_checkpoint(source, 1.0, tmp_path / "api.pt")
    np.testing.assert_allclose(offsets, expected, rtol=1e-9)
    assert corrected["tau_share"] == "nominal"
    out = run([*ADJUST, f"model={source}", "tau=1", f"save={tmp_path / 'cli.pt'}"], cwd=tmp_path)
    assert out.returncode == 0, out.stdout
    assert "from the nominal share trained (the checkpoint has no realized exposure" in out.stdout
    for name, offset in zip(priors["names"], expected):
        line = next(line.split() for line in out.stdout.splitlines() if line.split()[:1] == [name])
        assert line[-2:] == ["-", f"{offset:+.3f}"]
