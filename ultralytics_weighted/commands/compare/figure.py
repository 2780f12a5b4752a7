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

    Beside them, where the comparison has a τ frontier, each balanced classifier variant's τ dial (`_frontier_axes`).

    Returns:
        (matplotlib.figure.Figure): The figure saved to `path`.
    """
    from matplotlib.figure import Figure

    title, metrics = TABLES.get(c.task, TABLES["detect"])[0]
    groups = [(metrics[0], c.names[k]) for k in present] + [
        (m, "all") for m in metrics if (m, "all") in {(r["metric"], r["class"]) for r in c.table}
    ]
    width = 0.8 / len(c.variants)
    width_in = max(6.0, 1.2 * len(groups) * max(1, len(c.variants) / 3) + 2)
    fig = Figure(figsize=(width_in + (5.0 if c.frontier else 0.0), 4.5), tight_layout=True)
    ax = fig.add_subplot(1, 2 if c.frontier else 1, 1)
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
    if c.frontier:
        _frontier_axes(fig.add_subplot(1, 2, 2), c)
    fig.savefig(path, dpi=150)
    return fig


def _frontier_axes(ax, c: Comparison) -> None:
    """Draw each balanced variant's τ dial: balanced accuracy against accuracy at the train class frequencies.

    The first variant's point has error bars of ± std over seeds; each variant's curve joins its τ points in order.
    """
    first = c.variants[0].name
    base = {m: c.row(m, "all", first) for m in ("balanced_accuracy", "prior_accuracy")}
    x, y = base["prior_accuracy"], base["balanced_accuracy"]
    ax.errorbar(x["mean"], y["mean"], xerr=x["std"], yerr=y["std"], fmt="s", color="black", capsize=3, label=first)
    for variant in dict.fromkeys(r["variant"] for r in c.frontier):
        points = {(r["tau"], r["metric"]): r["mean"] for r in c.frontier if r["variant"] == variant}
        taus = sorted({tau for tau, _ in points})
        xs, ys = [points[t, "prior_accuracy"] for t in taus], [points[t, "balanced_accuracy"] for t in taus]
        ax.plot(xs, ys, "o-", label=f"{variant}, τ = {taus[0]:g} … {taus[-1]:g}")
        for tau, px, py in zip(taus, xs, ys):
            ax.annotate(f"τ={tau:g}", (px, py), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("accuracy at train class frequencies (mean over seeds)")
    ax.set_ylabel("balanced accuracy (mean over seeds)")
    ax.set_title("τ dial, without retraining", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
