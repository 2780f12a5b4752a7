# ultralytics-weighted, AGPL-3.0 license
"""compare's report: compare.md and compare.csv written from a `Comparison` (and compare.png, by `figure`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ultralytics_weighted.commands.compare.summary import Comparison


OPERATING_POINT = ["precision", "recall", "f1"]  # detection's metrics at the operating point (`operating_conf`)
TABLES = {  # per task: the report's tables, each (title, its metrics); the first table is the headline
    "detect": [
        ("AP50", ["ap50"]),
        ("AP50-95", ["ap50_95"]),
        ("Precision at the operating point", ["precision"]),
        ("Recall at the operating point", ["recall", "prior_recall"]),
        ("F1 at the operating point", ["f1"]),
    ],
    "classify": [("Recall (per-class accuracy)", ["recall", "top1", "prior_accuracy", "balanced_accuracy"])],
}
RULE_METRIC = {"detect": "ap50", "classify": "recall"}  # the per-class metric docs/decision-rule.md judges by
ALL_ROWS = {  # the 'all' row of each metric
    "ap50": "**all** (mAP50)",
    "ap50_95": "**all** (mAP50-95)",
    "precision": "**all** (mean over classes)",
    "recall": "**all** (mean over classes)",
    "f1": "**all** (mean over classes)",
    "prior_recall": "**recall at train class frequencies**",
    "top1": "**top-1 accuracy**",
    "prior_accuracy": "**accuracy at train class frequencies**",
    "balanced_accuracy": "**balanced accuracy**",
}


def csv_rows(c: Comparison) -> list[list]:
    """Return compare.csv's rows: the header, one per run, metric and class, then one per summary table row."""
    wall = ["epochs", "images", "train_seconds", "val_seconds"]
    head = ["kind", "variant", "seed", "metric", "class", "value", "mean", "std", "seeds", "delta", "delta_by_seed"]
    summary = ["lo", "hi", "verdict", "p", "p_adjusted", "verdict_unadjusted"]  # lo, hi: the unadjusted interval
    rows = [[*head, *summary, *wall]]
    blank = [""] * (len(head) - 6 + len(summary))
    for r in c.runs:
        for key, value in r["values"].items():
            metric, cls = key.split("/", 1)
            rows.append(["run", r["variant"], r["seed"], metric, cls, value, *blank, *(r.get(k) for k in wall)])
    for row in c.table:
        by_seed = " ".join(f"{x:+.6f}" for x in row.get("delta_by_seed", []))
        cells = [row["mean"], row["std"], row["seeds"], row.get("delta", ""), by_seed]
        cells += [row.get(k, "") for k in summary]
        rows.append(["summary", row["variant"], "", row["metric"], row["class"], "", *cells, *[""] * len(wall)])
    return rows


def present_classes(c: Comparison) -> list[int]:
    """Return the class ids with rows in the summary (a class without val objects has none), in id order."""
    return [k for k in sorted(c.names) if any(row["class"] == c.names[k] for row in c.table)]


def markdown_report(c: Comparison) -> str:
    """Return compare.md: the command, how to read it, the metric tables, images trained and the shares per epoch."""
    first = c.variants[0].name
    seeds = max((r["seed"] for r in c.runs), default=0) + 1
    lines = [
        "# Class balance comparison",
        "",
        f"Command: `{c.command}`" if c.command else "",
        "",
        f"{len(c.runs)} runs: {len(c.variants)} variants x {seeds} seeds, each run's {CHECKPOINT_WORDS[c.checkpoint]} "
        f"validated on the val split; mean ± std over seeds. Δ = the paired difference to `{first}` (same seed), mean "
        f"over seeds, with its 95% interval: a t-interval on the per-seed Δ ({max(seeds - 1, 0)} degrees of freedom) "
        f"widened by the evaluation noise all seeds share, measured on {c.resamples:,} bootstrap resamples of the val "
        "images (the same images for every run). Per class, **better** / **worse** are controlled family-wise across "
        "the classes of each column (Holm at α = 0.05; compare.csv has the unadjusted and adjusted p-values); the "
        "interval shown is the unadjusted one, so a verdict may be *not established* where it excludes 0. The rows "
        "for all classes are single questions, not adjusted. See docs/usage.md.",
        "",
        *SEED_WORDS.get(seeds, []),
    ]
    summarized = {row["metric"] for row in c.table}
    for title, metrics in TABLES.get(c.task, TABLES["detect"]):
        if c.task != "classify" and metrics[0] in OPERATING_POINT:  # classification's recall is per image
            if metrics[0] == OPERATING_POINT[0] and c.task == "detect":  # compare stores it for detection only
                lines += _operating_point_words(c, OPERATING_POINT[0] in summarized)
            if metrics[0] not in summarized:
                continue
        lines += [*_metric_table(c, title, metrics), ""]
    lines += [*_rule_section(c), *_frontier_section(c)]
    lines += [*_images_table(c), "", *_shares_table(c)]
    return "\n".join(lines) + "\n"


