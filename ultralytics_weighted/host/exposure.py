# ultralytics-weighted, AGPL-3.0 license
"""Realized exposure: the instances of each class in the batches a training fed its model, per epoch.

The class priors (`priors.py`) give each epoch's expected class share under the sampler's probabilities: the nominal
share. What the model sees differs: Mosaic puts three partner images (and crops) into every sample, MixUp, CutMix and
CopyPaste add more, random perspective drops boxes that leave the image. So the plugin also counts the labels of every
collated train batch, exactly as the trainer hands it to `preprocess_batch` and then the model (`batch["cls"]`: one id
per box for detect/segment/pose/obb/RT-DETR, one per image for classification).

Every training the plugin sees counts, balanced or stock (a stock run's realized shares are the comparison a balanced
run's need), and writes `exposure.csv` in its run folder after every epoch; a balanced run also stores the counts in its
checkpoint's priors and shows nominal against realized shares when it ends. Counting only reads the batch: it draws no
random numbers and changes no batch. Under DDP every rank counts its own batches and the ranks' counts are summed at
each epoch's end, so the file and the priors hold the whole training's counts.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ultralytics.utils import LOGGER, RANK, colorstr

EXPOSURE_FILE = "exposure.csv"  # in the run folder: epoch (1-based, as results.csv), then one column per class name
EXPOSURE_ATTRIBUTE = "balance_exposure"  # the trainer's `RealizedExposure`
PREFIX = colorstr("exposure: ")  # its own prefix: the train-start "balance: " table stays one block


class RealizedExposure:
    """The instances of each class a training fed its model, per epoch (all ranks' batches summed under DDP).

    Attributes:
        names (list[str]): Class names by class id.
        epochs (list[np.ndarray | None]): int64 counts per class of each finished epoch, by epoch (None: an epoch
            trained before a resume whose run folder held no counts for it).
        current (np.ndarray): int64 counts per class of the epoch in progress.

    Examples:
        >>> import torch
        >>> exposure = RealizedExposure(["car", "bus", "bike"])
        >>> exposure.start_epoch(0)
        >>> exposure.count(torch.tensor([[0.0], [0.0], [2.0]]))  # a detection batch: one row per box
        >>> exposure.close_epoch(0)
        >>> exposure.epochs[0].tolist(), exposure.share(1).round(3).tolist()
        ([2, 0, 1], [0.667, 0.0, 0.333])
    """

    def __init__(self, names: list[str]):
        """Start with no epoch counted."""
        self.names = [str(name) for name in names]
        self.epochs: list[np.ndarray | None] = []
        self.current = np.zeros(len(self.names), dtype=np.int64)

    def count(self, cls) -> None:
        """Add a collated batch's class ids (a tensor of any shape: (n, 1) boxes, (n,) images) to the current epoch."""
        import torch

        ids = cls.detach().reshape(-1).long().cpu()
        self.current += torch.bincount(ids, minlength=len(self.names)).numpy()[: len(self.names)]

    def start_epoch(self, epoch: int) -> None:
        """Start counting epoch `epoch` (0-based) from zero: also when an epoch restarts (Ultralytics' OOM retry)."""
        del self.epochs[epoch:]
        self.epochs.extend([None] * (epoch - len(self.epochs)))  # epochs before a resume without counts: unknown
        self.current = np.zeros(len(self.names), dtype=np.int64)

    def close_epoch(self, epoch: int) -> None:
        """Finish epoch `epoch` (0-based): sum the ranks' counts under DDP (a collective: every rank calls it) once."""
        if len(self.epochs) > epoch:
            return
        counts = self.current.copy()
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            import torch

            backend = dist.get_backend()
            device = f"cuda:{torch.cuda.current_device()}" if backend == "nccl" else "cpu"
            total = torch.as_tensor(counts, device=device)
            dist.all_reduce(total)
            counts = total.cpu().numpy().astype(np.int64)
        self.start_epoch(epoch)
        self.epochs.append(counts)

    def complete(self, epochs: int) -> bool:
        """Return whether all of epochs 0 .. epochs - 1 were counted."""
        return epochs > 0 and len(self.epochs) >= epochs and all(c is not None for c in self.epochs[:epochs])

    def totals(self, epochs: int) -> np.ndarray | None:
        """Return the instances of each class over epochs 0 .. epochs - 1, or None unless all were counted."""
        return np.sum(self.epochs[:epochs], axis=0).astype(np.int64) if self.complete(epochs) else None

    def share(self, epochs: int) -> np.ndarray | None:
        """Return each class's share of the instances over epochs 0 .. epochs - 1 (pooled), or None (`totals`)."""
        totals = self.totals(epochs)
        return None if totals is None or totals.sum() == 0 else totals / totals.sum()

    def write(self, path: Path) -> None:
        """Write the finished epochs as CSV: epoch (1-based), then one column per class name (empty: not counted)."""
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch", *self.names])
            for epoch, counts in enumerate(self.epochs):
                writer.writerow([epoch + 1, *([""] * len(self.names) if counts is None else counts.tolist())])

    def read(self, path: Path, epochs: int) -> bool:
        """Take epochs 0 .. epochs - 1 from a run folder's CSV (a resumed training); return whether all were there."""
        rows = {}
        if Path(path).exists():
            with open(path, newline="") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                if header == ["epoch", *self.names]:
                    for row in reader:
                        if row and all(row[1:]) and 1 <= int(row[0]) <= epochs:
                            rows[int(row[0]) - 1] = np.array([int(x) for x in row[1:]], dtype=np.int64)
        self.epochs = [rows.get(epoch) for epoch in range(epochs)]
        return self.complete(epochs) or epochs == 0


def exposure_of(trainer) -> RealizedExposure | None:
    """Return the trainer's realized exposure, or None if it counts none (built before the train pipeline)."""
    return getattr(trainer, EXPOSURE_ATTRIBUTE, None)


def start_counting(trainer) -> None:
    """Count the class ids of every batch `trainer` trains on, from now on; called as its train pipeline is built.

    The trainer instance's `preprocess_batch` (the trainer's class keeps its own) is wrapped to count `batch["cls"]`
    before the stock preprocessing runs, and callbacks start, close and write each epoch. Idempotent: Ultralytics
    rebuilds the pipeline after an out-of-memory retry.
    """
    if exposure_of(trainer) is not None:
        return
    names = trainer.data["names"]
    names = names if isinstance(names, dict) else dict(enumerate(names))
    exposure = RealizedExposure([names[c] for c in range(len(names))])
    setattr(trainer, EXPOSURE_ATTRIBUTE, exposure)
    preprocess = trainer.preprocess_batch

    def count_and_preprocess_batch(batch):
        if isinstance(batch, dict) and batch.get("cls") is not None:
            exposure.count(batch["cls"])
        return preprocess(batch)

    count_and_preprocess_batch.__doc__ = preprocess.__doc__
    trainer.preprocess_batch = count_and_preprocess_batch
    for event, callback in (
        ("on_train_start", resume_counts),
        ("on_train_epoch_start", start_epoch_count),
        ("on_train_epoch_end", close_epoch_count),  # before the priors are recorded (added later, with the dataset)
        ("on_train_end", log_exposure),
    ):
        trainer.add_callback(event, callback)


def resume_counts(trainer) -> None:
    """Take the counts of the epochs before a resume from the run folder's CSV; warn if it lacks some."""
    exposure, start = exposure_of(trainer), getattr(trainer, "start_epoch", 0)
    if start and not exposure.read(Path(trainer.save_dir) / EXPOSURE_FILE, start) and RANK in {-1, 0}:
        LOGGER.warning(
            f"{PREFIX}{trainer.save_dir / EXPOSURE_FILE} lacks the counts of epochs before {start + 1} (a run from "
            "an older plugin): this training's realized exposure is incomplete, and balance_tau/adjust use the "
            "nominal share."
        )


def start_epoch_count(trainer) -> None:
    """Count the epoch that starts from zero."""
    exposure_of(trainer).start_epoch(trainer.epoch)


def close_epoch_count(trainer) -> None:
    """Sum the epoch's counts over the ranks and write the run folder's CSV (rank 0)."""
    exposure = exposure_of(trainer)
    exposure.close_epoch(trainer.epoch)
    if RANK in {-1, 0}:
        exposure.write(Path(trainer.save_dir) / EXPOSURE_FILE)


def exposure_table(names, before, nominal, realized) -> list[str]:
    """Return the lines of the table of class shares: in the data, nominal, realized, and their difference.

    The difference is realized minus nominal, in percentage points.

    Examples:
        >>> for line in exposure_table(["car", "bus"], [0.8, 0.2], [0.5, 0.5], [0.6, 0.4]):
        ...     print(line)
        class  share before  nominal  realized  difference
          car         80.0%    50.0%     60.0%    +10.0 pp
          bus         20.0%    50.0%     40.0%    -10.0 pp
    """
    width = max(len("class"), *(len(str(name)) for name in names))
    lines = [f"{'class':>{width}} {'share before':>13} {'nominal':>8} {'realized':>9} {'difference':>11}"]
    for name, b, n, r in zip(names, before, nominal, realized):
        lines.append(f"{name!s:>{width}} {b:>13.1%} {n:>8.1%} {r:>9.1%} {100 * (r - n):>+8.1f} pp")
    return lines


def log_exposure(trainer) -> None:
    """At the end of training, show a balanced run's nominal and realized class shares, or where a stock run's are."""
    exposure, epochs = exposure_of(trainer), getattr(trainer, "epoch", -1) + 1
    if RANK not in {-1, 0} or exposure is None or not exposure.epochs:
        return
    epochs = min(epochs, len(exposure.epochs))
    path = Path(trainer.save_dir) / EXPOSURE_FILE
    priors = getattr(getattr(trainer.train_loader, "dataset", None), "trained_priors", None)
    realized = exposure.share(epochs)
    if priors is None or realized is None:
        LOGGER.info(f"{PREFIX}realized exposure (instances per class in the batches trained, per epoch): {path}")
        return
    lines = exposure_table(exposure.names, priors.share_before, priors.share_trained(epochs), realized)
    LOGGER.info(
        f"{PREFIX}class shares over the {epochs} epoch{'s' * (epochs != 1)} trained: nominal (the sampler's expected "
        f"share) and realized (the instances in the batches trained, {path}):\n"
        + "\n".join(PREFIX + line for line in lines)
    )
