# ultralytics-weighted, AGPL-3.0 license
"""The class priors a balanced checkpoint carries, through resume and DDP: what `adjust` and `balance_tau` correct."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run

import ultralytics_weighted  # noqa: F401  (explicit activation; the startup hook does the same)
from ultralytics_weighted.commands.synthetic import make_classification_dataset
from ultralytics_weighted.host.priors import PRIORS_ATTRIBUTE, correct_checkpoint

COUNTS = {"common": 30, "medium": 8, "rare": 3}
ADJUST = [sys.executable, "-m", "ultralytics_weighted.commands.cli", "adjust"]
# balance_ramp=1 over 3 epochs: strengths 0, 0.5, 1, so the share trained moves every epoch; balance_floor=1 grows them
RAMP = dict(class_balance=True, balance_ramp=1.0, balance_floor=1.0, epochs=3)


def priors(path: Path) -> dict:
    """Return the priors stored with a checkpoint's model (the EMA before stripping, the model after)."""
    from ultralytics.utils.patches import torch_load

    checkpoint = torch_load(path, map_location="cpu")
    return getattr(checkpoint.get("ema") or checkpoint["model"], PRIORS_ATTRIBUTE)


class Stop(Exception):
    """Raised by a callback to interrupt a training after its first epoch's checkpoints are written."""


def stop_after_first_epoch(trainer):
    raise Stop


def test_a_resumed_training_records_the_priors_of_an_uninterrupted_one(tmp_path):
    from ultralytics import YOLO as Model

    data = str(make_classification_dataset(tmp_path / "data", COUNTS))
    # val=False: only the final epoch validates, so best.pt is every epoch's checkpoint and ends as the last epoch's
    train = dict(data=data, **RAMP, imgsz=32, batch=8, device="cpu", plots=False, workers=0, seed=0, val=False)
    Model("yolo11n-cls.yaml").train(**train, save_period=1, project=str(tmp_path), name="whole")
    interrupted = Model("yolo11n-cls.yaml")
    interrupted.add_callback("on_fit_epoch_end", stop_after_first_epoch)
    with pytest.raises(Stop):
        interrupted.train(**train, project=str(tmp_path), name="resumed")
    assert priors(tmp_path / "resumed" / "weights" / "last.pt")["epochs"] == 1
    resumed = Model(tmp_path / "resumed" / "weights" / "last.pt")
    resumed.train(resume=True)
    assert resumed.trainer.start_epoch == 1

    whole, weights = tmp_path / "whole" / "weights", tmp_path / "resumed" / "weights"
    per_epoch = [priors(whole / f"epoch{epoch}.pt") for epoch in range(3)]
    assert [p["epochs"] for p in per_epoch] == [1, 2, 3]
    shares = [p["share_trained"] for p in per_epoch]
    np.testing.assert_allclose(shares[0], per_epoch[0]["share_before"], rtol=1e-12)  # epoch 1 samples as stock
    assert shares[0] != shares[1] != shares[2]  # then the ramp moves the share trained every epoch
    expected = priors(whole / "last.pt")
    assert expected == per_epoch[2] and priors(whole / "best.pt") == expected
    assert priors(weights / "last.pt") == expected and priors(weights / "best.pt") == expected  # exactly, every key

    _, offsets, _ = correct_checkpoint(whole / "last.pt", 1.0, tmp_path / "whole-tau1.pt")
    assert offsets[0] > 0 > offsets[2]  # a real correction: the common class gains, the rare one loses
    out = run([*ADJUST, f"model={weights / 'last.pt'}", "tau=1", f"save={tmp_path / 'resumed-tau1.pt'}"], cwd=tmp_path)
    assert out.returncode == 0, out.stdout
    for name, offset in zip(expected["names"], offsets):
        assert any(line.split()[0] == name and line.split()[-1] == f"{offset:+.3f}" for line in out.stdout.splitlines())
    np.testing.assert_array_equal(correct_checkpoint(weights / "last.pt", 1.0, tmp_path / "again.pt")[1], offsets)


