# ultralytics-weighted, AGPL-3.0 license
"""The one place that touches Ultralytics internals: config keys, checks, the balanced train dataset and its loader.

`activate()` is called by the startup hook right after `import ultralytics`, or by `import ultralytics_weighted`. It
adds `class_balance` and `balance_agg` to the default configuration at once, and patches the trainer modules when they
are first imported (they load lazily, so a plain `import ultralytics` stays as fast as stock):

- `ultralytics.cfg.check_cfg` also checks the two keys, so bad values fail before any data is loaded;
- `BaseTrainer.__init__` refuses tasks that cannot be balanced and settings that conflict, before training;
- `DetectionTrainer.build_dataset` (detect, segment, pose, obb), `RTDETRTrainer.build_dataset` and
  `ClassificationTrainer.build_dataset` return a balanced subclass of the stock dataset in train mode with balancing
  on, and exactly the stock dataset otherwise;
- the detection and classification trainers' `build_dataloader` gives such a dataset its `BalancedSampler`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ultralytics_weighted.balance import (
    BalanceSchedule,
    balance_report,
    balance_settings,
    balance_stats,
    nothing_to_balance,
)
from ultralytics_weighted.config import AFTER_KEY, DEFAULTS, balance_strength, check_balance_args, unused_balance_keys
from ultralytics_weighted.report import plot_balance
from ultralytics_weighted.sampler import BalancedSampler
from ultralytics_weighted_hook import when_imported

BALANCED_TASKS = frozenset({"detect", "segment", "pose", "obb", "classify"})
_PATCHED = "_ultralytics_weighted"  # attribute marking functions this module installed


def _mark(function):
    """Mark a replacement function so that activation stays idempotent and capability checks can see it."""
    setattr(function, _PATCHED, True)
    return function


def _is_patched(function) -> bool:
    return getattr(function, _PATCHED, False)


def _logger():
    from ultralytics.utils import LOGGER, RANK, colorstr

    return LOGGER, RANK, colorstr("balance: ")


# ---------------------------------------------------------------------------------------------------------------------
# Configuration keys


def _insert_default_keys(cfg: dict) -> None:
    """Insert the balancing keys and defaults into a config dict in place, right after `fraction`."""
    if all(k in cfg for k in DEFAULTS):
        return
    items = [(k, v) for k, v in cfg.items() if k not in DEFAULTS]
    at = next((i + 1 for i, (k, _) in enumerate(items) if k == AFTER_KEY), len(items))
    items[at:at] = [(k, cfg.get(k, v)) for k, v in DEFAULTS.items()]
    cfg.clear()
    cfg.update(items)


def _add_default_keys(utils) -> None:
    """Add the keys to DEFAULT_CFG_DICT (the same dict object every module imported) and the DEFAULT_CFG namespace."""
    if all(k in utils.DEFAULT_CFG_DICT for k in DEFAULTS):
        return
    _insert_default_keys(utils.DEFAULT_CFG_DICT)
    for k, v in DEFAULTS.items():
        setattr(utils.DEFAULT_CFG, k, v)

    load = utils.YAML.load.__func__
    default_cfg_path = Path(utils.DEFAULT_CFG_PATH).resolve()

    @_mark
    def load_with_balance_keys(cls, file="data.yaml", append_filename=False):
        """YAML.load that lists the balancing keys in the default config too, so `yolo cfg` shows them."""
        data = load(cls, file, append_filename)
        if isinstance(file, (str, Path)) and isinstance(data, dict) and Path(file).resolve() == default_cfg_path:
            _insert_default_keys(data)
        return data

    utils.YAML.load = classmethod(load_with_balance_keys)


def _patch_cfg(cfg_module) -> None:
    """Make `check_cfg` (called by `get_cfg`) check the balancing keys as well."""
    check_cfg = cfg_module.check_cfg
    if _is_patched(check_cfg):
        return

    @_mark
    def check_cfg_with_balance(cfg: dict, hard: bool = True) -> None:
        check_balance_args(cfg)
        check_cfg(cfg, hard)

    check_cfg_with_balance.__doc__ = check_cfg.__doc__
    cfg_module.check_cfg = check_cfg_with_balance


# ---------------------------------------------------------------------------------------------------------------------
# Trainer checks


def check_trainer(trainer) -> None:
    """Refuse or warn about settings that balancing cannot honour, before any training starts.

    Args:
        trainer (BaseTrainer): A trainer whose `args` passed `get_cfg`.

    Raises:
        NotImplementedError: If the trainer's task or dataset cannot be balanced yet.
        ValueError: If `rect=True` is combined with balancing.
    """
    args = trainer.args
    LOGGER, RANK, prefix = _logger()
    if not balance_strength(getattr(args, "class_balance", False)):
        if RANK in {-1, 0} and (unused := unused_balance_keys(vars(args))):
            LOGGER.warning(
                f"{prefix}{', '.join(unused)} {'has' if len(unused) == 1 else 'have'} no effect without class_balance "
                f"(class_balance={args.class_balance}): training samples as stock. Add class_balance=True to balance."
            )
        return
    if args.task not in BALANCED_TASKS or not _is_patched(type(trainer).build_dataset):
        raise NotImplementedError(
            f"class_balance is not supported for task={args.task} with {type(trainer).__name__} yet. "
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
            LOGGER.warning(f"{prefix}'single_cls=True' merges all classes into one, so class_balance has no effect.")
        if args.cls_pw:
            LOGGER.warning(
                f"{prefix}class_balance (sampling) and cls_pw={args.cls_pw} (loss weighting) both favour rare "
                "classes; together they compensate twice. Consider cls_pw=0.0."
            )
    if _sync_sampler_epoch not in trainer.callbacks["on_train_epoch_start"]:
        trainer.add_callback("on_train_epoch_start", _sync_sampler_epoch)


def _sync_sampler_epoch(trainer) -> None:
    """Tell the balanced sampler the trainer's epoch (stock calls set_epoch only under DDP; resume starts mid-way)."""
    sampler = getattr(getattr(trainer, "train_loader", None), "sampler", None)
    if isinstance(sampler, BalancedSampler):
        sampler.set_epoch(trainer.epoch)


