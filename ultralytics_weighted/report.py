# ultralytics-weighted, AGPL-3.0 license
"""Human-readable reports of what balancing does (no Ultralytics import)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ultralytics_weighted.balance import AGGREGATIONS, balance_stats
from ultralytics_weighted.config import schedule_from_args


def compare_aggregations(
    classes: Sequence[np.ndarray], nc: int, strength: float = 1.0, floor: float = 0.0
) -> list[dict]:
    """Return the balance figures of uniform sampling ('none') and of every aggregation, for choosing one.

    Args:
        classes (Sequence[np.ndarray]): Class ids of each image's objects.
        nc (int): Number of classes.
        strength (float): Balancing strength in [0, 1].
        floor (float): Least expected draws of each image per epoch (`balance_floor`); 0 keeps N draws per epoch.

    Returns:
        (list[dict]): One row per aggregation: 'agg', 'imbalance', 'ess', 'coverage', 'max_repeats' (largest expected
            draws of one image per epoch), 'epoch_images' (images drawn per epoch) and 'shares' (expected share per
            class id, a list).

    Examples:
        >>> import numpy as np
        >>> labels = [np.array([0, 0]), np.array([0]), np.array([1])]
        >>> rows = compare_aggregations(labels, nc=2)
        >>> [(r["agg"], round(r["imbalance"], 2)) for r in rows[:2]]
        [('none', 3.0), ('mean', 1.0)]
        >>> [r["epoch_images"] for r in compare_aggregations(labels, 2, floor=1)][:2]  # every image at least once
        [3, 4]
    """
    rows = []
    for agg in ("none", *AGGREGATIONS):
        settings = {"class_balance": strength, "balance_agg": agg, "balance_floor": floor}
        schedule = None if agg == "none" else schedule_from_args(settings, classes, nc)
        p = schedule.probabilities(0) if schedule else None
        size = schedule.epoch_size if schedule else len(classes)
        stats = balance_stats(classes, nc, p, size)
        rows.append(
            {
                "agg": agg,
                "imbalance": stats["imbalance_after"],
                "ess": stats["ess"],
                "coverage": stats["coverage"],
                "max_repeats": float(size * p.max()) if p is not None and len(p) else 1.0,
                "epoch_images": size,
                "shares": stats["share_after"].tolist(),
                "instances": stats["instances"].tolist(),
            }
        )
    return rows


def format_aggregation_table(rows: list[dict], names: Sequence[str] | dict) -> list[str]:
    """Format `compare_aggregations` rows as table lines (one row per aggregation, shares per present class).

    Args:
        rows (list[dict]): Output of `compare_aggregations`.
        names (Sequence[str] | dict): Class names by class id.

    Returns:
        (list[str]): Table lines; an 'epoch' column (images drawn per epoch) is added when `balance_floor` grows it.
    """
    names = dict(enumerate(names)) if not isinstance(names, dict) else names
    present = [c for c, n in enumerate(rows[0]["instances"]) if n]
    labels = [str(names.get(c, c)) for c in present]
    widths = [max(7, len(label)) for label in labels]
    grown = any(r["epoch_images"] != rows[0]["epoch_images"] for r in rows)
    epoch = f"{'epoch':>8} " if grown else ""
    head = f"{'agg':<7} {'imbalance':>9} {'ESS':>5} {'coverage':>8} {'max repeats':>11} {epoch} "
    lines = [head + " ".join(f"{label:>{w}}" for label, w in zip(labels, widths))]
    for r in rows:
        shares = " ".join(f"{r['shares'][c]:>{w}.1%}" for c, w in zip(present, widths))
        epoch = f"{r['epoch_images']:>8,} " if grown else ""
        lines.append(
            f"{r['agg']:<7} {r['imbalance']:>9.2f} {r['ess']:>5.2f} {r['coverage']:>8.1%} {r['max_repeats']:>11.2f} "
            f"{epoch} " + shares
        )
    return lines


def plot_balance(
    stats: dict, names: Sequence[str] | dict, path: str | Path, strength: float = 1.0, settings: str = ""
) -> Path:
    """Save a bar chart of each class's share of instances in the data vs its expected share per epoch.

    Args:
        stats (dict): Output of `ultralytics_weighted.balance.balance_stats` for the chosen settings.
        names (Sequence[str] | dict): Class names by class id.
        path (str | Path): PNG file to write.
        strength (float): Balancing strength; marks the target share, proportional to instances ** (1 - strength).
        settings (str): Text naming the settings, e.g. 'class_balance=1 balance_agg=mean', shown in the title.

    Returns:
        (Path): The written file.
    """
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, safe in trainers and worker processes

    names = dict(enumerate(names)) if not isinstance(names, dict) else names
    present = np.flatnonzero(stats["instances"])
    labels = [str(names.get(c, c)) for c in present]
    before, after = stats["share_before"][present] * 100, stats["share_after"][present] * 100
    x = np.arange(len(present))
    fig = Figure(figsize=(max(6.0, 0.6 * len(present) + 2.5), 4.5), tight_layout=True)
    ax = fig.add_subplot()
    width = 0.4
    bars_before = ax.bar(x - width / 2, before, width, label="share of instances in the data", color="#9e9e9e")
    bars_after = ax.bar(x + width / 2, after, width, label="expected share per epoch (balanced)", color="#1f77b4")
    if len(present) <= 30:  # value labels stay readable up to about 30 classes
        ax.bar_label(bars_before, fmt="%.1f", fontsize=7, padding=1)
        ax.bar_label(bars_after, fmt="%.1f", fontsize=7, padding=1)
    target = stats["instances"][present] ** (1.0 - strength)
    ax.scatter(
        x + width / 2,
        100 * target / target.sum(),
        marker="_",
        s=600,
        color="#d62728",
        zorder=3,
        label=f"target share (strength {strength:g})",
    )
    ax.set_xticks(x, labels, rotation=45 if len(present) > 8 else 0, ha="right" if len(present) > 8 else "center")
    ax.set_ylabel("share of object instances (%)")
    figures = (
        f"max/min class share {stats['imbalance_before']:.2f} -> {stats['imbalance_after']:.2f}, "
        f"ESS {stats['ess']:.2f}, coverage {stats['coverage']:.0%}"
        if present.size
        else "no labels: nothing to balance"
    )
    ax.set_title(f"{settings}\n{figures}".strip(), fontsize=10)
    ax.set_ylim(0, 1.35 * max(before.max(initial=0), after.max(initial=0), 1e-9))  # headroom keeps the legend off
    ax.legend(fontsize=8, frameon=False, loc="upper right")
    ax.spines[["top", "right"]].set_visible(False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    return path
