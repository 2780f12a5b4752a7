# ultralytics-weighted, AGPL-3.0 license
"""The class prior of a balanced training and its correction (`balance_tau`, `ultralytics-weighted adjust`).

A model trained on balanced draws learns the trained class shares as its prior. `record_class_priors` stores the shares
before and trained on the EMA model (plain data, so stock Ultralytics loads the checkpoint): the nominal share trained
(the sampler's expected share) and the realized one (the instances in the batches trained, `exposure.py`).
`correct_class_prior` adds tau * log(share before / share trained) to the bias of the class logits (logit adjustment),
with the realized share where the checkpoint has it (`correction_share`), so exports need nothing of the plugin.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ultralytics.utils import LOGGER, RANK, colorstr

from ultralytics_weighted.core.balance import flatten_labels
from ultralytics_weighted.extensions.config import check_correction_paths, check_tau
from ultralytics_weighted.extensions.report import balance_settings
from ultralytics_weighted.extensions.schedule import BalanceSchedule
from ultralytics_weighted.extensions.shares import class_shares
from ultralytics_weighted.host.exposure import RealizedExposure, exposure_of

PRIORS_ATTRIBUTE = "balance_priors"  # model attribute holding the class priors (plain data: stock Ultralytics loads it)


class TrainedPriors:
    """The class priors of a balanced training: each class's share in the data and its share over the epochs trained.

    The share trained is the mean, over the epochs trained so far, of each epoch's expected class share under the
    schedule's probabilities (`BalanceSchedule.probabilities`, so a ramp or any other per-epoch schedule counts as
    sampled). Each epoch's share is computed once, so asking after every epoch costs one epoch's pass.

    Attributes:
        schedule (BalanceSchedule): The schedule the training samples with.
        share_before (np.ndarray): Share of each class among the train instances (0 for absent classes).
        epoch_shares (list[np.ndarray]): Expected class share of each epoch computed so far, by epoch.

    Examples:
        >>> labels = [np.array([0])] * 3 + [np.array([1])]
        >>> priors = TrainedPriors(BalanceSchedule(labels, nc=2, strength=1.0, ramp=1.0, epochs=3))
        >>> priors.share_before.tolist(), priors.share_trained(1).tolist()  # epoch 0 samples as stock (ramp)
        ([0.75, 0.25], [0.75, 0.25])
        >>> priors.share_trained(3).round(3).tolist()  # epochs at strength 0, 0.5 and 1: shares 0.75, 0.634, 0.5
        [0.628, 0.372]
    """

    def __init__(self, schedule: BalanceSchedule):
        """Flatten the schedule's labels once and compute the shares before balancing."""
        self.schedule = schedule
        self._cls, self._lengths = flatten_labels(schedule.classes)
        self.share_before = class_shares(self._cls, self._lengths, schedule.nc)
        self.epoch_shares: list[np.ndarray] = []

    def share_trained(self, epochs: int) -> np.ndarray:
        """Return each class's expected share over epochs 0 .. epochs - 1, each epoch weighted equally."""
        while len(self.epoch_shares) < epochs:
            p = self.schedule.probabilities(len(self.epoch_shares))
            self.epoch_shares.append(class_shares(self._cls, self._lengths, self.schedule.nc, p))
        return np.mean(self.epoch_shares[:epochs], axis=0) if epochs > 0 else self.share_before.copy()

    def record(
        self, epochs: int, names: dict | Sequence[str], settings: str, exposure: RealizedExposure | None = None
    ) -> dict:
        """Return the priors after `epochs` epochs as plain Python data (lists, floats, str), to store in a checkpoint.

        Args:
            epochs (int): Epochs trained so far.
            names (dict | Sequence[str]): Class names by class id.
            settings (str): The balancing train keys (`balance_settings`).
            exposure (RealizedExposure, optional): The instances of each class in the batches trained, per epoch.

        Returns:
            (dict): 'names', 'share_before', 'share_trained' (the nominal share, lists by class id), 'epochs',
                'settings' and 'tau' (the correction applied so far: 0.0 at training time); with the counts of every
                epoch trained also 'exposure' (instances per class of each epoch, a list of int lists by epoch) and
                'share_realized' (their pooled share per class).
        """
        names = names if isinstance(names, dict) else dict(enumerate(names))
        priors = {
            "names": [str(names.get(c, c)) for c in range(self.schedule.nc)],
            "share_before": [float(x) for x in self.share_before],
            "share_trained": [float(x) for x in self.share_trained(epochs)],
            "epochs": int(epochs),
            "settings": str(settings),
            "tau": 0.0,
        }
        realized = exposure.share(epochs) if exposure is not None else None
        if realized is not None:
            priors["exposure"] = [[int(n) for n in counts] for counts in exposure.epochs[:epochs]]
            priors["share_realized"] = [float(x) for x in realized]
        return priors


