# ultralytics-weighted, AGPL-3.0 license
"""compare.png: the headline metric per class by variant (matplotlib, imported only when drawing)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ultralytics_weighted.commands.compare.report import ALL_ROWS, TABLES

if TYPE_CHECKING:
    from ultralytics_weighted.commands.compare.summary import Comparison


def plot_comparison(path: Path, c: Comparison, present: list[int]):
    """Grouped bars: the headline metric per class (and all classes) by variant, error bars = std over seeds.

    Returns:
        (matplotlib.figure.Figure): The figure saved to `path`.
    """
    from matplotlib.figure import Figure

    title, metrics = TABLES.get(c.task, TABLES["detect"])[0]
    groups = [(metrics[0], c.names[k]) for k in present] + [
        (m, "all") for m in metrics if (m, "all") in {(r["metric"], r["class"]) for r in c.table}
    ]
    width = 0.8 / len(c.variants)
    fig = Figure(figsize=(max(6.0, 1.2 * len(groups) * max(1, len(c.variants) / 3) + 2), 4.5), tight_layout=True)
    ax = fig.add_subplot()
    x = np.arange(len(groups))
    top = 1.0  # the highest bar with its error bar: the axis ends above it, so no error bar is cut off
    for k, v in enumerate(c.variants):
        rows = [c.row(m, name, v.name) for m, name in groups]
        top = max([top, *(r["mean"] + r["std"] for r in rows)])
        ax.bar(
            x + (k - (len(c.variants) - 1) / 2) * width,
            [r["mean"] for r in rows],
            width,
            yerr=[r["std"] for r in rows],
            capsize=3,
            label=v.name,
        )
    ax.set_xticks(x, [name if name != "all" else ALL_ROWS[m].strip("*").split("*")[0] for m, name in groups])
    ax.set_ylabel(f"{title} on val (mean ± std over seeds)")
    ax.set_ylim(0, 1.05 * top)
    if not any(r["mean"] or r["std"] for r in c.table if (r["metric"], r["class"]) in set(groups)):
        ax.text(  # bars of height 0 draw nothing: say so, rather than leave an empty chart
            0.5,
            0.5,
            f"every {title} is 0: no variant detected anything on the val split\n(train longer, e.g. more epochs)"
            if c.task != "classify"
            else f"every {title} is 0: no val image was classified correctly",
            transform=ax.transAxes,
            ha="center",
            va="center",
        )
    ax.legend(fontsize=8, frameon=False, ncols=min(len(c.variants), 6), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    fig.savefig(path, dpi=150)
    return fig
