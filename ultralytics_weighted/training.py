# Ultralytics 🚀 AGPL-3.0 License - https://ultralytics.com/license
"""Class-balanced training: which trainers balance, the checks before training, the balanced train dataset, the log.

The decisions shared by every way of adding class balancing to Ultralytics: the `ultralytics-weighted` plugin calls
these functions from its wrappers, the upstream patch series from the trainers themselves (this file goes upstream
byte for byte as `ultralytics/data/balanced_training.py`, next to `balance.py` (the weights), `sampler.py` and
`config.py` (the keys), which it imports relatively.

- `check_class_balance(args, trainer, supported)`: refuse or warn about settings balancing cannot honour, before the
  trainer makes its run folder.
- `balance_train_dataset(trainer, dataset, mode)`: the last step of a trainer's `build_dataset()`; in train mode with
  `class_balance` on, the built stock dataset becomes its balanced subclass (`make_balanced`) and the table is logged.
- `train_sampler(dataset, rank)`: the `BalancedSampler` a train loader of that dataset draws with, or None.
- `start_train_pipeline(trainer)`: called when the trainer builds its train loader; train-mode datasets built before
  that (the QAT calibration loader, `quantize=8`) stay stock.
"""

from __future__ import annotations

import numpy as np

from ultralytics.utils import LOGGER, RANK, colorstr

from .balance import BalanceSchedule, balance_report, balance_settings, balance_stats, nothing_to_balance
from .config import DEFAULTS, balance_strength, unused_balance_keys
from .sampler import BalancedSampler

BALANCED_TASKS = frozenset({"detect", "segment", "pose", "obb", "classify"})


def check_class_balance(args, trainer: str, supported: bool) -> None:
    """Refuse or warn about settings that class-balanced sampling cannot honour, before any training starts.

    Args:
        args (IterableSimpleNamespace): Checked train arguments (after `check_resume`: the resumed run's arguments).
        trainer (str): Name of the trainer class, for the message.
        supported (bool): Whether this trainer's `build_dataset()` balances train datasets.

    Raises:
        NotImplementedError: If the task or the trainer's datasets cannot be balanced yet.
        ValueError: If `rect=True` is combined with balancing.

    Examples:
        >>> from types import SimpleNamespace
        >>> check_class_balance(SimpleNamespace(class_balance=False), "DetectionTrainer", True)  # off: nothing to do
        >>> args = SimpleNamespace(class_balance=True, task="detect", rect=True, single_cls=False)
        >>> check_class_balance(args, "DetectionTrainer", True)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: 'rect=True' cannot be combined with class_balance: ...
        >>> check_class_balance(args, "WorldTrainer", False)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        NotImplementedError: class_balance is not supported for task=detect with WorldTrainer yet. ...
    """
    if not balance_strength(args.class_balance):
        if RANK in {-1, 0} and (unused := unused_balance_keys(vars(args))):
            LOGGER.warning(
                f"{colorstr('balance: ')}{', '.join(unused)} {'has' if len(unused) == 1 else 'have'} no effect "
                f"without class_balance (class_balance={args.class_balance}): training samples as stock. Add "
                "class_balance=True to balance."
            )
        return
    if args.task not in BALANCED_TASKS or not supported:
        raise NotImplementedError(
            f"class_balance is not supported for task={args.task} with {trainer} yet. "
            f"Balanced training works for {', '.join(sorted(BALANCED_TASKS))} (YOLO and RT-DETR models); "
            "set class_balance=False to train this model."
        )
    if args.rect:
        raise ValueError(
            "'rect=True' cannot be combined with class_balance: rectangular training fixes each image's batch (and "
            "shape) by aspect ratio, while balanced sampling draws images in a new order every epoch. "
            "Use rect=False to balance, or class_balance=False to keep rectangular batches."
        )
    if RANK in {-1, 0}:
        prefix = colorstr("balance: ")
        if args.single_cls:
            LOGGER.warning(f"{prefix}'single_cls=True' merges all classes into one, so class_balance has no effect.")
        cls_pw = getattr(args, "cls_pw", 0.0)  # loss class weighting (a train key since Ultralytics 8.4.37)
        if cls_pw:
            LOGGER.warning(
                f"{prefix}class_balance (sampling) and cls_pw={cls_pw} (loss weighting) both favour rare "
                "classes; together they compensate twice. Consider cls_pw=0.0."
            )


