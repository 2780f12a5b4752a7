# ultralytics-weighted, AGPL-3.0 license
"""The one place that touches Ultralytics internals, through one declared table of what it replaces (PATCH_SURFACE).

`activate()` is called by the startup hook right after `import ultralytics`, or by `import ultralytics_weighted`.

- On a supported release (`SUPPORTED_ULTRALYTICS`) it adds the balancing keys to the default configuration at once
  and applies every row of `PATCH_SURFACE` when its module is first imported (the trainer modules load lazily, so a
  plain `import ultralytics` stays as fast as stock). A row whose Ultralytics function lacks what the wrapper needs (a
  parameter, a method) is not applied, and `class_balance` is then refused before training with the reason.
- On any other release it adds nothing but `REFUSAL_SURFACE`: stock commands work as without the plugin, and a
  balancing key fails before training with one message naming the installed and the supported releases.

Besides the table, balanced training changes two things on objects it builds itself, never on Ultralytics' classes or
modules: the train dataset instance switches to a balanced subclass (`make_balanced`), and its mix transforms get a
weighted `get_indexes` instance attribute. `deactivate()` undoes the table and the keys (tests). The one Ultralytics
function wrapped elsewhere is `check_dict_alignment`, by the switched-off startup hook (it must not import this).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from ultralytics_weighted.config import AFTER_KEY, DEFAULTS, check_balance_args
from ultralytics_weighted.report import balance_settings, plot_balance
from ultralytics_weighted_hook import when_imported

# As in pyproject.toml (tests/test_host.py checks it), not read from the installed metadata, which reorders the bounds
# in messages and lags pyproject.toml in an editable install; the floor is the first release with everything used
SUPPORTED_ULTRALYTICS = ">=8.4.130,<8.5"
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
# Supported releases


def is_supported(version: str, supported: str = SUPPORTED_ULTRALYTICS) -> bool:
    """Return whether an Ultralytics version lies in a PEP 440 range, its development releases included.

    The one release check, with `packaging`: Ultralytics' `check_version` takes such ranges too, but importing it
    imports Ultralytics, which `check_host` must not do yet.

    Examples:
        >>> is_supported("8.4.190"), is_supported("8.4.129"), is_supported("8.5.0"), is_supported("8.4.200.dev1")
        (True, False, False, True)
    """
    try:
        return SpecifierSet(supported).contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def package_version(package: Path) -> str | None:
    """Return `__version__` of an ultralytics package folder, read from its `__init__.py` without importing it."""
    init = package / "__init__.py"
    text = init.read_text(encoding="utf-8") if init.is_file() else ""
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.M)
    return match.group(1) if match else None


class UnsupportedUltralyticsError(RuntimeError):
    """Class-balanced training was asked for with an Ultralytics release or feature set the plugin cannot serve."""


def unsupported_message(version: str, reason: str | None = None) -> str:
    """Return the one message refusing the balancing keys, naming the installed and the supported releases."""
    from ultralytics_weighted import __version__

    why = reason or f"ultralytics {version} is installed, but ultralytics-weighted {__version__} supports " + (
        f"ultralytics{SUPPORTED_ULTRALYTICS}"
    )
    return (
        f"class_balance is not available: {why}. Install a supported release (pip install "
        f"'ultralytics{SUPPORTED_ULTRALYTICS}'), or drop {', '.join(DEFAULTS)} to train without balancing; "
        "everything else in Ultralytics works as without ultralytics-weighted."
    )


def check_host() -> None:
    """Raise UnsupportedUltralyticsError unless the installed Ultralytics can be balanced (used by the commands).

    The version is read from the package's `__init__.py` without importing it, so that a command can still decide
    where Ultralytics' log goes before Ultralytics is imported.

    Raises:
        UnsupportedUltralyticsError: If the release is outside `SUPPORTED_ULTRALYTICS`.
    """
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    version = package_version(Path(spec.origin).parent) if spec and spec.origin else None
    if version and not is_supported(version):
        raise UnsupportedUltralyticsError(unsupported_message(version))


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
    _insert_default_keys(utils.DEFAULT_CFG_DICT)
    for k, v in DEFAULTS.items():
        setattr(utils.DEFAULT_CFG, k, v)


def _remove_default_keys(utils) -> None:
    for k in DEFAULTS:
        utils.DEFAULT_CFG_DICT.pop(k, None)
        vars(utils.DEFAULT_CFG).pop(k, None)


def _yaml_load_listing_keys(load):
    """Wrap `YAML.load` (a classmethod) so that loading the default config lists the balancing keys too."""
    from ultralytics.utils import DEFAULT_CFG_PATH

    load, default_cfg_path = load.__func__, Path(DEFAULT_CFG_PATH).resolve()

    @_mark
    def load_listing_balance_keys(cls, file="data.yaml", *args, **kwargs):
        data = load(cls, file, *args, **kwargs)
        if isinstance(file, (str, Path)) and isinstance(data, dict) and Path(file).resolve() == default_cfg_path:
            _insert_default_keys(data)
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
        ValueError: If `rect=True` is combined with balancing.
    """
    from ultralytics_weighted import plugin_training  # imports Ultralytics: only once it is loaded

    if _UNAVAILABLE and getattr(trainer.args, "class_balance", False):
        import ultralytics

        reason = "; ".join(_UNAVAILABLE.values())
        raise UnsupportedUltralyticsError(unsupported_message(ultralytics.__version__, reason))
    supported = _is_patched(getattr(type(trainer), "build_dataset", None))
    plugin_training.check_class_balance(trainer.args, type(trainer).__name__, supported)
    trainer.balance_data_weights = data_weights(trainer.args)


