# ultralytics-weighted, AGPL-3.0 license
"""The patch surface: every Ultralytics attribute the plugin replaces (`PATCH_SURFACE`), and the wrappers that do it.

`activation.py` applies the table when Ultralytics is imported: on a supported release (`release.py`) each row of
`PATCH_SURFACE` as its module is first imported (the trainer modules load lazily, so a plain `import ultralytics` stays
as fast as stock). A row whose Ultralytics function lacks what the wrapper needs (a parameter, a method) is not
applied, and `class_balance` is then refused before training with the reason. On any other release only
`REFUSAL_SURFACE` is applied: stock commands work as without the plugin, and a balancing key fails before training with
one message naming the installed and the supported releases. On an Ultralytics with the core natively (the patch
series applied) `native.py`'s `NATIVE_SURFACE` is applied instead: this table without the loader rows, and the rows
that hand the native balancing step to the plugin's.

Besides the table, balanced training changes two things on objects it builds itself, never on Ultralytics' classes or
modules: the train dataset instance switches to a balanced subclass (`make_balanced`), and its mix transforms get a
weighted `get_indexes` instance attribute. Every training (balanced or not) counts the classes it trains on through an
instance attribute of its trainer object, a `preprocess_batch` that counts `batch["cls"]` and calls the stock method
(`exposure.py`). The one Ultralytics function wrapped elsewhere is `check_dict_alignment`, by
the startup hook when it is switched off or the plugin failed to start (it must not import this). `compare`'s
validation (`validation.py`, never on activation) replaces `update_metrics` (wrapped, the original still runs), for
detection `postprocess` (wrapped, the original still runs and is what the validator scores) and, for classification,
`dataloader` (rebuilt unshuffled) on the validator instance of its own `model.val()` call, through an `on_val_start`
callback, to record every image's results; no Ultralytics class or module is changed.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ultralytics_weighted.extensions.config import balancing_on, check_balance_args, check_rfs_settings
from ultralytics_weighted.extensions.keys import AFTER_KEY, DEFAULTS
from ultralytics_weighted.extensions.report import balance_settings, plot_balance
from ultralytics_weighted.host.release import UnsupportedUltralyticsError, unsupported_message

_PATCHED = "_ultralytics_weighted"  # attribute marking functions this module installed


def _mark(function):
    """Mark a replacement function so that activation stays idempotent and the surface test can find it."""
    setattr(function, _PATCHED, True)
    return function


def _is_patched(function) -> bool:
    return getattr(getattr(function, "__func__", function), _PATCHED, False)


def _rank() -> int:
    from ultralytics.utils import RANK

    return RANK


# ---------------------------------------------------------------------------------------------------------------------
# Configuration keys


def insert_default_keys(cfg: dict) -> None:
    """Insert the balancing keys and defaults into a config dict in place, right after `fraction`."""
    if all(k in cfg for k in DEFAULTS):
        return
    items = [(k, v) for k, v in cfg.items() if k not in DEFAULTS]
    at = next((i + 1 for i, (k, _) in enumerate(items) if k == AFTER_KEY), len(items))
    items[at:at] = [(k, cfg.get(k, v)) for k, v in DEFAULTS.items()]
    cfg.clear()
    cfg.update(items)


def _yaml_load_listing_keys(load):
    """Wrap `YAML.load` (a classmethod) so that loading the default config lists the balancing keys too."""
    from ultralytics.utils import DEFAULT_CFG_PATH

    load, default_cfg_path = load.__func__, Path(DEFAULT_CFG_PATH).resolve()

    @_mark
    def load_listing_balance_keys(cls, file="data.yaml", *args, **kwargs):
        data = load(cls, file, *args, **kwargs)
        if isinstance(file, (str, Path)) and isinstance(data, dict) and Path(file).resolve() == default_cfg_path:
            insert_default_keys(data)
        return data

    load_listing_balance_keys.__doc__ = load.__doc__
    return classmethod(load_listing_balance_keys)


def _check_cfg_with_balance(check_cfg):
    """Wrap `check_cfg` (called by `get_cfg`) so that it checks the balancing keys as well."""

    @_mark
    def check_cfg_with_balance(cfg, *args, **kwargs):
        check_balance_args(cfg)
        return check_cfg(cfg, *args, **kwargs)

    check_cfg_with_balance.__doc__ = check_cfg.__doc__
    return check_cfg_with_balance


def _name_data_keys(check_dict_alignment):
    """Wrap `check_dict_alignment` so that a data YAML weight key given as a train key is told where it belongs.

    Ultralytics' error stays its own SyntaxError (its "Similar: classes" suggestion would mislead); a line is added.
    """
    from ultralytics_weighted.extensions.config import data_key_hint

    @_mark
    def check_dict_alignment_naming_data_keys(base, custom, *args, **kwargs):
        try:
            return check_dict_alignment(base, custom, *args, **kwargs)
        except SyntaxError as error:
            if hints := [data_key_hint(k) for k in getattr(custom, "keys", list)() if data_key_hint(k)]:
                error.msg = f"{error.msg}{'; '.join(hints)}: see the weights from the data YAML in the usage guide.\n"
                error.args = (error.msg,)
            raise

    check_dict_alignment_naming_data_keys.__doc__ = check_dict_alignment.__doc__
    return check_dict_alignment_naming_data_keys


def _refuse_balance_keys(check_dict_alignment):
    """Wrap `check_dict_alignment` (unsupported releases) so that a balancing key fails with the supported range.

    Kept apart from the switched-off hook's wrapper (`ultralytics_weighted_hook`), which cannot import this module: this
    one refuses before Ultralytics' check, with this module's error and the releases, as a row of the patch surface.
    """
    import ultralytics

    @_mark
    def refuse_balance_keys(base, custom, *args, **kwargs):
        if hasattr(custom, "keys") and any(k in DEFAULTS and k not in base for k in custom.keys()):
            raise UnsupportedUltralyticsError(unsupported_message(ultralytics.__version__))
        return check_dict_alignment(base, custom, *args, **kwargs)

    refuse_balance_keys.__doc__ = check_dict_alignment.__doc__
    return refuse_balance_keys


# ---------------------------------------------------------------------------------------------------------------------
# Trainer checks


def check_trainer(trainer) -> None:
    """Refuse `class_balance` where this Ultralytics lacks a feature, then run the shared checks before training.

    Args:
        trainer (BaseTrainer): A trainer whose `args` passed `get_cfg` and `check_resume`.

    Raises:
        UnsupportedUltralyticsError: If this Ultralytics lacks something balancing needs.
        NotImplementedError: If the trainer's task or dataset cannot be balanced yet.
        ValueError: If `rect=True` is combined with balancing, or settings `balance_agg=rfs` cannot honour.
    """
    from ultralytics_weighted.host import training as plugin_training  # imports Ultralytics: only once it is loaded

    if _UNAVAILABLE and balancing_on(trainer.args):
        import ultralytics

        reason = "; ".join(_UNAVAILABLE.values())
        raise UnsupportedUltralyticsError(unsupported_message(ultralytics.__version__, reason))
    supported = _is_patched(getattr(type(trainer), "build_dataset", None))
    plugin_training.check_class_balance(trainer.args, type(trainer).__name__, supported)
    trainer.balance_data_weights = data_weights(trainer.args)
    check_rfs_settings(vars(trainer.args), trainer.balance_data_weights)


def data_weights(args):
    """Return the checked weights of the data YAML (`user_weights.DataWeights`), or None; bad ones raise ValueError."""
    from ultralytics_weighted.host.user_weights import DataWeights

    data = getattr(args, "data", None)
    if not data or getattr(args, "task", None) == "classify" or getattr(args, "single_cls", False):
        return None
    weights = DataWeights.load(data)
    if weights and getattr(args, "rect", False):
        raise ValueError(
            f"'rect=True' cannot be combined with the weights in {weights.file}: rectangular training fixes each "
            "image's batch by aspect ratio, while weighted sampling draws images in a new order every epoch."
        )
    return weights


def _check_after_resume(check_resume):
    """Wrap `BaseTrainer.check_resume` so that `check_trainer` sees the final (possibly resumed) arguments."""

    @_mark
    def check_resume_and_balance(self, *args, **kwargs):
        result = check_resume(self, *args, **kwargs)
        check_trainer(self)
        return result

    check_resume_and_balance.__doc__ = check_resume.__doc__
    return check_resume_and_balance


def _mark_train_pipeline(build_train_pipeline):
    """Wrap `BaseTrainer._build_train_pipeline`: record that the trainer builds its train loader, explain its refusal.

    A grown balanced epoch can end in a batch of one image that Ultralytics refuses (`explain_final_batch`).
    """

    @_mark
    def build_train_pipeline_marked(self, *args, **kwargs):
        from ultralytics_weighted.host import training as plugin_training  # imports Ultralytics: only once it is loaded

        plugin_training.start_train_pipeline(self)
        try:
            return build_train_pipeline(self, *args, **kwargs)
        except ValueError as e:  # "final batch=1": where a grown balanced epoch caused it, say so
            plugin_training.explain_final_batch(self, e)
            raise

    build_train_pipeline_marked.__doc__ = build_train_pipeline.__doc__
    return build_train_pipeline_marked


# ---------------------------------------------------------------------------------------------------------------------
# Balanced dataset and loader


def _balanced_build_dataset(build_dataset):
    """Wrap a trainer's build_dataset so that it ends with `balance_train_dataset` (and the plugin's balance plot)."""
    signature = inspect.signature(build_dataset)

    @_mark
    def build_balanced_dataset(self, *args, **kwargs):
        from ultralytics_weighted.host import training as plugin_training  # imports Ultralytics: only once it is loaded

        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        dataset, mode = build_dataset(self, *args, **kwargs), bound.arguments["mode"]
        weights = getattr(self, "balance_data_weights", None) if mode == "train" else None
        multipliers = weights.multipliers(dataset.im_files) if weights and hasattr(dataset, "im_files") else None
        dataset = plugin_training.balance_train_dataset(self, dataset, mode, multipliers)
        balanced = isinstance(dataset, plugin_training.BalancedDatasetMixin)
        if balanced and multipliers and _rank() in {-1, 0}:
            from ultralytics.utils import LOGGER, colorstr

            strength = dataset.balance_schedule.strength
            lines = weights.report(
                dataset.balance_schedule.classes, dataset.im_files, dataset.balanced_probabilities, strength
            )
            LOGGER.info("\n".join(colorstr("balance: ") + line for line in lines))
        if balanced and self.args.plots and _rank() in {-1, 0}:
            schedule = dataset.balance_schedule
            settings = balance_settings(schedule.strength, schedule.agg, schedule)
            path = self.save_dir / "class_balance.png"
            plot_balance(dataset.balance_stats(), self.data["names"], path, schedule.strength, settings)
        return dataset

    build_balanced_dataset.__doc__ = build_dataset.__doc__
    return build_balanced_dataset


def _loader_settings(loader) -> dict[str, Any]:
    """Return the DataLoader arguments a built loader holds (all but how it orders indices), read from the loader.

    Every DataLoader keeps its constructor arguments as attributes of the same name, so whatever the stock function
    chose (workers, prefetch_factor, pin_memory_device, persistent_workers, collate_fn, seeded generator, ...) carries
    over to a loader rebuilt with another sampler, including settings a newer torch or Ultralytics adds.
    """
    from torch.utils.data import DataLoader

    ordering = {"self", "shuffle", "sampler", "batch_sampler"}
    names = [name for name in inspect.signature(DataLoader.__init__).parameters if name not in ordering]
    return {name: getattr(loader, name) for name in names if hasattr(loader, name)}


def _balanced_build_dataloader(build_dataloader):
    """Wrap Ultralytics' build_dataloader so that a balanced train dataset is loaded through its sampler."""
    signature = inspect.signature(build_dataloader)

    @_mark
    def build_dataloader_with_sampler(*args, **kwargs):
        loader = build_dataloader(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        dataset, shuffle, rank = (bound.arguments[k] for k in ("dataset", "shuffle", "rank"))
        from ultralytics_weighted.core import balanced_training  # imports Ultralytics: only once it is loaded

        sampler = balanced_training.train_sampler(dataset, rank) if shuffle else None
        if sampler is None:
            return loader
        # A DataLoader's sampler cannot be replaced once built: rebuild the stock loader with the balanced sampler and
        # every other setting it has. Releases before 8.4.158 start workers in the constructor: stop the stock ones.
        if hasattr(loader, "close"):
            loader.close()
        settings = _loader_settings(loader)
        # drop_last alone depends on the sampler's length: the stock rule (a shard smaller than one batch is kept)
        samples, batch = len(sampler), settings["batch_size"]
        settings["drop_last"] = bool(bound.arguments.get("drop_last")) and samples > batch > 0 and samples % batch != 0
        return type(loader)(**settings, sampler=sampler)

    build_dataloader_with_sampler.__doc__ = build_dataloader.__doc__
    return build_dataloader_with_sampler


# ---------------------------------------------------------------------------------------------------------------------
# The patch surface: every Ultralytics attribute this plugin replaces, and the only code that replaces them


@dataclass(frozen=True)
class Replacement:
    """One Ultralytics attribute replaced by a wrapper around the original.

    Attributes:
        module (str): Module holding the attribute (or its class), patched when first imported.
        owner (str | None): Class in `module` whose attribute is replaced, or None for a module attribute.
        name (str): Attribute name.
        wrap (Callable): Function `original -> replacement`.
        why (str): One line: what the replacement makes possible.
        needs (tuple[str, ...]): Parameters the original must take (feature detection); the row is not applied, and
            class_balance refused, if one is missing.
    """

    module: str
    owner: str | None
    name: str
    wrap: Callable[[Any], Any]
    why: str
    needs: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Return 'module:Owner.name', e.g. 'ultralytics.cfg:check_cfg'."""
        return f"{self.module}:{self.owner + '.' if self.owner else ''}{self.name}"


_DETECT, _RTDETR = "ultralytics.models.yolo.detect.train", "ultralytics.models.rtdetr.train"
_CLASSIFY = "ultralytics.models.yolo.classify.train"
# fmt: off
PATCH_SURFACE = (  # applied on supported releases
    Replacement("ultralytics.utils", "YAML", "load", _yaml_load_listing_keys,
                "`yolo cfg` and readers of default.yaml list the balancing keys", ("file",)),
    Replacement("ultralytics.cfg", None, "check_cfg", _check_cfg_with_balance,
                "bad balancing values fail in get_cfg, before any data is read", ("cfg",)),
    Replacement("ultralytics.cfg", None, "check_dict_alignment", _name_data_keys,
                "class_weights, source_weights or image_weights given as a train key: told it belongs in the data YAML",
                ("base", "custom")),
    Replacement("ultralytics.engine.trainer", "BaseTrainer", "check_resume", _check_after_resume,
                "conflicting settings are refused right after resume, before the run folder is made", ("self",)),
    Replacement("ultralytics.engine.trainer", "BaseTrainer", "_build_train_pipeline", _mark_train_pipeline,
                "QAT calibration loaders (quantize=8, built before the train pipeline) stay stock", ("self",)),
    Replacement(_DETECT, "DetectionTrainer", "build_dataset", _balanced_build_dataset,
                "detect, segment, pose and obb train datasets are balanced", ("self", "mode")),
    Replacement(_RTDETR, "RTDETRTrainer", "build_dataset", _balanced_build_dataset,
                "RT-DETR builds its own train dataset", ("self", "mode")),
    Replacement(_CLASSIFY, "ClassificationTrainer", "build_dataset", _balanced_build_dataset,
                "classification train datasets are balanced", ("self", "mode")),
    Replacement(_DETECT, None, "build_dataloader", _balanced_build_dataloader,
                "a balanced train dataset is loaded through its sampler (detect family, RT-DETR)",
                ("dataset", "shuffle", "rank")),
    Replacement(_CLASSIFY, None, "build_dataloader", _balanced_build_dataloader,
                "a balanced classification train dataset is loaded through its sampler",
                ("dataset", "shuffle", "rank")),
)
REFUSAL_SURFACE = (  # applied instead on releases outside SUPPORTED_ULTRALYTICS
    Replacement("ultralytics.cfg", None, "check_dict_alignment", _refuse_balance_keys,
                "a balancing key fails with the installed and supported releases named", ("base", "custom")),
)
# fmt: on
_ORIGINALS: dict[str, tuple[Any, str, Any]] = {}  # key -> (owner object, attribute name, original) of applied rows
_UNAVAILABLE: dict[str, str] = {}  # key -> why a row of PATCH_SURFACE could not be applied
_REGISTERED: set[str] = set()  # rows waiting for (or applied at) their module's import


def _missing(row: Replacement, holder) -> str | None:
    """Return what this Ultralytics lacks for `row` (feature detection), or None if the row can be applied."""
    if holder is None or row.name not in vars(holder):
        return f"{row.key} does not exist"
    original = vars(holder)[row.name]
    try:
        parameters = inspect.signature(getattr(original, "__func__", original)).parameters
    except (TypeError, ValueError):
        return f"{row.key} has no inspectable signature"
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return None
    lacking = [n for n in row.needs if n not in parameters and not (n == "self" and row.owner)]
    return f"{row.key} takes no {', '.join(lacking)}" if lacking else None


def _apply(row: Replacement, module) -> None:
    """Replace the row's attribute with its wrapper, unless done already or the original lacks what it needs."""
    holder = getattr(module, row.owner, None) if row.owner else module
    if row.key in _ORIGINALS or _is_patched(vars(holder).get(row.name) if holder is not None else None):
        return
    problem = _missing(row, holder)
    if problem:
        _UNAVAILABLE[row.key] = problem
        return
    original = vars(holder)[row.name]
    setattr(holder, row.name, row.wrap(original))
    _ORIGINALS[row.key] = (holder, row.name, original)