def _patch_trainer(trainer_module) -> None:
    """Run `check_trainer` at the end of every trainer's construction."""
    base = trainer_module.BaseTrainer
    init = base.__init__
    if _is_patched(init):
        return

    @_mark
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        check_trainer(self)

    __init__.__doc__ = init.__doc__
    base.__init__ = __init__


# ---------------------------------------------------------------------------------------------------------------------
# Balanced dataset


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

    def set_balance(
        self,
        strength: float,
        agg: str,
        names: dict,
        seed: int = 0,
        floor: float = 0.0,
        ramp: float = 0.0,
        epochs: int = 1,
    ) -> None:
        """Compute the epoch schedule and per-image probabilities, and re-point the augmentation partners at them.

        Args:
            strength (float): Balancing strength in (0, 1].
            agg (str): How an image's objects combine their class weights.
            names (dict): Class names by class id (the trainer's `data["names"]`).
            seed (int): Seed of the per-epoch draws.
            floor (float): Least expected draws of each image per epoch (`balance_floor`).
            ramp (float): Fraction of the epochs over which the strength rises from 0 (`balance_ramp`).
            epochs (int): Epochs of the training.
        """
        self.balance_strength, self.balance_agg, self.balance_names, self.balance_seed = strength, agg, names, seed
        classes = dataset_label_classes(self)
        self.balance_schedule = BalanceSchedule(classes, len(names), strength, agg, floor, ramp, epochs)
        # the balanced epochs' probabilities: the table, the plot and the mix partners (worker processes keep their
        # copy of the dataset, so partners cannot follow a ramp; they use the full strength throughout)
        self.image_probabilities = self.balance_schedule.probabilities(self.balance_schedule.full_strength_epoch)
        self._cumulative_probabilities = np.cumsum(self.image_probabilities)
        if hasattr(self, "transforms"):
            _weight_mix_partners(self, self.transforms)

    def balance_stats(self) -> dict:
        """Return `balance_stats` (shares before/after, imbalance, ESS, coverage) for this dataset's probabilities."""
        classes, schedule = dataset_label_classes(self), self.balance_schedule
        return balance_stats(classes, len(self.balance_names), self.image_probabilities, schedule.epoch_size)

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


