# Ultralytics 🚀 AGPL-3.0 License - https://ultralytics.com/license
"""Class-balanced training: the balanced train dataset, the sampler of its loader and the check of that loader.

Trainers end `build_dataset()` with `balance_train_dataset`, give their train loader `train_sampler(dataset, rank)`
(the trainer sets its epoch like any sampler's), and `check_balanced_loader` refuses the others; with `class_balance`
off each one changes nothing.
"""

from __future__ import annotations

import numpy as np

from ultralytics.utils import LOGGER, RANK, colorstr

from .balance import flatten_labels, image_probabilities
from .sampler import BalancedSampler

PREFIX = colorstr("balance: ")


def check_balanced_loader(trainer) -> None:
    """Refuse to train with `class_balance` when the train loader does not draw balanced (e.g. rect, YOLO-World)."""
    if trainer.args.class_balance and not isinstance(getattr(trainer.train_loader, "sampler", None), BalancedSampler):
        why = "'rect=True' orders images by aspect ratio" if trainer.args.rect else "its datasets are not balanced yet"
        name = f"{type(trainer).__name__} (task={trainer.args.task})"
        raise NotImplementedError(f"class_balance cannot be used with {name}: {why}. Set class_balance=False.")


def dataset_label_classes(dataset) -> list[np.ndarray]:
    """Return the class ids of each image's objects, as the dataset uses them (after `classes=` and `fraction`)."""
    if hasattr(dataset, "labels"):  # YOLODataset, RTDETRDataset
        return [label["cls"].reshape(-1) for label in dataset.labels]
    return [np.array([sample[1]]) for sample in dataset.samples]  # ClassificationDataset: (file, class index, ...)


def balance_train_dataset(trainer, dataset, mode: str = "train"):
    """Return a freshly built dataset, drawn by class-balanced probabilities in train mode with `class_balance` on.

    Args:
        trainer (BaseTrainer): The trainer building the dataset (its `args`, `data['names']` and callbacks).
        dataset (YOLODataset | ClassificationDataset): The dataset `build_dataset()` built.
        mode (str): 'train' or 'val'; validation datasets are never balanced.

    Returns:
        (Dataset): The same dataset object.
    """
    args = trainer.args
    if mode != "train" or not args.class_balance:
        return dataset
    classes, nc = dataset_label_classes(dataset), len(trainer.data["names"])
    p = image_probabilities(classes, nc, args.balance_agg, float(args.class_balance))
    set_train_sampling(trainer, dataset, p)
    if RANK in {-1, 0}:  # max/min share of instances over the classes present, in the data and per epoch
        cls, lengths = flatten_labels(classes)
        shares = [np.bincount(cls, weights=w, minlength=nc) for w in (None, np.repeat(p, lengths))]
        ratio = [s[shares[0] > 0].max() / s[shares[0] > 0].min() if cls.size else 1.0 for s in shares]
        LOGGER.info(
            f"{PREFIX}class_balance={float(args.class_balance):g} balance_agg={args.balance_agg}: {len(classes)} "
            f"train images, max/min class share {ratio[0]:.2f} -> {ratio[1]:.2f}"
        )
        if getattr(args, "cls_pw", 0.0):  # loss class weighting (a train key since 8.4.37)
            LOGGER.warning(
                f"{PREFIX}class_balance and cls_pw={args.cls_pw} both favour rare classes; consider cls_pw=0"
            )
    return dataset


def set_train_sampling(trainer, dataset, probabilities, epoch_size: int | None = None) -> None:
    """Have the train loader of `dataset` draw by `probabilities` (an array, or a function of the epoch)."""
    dataset.balanced_sampling = {"probabilities": probabilities, "seed": trainer.args.seed, "epoch_size": epoch_size}


def train_sampler(dataset, rank: int = -1) -> BalancedSampler | None:
    """Return the `BalancedSampler` of a balanced train dataset, None to shuffle as stock (DDP layout if rank >= 0)."""
    sampling, layout = getattr(dataset, "balanced_sampling", None), {"num_replicas": 1, "rank": 0} if rank == -1 else {}
    return None if sampling is None else BalancedSampler(**sampling, **layout)