def _ddp_worker(data: str, project: str, store: str, out: str) -> None:
    """One DDP rank (RANK and WORLD_SIZE in the environment, as torch.distributed.run sets them before Ultralytics is
    imported): build the balanced train loader as the trainer does, record the priors after every epoch."""
    import torch
    import torch.distributed as dist

    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.utils import RANK

    from ultralytics_weighted.core.sampler import BalancedSampler
    from ultralytics_weighted.host.priors import TrainedPriors, record_class_priors

    world_size = int(os.environ["WORLD_SIZE"])
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=RANK, world_size=world_size)
    try:
        overrides = dict(model="yolo11n.yaml", data=data, **RAMP, imgsz=64, device="cpu", project=project)
        trainer = DetectionTrainer(overrides={**overrides, "name": f"rank{RANK}", "workers": 0})
        trainer.setup_model()  # the model's stride sizes the dataset's letterbox, as in training
        trainer.train_loader = trainer.get_dataloader(trainer.data["train"], batch_size=4, rank=RANK, mode="train")
        sampler, dataset = trainer.train_loader.sampler, trainer.train_loader.dataset
        assert isinstance(sampler, BalancedSampler) and (sampler.rank, sampler.num_replicas) == (RANK, world_size)
        assert record_class_priors in trainer.callbacks["on_train_epoch_end"]
        report = {"written": [], "shares": [], "slices": []}
        for epoch in range(RAMP["epochs"]):
            trainer.epoch = epoch
            sampler.set_epoch(epoch)
            report["slices"].append(list(sampler))
            trainer.ema = type("EMA", (), {"ema": torch.nn.Module()})()  # the EMA model every checkpoint saves
            record_class_priors(trainer)
            report["written"].append(getattr(trainer.ema.ema, PRIORS_ATTRIBUTE, None))
            report["shares"].append(TrainedPriors(dataset.balance_schedule).share_trained(epoch + 1).tolist())
        gathered = [None] * world_size
        dist.all_gather_object(gathered, report)
        if RANK == 0:
            Path(out).write_text(json.dumps(gathered))
        dist.barrier()  # both ranks done before either tears gloo down (a rank leaving first aborted the other)
    finally:
        dist.destroy_process_group()


def test_ddp_ranks_compute_identical_priors_and_only_rank_0_records_them(datasets, tmp_path):
    from ultralytics.models.yolo.detect import DetectionTrainer

    from ultralytics_weighted.host.priors import TrainedPriors

    data, out, world_size = str(datasets("detect")), tmp_path / "ranks.json", 2
    script = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from test_priors import _ddp_worker; "
        f"_ddp_worker({data!r}, {str(tmp_path / 'runs')!r}, {str(tmp_path / 'store')!r}, {str(out)!r})"
    )
    env = {**os.environ, "WORLD_SIZE": str(world_size), "OMP_NUM_THREADS": "1"}
    ranks = [
        subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, env={**env, "RANK": str(rank)})
        for rank in range(world_size)
    ]
    assert [rank.wait(timeout=300) for rank in ranks] == [0] * world_size
    gathered = json.loads(out.read_text())  # [rank] -> report

    overrides = dict(model="yolo11n.yaml", data=data, **RAMP, imgsz=64, device="cpu", project=str(tmp_path / "single"))
    trainer = DetectionTrainer(overrides=overrides)
    trainer.setup_model()
    dataset = trainer.build_dataset(trainer.data["train"], mode="train", batch=4)  # one process, no DDP
    single = TrainedPriors(dataset.balance_schedule)
    reference = [single.share_trained(epoch + 1).tolist() for epoch in range(RAMP["epochs"])]
    assert reference[0] != reference[1] != reference[2]  # the ramp moves the priors every epoch
    assert gathered[0]["shares"] == gathered[1]["shares"] == reference  # bit for bit: floats survive JSON exactly
    assert all(a != b for a, b in zip(gathered[0]["slices"], gathered[1]["slices"]))  # each rank draws its own slice
    assert [p["share_trained"] for p in gathered[0]["written"]] == reference  # from the whole schedule, not a slice
    assert [p["epochs"] for p in gathered[0]["written"]] == [1, 2, 3]
    assert gathered[1]["written"] == [None] * RAMP["epochs"]  # only rank 0, which saves the checkpoints, records


def test_distillation_keeps_the_priors_on_the_student_that_balance_tau_corrects(datasets, tmp_path):
    from ultralytics import YOLO as Model
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.patches import torch_load

    teacher = tmp_path / "teacher.pt"
    Model("yolo11n.yaml").save(teacher)  # untrained: the teacher's quality does not matter to what is recorded
    train = dict(epochs=1, imgsz=64, batch=8, device="cpu", plots=False, workers=0, project=str(tmp_path), name="run")
    student = Model("yolo11n.yaml")
    student.train(data=str(datasets("detect")), distill_model=str(teacher), class_balance=True, balance_tau=1, **train)
    weights = tmp_path / "run" / "weights"
    for name in ("last.pt", "best.pt"):  # stripped to the student at the end of training
        assert priors(weights / name)["epochs"] == 1 and priors(weights / name)["tau"] == 0.0
    assert priors(weights / "best-tau1.pt")["tau"] == 1.0  # balance_tau found the priors and corrected the student
    assert type(torch_load(weights / "best-tau1.pt", map_location="cpu")["model"]) is DetectionModel


def test_offsets_at_tau_0_are_zero_without_a_sign():
    from ultralytics_weighted.host.priors import prior_offsets

    offsets = prior_offsets([0.8, 0.15, 0.05], [0.3, 0.3, 0.4], tau=0.0)
    assert [f"{x:+.3f}" for x in offsets] == ["+0.000"] * 3  # `adjust tau=0` printed -0.000 for the rarer classes