def start_train_pipeline(trainer) -> None:
    """Record that `trainer` builds its train loader now; train-mode datasets built before it stay stock (QAT)."""
    trainer.balance_train_pipeline = True


def is_qat_calibration(trainer) -> bool:
    """Return whether a train-mode dataset is built for QAT calibration (`quantize=8`), which samples like stock."""
    return getattr(trainer.args, "quantize", None) == 8 and not getattr(trainer, "balance_train_pipeline", False)


def balance_train_dataset(trainer, dataset, mode: str = "train"):
    """Return a trainer's freshly built dataset, turned into its balanced subclass in train mode with balancing on.

    Validation datasets, `class_balance=False`, `single_cls=True`, the QAT calibration dataset and labels with fewer
    than two classes (nothing to balance, said in the log) stay exactly the stock dataset. A balanced dataset logs its
    table, and the trainer tells its sampler every epoch.

    Args:
        trainer (BaseTrainer): The trainer building the dataset (its `args`, `data['names']` and callbacks).
        dataset (Dataset): The stock dataset `build_dataset()` built.
        mode (str): 'train' or 'val'.

    Returns:
        (Dataset): The same dataset object, balanced or not.

    Raises:
        NotImplementedError: If the dataset type cannot be balanced yet.
    """
    args = trainer.args
    if mode != "train" or not balance_strength(args.class_balance) or args.single_cls or is_qat_calibration(trainer):
        return dataset
    from ultralytics.data.dataset import ClassificationDataset, YOLODataset
    from ultralytics.models.rtdetr.val import RTDETRDataset

    if type(dataset) not in {YOLODataset, RTDETRDataset, ClassificationDataset}:
        raise NotImplementedError(f"class_balance is not supported for {type(dataset).__name__} datasets yet.")
    strength, classes, names = (
        balance_strength(args.class_balance),
        dataset_label_classes(dataset),
        trainer.data["names"],
    )
    if reason := nothing_to_balance(classes, names):
        if RANK in {-1, 0}:
            LOGGER.info(f"{colorstr('balance: ')}{balance_settings(strength, args.balance_agg)}: {reason}")
        return dataset  # the stock dataset: trains exactly as without class_balance
    keys = (args.balance_agg, args.balance_floor, args.balance_ramp, args.epochs)
    make_balanced(dataset, BalanceSchedule(classes, len(names), strength, *keys), names, args.seed)
    if sync_sampler_epoch not in trainer.callbacks["on_train_epoch_start"]:
        trainer.add_callback("on_train_epoch_start", sync_sampler_epoch)
    if RANK in {-1, 0}:
        log_balance(dataset, args.task)
    return dataset


def train_sampler(dataset, rank: int = -1) -> BalancedSampler | None:
    """Return the sampler a train loader of `dataset` draws with: its `BalancedSampler` if balanced, else None (stock).

    Args:
        dataset (Dataset): A train dataset.
        rank (int): Process rank, -1 without DDP; under DDP the sampler takes the world size and global rank from
            torch.distributed, so that every rank draws the same sequence and keeps its own share.

    Returns:
        (BalancedSampler | None): The balanced sampler, or None to let the loader shuffle as stock.

    Examples:
        >>> train_sampler([0, 1, 2]) is None  # a dataset that is not balanced keeps the stock shuffling
        True
    """
    if not isinstance(dataset, BalancedDatasetMixin):
        return None
    return dataset.sampler(*((1, 0) if rank == -1 else (None, None)))


