# ultralytics-weighted, AGPL-3.0 license
"""compare's summary: every metric recomputed from the runs' stored per-image results, and each variant's paired Δ.

`summarize` reads a comparison folder (compare.json and each run's metrics.json and per_image.npz), recomputes every
metric on the whole val split and on bootstrap resamples of its images (`metrics`), and turns them into each variant's
Δ to the first variant with its interval and verdict (`intervals`); `report` and `figure` write it down.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ultralytics_weighted.commands.compare.figure import plot_comparison
from ultralytics_weighted.commands.compare.intervals import paired_delta
from ultralytics_weighted.commands.compare.metrics import resample_weights, run_metrics
from ultralytics_weighted.commands.compare.report import csv_rows, markdown_report, present_classes
from ultralytics_weighted.commands.compare.variants import Variant
from ultralytics_weighted.host.validation import result_files

RESAMPLES = 1000  # bootstrap resamples of the evaluation images (and seeds) behind each interval


@dataclass
class Comparison:
    """What a comparison found, as data: compare.md, compare.csv and compare.png are written from it.

    Attributes:
        folder (Path): The output folder.
        task (str): 'detect', 'classify', ... as the data was read.
        variants (list[Variant]): The variants, the first one the baseline of every Δ.
        names (dict): Class names by class id.
        shares (dict): Per variant, `balance_stats` of its (fully) balanced epochs.
        runs (list[dict]): Every run's `metrics.json` (variant, seed, train_seconds, val_seconds, epochs, images, ...)
            with `values`: {"metric/class": value on the whole val split} as recomputed from its per-image results.
        table (list[dict]): One row per metric, class (name, or 'all') and variant: `mean`, `std` and `seeds` over
            seeds; for every variant but the first `delta_by_seed`, `delta`, `lo`, `hi` (95% interval) and `verdict`.
        command (str): The command line of the comparison.
        resamples (int): Bootstrap resamples behind each interval.
    """

    folder: Path
    task: str
    variants: list[Variant]
    names: dict
    shares: dict
    runs: list[dict]
    table: list[dict]
    command: str = ""
    resamples: int = RESAMPLES

    def row(self, metric: str, cls, variant: str) -> dict:
        """Return the summary row of one metric, class (id, name or 'all') and variant."""
        name = self.names.get(cls, cls) if not isinstance(cls, str) else cls
        for r in self.table:
            if (r["metric"], r["class"], r["variant"]) == (metric, name, variant):
                return r
        raise KeyError(f"no {metric} of class {name} for variant {variant} (a class without val objects has none).")


def run_entry(folder: str, tau: float | None) -> str | dict:
    """Return a run's entry in compare.json: its folder, or for a tau variant's run the folder and tau."""
    return folder if tau is None else {"folder": folder, "tau": tau}


def in_file_order(per_image: dict) -> dict:
    """Return a run's per-image results with the images sorted by file, so that image i is the same in every run.

    Examples:
        >>> x = in_file_order({"images": np.array(["b.jpg", "a.jpg"]), "pred_image": np.array([0, 0, 1])})
        >>> x["images"].tolist(), x["pred_image"].tolist()
        (['a.jpg', 'b.jpg'], [1, 1, 0])
    """
    order = np.argsort(per_image["images"], kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    out = dict(per_image)
    for key in ("images", "true", "pred", "probs"):  # arrays with one row per image
        if key in out:
            out[key] = out[key][order]
    for key in ("pred_image", "target_image"):  # image indices
        if key in out:
            out[key] = rank[out[key]]
    return out


def load_runs(out: Path) -> tuple[dict, list[dict], list[dict]]:
    """Return a comparison's compare.json, every run's `metrics.json` and its per-image results in file order.

    Raises:
        ValueError: If the runs were validated on different images.
    """
    setup = json.loads((out / "compare.json").read_text())
    runs, stored = [], []
    entries = [(e["folder"], e["tau"]) if isinstance(e, dict) else (e, None) for e in setup["runs"]]
    for folder, tau in entries:
        files = result_files(out / folder, tau)
        runs.append(json.loads(files["metrics"].read_text()))
        with np.load(files["per_image"]) as f:
            stored.append(in_file_order(dict(f)))
    for (folder, _), x in zip(entries, stored):
        if not np.array_equal(x["images"], stored[0]["images"]):
            raise ValueError(f"{folder} was validated on other images than {entries[0][0]}; compare needs the same.")
    return setup, runs, stored


def summarize(out: str | Path, resamples: int | None = None, seed: int = 0) -> Comparison:
    """Rebuild a comparison's summary and reports from its run folders, without training or validating again.

    Every metric is recomputed from each run's `per_image.npz`, on the whole val split and on `resamples` bootstrap
    resamples of its images (drawn with `seed`, the same resamples for every run, so each seed's pair stays paired);
    `intervals.paired_delta` turns them into each variant's Δ to the first variant, its 95% interval and verdict.

    Args:
        out (str | Path): The comparison's folder (holding compare.json and runs/).
        resamples (int, optional): Bootstrap resamples; default the comparison's own (`resamples=`, RESAMPLES).
        seed (int): Seed of the resamples.

    Returns:
        (Comparison): The summary; compare.md, compare.csv and compare.png are rewritten from it.
    """
    out = Path(out)
    setup, runs, stored = load_runs(out)
    variants = [Variant(v["name"], v["overrides"], v.get("tau"), v.get("base")) for v in setup["variants"]]
    names = {int(k): v for k, v in setup["names"].items()}
    shares = {v: {k: np.asarray(x) for k, x in share.items()} for v, share in setup["shares"].items()}
    resamples = int(resamples or setup.get("resamples", RESAMPLES))
    n_images = len(stored[0]["images"]) if stored else 0
    weights = np.concatenate([np.ones((1, n_images)), resample_weights(n_images, resamples, seed)])
    metrics = []  # per run: (metric, class) -> (1 + resamples,) values, the whole val split first
    for r, per_image in zip(runs, stored):
        metrics.append(run_metrics(per_image, len(names), weights))
        r["values"] = {f"{m}/{names[c] if c != 'all' else c}": float(v[0]) for (m, c), v in metrics[-1].items()}
    keys = list(metrics[0]) if metrics else []

    table, first = [], variants[0].name
    for metric, cls in keys:
        name = names[cls] if cls != "all" else "all"
        by_variant = {v.name: {} for v in variants}  # variant -> seed -> values
        for r, m in zip(runs, metrics):
            by_variant[r["variant"]][r["seed"]] = m[metric, cls]
        for v in variants:
            values = np.array([x[0] for x in by_variant[v.name].values()])
            row = {"metric": metric, "class": name, "variant": v.name, "seeds": len(values)}
            row |= {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
            pairs = sorted(by_variant[first].keys() & by_variant[v.name].keys())
            if v.name != first and pairs:
                both = np.array([[by_variant[x][s] for s in pairs] for x in (first, v.name)])  # (2, S, 1 + B)
                row |= paired_delta(both[:, :, 0], both[:, :, 1:].transpose(2, 0, 1), seed=seed)
            table.append(row)
    comparison = Comparison(
        out, setup["task"], variants, names, shares, runs, table, setup.get("command", ""), resamples
    )
    write_reports(comparison)
    return comparison


def write_reports(comparison: Comparison) -> None:
    """Write compare.md, compare.csv and compare.png into the comparison's folder.

    Only the `compare` command prints the markdown: `run_comparison` and `summarize` return the results as data.
    """
    out = comparison.folder
    with open(out / "compare.csv", "w", newline="") as f:
        csv.writer(f).writerows(csv_rows(comparison))
    (out / "compare.md").write_text(markdown_report(comparison))
    plot_comparison(out / "compare.png", comparison, present_classes(comparison))