def correction_share(priors: dict) -> tuple[list[float], str]:
    """Return the share trained that a prior correction uses, and which: 'realized' where recorded, else 'nominal'.

    The realized share (the instances in the batches trained, after Mosaic, MixUp, CutMix and CopyPaste) is the prior
    the model learned; checkpoints of older plugin versions (or resumed from one) have only the nominal share.

    Examples:
        >>> correction_share({"share_trained": [0.5, 0.5], "share_realized": [0.6, 0.4]})
        ([0.6, 0.4], 'realized')
        >>> correction_share({"share_trained": [0.5, 0.5]})
        ([0.5, 0.5], 'nominal')
    """
    if priors.get("share_realized"):
        return list(priors["share_realized"]), "realized"
    return list(priors["share_trained"]), "nominal"


def share_used(priors: dict) -> str:
    """Return the words that say which share trained a correction used, for log lines and reports.

    Examples:
        >>> share_used({"share_trained": [1.0]})
        'nominal share trained (the checkpoint has no realized exposure: trained before the plugin counted it)'
    """
    if correction_share(priors)[1] == "realized":
        return "realized share trained (the instances in the batches trained)"
    return "nominal share trained (the checkpoint has no realized exposure: trained before the plugin counted it)"


def prior_offsets(share_before: Sequence[float], share_trained: Sequence[float], tau: float) -> np.ndarray:
    """Return the logit offsets tau * log(share before / share trained) that restore the data's class prior.

    A model trained on balanced draws has learned the trained shares as its class prior; adding these offsets to its
    class logits exchanges that prior for the data's (logit adjustment, Menon et al. 2021) at tau = 1, and for a prior
    in between at 0 < tau < 1. Classes with no share on either side get 0 (nothing was learned about their prior).

    Args:
        share_before (Sequence[float]): Share of each class in the data.
        share_trained (Sequence[float]): Share of each class over the epochs trained.
        tau (float): Strength of the correction, >= 0.

    Returns:
        (np.ndarray): float64 offset per class.

    Examples:
        >>> prior_offsets([0.8, 0.2, 0.0], [0.5, 0.5, 0.0], tau=1.0).round(3).tolist()
        [0.47, -0.916, 0.0]
        >>> [f"{x:+.3f}" for x in prior_offsets([0.8, 0.2], [0.5, 0.5], tau=0.0)]  # no "-0.000"
        ['+0.000', '+0.000']
    """
    before, trained = np.asarray(share_before, dtype=np.float64), np.asarray(share_trained, dtype=np.float64)
    known = (before > 0) & (trained > 0)
    offsets = np.zeros_like(before)
    offsets[known] = tau * np.log(before[known] / trained[known]) + 0.0  # + 0.0: tau=0 gives 0, not -0 ("-0.000")
    return offsets


def record_class_priors(trainer) -> None:
    """Store the class priors of the epochs trained so far on the EMA model, which every checkpoint saves.

    Called at the end of every epoch, before the epoch's checkpoints (last.pt, best.pt, epoch checkpoints) are written
    from the EMA model (rank 0 saves). The priors follow from the schedule and the epoch alone, so a resumed training
    records the same as an uninterrupted one. With knowledge distillation (`distill_model`) they go on the student, the
    model that the final checkpoints keep.
    """
    dataset = getattr(getattr(trainer, "train_loader", None), "dataset", None)
    schedule = getattr(dataset, "balance_schedule", None)  # the plugin's balanced datasets hold their schedule
    if RANK not in {-1, 0} or schedule is None or getattr(trainer, "ema", None) is None:
        return
    if getattr(dataset, "trained_priors", None) is None:
        dataset.trained_priors = TrainedPriors(schedule)
    settings = balance_settings(schedule.strength, schedule.agg, schedule)
    exposure = exposure_of(trainer)  # this epoch's counts are closed already (`exposure.close_epoch_count`)
    priors = dataset.trained_priors.record(trainer.epoch + 1, dataset.balance_names, settings, exposure)
    model = getattr(trainer.ema.ema, "student_model", trainer.ema.ema)  # strip_optimizer keeps only the student
    setattr(model, PRIORS_ATTRIBUTE, priors)