def data_weights(args):
    """Return the checked weights of the data YAML (`user_weights.DataWeights`), or None; bad ones raise ValueError."""
    from ultralytics_weighted.user_weights import DataWeights

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
        from ultralytics_weighted import plugin_training  # imports Ultralytics: only once it is loaded

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
        from ultralytics_weighted import plugin_training  # imports Ultralytics: only once it is loaded

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
                dataset.balance_schedule.classes, dataset.im_files, dataset.image_probabilities, strength
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
# Labels for `ultralytics-weighted stats`


def check_local_folder(data: str) -> None:
    """Refuse a classification `data` that Ultralytics would try to download although it names a local folder.

    Ultralytics looks a folder up as given, then under its datasets folder, and downloads `<name>.zip` from its assets
    when neither exists. A path (with a folder separator) that does not exist is a typo, never a download; a bare name
    is only downloaded when online (`YOLO_OFFLINE` unset).

    Args:
        data (str): The `data` value of a classification dataset.

    Raises:
        FileNotFoundError: If `data` is a path that does not exist, or a bare name not found while offline.
    """
    from ultralytics.utils import DATASETS_DIR, ONLINE

    text = str(data)
    if text.lower().startswith(("http:/", "https:/")) or text.lower().endswith((".zip", ".tar", ".gz")):
        return  # an archive or URL: a download (or unpacking) is what was asked for
    path = Path(text).expanduser()
    if path.is_dir() or (DATASETS_DIR / path).is_dir():
        return
    if len(path.parts) > 1:
        raise FileNotFoundError(f"data={text}: no such folder (a local path is never downloaded).")
    if not ONLINE:
        raise FileNotFoundError(
            f"data={text}: no such folder here or in {DATASETS_DIR}, and it is not downloaded offline (YOLO_OFFLINE)."
        )


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
    from ultralytics_weighted.core import balanced_training

    dataset, names, task = load_label_dataset(overrides, split)
    return balanced_training.dataset_label_classes(dataset), names, task


def load_label_dataset(overrides: dict, split: str = "train") -> tuple[Any, dict, str]:
    """Build a split's dataset the way training does (labels only, no image loaded), for `load_label_classes`.

    Args:
        overrides (dict): Ultralytics train keys, at least `data`; `task`, `classes`, `fraction`, `single_cls` count.
        split (str): 'train', 'val' or 'test'.

    Returns:
        dataset (YOLODataset | ClassificationDataset): The built dataset (`im_files` and labels in training's order).
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
        check_local_folder(cfg.data)
        info = check_cls_dataset(cfg.data, split=split)
        cfg.fraction = get_split_fraction(cfg.fraction, split)
        # newer releases align the class folders to the data's names; older ones take no `names`
        names = {"names": info["names"]} if "names" in inspect.signature(ClassificationDataset).parameters else {}
        dataset = ClassificationDataset(str(info[split]), cfg, augment=False, prefix=split, **names)
    else:
        info = check_det_dataset(cfg.data)
        if not info.get(split):
            raise FileNotFoundError(f"data={cfg.data} has no '{split}' split.")
        try:
            dataset = build_yolo_dataset(cfg, info[split], cfg.batch, info, mode="train" if split == "train" else "val")
        except ValueError as e:  # Ultralytics names its label cache, which it does not write when there are no labels
            if not (found := re.search(r"No labels found in (\S+)\.cache", str(e))):
                raise
            raise FileNotFoundError(
                f"no labels for the {split} images in {found.group(1)}/ (Ultralytics reads one .txt per image from a "
                "labels/ folder beside images/: https://docs.ultralytics.com/datasets)."
            ) from None
    names = {0: "item"} if cfg.single_cls else info["names"]  # the datasets map every label to 0 with single_cls
    return dataset, names, cfg.task


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


def activate() -> None:
    """Activate class-balanced training in this process (idempotent).

    Imports `ultralytics` (and so torch) if it has not been imported yet; the trainer modules are patched when they are
    first imported. On an unsupported Ultralytics release only the refusal of the balancing keys is installed.

    Examples:
        >>> from ultralytics_weighted.integration import activate
        >>> activate()
        >>> from ultralytics.cfg import get_cfg
        >>> get_cfg(overrides={"class_balance": 0.5, "balance_agg": "sum"}).class_balance
        0.5
    """
    import ultralytics

    if (Path(ultralytics.__file__).parent / "data" / "balance.py").exists():
        return  # Ultralytics already balances natively (the patch series is applied): nothing to add
    supported = is_supported(ultralytics.__version__)
    if supported:
        import ultralytics.utils

        _add_default_keys(ultralytics.utils)
    for row in PATCH_SURFACE if supported else REFUSAL_SURFACE:
        if row.key not in _REGISTERED:
            _REGISTERED.add(row.key)
            when_imported(row.module, lambda module, row=row: _apply(row, module))


def deactivate() -> None:
    """Undo `activate()`: restore every replaced attribute and remove the keys (rows not yet applied stay pending)."""
    import ultralytics.utils

    for key, (holder, name, original) in list(_ORIGINALS.items()):
        setattr(holder, name, original)
        del _ORIGINALS[key]
    _REGISTERED.clear()
    _UNAVAILABLE.clear()
    _remove_default_keys(ultralytics.utils)