def make_balanced(
    dataset,
    strength: float,
    agg: str,
    names: dict,
    seed: int = 0,
    floor: float = 0.0,
    ramp: float = 0.0,
    epochs: int = 1,
):
    """Turn a built stock train dataset into its balanced subclass, in place, and return it.

    The stock constructor has already loaded, filtered and ordered the labels exactly as training uses them, so the
    weights are computed from those; switching the instance's class keeps everything else the stock dataset did.

    Args:
        dataset (YOLODataset | ClassificationDataset): A stock train dataset.
        strength (float): Balancing strength in (0, 1].
        agg (str): Aggregation of an image's class weights.
        names (dict): Class names by class id.
        seed (int): Seed of the per-epoch draws.
        floor (float): Least expected draws of each image per epoch (`balance_floor`).
        ramp (float): Fraction of the epochs over which the strength rises from 0 (`balance_ramp`).
        epochs (int): Epochs of the training.

    Returns:
        (BalancedDatasetMixin): The same object, now of the balanced subclass.
    """
    dataset.__class__ = balanced_class(type(dataset))
    dataset.set_balance(strength, agg, names, seed, floor, ramp, epochs)
    return dataset


def log_balance(dataset: BalancedDatasetMixin, task: str) -> None:
    """Log the per-class table and summary line of a balanced dataset, and what does not apply or is never drawn."""
    LOGGER, _, prefix = _logger()
    lines = balance_report(
        dataset_label_classes(dataset),
        dataset.balance_names,
        dataset.image_probabilities,
        dataset.balance_strength,
        dataset.balance_agg,
        task,
        dataset.balance_schedule,
    )
    LOGGER.info("\n".join(prefix + line for line in lines))


def _balanced_build_dataset(build_dataset):
    """Wrap a trainer's build_dataset so that train mode with balancing on returns the balanced dataset."""

    @_mark
    def wrapper(self, img_path, mode="train", batch=None):
        dataset = build_dataset(self, img_path, mode, batch)
        strength = balance_strength(getattr(self.args, "class_balance", False))
        if mode != "train" or not strength or self.args.single_cls:
            return dataset
        from ultralytics.data.dataset import ClassificationDataset, YOLODataset
        from ultralytics.models.rtdetr.val import RTDETRDataset

        if type(dataset) not in {YOLODataset, RTDETRDataset, ClassificationDataset}:
            raise NotImplementedError(f"class_balance is not supported for {type(dataset).__name__} datasets yet.")
        args = self.args
        LOGGER, RANK, prefix = _logger()
        if reason := nothing_to_balance(dataset_label_classes(dataset), self.data["names"]):
            if RANK in {-1, 0}:
                LOGGER.info(f"{prefix}{balance_settings(strength, args.balance_agg)}: {reason}")
            return dataset  # the stock dataset: trains exactly as without class_balance
        make_balanced(
            dataset,
            strength,
            args.balance_agg,
            self.data["names"],
            args.seed,
            args.balance_floor,
            args.balance_ramp,
            args.epochs,
        )
        if RANK in {-1, 0}:
            log_balance(dataset, self.args.task)
            if self.args.plots:
                settings = balance_settings(strength, args.balance_agg, dataset.balance_schedule)
                path = self.save_dir / "class_balance.png"
                plot_balance(dataset.balance_stats(), self.data["names"], path, strength, settings)
        return dataset

    wrapper.__doc__ = build_dataset.__doc__
    return wrapper


def _patch_build_dataset(trainer_class) -> None:
    if not _is_patched(trainer_class.__dict__["build_dataset"]):
        trainer_class.build_dataset = _balanced_build_dataset(trainer_class.__dict__["build_dataset"])


def _balanced_build_dataloader(build_dataloader):
    """Wrap Ultralytics' build_dataloader so that a balanced train dataset is loaded through its sampler."""

    @_mark
    def wrapper(dataset, batch, workers, shuffle=True, rank=-1, drop_last=False, pin_memory=True, device="cuda"):
        if not (shuffle and isinstance(dataset, BalancedDatasetMixin)):
            return build_dataloader(dataset, batch, workers, shuffle, rank, drop_last, pin_memory, device)
        from ultralytics.data.build import InfiniteDataLoader

        # Let the stock function choose workers, seeding, pinning and collate as it would, then rebuild the loader with
        # the sampler (a DataLoader's sampler cannot be replaced once built; the template has started no workers).
        template = build_dataloader(dataset, batch, workers, False, -1, drop_last, pin_memory, device)
        sampler = dataset.sampler(*((1, 0) if rank == -1 else (None, None)))
        samples, batch = len(sampler), template.batch_size
        return InfiniteDataLoader(
            dataset=dataset,
            batch_size=batch,
            shuffle=False,
            num_workers=template.num_workers,
            sampler=sampler,
            prefetch_factor=4 if template.num_workers > 0 else None,  # as stock for train loaders
            pin_memory=template.pin_memory,
            collate_fn=template.collate_fn,
            worker_init_fn=template.worker_init_fn,
            generator=template.generator,
            drop_last=drop_last and samples > batch > 0 and samples % batch != 0,
        )

    wrapper.__doc__ = build_dataloader.__doc__
    return wrapper


