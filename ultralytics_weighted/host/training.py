# ultralytics-weighted, AGPL-3.0 license
"""The plugin's training: the core's wiring (`training.py`) with the extensions on top.

What the plugin adds to the core's balanced train dataset: the epoch schedule (`balance_agg=auto`, `balance_floor`,
`balance_ramp`, `balance_start`) and the data YAML's weights (`schedule.py`), the class priors and `balance_tau`
(`priors.py`), mix partners drawn by the same probabilities (`BalancedDatasetMixin`), the QAT calibration dataset left
stock, and the train-start table (`report.py`). `surface.py` calls these functions from its wrappers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ultralytics.utils import LOGGER, RANK

from ultralytics_weighted.extensions.config import balance_strength, balancing_on, unused_balance_keys
from ultralytics_weighted.extensions.keys import DEFAULTS
from ultralytics_weighted.extensions.report import (
    balance_report,
    balance_settings,
    floor_warning,
    nothing_to_balance,
    rfs_warning,
)
from ultralytics_weighted.extensions.schedule import BalanceSchedule, schedule_from_args
from ultralytics_weighted.host.exposure import start_counting
from ultralytics_weighted.host.native import core_module
from ultralytics_weighted.host.priors import record_class_priors, save_corrected_best

# Ultralytics' own core modules where it has them (a patched tree: one BalancedSampler class), else the plugin's copies
core = core_module("balanced_training")
PREFIX, dataset_label_classes, BalancedSampler = core.PREFIX, core.dataset_label_classes, core.BalancedSampler

BALANCED_TASKS = frozenset({"detect", "segment", "pose", "obb", "classify"})
MEMO_FOLDER = "balance-memo"  # in the run folder, under DDP only: each strength's probabilities, computed by one rank


def check_class_balance(args, trainer: str, supported: bool) -> None:
    """Refuse or warn about settings that class-balanced sampling cannot honour, before the run folder is made.

    The core refuses the same settings later, once the train loader is built (`training.check_balanced_loader`); the
    plugin checks the arguments before Ultralytics makes the run folder, and also warns about unused keys.

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
    if not balancing_on(args):
        if RANK in {-1, 0} and (unused := unused_balance_keys(vars(args))):
            LOGGER.warning(
                f"{PREFIX}{', '.join(unused)} {'has' if len(unused) == 1 else 'have'} no effect "
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
        if args.single_cls:
            LOGGER.warning(f"{PREFIX}'single_cls=True' merges all classes into one, so class_balance has no effect.")
        cls_pw = getattr(args, "cls_pw", 0.0)  # loss class weighting (a train key since Ultralytics 8.4.37)
        if cls_pw:
            LOGGER.warning(
                f"{PREFIX}class_balance (sampling) and cls_pw={cls_pw} (loss weighting) both favour rare "
                "classes; together they compensate twice. Consider cls_pw=0.0."
            )


def start_train_pipeline(trainer) -> None:
    """Record that `trainer` builds its train loader now, and count the classes of the batches it trains on.

    Train-mode datasets built before it stay stock (QAT calibration); counting (`exposure.start_counting`) covers every
    training, balanced or not.
    """
    trainer.balance_train_pipeline = True
    start_counting(trainer)


def explain_final_batch(trainer, error: ValueError) -> None:
    """Raise Ultralytics' "final batch=1" refusal again naming the balanced epoch where it, not the data, caused it.

    `balance_floor` and `balance_agg=rfs` grow the epoch (`BalanceSchedule.epoch_size`), so its final batch can
    hold one image where the stock epoch's does not; Ultralytics refuses that at small image sizes and says to change
    batch, which does not tell why stock training works. The run folder this training made (a new one: not resumed,
    not `exist_ok`) is removed, as nothing was trained in it. Any other error, or one stock training would meet too,
    is left as it is.

    Raises:
        ValueError: The refusal naming balance_floor, the epoch sizes and a batch that works.
    """
    loader = getattr(trainer, "train_loader", None)
    dataset, sampler = getattr(loader, "dataset", None), getattr(loader, "sampler", None)
    if not str(error).startswith("final batch=1") or not getattr(dataset, "balanced_sampling", None):
        return
    batch, drawn = loader.batch_size, len(sampler)
    stock = -(-len(dataset) // getattr(sampler, "num_replicas", 1))  # what the stock sampler gives each rank
    if drawn == stock or stock % batch == 1:
        return
    fits = [b for d in range(1, batch) for b in (batch - d, batch + d) if b > 1 and drawn % b != 1 and stock % b != 1]
    floor, rfs = getattr(trainer.args, "balance_floor", 0), getattr(trainer.args, "balance_agg", None) == "rfs"
    grown = "balance_agg=rfs grows" if rfs else f"balance_floor={floor:g} grows" if floor else "Class balancing sets"
    if RANK in {-1, 0} and not trainer.args.resume and not trainer.args.exist_ok:
        shutil.rmtree(trainer.save_dir, ignore_errors=True)  # made for this run, nothing trained in it
    raise ValueError(
        f"{grown} the epoch from {stock} to {drawn} images, so at batch={batch} its final batch holds 1 image: "
        f"{error} (e.g. batch={fits[0] if fits else batch + 1}, which stock training takes too), or another "
        f"{'balance_rfs_threshold' if rfs else 'balance_floor'}."
    ) from None


def is_qat_calibration(trainer) -> bool:
    """Return whether a train-mode dataset is built for QAT calibration (`quantize=8`), which samples like stock."""
    return getattr(trainer.args, "quantize", None) == 8 and not getattr(trainer, "balance_train_pipeline", False)


def balance_train_dataset(trainer, dataset, mode: str = "train", multipliers: dict | None = None):
    """The plugin's `build_dataset()` last step: the core's, with the schedule, data weights, priors and table.

    Validation datasets, `class_balance=False`, `single_cls=True`, the QAT calibration dataset and labels with fewer
    than two classes (nothing to balance, said in the log) stay exactly the stock dataset. A balanced dataset logs its
    table, and the trainer tells its sampler every epoch.

    Args:
        trainer (BaseTrainer): The trainer building the dataset (its `args`, `data['names']` and callbacks).
        dataset (Dataset): The stock dataset `build_dataset()` built.
        mode (str): 'train' or 'val'.
        multipliers (dict, optional): Weights from the data (`BalanceSchedule`'s `multipliers`): the dataset is then
            weighted by them also without `class_balance`.

    Returns:
        (Dataset): The same dataset object, balanced or not.

    Raises:
        NotImplementedError: If the dataset type cannot be balanced yet.
    """
    args = trainer.args
    if mode != "train" or not balancing_on(args, multipliers) or args.single_cls or is_qat_calibration(trainer):
        return dataset
    from ultralytics.data.dataset import ClassificationDataset, YOLODataset
    from ultralytics.models.rtdetr.val import RTDETRDataset

    if type(dataset) not in {YOLODataset, RTDETRDataset, ClassificationDataset}:  # the core's trainers build these
        raise NotImplementedError(f"class_balance is not supported for {type(dataset).__name__} datasets yet.")
    strength, classes, names = (
        balance_strength(args.class_balance),
        dataset_label_classes(dataset),
        trainer.data["names"],
    )
    if not multipliers and (reason := nothing_to_balance(classes, names)):
        if RANK in {-1, 0}:
            LOGGER.info(f"{PREFIX}{balance_settings(strength, args.balance_agg)}: {reason}")
        return dataset  # the stock dataset: trains exactly as without class_balance
    schedule = schedule_from_args(args, classes, len(names), multipliers, memo_folder(trainer))
    make_balanced(dataset, schedule, names)
    core.set_train_sampling(trainer, dataset, schedule.probabilities, schedule.epoch_size)
    for event, callback in (
        ("on_train_epoch_start", sync_sampler_epoch),
        ("on_train_epoch_end", record_class_priors),  # before the epoch's checkpoints are saved
        ("on_train_end", save_corrected_best),  # after the final validation has stripped best.pt
        ("on_train_end", remove_memo),
    ):
        if callback not in trainer.callbacks[event]:
            trainer.add_callback(event, callback)
    if RANK in {-1, 0}:
        log_balance(dataset, args.task)
    return dataset


def sync_sampler_epoch(trainer) -> None:
    """Tell the balanced sampler the trainer's epoch (a resumed run starts mid-way).

    Stock Ultralytics calls `set_epoch` only under DDP; with the series' first PR it calls it for any sampler that has
    one, and this second call of the same epoch changes nothing.
    """
    sampler = getattr(getattr(trainer, "train_loader", None), "sampler", None)
    if isinstance(sampler, BalancedSampler):
        sampler.set_epoch(trainer.epoch)


def memo_folder(trainer) -> Path | None:
    """Return the folder where the DDP ranks of a training share its probabilities (`once.computed_once`), or None.

    Under DDP every rank builds the train dataset and asks for the same probabilities (Ultralytics builds it on rank 0
    first, then on the others; with `balance_ramp` every rank asks again at each epoch's start): one computes, the
    others load. A single process computes them itself, without writing them anywhere.
    """
    return Path(trainer.save_dir) / MEMO_FOLDER if getattr(trainer, "world_size", 1) > 1 else None


def remove_memo(trainer) -> None:
    """Remove the training's shared probabilities at its end (rank 0; they are 8 bytes per image and strength)."""
    if RANK in {-1, 0} and (folder := memo_folder(trainer)) is not None:
        shutil.rmtree(folder, ignore_errors=True)


class BalancedDatasetMixin:
    """Mixin for a dataset class whose train images are drawn by class-balanced probabilities.

    The dataset holds `balanced_probabilities` (one per image: those of the balanced epochs at full strength, computed
    from the labels in use: after `classes=` filtering, `fraction` and any re-sorting); the core's `set_train_sampling`
    gives its train loader the schedule's `BalancedSampler`. For YOLO
    datasets, Mosaic, MixUp, CutMix and CopyPaste partners are drawn from the same probabilities wherever stock
    Ultralytics picks them uniformly from the whole dataset (MixUp, CutMix, CopyPaste; Mosaic with `cache=ram`).
    Mosaic's default buffer of recently loaded images already consists of balanced draws and is kept as it is.
    """

    __slots__ = ()  # no layout of its own, so that a built stock dataset can switch to the balanced subclass
    stock_class: type  # the stock dataset class this balanced class extends (set by `balanced_class`)

    def set_balance(self, schedule: BalanceSchedule, names: dict) -> None:
        """Take the epoch schedule and its per-image probabilities, and re-point the augmentation partners at them.

        Args:
            schedule (BalanceSchedule): The schedule of this dataset's labels (`dataset_label_classes`), built from
                the train arguments `class_balance`, `balance_agg`, `balance_floor`, `balance_ramp`, `epochs` and
                `balance_start`.
            names (dict): Class names by class id (the trainer's `data["names"]`).
        """
        self.balance_schedule, self.balance_names = schedule, names
        # the balanced epochs' probabilities: the table, the plot and the mix partners (worker processes keep their
        # copy of the dataset, so partners cannot follow a ramp or a late start; they use the full strength throughout)
        self.balanced_probabilities = schedule.balanced_probabilities
        self._cumulative_probabilities = np.cumsum(self.balanced_probabilities)
        if hasattr(self, "transforms"):
            _weight_mix_partners(self, self.transforms)

    def balance_stats(self) -> dict:
        """Return `balance_stats` (shares before/after, imbalance, ESS, coverage) for this dataset's probabilities."""
        schedule = self.balance_schedule
        return schedule.figures

    def partner_indexes(self, k: int) -> np.ndarray:
        """Draw `k` augmentation partner indexes from the image probabilities (O(k log N), per-worker numpy RNG)."""
        u = np.random.random(k) * self._cumulative_probabilities[-1]
        return np.searchsorted(self._cumulative_probabilities, u, side="right").clip(
            max=len(self._cumulative_probabilities) - 1
        )

    def build_transforms(self, hyp=None):
        """Build the stock transforms, with partners drawn by the image probabilities (also after close_mosaic)."""
        transforms = self.stock_class.build_transforms(self, hyp)
        if hasattr(self, "balanced_probabilities"):
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


def make_balanced(dataset, schedule: BalanceSchedule, names: dict):
    """Turn a built stock train dataset into its balanced subclass, in place, and return it.

    The stock constructor has already loaded, filtered and ordered the labels exactly as training uses them, so the
    schedule is computed from those (`dataset_label_classes`); switching the instance's class keeps everything else the
    stock dataset did.

    Args:
        dataset (YOLODataset | ClassificationDataset): A stock train dataset.
        schedule (BalanceSchedule): The epoch schedule of the dataset's labels.
        names (dict): Class names by class id.

    Returns:
        (BalancedDatasetMixin): The same object, now of the balanced subclass.
    """
    dataset.__class__ = balanced_class(type(dataset))
    dataset.set_balance(schedule, names)
    return dataset


def log_balance(dataset: BalancedDatasetMixin, task: str) -> None:
    """Log a balanced dataset's table, what does not apply or is never drawn, and the floor's and rfs' warnings."""
    schedule = dataset.balance_schedule
    lines = balance_report(
        schedule.classes,
        dataset.balance_names,
        dataset.balanced_probabilities,
        schedule.strength,
        schedule.agg,
        # balance_agg has no meaning for classification: say so only to a user who set it
        task if schedule.agg != DEFAULTS["balance_agg"] else None,
        schedule,
    )
    LOGGER.info("\n".join(PREFIX + line for line in lines))
    if warning := floor_warning(schedule):
        LOGGER.warning(PREFIX + warning)
    if (
        schedule.agg == "rfs"
        and schedule.strength
        and (warning := rfs_warning(schedule.classes, dataset.balance_names, schedule.threshold))
    ):
        LOGGER.warning(PREFIX + warning)