CHECKPOINT_WORDS = {  # compare.md's words for `checkpoint=`
    "last": "final weights (last.pt)",
    "best": "best.pt (picked by Ultralytics on this same val split: biased upward, more for noisier variants)",
}
SEED_WORDS = {  # what compare.md says of few seeds
    1: [
        "With 1 seed nothing measures the training noise: the interval holds the evaluation noise alone, a lower "
        "bound on the uncertainty, not a 95% interval.",
        "",
    ],
    2: [
        "An interval from 2 seeds is wide by design: the seed level has 1 degree of freedom (t = 12.7), so only a "
        "large difference is established; more seeds narrow it.",
        "",
    ],
}


def _operating_point_words(c: Comparison, available: bool) -> list[str]:
    """Return what compare.md says of detection's operating point before its tables, or that it is unavailable."""
    if not available:
        return [
            f"Operating point (confidence ≥ {c.operating_conf:g}, IoU 0.5): unavailable; these runs' per_image.npz "
            "hold no single-label detections at that confidence (validated before compare stored them, or at another "
            "`operating_conf`). Re-running the same compare command validates them again without training.",
            "",
        ]
    return [
        f"Operating point: the boxes Ultralytics' `predict` returns, one class per box (NMS with `multi_label=False`), "
        f"confidence ≥ {c.operating_conf:g} (`operating_conf`, fixed before the runs), each matched to an object at "
        "IoU ≥ 0.5 as the validator matches. AP comes from the validator's multi-label NMS, where a box keeps every "
        "class above 0.001: a τ correction barely moves AP but changes which class each box gets here. A class "
        "without detections has precision 0 (as Ultralytics reports it); the rows for all classes are the mean over "
        "the classes, and recall at train class frequencies weighs each class's recall by its train instances.",
        "",
    ]


def _rule_section(c: Comparison) -> list[str]:
    """Return compare.md's decision-rule section: per variant, 'passes the rule' or which part fails."""
    if not c.rule:
        return []
    first, metric = c.variants[0].name, RULE_METRIC.get(c.task, RULE_METRIC["detect"])
    tier = next(iter(c.rule.values()))["rare_tier"]
    lines = [
        "## Decision rule (docs/decision-rule.md)",
        "",
        f"Per variant, by per-class {metric} against `{first}`: (a) every class's lower bound (unadjusted 95%) is at "
        f"least -0.02; (b) the rare tier ({', '.join(map(str, tier))}: the rarest third of the classes by train "
        "instances) is better under family-wise control, with a mean Δ above 0; (c) it holds on a second dataset, "
        "which one comparison cannot show.",
        "",
        "| variant | rule |",
        "|---|---|",
    ]
    lines += [f"| {name} | {outcome['outcome']} |" for name, outcome in c.rule.items()]
    return [*lines, ""]