# Trainer module -> the trainer class whose build_dataset is balanced. Subclasses inherit it (segment, pose and obb
# from DetectionTrainer); RT-DETR builds its own dataset but uses the detection module's dataloader.
BALANCED_TRAINERS = {
    "ultralytics.models.yolo.detect.train": "DetectionTrainer",
    "ultralytics.models.rtdetr.train": "RTDETRTrainer",
    "ultralytics.models.yolo.classify.train": "ClassificationTrainer",
}


def _patch_trainer_module(module) -> None:
    """Balance the module's trainer in train mode and, where the module builds loaders, give them the sampler."""
    _patch_build_dataset(getattr(module, BALANCED_TRAINERS[module.__name__]))
    if hasattr(module, "build_dataloader") and not _is_patched(module.build_dataloader):
        module.build_dataloader = _balanced_build_dataloader(module.build_dataloader)


# ---------------------------------------------------------------------------------------------------------------------
# Labels for `ultralytics-weighted stats`


def load_label_classes(overrides: dict, split: str = "train") -> tuple[list[np.ndarray], dict, str]:
    """Build a split's dataset the way training does and return its label classes, without loading any image.

    Args:
        overrides (dict): Ultralytics train keys, at least `data`; `task`, `classes`, `fraction`, `single_cls` count.
        split (str): 'train', 'val' or 'test'.

    Returns:
        classes (list[np.ndarray]): Class ids of each image's objects (one id per image for classification).
        names (dict): Class names by class id.
        task (str): The task the data was read for ('classify' for a folder dataset without a `task` key).
    """
    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_yolo_dataset
    from ultralytics.data.dataset import ClassificationDataset
    from ultralytics.data.utils import check_cls_dataset, check_det_dataset, get_split_fraction

    overrides = dict(overrides)
    data = str(overrides.get("data") or "")
    if "task" not in overrides and not data.endswith((".yaml", ".yml")):
        overrides["task"] = "classify"  # as Ultralytics: a folder (or a name without .yaml) is a classification set
    cfg = get_cfg(overrides={**overrides, "mode": "train"})
    if cfg.task == "classify":
        info = check_cls_dataset(cfg.data, split=split)
        cfg.fraction = get_split_fraction(cfg.fraction, split)
        dataset = ClassificationDataset(str(info[split]), cfg, augment=False, prefix=split, names=info["names"])
    else:
        info = check_det_dataset(cfg.data)
        if not info.get(split):
            raise FileNotFoundError(f"data={cfg.data} has no '{split}' split.")
        dataset = build_yolo_dataset(cfg, info[split], cfg.batch, info, mode="train" if split == "train" else "val")
    names = {0: "item"} if cfg.single_cls else info["names"]  # the datasets map every label to 0 with single_cls
    return dataset_label_classes(dataset), names, cfg.task


# ---------------------------------------------------------------------------------------------------------------------


def activate() -> None:
    """Activate class-balanced training in this process (idempotent).

    Imports `ultralytics` (and so torch) if it has not been imported yet; the trainer modules are patched when they are
    first imported.

    Examples:
        >>> from ultralytics_weighted.integration import activate
        >>> activate()
        >>> from ultralytics.cfg import get_cfg
        >>> get_cfg(overrides={"class_balance": 0.5, "balance_agg": "sum"}).class_balance
        0.5
    """
    import ultralytics.utils

    if (Path(ultralytics.utils.__file__).parent.parent / "data" / "balance.py").exists():
        return  # Ultralytics already balances natively (the patch series is applied): nothing to add
    _add_default_keys(ultralytics.utils)
    when_imported("ultralytics.cfg", _patch_cfg)
    when_imported("ultralytics.engine.trainer", _patch_trainer)
    for module in BALANCED_TRAINERS:
        when_imported(module, _patch_trainer_module)
