# ultralytics-weighted, AGPL-3.0 license
"""Class-balanced training for Ultralytics YOLO: `class_balance` and `balance_agg` as ordinary train keys.

Importing this package activates the plugin in the current process as soon as `ultralytics` is imported, at once if it
already is: the same as the installed startup hook does, but also with `ULTRALYTICS_WEIGHTED_HOOK=0`. Importing it
imports neither `ultralytics` nor torch, so a command can first decide where Ultralytics' log goes; its public names
load their module on first use.

The package is built in four layers, each a folder: `core/` (the modules the upstream patch series ships), `extensions/`
(what the plugin adds, numpy only), `host/` (everything that touches Ultralytics) and `commands/` (the command line).
Importing any module of the package activates nothing beyond what this `__init__` arms, and imports neither
Ultralytics nor torch unless that module itself needs them (the host, the sampler).

Examples:
    >>> import ultralytics_weighted  # noqa: F401
    >>> from ultralytics import YOLO
    >>> YOLO("yolo11n.yaml").train(data="data.yaml", class_balance=True, balance_agg="sum")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

import ultralytics_weighted_hook

__version__ = "0.1.0"
_SCHEDULE = "ultralytics_weighted.extensions.schedule"
_PUBLIC = {  # public name -> the module defining it, imported on first use
    "ALL_AGGREGATIONS": "ultralytics_weighted.extensions.config",
    "BalanceSchedule": _SCHEDULE,
    "BalancedSampler": "ultralytics_weighted.core.sampler",
    "activate": "ultralytics_weighted.host.activation",
    "balance_stats": _SCHEDULE,
    "image_probabilities": "ultralytics_weighted.core.balance",
    "weighted_probabilities": _SCHEDULE,
}
__all__ = ("__version__", *_PUBLIC)


def __getattr__(name: str):
    """Import a public name's module on first use (PEP 562), so that importing the package stays light."""
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})


ultralytics_weighted_hook.activate_with_ultralytics()
