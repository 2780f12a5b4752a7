# Ultralytics 🚀 AGPL-3.0 License - https://ultralytics.com/license

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from torch.utils.data import RandomSampler, Sampler

from tests import CFG
from ultralytics.data.build import build_dataloader
from ultralytics.data.dataset import YOLODataset
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import YAML

NAMES = {0: "square", 1: "other"}


class EpochSampler(Sampler[int]):
    """Yield some dataset indices in reverse order, shifted by the epoch, and record every `set_epoch` call."""

    def __init__(self, indices: list[int]):
        """Initialize with the indices to yield at epoch 0."""
        self.indices, self.epoch, self.calls = indices, 0, []

    def __iter__(self):
        """Yield this epoch's indices."""
        shift = self.epoch % len(self.indices)
        return iter(self.indices[::-1][shift:] + self.indices[::-1][:shift])

    def __len__(self) -> int:
        """Return the number of indices per epoch."""
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the next iteration."""
        self.epoch = epoch
        self.calls.append(epoch)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Write a tiny detection dataset (8 train and 8 val images of 32 px, one box each) and return its data.yaml."""
    root = tmp_path_factory.mktemp("sampler_data")
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(8):
            img = np.full((32, 32, 3), 114, dtype=np.uint8)
            cv2.rectangle(img, (8, 8), (24, 24), (30 * i, 200, 60), -1)
            cv2.imwrite(str(root / "images" / split / f"{i}.jpg"), img)
            (root / "labels" / split / f"{i}.txt").write_text(f"{i % 2} 0.5 0.5 0.5 0.5\n")
    YAML.save(root / "data.yaml", {"path": str(root), "train": "images/train", "val": "images/val", "names": NAMES})
    return root / "data.yaml"


def test_build_dataloader_sampler(data):
    """Test that build_dataloader draws with a given sampler, also for a DDP rank, and shuffles without one."""
    images = str(data.parent / "images" / "train")
    dataset = YOLODataset(img_path=images, data={"names": NAMES}, imgsz=32, augment=False)
    sampler = EpochSampler([1, 2, 4, 6, 7])  # e.g. this rank's share
    for rank in (-1, 1):  # rank 1 would otherwise get a DistributedSampler (and need a process group)
        loader = build_dataloader(dataset, batch=2, workers=0, shuffle=True, rank=rank, sampler=sampler)
        assert loader.sampler is sampler and len(loader) == math.ceil(len(sampler) / 2)
        files = [Path(f).stem for batch in loader for f in batch["im_file"]]
        assert files == ["7", "6", "4", "2", "1"]  # the sampler's order
    assert isinstance(build_dataloader(dataset, batch=2, workers=0, shuffle=True).sampler, RandomSampler)


def test_trainer_sets_the_epoch_of_any_train_sampler(data, tmp_path):
    """Test that the trainer calls `set_epoch` of a train sampler that has one every epoch, also without DDP."""
    samplers = []

    class SamplerTrainer(DetectionTrainer):
        """Detection trainer whose train loader draws with an `EpochSampler`."""

        def get_dataloader(self, dataset_path: str, batch_size: int = 16, rank: int = 0, mode: str = "train"):
            """Return the stock loader, with an `EpochSampler` over all images for training."""
            if mode != "train":
                return super().get_dataloader(dataset_path, batch_size, rank, mode)
            dataset = self.build_dataset(dataset_path, mode, batch_size)
            samplers.append(EpochSampler(list(range(len(dataset)))))
            return build_dataloader(dataset, batch_size, 0, shuffle=True, rank=rank, sampler=samplers[-1])

    args = {"model": CFG, "data": str(data), "epochs": 3, "imgsz": 32, "batch": 4, "workers": 0, "device": "cpu"}
    SamplerTrainer(overrides={**args, "plots": False, "val": False, "project": str(tmp_path)}).train()
    assert samplers and samplers[-1].calls == [0, 1, 2]
