# ultralytics-weighted, AGPL-3.0 license
"""The text and plots of what balancing does: the train-start table, warnings, the aggregation report.

The numbers come from `schedule.py`; this module only words and draws them (no Ultralytics import).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ultralytics_weighted.core.balance import flatten_labels
from ultralytics_weighted.extensions.auto import target_shares
from ultralytics_weighted.extensions.config import ALL_AGGREGATIONS
from ultralytics_weighted.extensions.keys import DEFAULTS
from ultralytics_weighted.extensions.repeat_factors import images_holding
from ultralytics_weighted.extensions.schedule import FLOOR_UNDOES_WARNING, BalanceSchedule, schedule_from_args
from ultralytics_weighted.extensions.shares import balance_stats, class_counts, too_few_classes


def balance_settings(strength: float, agg: str | None, schedule: BalanceSchedule | None = None) -> str:
    """Return the settings as train keys, e.g. 'class_balance=1 balance_agg=mean balance_floor=1' (unset keys left out).

    The threshold of `balance_agg=rfs` is always named with it, and with other aggregations where it is not the default
    (`stats`, whose rfs row uses it).

    Examples:
        >>> balance_settings(0.5, "sum")
        'class_balance=0.5 balance_agg=sum'
        >>> balance_settings(1.0, "rfs", BalanceSchedule([np.array([0])], 1, agg="rfs"))
        'class_balance=1 balance_agg=rfs balance_rfs_threshold=0.001'
    """
    text = f"class_balance={strength:g}" + (f" balance_agg={agg}" if agg else "")
    if schedule:
        text += "".join(
            f" {k}={v:g}"
            for k, v in (
                ("balance_floor", schedule.floor),
                ("balance_ramp", schedule.ramp),
                ("balance_start", schedule.start),
            )
            if v
        )
        if schedule.agg == "rfs" or schedule.threshold != DEFAULTS["balance_rfs_threshold"]:
            text += f" balance_rfs_threshold={schedule.threshold:g}"
    return text


def balance_report(
    classes: Sequence[np.ndarray],
    names: dict | Sequence[str],
    p: np.ndarray,
    strength: float,
    agg: str,
    task: str | None = "detect",
    schedule: BalanceSchedule | None = None,
) -> list[str]:
    """Return the lines logged at train start: settings, one row per class, the summary, and what does not apply.

    Args:
        classes (Sequence[np.ndarray]): Class ids of each image's objects, in dataset order.
        names (dict | Sequence[str]): Class names by class id.
        p (np.ndarray): Sampling probability of each image.
        strength (float): Balancing strength (`class_balance`).
        agg (str): Aggregation of the image weights (`balance_agg`).
        task (str, optional): Training task; with 'classify' a line says that `agg` does not apply (one label per
            image); None leaves that line out.
        schedule (BalanceSchedule, optional): The epoch schedule `p` belongs to (`p` = its balanced probabilities): its
            figures (`BalanceSchedule.figures`) are shown, with the epoch length, the late start and the ramp.

    Returns:
        (list[str]): Lines without a prefix: per class instances, images, share of instances before and expected
            share per epoch after; then max/min class share before -> after, ESS, coverage and a grown epoch's length.

    Examples:
        >>> labels = [np.array([0, 0]), np.array([0]), np.array([1])]
        >>> from ultralytics_weighted.core.balance import image_probabilities
        >>> lines = balance_report(labels, ["car", "bus"], image_probabilities(labels, 2), 1.0, "mean")
        >>> print(lines[-1])
        max/min class share 3.00 -> 1.00, effective sample size 0.76, coverage 73.3% of images per epoch
        >>> schedule = BalanceSchedule(labels, 2, floor=1.0)  # every image drawn at least once: the epoch grows
        >>> lines = balance_report(labels, ["car", "bus"], schedule.probabilities(0), 1.0, "mean", schedule=schedule)
        >>> print(lines[0].split(":")[0], "|", lines[-1].split(", coverage ")[1])
        class_balance=1 balance_agg=mean balance_floor=1 | 100.0% of images per epoch, epoch 3 -> 4 images (+33%)
    """
    names = names if isinstance(names, dict) else dict(enumerate(names))
    settings = balance_settings(strength, agg, schedule)
    if reason := nothing_to_balance(classes, names):
        return [f"{settings}: {len(classes)} train images; {reason}"]
    stats = schedule.figures if schedule else balance_stats(classes, len(names), p)
    w = max([len("class")] + [len(str(names.get(c, c))) for c in range(len(stats["instances"]))])
    backgrounds = sum(len(c) == 0 for c in classes)
    kept = f" ({backgrounds} backgrounds keep their share)" if backgrounds else ""
    lines = [
        f"{settings}: {len(classes)} train images{kept}, expected share of each class per epoch:",
        f"{'class':>{w}} {'instances':>10} {'images':>8} {'share before':>13} {'share per epoch':>16}",
    ]
    for c, (n, m, before, after) in enumerate(
        zip(stats["instances"], stats["images"], stats["share_before"], stats["share_after"])
    ):
        if n:  # classes without instances are never drawn and do not count
            lines.append(f"{names.get(c, c)!s:>{w}} {n:>10d} {m:>8d} {before:>13.1%} {after:>16.1%}")
    size, n = stats["epoch_size"], len(classes)
    grown = f", epoch {n:,} -> {size:,} images ({size / n - 1:+.0%})" if size != n else ""
    lines.append(
        f"max/min class share {stats['imbalance_before']:.2f} -> {stats['imbalance_after']:.2f}, "
        f"effective sample size {stats['ess']:.2f}, coverage {stats['coverage']:.1%} of images per epoch{grown}"
    )
    lines += schedule_lines(schedule) if schedule else []
    if task == "classify":
        lines.append(
            f"balance_agg={agg} does not apply to classification (one label per image): every value gives the same."
        )
    if absent := [str(names[c]) for c in range(len(names)) if not stats["instances"][c]]:
        lines.append(f"no training images for {', '.join(absent)}: never drawn, shares are over the other classes.")
    return lines


def nothing_to_balance(classes: Sequence[np.ndarray], names: dict | Sequence[str]) -> str | None:
    """Return why class-balanced sampling cannot change what an epoch shows, or None when it can.

    Balancing moves draws between classes, so it needs labels of at least two classes: with no labelled image (all
    backgrounds, or `classes=` filtering every label out) or a single labelled class, the probabilities are uniform
    for every aggregation, and training samples as without `class_balance`.

    Args:
        classes (Sequence[np.ndarray]): Class ids of each image's objects, one array per image.
        names (dict | Sequence[str]): Class names by class id.

    Returns:
        (str | None): A sentence for the log saying so, or None if at least two classes have labels.

    Examples:
        >>> nothing_to_balance([np.array([1]), np.array([1, 1])], ["car", "bus"]).split(":")[0]
        'only one class has labels, so there is nothing to balance (every label is bus)'
        >>> nothing_to_balance([np.array([0]), np.array([1])], ["car", "bus"]) is None
        True
    """
    names = names if isinstance(names, dict) else dict(enumerate(names))
    counts = class_counts(*flatten_labels(classes), len(names))
    if not too_few_classes(counts):
        return None
    present = np.flatnonzero(counts)
    if len(present):
        why = f"only one class has labels, so there is nothing to balance (every label is {names.get(int(present[0]))})"
    else:
        why = f"no train image has labels ({len(classes)} images, all backgrounds), so there is nothing to balance"
    return f"{why}: every image is drawn once per epoch, as without class_balance."


def rfs_warning(classes: Sequence[np.ndarray], names: Sequence[str] | dict, threshold: float) -> str | None:
    """Return a warning when LVIS repeat factors at `threshold` repeat no image, else None.

    r_c > 1 only for a class in fewer than a fraction t of the images. LVIS's t = 0.001 is meant for datasets of
    100k images: below 1,000 images every class that has a label is in at least 0.1% of them, and `balance_agg=rfs`
    samples as stock.

    Examples:
        >>> labels = [np.array([0])] * 9 + [np.array([1, 1])]  # bus: in 1 image of 10
        >>> print(rfs_warning(labels, ["car", "bus"], 0.001))  # doctest: +NORMALIZE_WHITESPACE
        balance_agg=rfs repeats no image at balance_rfs_threshold=0.001: it repeats the classes in fewer than that
        fraction of the images, and the rarest, bus, is in 10.0% (1 of 10), so every image is drawn once per epoch, as
        stock. A balance_rfs_threshold above 0.1 repeats bus.
        >>> rfs_warning(labels, ["car", "bus"], 0.4) is None  # bus: r = sqrt(0.4 / 0.1) = 2
        True
    """
    names = names if isinstance(names, dict) else dict(enumerate(names))
    if not classes:
        return None
    cls, lengths = flatten_labels(classes)
    holding = images_holding(np.repeat(np.arange(len(lengths)), lengths), cls, len(names))  # f_c's numerator
    present = np.flatnonzero(holding)
    if not len(present):
        return None
    rarest = present[np.argmin(holding[present])]
    fraction = holding[rarest] / len(classes)
    if threshold > fraction:
        return None
    return (
        f"balance_agg=rfs repeats no image at balance_rfs_threshold={threshold:g}: it repeats the classes in fewer "
        f"than that fraction of the images, and the rarest, {names.get(int(rarest))}, is in {fraction:.1%} "
        f"({holding[rarest]} of {len(classes)}), so every image is drawn once per epoch, as stock. A "
        f"balance_rfs_threshold above {fraction:.3g} repeats {names.get(int(rarest))}."
    )


def floor_warning(schedule: BalanceSchedule) -> str | None:
    """Return a warning when a schedule's floor takes back more than FLOOR_UNDOES_WARNING of the balance, else None.

    Examples:
        >>> labels = [np.array([0, 0, 1])] + [np.array([0])] * 2 + [np.array([1])]
        >>> schedule = BalanceSchedule(labels, 2, 1.0, "sum", floor=1.0)
        >>> print(floor_warning(schedule))  # doctest: +NORMALIZE_WHITESPACE
        balance_floor=1 takes back 100% of the balance: max/min class share 2.00 stock, 1.67 without the floor,
        2.00 with it. A lower balance_floor (or a weaker class_balance) keeps more of it.
        >>> floor_warning(BalanceSchedule(labels, 2, 1.0, "sum", floor=0.25)) is None
        True
    """
    undone, stock, without, floored = schedule.floor_effect()
    if undone <= FLOOR_UNDOES_WARNING:
        return None
    return (
        f"balance_floor={schedule.floor:g} takes back {undone:.0%} of the balance: max/min class share {stock:.2f} "
        f"stock, {without:.2f} without the floor, {floored:.2f} with it. A lower balance_floor (or a weaker "
        "class_balance) keeps more of it."
    )


def schedule_lines(schedule: BalanceSchedule) -> list[str]:
    """Return what a schedule adds to the train-start table: the late start and the ramp, one line each."""
    lines = []
    if schedule.start:
        stock = "epoch 1" if schedule.start_epoch == 1 else f"epochs 1-{schedule.start_epoch}"
        grown = (
            f" ({schedule.epoch_size:,} uniform draws per epoch)"
            if schedule.epoch_size != len(schedule.classes)
            else ""
        )
        lines.append(
            f"balance_start={schedule.start:g}: stock sampling in {stock}{grown}, balanced from epoch "
            f"{schedule.start_epoch + 1} of {schedule.epochs}"
            if schedule.start_epoch
            else f"balance_start={schedule.start:g}: {schedule.start:g} x {schedule.epochs} epochs leaves no stock "
            f"epoch, balanced from epoch 1 of {schedule.epochs}"
        )
    if schedule.ramp_epochs > 0:
        lines.append(
            f"balance_ramp={schedule.ramp:g}: class_balance rises linearly from 0 in epoch {schedule.start_epoch + 1} "
            f"to {schedule.strength:g} from epoch {schedule.full_strength_epoch + 1} of {schedule.epochs} on"
        )
    if lines:
        lines[-1] += "; the figures above are those of the balanced epochs."
    return lines


def compare_aggregations(
    classes: Sequence[np.ndarray],
    nc: int,
    strength: float = 1.0,
    floor: float = 0.0,
    multipliers: dict | None = None,
    threshold: float = DEFAULTS["balance_rfs_threshold"],
) -> list[dict]:
    """Return the balance figures of `class_balance` off ('none') and of every aggregation, for choosing one.

    Each row is what training draws in its balanced epochs with these settings: 'none' is uniform sampling, or with
    the data YAML's weights (`multipliers`) the draws by those weights alone, as training without `class_balance`.

    Args:
        classes (Sequence[np.ndarray]): Class ids of each image's objects.
        nc (int): Number of classes.
        strength (float): Balancing strength in [0, 1].
        floor (float): Least expected draws of each image per epoch (`balance_floor`); 0 keeps N draws per epoch.
        multipliers (dict, optional): Weights from the data YAML (`DataWeights.multipliers`), applied in every row;
            the 'rfs' row, which takes no weights, is left out with them.
        threshold (float): LVIS' threshold t of the 'rfs' row (`balance_rfs_threshold`).

    Returns:
        (list[dict]): One row per aggregation: 'agg', 'imbalance', 'ess', 'coverage', 'max_draws' (largest expected
            draws of one image per epoch), 'epoch_size' (images drawn per epoch) and 'shares' (expected share per
            class id, a list).

    Examples:
        >>> import numpy as np
        >>> labels = [np.array([0, 0]), np.array([0]), np.array([1])]
        >>> rows = compare_aggregations(labels, nc=2)
        >>> [(r["agg"], round(r["imbalance"], 2)) for r in rows[:2]]
        [('none', 3.0), ('mean', 1.0)]
        >>> [r["epoch_size"] for r in compare_aggregations(labels, 2, floor=1)][:2]  # every image at least once
        [3, 4]
        >>> rfs = compare_aggregations(labels, 2, threshold=0.5)[-1]  # class 1 in 1 of 3 images: r = sqrt(1.5)
        >>> rfs["agg"], rfs["epoch_size"], round(rfs["max_draws"], 2)  # round(2 + 1.22) = 3 draws ∝ r
        ('rfs', 3, 1.14)
    """
    rows = []
    for agg in ("none", *ALL_AGGREGATIONS):
        if agg == "rfs" and multipliers:
            continue
        settings = {"class_balance": strength, "balance_agg": agg, "balance_floor": floor}
        settings["balance_rfs_threshold"] = threshold
        if agg == "none":  # class_balance off: stock, or the data's weights alone (the floor balances: not applied)
            settings = {"class_balance": 0.0}
        schedule = schedule_from_args(settings, classes, nc, multipliers) if agg != "none" or multipliers else None
        p = schedule.probabilities(0) if schedule else None
        size = schedule.epoch_size if schedule else len(classes)
        stats = balance_stats(classes, nc, p, size)
        rows.append(
            {
                "agg": agg,
                "imbalance": stats["imbalance_after"],
                "ess": stats["ess"],
                "coverage": stats["coverage"],
                "max_draws": float(size * p.max()) if p is not None and len(p) else 1.0,
                "epoch_size": size,
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
    grown = any(r["epoch_size"] != rows[0]["epoch_size"] for r in rows)
    epoch = f"{'epoch':>8} " if grown else ""
    head = f"{'agg':<7} {'imbalance':>9} {'ESS':>5} {'coverage':>8} {'max draws':>11} {epoch} "
    lines = [head + " ".join(f"{label:>{w}}" for label, w in zip(labels, widths))]
    for r in rows:
        shares = " ".join(f"{r['shares'][c]:>{w}.1%}" for c, w in zip(present, widths))
        epoch = f"{r['epoch_size']:>8,} " if grown else ""
        lines.append(
            f"{r['agg']:<7} {r['imbalance']:>9.2f} {r['ess']:>5.2f} {r['coverage']:>8.1%} {r['max_draws']:>11.2f} "
            f"{epoch} " + shares
        )
    return lines


def plot_balance(
    stats: dict, names: Sequence[str] | dict, path: str | Path, strength: float = 1.0, settings: str = ""
) -> Path:
    """Save a bar chart of each class's share of instances in the data vs its expected share per epoch.

    Args:
        stats (dict): `BalanceSchedule.figures` (or `balance_stats`) for the chosen settings; its 'target' (the shares
            aimed for with the data's weights), if any, is marked (None: nothing is, as for rfs), else the target at
            `strength` without weights.
        names (Sequence[str] | dict): Class names by class id.
        path (str | Path): PNG file to write.
        strength (float): Balancing strength; without a 'target' in `stats` the target share marked is proportional to
            instances ** (1 - strength).
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
    target = stats["target"] if "target" in stats else target_shares(stats["instances"], strength)
    if target is not None:  # None: the settings aim at no class share (rfs)
        ax.scatter(
            x + width / 2,
            100 * np.asarray(target)[present],
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
