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
- `correct_class_prior(model, tau)`, `correct_checkpoint(path, tau)`: restore the data's class prior in a balanced
  model by adding tau * log(share before / share trained) to the bias of its class logits (`balance_tau`, and the
  plugin's `adjust` command); the priors come from the checkpoint, where `record_class_priors` stores them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ultralytics.utils import LOGGER, RANK, colorstr

from .balance import (
    BalanceSchedule,
    TrainedPriors,
    balance_report,
    balance_settings,
    balance_stats,
    nothing_to_balance,
    prior_offsets,
)
from .config import DEFAULTS, balance_strength, schedule_from_args, unused_balance_keys
from .sampler import BalancedSampler

BALANCED_TASKS = frozenset({"detect", "segment", "pose", "obb", "classify"})
PRIORS_ATTRIBUTE = "balance_priors"  # model attribute holding the class priors (plain data: stock Ultralytics loads it)


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


def balance_train_dataset(trainer, dataset, mode: str = "train", multipliers: dict | None = None):
    """Return a trainer's freshly built dataset, turned into its balanced subclass in train mode with balancing on.

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
    weighted = balance_strength(args.class_balance) or multipliers
    if mode != "train" or not weighted or args.single_cls or is_qat_calibration(trainer):
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
    if not multipliers and (reason := nothing_to_balance(classes, names)):
        if RANK in {-1, 0}:
            LOGGER.info(f"{colorstr('balance: ')}{balance_settings(strength, args.balance_agg)}: {reason}")
        return dataset  # the stock dataset: trains exactly as without class_balance
    schedule = schedule_from_args(args, classes, len(names), multipliers)
    make_balanced(dataset, schedule, names, args.seed)
    for event, callback in (
        ("on_train_epoch_start", sync_sampler_epoch),
        ("on_train_epoch_end", record_class_priors),  # before the epoch's checkpoints are saved
        ("on_train_end", save_corrected_best),  # after the final validation has stripped best.pt
    ):
        if callback not in trainer.callbacks[event]:
            trainer.add_callback(event, callback)
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


def record_class_priors(trainer) -> None:
    """Store the class priors of the epochs trained so far on the EMA model, which every checkpoint saves.

    Called at the end of every epoch, before the epoch's checkpoints (last.pt, best.pt, epoch checkpoints) are written
    from the EMA model (rank 0 saves). The priors follow from the schedule and the epoch alone, so a resumed training
    records the same as an uninterrupted one. With knowledge distillation (`distill_model`) they go on the student, the
    model that the final checkpoints keep.
    """
    dataset = getattr(getattr(trainer, "train_loader", None), "dataset", None)
    if RANK not in {-1, 0} or not isinstance(dataset, BalancedDatasetMixin) or getattr(trainer, "ema", None) is None:
        return
    schedule = dataset.balance_schedule
    if getattr(dataset, "trained_priors", None) is None:
        dataset.trained_priors = TrainedPriors(schedule)
    settings = balance_settings(schedule.strength, schedule.agg, schedule)
    priors = dataset.trained_priors.record(trainer.epoch + 1, dataset.balance_names, settings)
    model = getattr(trainer.ema.ema, "student_model", trainer.ema.ema)  # strip_optimizer keeps only the student
    setattr(model, PRIORS_ATTRIBUTE, priors)


def save_corrected_best(trainer) -> None:
    """Write best.pt corrected by `balance_tau` next to it (e.g. best-tau1.pt) at the end of a balanced training."""
    tau = getattr(trainer.args, "balance_tau", 0.0)
    if RANK not in {-1, 0} or not tau or not Path(trainer.best).exists():
        return
    path, offsets, priors = correct_checkpoint(trainer.best, tau)
    offsets = ", ".join(f"{name} {offset:+.3f}" for name, offset in zip(priors["names"], offsets))
    LOGGER.info(f"{colorstr('balance: ')}balance_tau={tau:g}: saved {path} (class logit offsets {offsets})")


def class_logit_layers(model) -> list:
    """Return the layers whose bias holds a model's class logits, one bias value per class.

    Classify: its linear layer. Detect, Segment, Pose, OBB (YOLOv8/11/26 ...): the last convolution of every
    classification branch (`cv3`), and of the one-to-one branches of end-to-end heads (`one2one_cv3`). RT-DETR: every
    decoder layer's score head, and the encoder's score head, whose class scores pick the queries the decoder refines
    (left alone, query selection would keep the balanced prior).

    Args:
        model (torch.nn.Module): An Ultralytics model (`DetectionModel`, `ClassificationModel`, ...).

    Returns:
        (list[torch.nn.Module]): The layers, each with a bias of one value per class.

    Raises:
        ValueError: If the head's class scores have no per-class bias to correct exactly (e.g. YOLO-World and YOLOE
            compare with text embeddings, torchvision classifiers have their own heads).
    """
    from ultralytics.nn.modules.head import Classify, Detect, RTDETRDecoder, WorldDetect, YOLOEDetect

    head = model.model[-1] if hasattr(model, "model") and len(model.model) else model
    nc = len(model.names) if hasattr(model, "names") else getattr(head, "nc", None)
    layers, kind = [], type(head).__name__
    if isinstance(head, Classify):
        layers = [head.linear]
    elif isinstance(head, RTDETRDecoder):
        layers = [head.enc_score_head, *head.dec_score_head]
    elif isinstance(head, Detect) and not isinstance(head, (WorldDetect, YOLOEDetect)):
        layers = [branch[-1] for name in ("cv3", "one2one_cv3") for branch in getattr(head, name, None) or ()]
    width = [getattr(layer, "bias", None) is not None and layer.bias.numel() == nc for layer in layers]
    if not layers or not all(width):
        raise ValueError(
            f"a {kind} head has no per-class bias on its class logits, so the prior cannot be corrected exactly "
            "(supported: Classify, Detect, Segment, Pose, OBB and RT-DETR heads)."
        )
    return layers


def correct_class_prior(model, tau: float) -> np.ndarray:
    """Add tau * log(share before / share trained) to the class logits of a balanced model, in its biases, in place.

    The recorded tau grows by `tau`, so correcting twice composes: 0.5 then 0.5 is the same model as 1 at once.

    Args:
        model (torch.nn.Module): A model trained with class balancing (it carries `PRIORS_ATTRIBUTE`).
        tau (float): Strength of the correction, finite and >= 0.

    Returns:
        (np.ndarray): The offset added to each class's logit.

    Raises:
        ValueError: If the model was trained without class balancing, tau is invalid or the head cannot be corrected.

    Examples:
        >>> import torch
        >>> from ultralytics.nn.modules.head import Classify
        >>> model = torch.nn.Module()
        >>> model.model, model.names = torch.nn.Sequential(Classify(8, 3)), {0: "car", 1: "bus", 2: "bike"}
        >>> model.balance_priors = {"share_before": [0.8, 0.1, 0.1], "share_trained": [0.4, 0.3, 0.3], "tau": 0.0}
        >>> bias = model.model[0].linear.bias.detach().clone()
        >>> offsets = correct_class_prior(model, 1.0)
        >>> offsets.round(3).tolist(), (model.model[0].linear.bias.detach() - bias).double().numpy().round(3).tolist()
        ([0.693, -1.099, -1.099], [0.693, -1.099, -1.099])
        >>> model.balance_priors["tau"]
        1.0
    """
    import torch

    priors = getattr(model, PRIORS_ATTRIBUTE, None)
    if not priors:
        raise ValueError(
            "the model was trained without class_balance (or its labels had nothing to balance, e.g. one class): "
            "there is no balanced prior to correct."
        )
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0 <= tau < float("inf"):
        raise ValueError(
            f"tau={tau:g} is invalid: tau must be a finite number >= 0 (0 = no change, 1 = the data's prior)."
            if isinstance(tau, (int, float))
            else f"tau={tau!r} is invalid: tau must be a finite number >= 0."
        )
    offsets = prior_offsets(priors["share_before"], priors["share_trained"], float(tau))
    with torch.no_grad():
        for layer in class_logit_layers(model):
            bias = layer.bias
            bias.copy_((bias.double() + torch.as_tensor(offsets, device=bias.device)).to(bias.dtype))
    setattr(model, PRIORS_ATTRIBUTE, {**priors, "tau": float(priors.get("tau", 0.0)) + float(tau)})
    return offsets


def corrected_path(path: str | Path, tau: float) -> Path:
    """Return where a checkpoint corrected by tau goes by default: next to it, e.g. best.pt -> best-tau1.pt.

    Examples:
        >>> corrected_path("runs/detect/train/weights/best.pt", 0.5).name
        'best-tau0.5.pt'
    """
    path = Path(path)
    return path.with_name(f"{path.stem}-tau{tau:g}{path.suffix}")


def correct_checkpoint(path: str | Path, tau: float, save: str | Path | None = None) -> tuple[Path, np.ndarray, dict]:
    """Write a copy of a balanced checkpoint with its class prior corrected by tau (`correct_class_prior`).

    Args:
        path (str | Path): A balanced training's checkpoint (best.pt, last.pt, an epoch checkpoint, or a corrected one).
        tau (float): Strength of the correction, finite and >= 0.
        save (str | Path, optional): Where to write; default `corrected_path(path, tau)`. Never the input itself.

    Returns:
        path (Path): The written checkpoint.
        offsets (np.ndarray): The offset added to each class's logit.
        priors (dict): The priors of the written model (its 'tau' is the total applied).

    Raises:
        ValueError: If the checkpoint cannot be corrected (see `correct_class_prior`) or `save` is the input.
    """
    import torch

    from ultralytics.utils.patches import torch_load

    path = Path(path)
    save = Path(save) if save else corrected_path(path, tau)
    if save.resolve() == path.resolve():
        raise ValueError(f"save={save} is the input checkpoint; the corrected model is written to a new file.")
    checkpoint = torch_load(path, map_location="cpu")
    models = {id(m): m for m in (checkpoint.get("model"), checkpoint.get("ema")) if isinstance(m, torch.nn.Module)}
    if not models:
        raise ValueError(f"{path} holds no Ultralytics model.")
    for model in models.values():
        offsets = correct_class_prior(model, tau)
    save.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, save)
    return save, offsets, getattr(model, PRIORS_ATTRIBUTE)


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
                the train arguments `class_balance`, `balance_agg`, `balance_floor`, `balance_ramp`, `epochs` and
                `balance_start`.
            names (dict): Class names by class id (the trainer's `data["names"]`).
            seed (int): Seed of the per-epoch draws.
        """
        self.balance_schedule, self.balance_names, self.balance_seed = schedule, names, seed
        # the balanced epochs' probabilities: the table, the plot and the mix partners (worker processes keep their
        # copy of the dataset, so partners cannot follow a ramp or a late start; they use the full strength throughout)
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
