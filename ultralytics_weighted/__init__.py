# ultralytics-weighted, AGPL-3.0 license
"""Class-balanced training for Ultralytics YOLO: `class_balance` and `balance_agg` as ordinary train keys.

Importing this package activates the plugin in the current process as soon as `ultralytics` is imported, at once if it
already is: the same as the installed startup hook does, but also with `ULTRALYTICS_WEIGHTED_HOOK=0`. Importing it
does not import `ultralytics` itself, so a command can first decide where Ultralytics' log goes.

Examples:
    >>> import ultralytics_weighted  # noqa: F401
    >>> from ultralytics import YOLO
    >>> YOLO("yolo11n.yaml").train(data="data.yaml", class_balance=True, balance_agg="sum")  # doctest: +SKIP
"""

from __future__ import annotations

from ultralytics_weighted.core.balance import image_probabilities
from ultralytics_weighted.core.sampler import BalancedSampler
from ultralytics_weighted.integration import activate
from ultralytics_weighted.schedule import ALL_AGGREGATIONS, BalanceSchedule, balance_stats, weighted_probabilities
from ultralytics_weighted_hook import when_imported

__version__ = "0.1.0"
__all__ = (
    "ALL_AGGREGATIONS",
    "BalanceSchedule",
    "BalancedSampler",
    "__version__",
    "activate",
    "balance_stats",
    "image_probabilities",
    "weighted_probabilities",
)

when_imported("ultralytics", lambda ultralytics: activate())
