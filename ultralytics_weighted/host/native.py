# ultralytics-weighted, AGPL-3.0 license
"""The plugin on a native core: an Ultralytics that already has the patch series (`ultralytics/data/balance.py`).

There the core is Ultralytics' own: `class_balance` and `balance_agg` are in its default.yaml and `check_cfg`, its
trainers end `build_dataset()` with its `balance_train_dataset` and pass `train_sampler(dataset, rank)` to
`build_dataloader(..., sampler=)`, and `BaseTrainer` sets the sampler's epoch and calls `check_balanced_loader`. The
plugin adds its extensions on top (`balance_agg=auto`, `balance_floor`, `balance_ramp`, `balance_start`, `balance_tau`,
the data YAML's weights, weighted mix partners, the train-start table) through `NATIVE_SURFACE`: `PATCH_SURFACE`
without its loader rows (the native trainers already load a balanced dataset through its sampler) and with the rows
below, which hand the native balancing step to the plugin's. The plugin then uses the native core modules
(`core_module`), so that one `BalancedSampler` class draws in the process.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ultralytics_weighted.host.surface import PATCH_SURFACE, Replacement, _mark

NATIVE_MODULE = "ultralytics/data/balance.py"  # the series' first module: present in a patched tree


def is_native_core() -> bool:
    """Return whether the imported Ultralytics has the class-balance core natively (the patch series is applied).

    Examples:
        >>> import ultralytics
        >>> is_native_core() == (Path(ultralytics.__file__).parent / "data" / "balance.py").exists()
        True
    """
    import ultralytics

    return (Path(ultralytics.__file__).parents[1] / NATIVE_MODULE).exists()


def core_module(name: str):
    """Return the core module `name` ('balance', 'sampler' or 'balanced_training') that training uses.

    On a native core it is Ultralytics' own (`ultralytics.data.NAME`), the one its trainers call; otherwise the plugin's
    copy (`ultralytics_weighted.core.NAME`). The two are the same file, byte for byte.

    Args:
        name (str): The module's name in `ultralytics_weighted/core/`.

    Returns:
        (module): The imported module.
    """
    package = "ultralytics.data" if is_native_core() else "ultralytics_weighted.core"
    return importlib.import_module(f"{package}.{name}")


def _leave_to_plugin(balance_train_dataset):
    """Replace the native trainers' last `build_dataset()` step: the plugin's `build_dataset` wrapper balances instead.

    The native step computes the core's probabilities (no `balance_agg=auto`, floor, ramp, start or data weights) and
    logs its own line; the plugin's wrapper, applied around the same `build_dataset()`, does all of it with its table.
    """

    @_mark
    def leave_balancing_to_the_plugin(trainer, dataset, mode: str = "train"):
        return dataset

    leave_balancing_to_the_plugin.__doc__ = balance_train_dataset.__doc__
    return leave_balancing_to_the_plugin


def _check_balanced_loader_of_balanced_data(check_balanced_loader):
    """Wrap the native `check_balanced_loader` so that a train set the plugin left stock on purpose is not refused.

    The plugin refuses `rect=True` and trainers that do not balance before the run folder is made (`check_trainer`);
    it trains the stock dataset, and says why, where nothing is to be balanced (one class, `single_cls=True`). The
    native check still refuses a loader that does not draw a dataset the plugin balanced (e.g. a custom
    `get_dataloader` without the sampler).
    """

    @_mark
    def check_loader_of_a_balanced_dataset(trainer, *args, **kwargs):
        if hasattr(getattr(trainer.train_loader, "dataset", None), "balanced_sampling"):
            return check_balanced_loader(trainer, *args, **kwargs)

    check_loader_of_a_balanced_dataset.__doc__ = check_balanced_loader.__doc__
    return check_loader_of_a_balanced_dataset


_DETECT, _RTDETR = "ultralytics.models.yolo.detect.train", "ultralytics.models.rtdetr.train"
_CLASSIFY = "ultralytics.models.yolo.classify.train"
# fmt: off
NATIVE_SURFACE = (*(row for row in PATCH_SURFACE if row.name != "build_dataloader"),  # applied on a native core
    Replacement(_DETECT, None, "balance_train_dataset", _leave_to_plugin,
                "native core: the plugin balances detect-family train datasets (extensions, data weights, table)",
                ("trainer", "dataset", "mode")),
    Replacement(_RTDETR, None, "balance_train_dataset", _leave_to_plugin,
                "native core: the plugin balances RT-DETR train datasets", ("trainer", "dataset", "mode")),
    Replacement(_CLASSIFY, None, "balance_train_dataset", _leave_to_plugin,
                "native core: the plugin balances classification train datasets", ("trainer", "dataset", "mode")),
    Replacement("ultralytics.engine.trainer", None, "check_balanced_loader", _check_balanced_loader_of_balanced_data,
                "native core: a train set the plugin leaves stock on purpose (one class, single_cls) is not refused",
                ("trainer",)),
)
# fmt: on
