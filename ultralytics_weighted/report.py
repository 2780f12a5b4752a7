# ultralytics-weighted, AGPL-3.0 license
"""Human-readable reports of what balancing does (no Ultralytics import)."""

from __future__ import annotations

from collections.abc import Sequence


def format_balance_table(stats: dict, names: Sequence[str] | dict) -> list[str]:
    """Format `weights.balance_stats` output as table lines: one row per class, then a summary line.

    Args:
        stats (dict): Output of `ultralytics_weighted.balance.balance_stats`.
        names (Sequence[str] | dict): Class names by class id.

    Returns:
        (list[str]): Lines without a prefix, ready to log.

    Examples:
        >>> import numpy as np
        >>> from ultralytics_weighted.balance import balance_stats, image_weights
        >>> labels = [np.array([0, 0]), np.array([0]), np.array([1])]
        >>> lines = format_balance_table(balance_stats(labels, 2, image_weights(labels, 2)), ["car", "bus"])
        >>> print(lines[-1])
        max/min class share 3.00 -> 1.00, effective sample size 0.76, coverage 73.3% of images per epoch
    """
    names = dict(enumerate(names)) if not isinstance(names, dict) else names
    width = max([len("class")] + [len(str(names.get(c, c))) for c in range(len(stats["instances"]))])
    lines = [f"{'class':>{width}} {'instances':>10} {'images':>8} {'share before':>13} {'share per epoch':>16}"]
    for c, (n, m, before, after) in enumerate(
        zip(stats["instances"], stats["images"], stats["share_before"], stats["share_after"])
    ):
        if n:  # classes without instances are never drawn and do not count
            lines.append(f"{names.get(c, c)!s:>{width}} {n:>10d} {m:>8d} {before:>13.1%} {after:>16.1%}")
    lines.append(
        f"max/min class share {stats['imbalance_before']:.2f} -> {stats['imbalance_after']:.2f}, "
        f"effective sample size {stats['ess']:.2f}, coverage {stats['coverage']:.1%} of images per epoch"
    )
    return lines