def save_corrected_best(trainer) -> None:
    """Write best.pt corrected by `balance_tau` next to it (e.g. best-tau1.pt) at the end of a balanced training."""
    tau = getattr(trainer.args, "balance_tau", 0.0)
    if RANK not in {-1, 0} or not tau or not Path(trainer.best).exists():
        return
    path, offsets, priors = correct_checkpoint(trainer.best, tau)
    offsets = ", ".join(f"{name} {offset:+.3f}" for name, offset in zip(priors["names"], offsets))
    LOGGER.info(
        f"{colorstr('balance: ')}balance_tau={tau:g} from the {share_used(priors)}: saved {path} "
        f"(class logit offsets {offsets})"
    )


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

    The share trained is the realized one where the priors record it, else the nominal one (`correction_share`); the
    priors of the corrected model say which in 'tau_share'. The recorded tau grows by `tau`, so correcting twice
    composes: 0.5 then 0.5 is the same model as 1 at once.

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
    tau = check_tau(tau)
    offsets = prior_offsets(priors["share_before"], correction_share(priors)[0], float(tau))
    with torch.no_grad():
        for layer in class_logit_layers(model):
            bias = layer.bias
            bias.copy_((bias.double() + torch.as_tensor(offsets, device=bias.device)).to(bias.dtype))
    tau_total = float(priors.get("tau", 0.0)) + float(tau)
    setattr(model, PRIORS_ATTRIBUTE, {**priors, "tau": tau_total, "tau_share": correction_share(priors)[1]})
    return offsets


def correct_checkpoint(
    path: str | Path, tau: float, save: str | Path | None = None, exist_ok: bool = False
) -> tuple[Path, np.ndarray, dict]:
    """Write a copy of a balanced checkpoint with its class prior corrected by tau (`correct_class_prior`).

    Args:
        path (str | Path): A balanced training's checkpoint (best.pt, last.pt, an epoch checkpoint, or a corrected one).
        tau (float): Strength of the correction, finite and >= 0.
        save (str | Path, optional): Where to write; default `corrected_path(path, tau)`. Never the input itself.
        exist_ok (bool): Overwrite `save` if it exists (Ultralytics' name); by default an existing file is kept.

    Returns:
        path (Path): The written checkpoint.
        offsets (np.ndarray): The offset added to each class's logit.
        priors (dict): The priors of the written model (its 'tau' is the total applied).

    Raises:
        FileNotFoundError: If `path` does not exist.
        FileExistsError: If `save` exists and `exist_ok` is False.
        ValueError: If `path` is a folder or no PyTorch checkpoint of an Ultralytics model (an ONNX file, a corrupt
            file), the checkpoint cannot be corrected (see `correct_class_prior`), or `save` is the input.
    """
    import torch

    from ultralytics.utils.patches import torch_load

    path, save = check_correction_paths(path, tau, save, exist_ok)
    try:
        checkpoint = torch_load(path, map_location="cpu")
    except Exception as e:  # an ONNX or other export, a truncated or corrupt file: torch raises many kinds
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        raise ValueError(
            f"{path} is not a readable PyTorch checkpoint ({reason}); adjust takes the .pt of a balanced training "
            "(exported models: adjust the .pt, then export it)."
        ) from None
    models = {}
    if isinstance(checkpoint, dict):
        models = {id(m): m for m in (checkpoint.get("model"), checkpoint.get("ema")) if isinstance(m, torch.nn.Module)}
    if not models:
        raise ValueError(f"{path} holds no Ultralytics model.")
    for model in models.values():
        offsets = correct_class_prior(model, tau)
    save.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, save)
    return save, offsets, getattr(model, PRIORS_ATTRIBUTE)