def _frontier_section(c: Comparison) -> list[str]:
    """Return compare.md's τ frontier: each balanced classifier variant corrected by each τ, without retraining."""
    if not c.frontier:
        return []
    first = c.variants[0].name
    base = [_cell(c.row(m, "all", first)) for m in ("balanced_accuracy", "prior_accuracy")]
    lines = [
        "## The τ dial (without retraining)",
        "",
        "Each balanced variant's runs with their class prior corrected by τ (the class logits plus τ times the "
        "offsets that restore the data's prior, `adjust`'s correction applied to the stored probabilities): balanced "
        "accuracy against accuracy at the train class frequencies, mean ± std over seeds, and each Δ to "
        f"`{first}` [95%, unadjusted]. `{first}`: balanced accuracy {base[0]}, accuracy at train class frequencies "
        f"{base[1]}.",
        "",
        "| variant | τ | balanced accuracy | Δ [95%] | accuracy at train class frequencies | Δ [95%] |",
        "|---|---|---|---|---|---|",
    ]
    points = {(r["variant"], r["tau"], r["metric"]): r for r in c.frontier}
    for variant, tau in dict.fromkeys((r["variant"], r["tau"]) for r in c.frontier):
        cells = [variant, f"{tau:g}"]
        for metric in ("balanced_accuracy", "prior_accuracy"):
            cells += [_cell(points[variant, tau, metric]), _delta_cell(points[variant, tau, metric])]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _cell(row: dict, digits: int = 3) -> str:
    """Return 'mean ± std' (or the mean alone for one seed)."""
    return f"{row['mean']:.{digits}f} ± {row['std']:.{digits}f}" if row["seeds"] > 1 else f"{row['mean']:.{digits}f}"


def _delta_cell(row: dict) -> str:
    """Return 'Δ [lo, hi] verdict' of a summary row: its unadjusted interval, its verdict (bold if established)."""
    if "delta" not in row:
        return "-"
    verdict = row["verdict"] if row["verdict"] == "not established" else f"**{row['verdict']}**"
    return f"{row['delta']:+.3f} [{row['lo']:+.3f}, {row['hi']:+.3f}] {verdict}"


def _metric_table(c: Comparison, title: str, metrics: list[str]) -> list[str]:
    """Return one markdown table of `TABLES`: per class (and all) and metric, each variant and its Δ to the first."""
    first, train_instances = c.variants[0].name, c.shares[c.variants[0].name]["instances"]
    head = ["class", "train instances", first]
    for v in c.variants[1:]:
        head += [v.name, f"Δ {v.name} [95%]"]
    lines = [f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    summarized = {(row["metric"], row["class"]) for row in c.table}
    for metric in metrics:
        for cls in [*present_classes(c), "all"]:
            name = c.names[cls] if cls != "all" else "all"
            if (metric, name) not in summarized:
                continue
            label = ALL_ROWS[metric] if cls == "all" else name
            cells = [label, str(int(train_instances.sum() if cls == "all" else train_instances[cls]))]
            cells.append(_cell(c.row(metric, name, first)))
            for v in c.variants[1:]:
                row = c.row(metric, name, v.name)
                cells += [_cell(row), _delta_cell(row)]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _shares_table(c: Comparison) -> list[str]:
    """Return the markdown table of each class's expected share per epoch by variant (classes with train objects)."""
    train_instances = c.shares[c.variants[0].name]["instances"]
    head = ["class", "train instances"] + [f"share/epoch {v.name}" for v in c.variants]
    lines = ["## Expected share of each class per epoch", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in [k for k in sorted(c.names) if train_instances[k] > 0]:
        cells = [c.names[k], str(train_instances[k])]
        cells += [f"{c.shares[v.name]['share_after'][k]:.1%}" for v in c.variants]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _images_table(c: Comparison) -> list[str]:
    """Return the markdown table of images trained and training time: equal epochs are not equal compute."""
    head = ["variant", "images per epoch", "epochs", "images trained", "vs first", "train s per run", "train s (sum)"]
    lines = ["## Images trained and wall time", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    first = None
    for v in c.variants:
        runs = [r for r in c.runs if r["variant"] == v.name]
        images = float(np.mean([r["images"] for r in runs])) if runs else None
        seconds = [r["train_seconds"] for r in runs]
        first = images if first is None else first
        ratio = f"{images / first:.2f}x" if images and first else "-"
        epochs = "/".join(map(str, sorted({r["epochs"] for r in runs})))
        cells = [v.name, f"{int(c.shares[v.name]['epoch_size']):,}", epochs]
        cells += [f"{images:,.0f}" if images is not None else "-", ratio]
        total = f"{sum(seconds):.1f}" if v.tau is None else f"shared with {v.base}"
        cells += [f"{np.mean(seconds):.1f}" if seconds else "-", total]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Train s: wall time of each run's `yolo train` process (with its own per-epoch validation unless `val=False`), "
        "not the final validation; sum = the variant's runs together. A tau variant trains nothing: it is its base "
        "variant's runs corrected after training, so it shows their training time, shared.",
    ]
    return lines