def sync_sampler_epoch(trainer) -> None:
    """Tell the balanced sampler the trainer's epoch (stock calls set_epoch only under DDP; resume starts mid-way)."""
    sampler = getattr(getattr(trainer, "train_loader", None), "sampler", None)
    if isinstance(sampler, BalancedSampler):
        sampler.set_epoch(trainer.epoch)


def dataset_label_classes(dataset) -> list[np.ndarray]:
    """Return the class ids of each image's objects in dataset order, from the labels the dataset really uses.

    Args:
        dataset (YOLODataset | ClassificationDataset): A built Ultralytics dataset (after `classes=`, `fraction`, ...).

    Returns:
        (list[np.ndarray]): One 1-D array of class ids per image (one id per image for classification).
    """
    if hasattr(dataset, "labels"):  # YOLODataset and subclasses: one (n, 1) 'cls' array per image
        return [label["cls"].reshape(-1) for label in dataset.labels]
    return [np.array([sample[1]]) for sample in dataset.samples]  # ClassificationDataset: (file, class index, ...)


class BalancedDatasetMixin:
    """Mixin for a dataset class whose train images are drawn by class-balanced probabilities.

    The dataset holds `image_probabilities` (one per image, computed from the labels in use: after `classes=`
    filtering, `fraction` and any re-sorting) and hands the train loader a `BalancedSampler` over them. For YOLO
    datasets, Mosaic, MixUp, CutMix and CopyPaste partners are drawn from the same probabilities wherever stock
    Ultralytics picks them uniformly from the whole dataset (MixUp, CutMix, CopyPaste; Mosaic with `cache=ram`).
    Mosaic's default buffer of recently loaded images already consists of balanced draws and is kept as it is.
    """

    __slots__ = ()  # no layout of its own, so that a built stock dataset can switch to the balanced subclass
    stock_class: type  # the stock dataset class this balanced class extends (set by `balanced_class`)

    def set_balance(self, schedule: BalanceSchedule, names: dict, seed: int = 0) -> None:
        """Take the epoch schedule and its per-image probabilities, and re-point the augmentation partners at them.

        Args:
            schedule (BalanceSchedule): The schedule of this dataset's labels (`dataset_label_classes`), built from
                the train arguments `class_balance`, `balance_agg`, `balance_floor`, `balance_ramp` and `epochs`.
            names (dict): Class names by class id (the trainer's `data["names"]`).
            seed (int): Seed of the per-epoch draws.
        """
        self.balance_schedule, self.balance_names, self.balance_seed = schedule, names, seed
        # the balanced epochs' probabilities: the table, the plot and the mix partners (worker processes keep their
        # copy of the dataset, so partners cannot follow a ramp; they use the full strength throughout)
        self.image_probabilities = schedule.probabilities(schedule.full_strength_epoch)
        self._cumulative_probabilities = np.cumsum(self.image_probabilities)
        if hasattr(self, "transforms"):
            _weight_mix_partners(self, self.transforms)

    def balance_stats(self) -> dict:
        """Return `balance_stats` (shares before/after, imbalance, ESS, coverage) for this dataset's probabilities."""
        schedule = self.balance_schedule
        return balance_stats(schedule.classes, len(self.balance_names), self.image_probabilities, schedule.epoch_size)

    def sampler(self, num_replicas: int | None = None, rank: int | None = None) -> BalancedSampler:
        """Return the train sampler of this dataset's schedule (DDP layout from torch.distributed if None)."""
        schedule = self.balance_schedule
        return BalancedSampler(schedule.probabilities, self.balance_seed, num_replicas, rank, schedule.epoch_size)

    def partner_indexes(self, k: int) -> np.ndarray:
        """Draw `k` augmentation partner indexes from the image probabilities (O(k log N), per-worker numpy RNG)."""
        u = np.random.random(k) * self._cumulative_probabilities[-1]
        return np.searchsorted(self._cumulative_probabilities, u, side="right").clip(
            max=len(self._cumulative_probabilities) - 1
        )

    def build_transforms(self, hyp=None):
        """Build the stock transforms, with partners drawn by the image probabilities (also after close_mosaic)."""
        transforms = self.stock_class.build_transforms(self, hyp)
        if hasattr(self, "image_probabilities"):
            _weight_mix_partners(self, transforms)
        return transforms


class _WeightedPartners:
    """Picklable replacement for a mix transform's `get_indexes` (workers may pickle the dataset)."""

    def __init__(self, dataset: BalancedDatasetMixin, count: int | None):
        self.dataset, self.count = dataset, count

    def __call__(self):
        indexes = self.dataset.partner_indexes(self.count or 1)
        return indexes.tolist() if self.count else int(indexes[0])


def _weight_mix_partners(dataset, transforms) -> None:
    """Point every mix transform in a (nested) Compose that picks partners uniformly at the dataset's weights."""
    from ultralytics.data.augment import BaseMixTransform, Compose, Mosaic

    stack = [transforms]
    while stack:
        t = stack.pop()
        if isinstance(t, Compose):
            stack.extend(t.transforms)
        elif isinstance(t, BaseMixTransform):
            stack.append(t.pre_transform)
            if isinstance(t, Mosaic):
                if not t.buffer_enabled:  # cache=ram: stock picks uniformly from the whole dataset
                    t.get_indexes = _WeightedPartners(dataset, t.n - 1)
            else:
                t.get_indexes = _WeightedPartners(dataset, None)


_BALANCED_CLASSES: dict[type, type] = {}


def balanced_class(dataset_class: type) -> type:
    """Return the balanced subclass of a dataset class, registered in this module so that it pickles by name."""
    if dataset_class not in _BALANCED_CLASSES:
        name = f"Balanced{dataset_class.__name__}"
        # The mixin goes last so that the instance layout stays the stock one (required to switch `__class__`); the
        # method it overrides is put on the class itself.
        namespace = {"__module__": __name__, "__qualname__": name, "__slots__": (), "stock_class": dataset_class}
        if hasattr(dataset_class, "build_transforms"):
            namespace["build_transforms"] = BalancedDatasetMixin.build_transforms
        cls = type(name, (dataset_class, BalancedDatasetMixin), namespace)
        cls.__doc__ = f"{dataset_class.__name__} whose train images are drawn by class-balanced probabilities."
        globals()[name] = _BALANCED_CLASSES[dataset_class] = cls
    return _BALANCED_CLASSES[dataset_class]


def make_balanced(dataset, schedule: BalanceSchedule, names: dict, seed: int = 0):
    """Turn a built stock train dataset into its balanced subclass, in place, and return it.

    The stock constructor has already loaded, filtered and ordered the labels exactly as training uses them, so the
    schedule is computed from those (`dataset_label_classes`); switching the instance's class keeps everything else the
    stock dataset did.

    Args:
        dataset (YOLODataset | ClassificationDataset): A stock train dataset.
        schedule (BalanceSchedule): The epoch schedule of the dataset's labels.
        names (dict): Class names by class id.
        seed (int): Seed of the per-epoch draws.

    Returns:
        (BalancedDatasetMixin): The same object, now of the balanced subclass.
    """
    dataset.__class__ = balanced_class(type(dataset))
    dataset.set_balance(schedule, names, seed)
    return dataset


def log_balance(dataset: BalancedDatasetMixin, task: str) -> None:
    """Log a balanced dataset's table, what does not apply or is never drawn, and if the floor undoes the balance."""
    schedule = dataset.balance_schedule
    lines = balance_report(
        schedule.classes,
        dataset.balance_names,
        dataset.image_probabilities,
        schedule.strength,
        schedule.agg,
        # balance_agg has no meaning for classification: say so only to a user who set it
        task if schedule.agg != DEFAULTS["balance_agg"] else None,
        schedule,
    )
    prefix = colorstr("balance: ")
    LOGGER.info("\n".join(prefix + line for line in lines))
    if warning := schedule.floor_warning():
        LOGGER.warning(prefix + warning)
