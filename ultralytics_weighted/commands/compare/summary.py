# ultralytics-weighted, AGPL-3.0 license
"""compare's summary: every metric recomputed from the runs' stored per-image results, and each variant's paired Δ.

`summarize` reads a comparison folder (compare.json and each run's metrics.json and per_image.npz), recomputes every
metric on the whole val split and on bootstrap resamples of its images (`metrics`), and turns them into each variant's
Δ to the first variant with its interval and verdict (`intervals`); `report` and `figure` write it down.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ultralytics_weighted.commands.compare.figure import plot_comparison
from ultralytics_weighted.commands.compare.intervals import familywise, paired_delta
from ultralytics_weighted.commands.compare.metrics import resample_weights, run_metrics
from ultralytics_weighted.commands.compare.report import RULE_METRIC, csv_rows, markdown_report, present_classes
from ultralytics_weighted.commands.compare.rule import TAU_GRID, decision_rule, tau_frontier
from ultralytics_weighted.commands.compare.variants import Variant
from ultralytics_weighted.host.validation import OPERATING_CONF, result_files

RESAMPLES = 1000  # bootstrap resamples of the evaluation images behind each interval
SETUP = "setup.json"  # a comparison's setup, written before its summary: what `summarize` reads back


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
        checkpoint (str): The weights each run was evaluated with: 'last' or 'best'.
        operating_conf (float): Detection: the confidence of the operating point behind 'precision', 'recall', 'f1'
            and 'prior_recall' (rows only for runs that stored single-label detections at it).
        rule (dict): Per variant but the first, `rule.decision_rule` of its per-class headline metric.
        frontier (list[dict]): For a balanced classifier variant, per τ of `TAU_GRID` and metric ('balanced_accuracy',
            'prior_accuracy'): `tau`, `mean`, `std`, `seeds` and its paired Δ to the first variant.
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
    checkpoint: str = "last"
    operating_conf: float = OPERATING_CONF
    rule: dict = field(default_factory=dict)
    frontier: list = field(default_factory=list)

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
    setup_file = out / SETUP if (out / SETUP).exists() else out / "compare.json"  # compare.json: older comparisons
    if not setup_file.exists():
        raise FileNotFoundError(f"{out} holds no comparison ({SETUP}, or compare.json of an older one).")
    setup = json.loads(setup_file.read_text())
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
    train_instances = shares[variants[0].name]["instances"]  # the compared data's: the prior and the rare tier
    operating_conf = float(setup.get("operating_conf", OPERATING_CONF))  # before the key: Ultralytics' default
    metrics = []  # per run: (metric, class) -> (1 + resamples,) values, the whole val split first
    for r, per_image in zip(runs, stored):
        metrics.append(run_metrics(per_image, len(names), weights, train_instances, operating_conf))
        r["values"] = {f"{m}/{names[c] if c != 'all' else c}": float(v[0]) for (m, c), v in metrics[-1].items()}
        if r.get("logit_offsets") and "probs" in per_image and not r.get("train_shared_with"):  # a balanced classifier
            frontier = tau_frontier(per_image, len(names), weights, np.asarray(r["logit_offsets"]), train_instances)
            metrics[-1] |= {(m, f"tau={tau:g}"): x for tau, point in frontier.items() for m, x in point.items()}
    keys = [k for k in dict.fromkeys(k for m in metrics for k in m) if not str(k[1]).startswith("tau=")]
    table, first = [], variants[0].name
    for metric, cls in keys:
        baseline = _by_seed(runs, metrics, first, (metric, cls))
        for v in variants:
            row = {"metric": metric, "class": names[cls] if cls != "all" else "all", "variant": v.name}
            own = _by_seed(runs, metrics, v.name, (metric, cls))
            table.append(row | _summary_row(own, baseline if v.name != first else None, seed))
    comparison = Comparison(
        out,
        setup["task"],
        variants,
        names,
        shares,
        runs,
        controlled(table),
        setup.get("command", ""),
        resamples,
        setup.get("checkpoint", "best"),  # compare validated best.pt before the key existed
        operating_conf,
    )
    comparison.rule = _rule(comparison, {names[k]: int(train_instances[k]) for k in present_classes(comparison)})
    comparison.frontier = _frontier(variants, runs, metrics, seed)
    write_reports(comparison, setup)
    return comparison


def _by_seed(runs: list[dict], metrics: list[dict], variant: str, key: tuple) -> dict:
    """Return one variant's values of one (metric, class) key by seed: seed -> (1 + resamples,) values."""
    return {r["seed"]: m[key] for r, m in zip(runs, metrics) if r["variant"] == variant and key in m}


def _summary_row(values: dict, baseline: dict | None, seed: int) -> dict:
    """Return the mean ± std over seeds of `values` (seed -> values) and, given the baseline's, the paired Δ to it."""
    whole = np.array([x[0] for x in values.values()])
    row = {"seeds": len(whole), "mean": float(whole.mean())}
    row["std"] = float(whole.std(ddof=1)) if len(whole) > 1 else 0.0
    if pairs := sorted(baseline.keys() & values.keys()) if baseline is not None else []:
        both = np.array([[x[s] for s in pairs] for x in (baseline, values)])  # (2, S, 1 + B)
        row |= paired_delta(both[:, :, 0], both[:, :, 1:].transpose(2, 0, 1), seed=seed)
    return row


def controlled(table: list[dict]) -> list[dict]:
    """Return the summary rows with the per-class verdicts of each metric and variant controlled family-wise (Holm).

    The family is one table column: one metric, one variant, every class (`intervals.familywise`); each row keeps its
    unadjusted interval and verdict (`verdict_unadjusted`). The 'all' rows are single questions, left as they are.
    """
    families = {}
    for i, row in enumerate(table):
        if row["class"] != "all" and "delta" in row:
            families.setdefault((row["metric"], row["variant"]), []).append(i)
    table = list(table)
    for members in families.values():
        for i, row in zip(members, familywise([table[i] for i in members])):
            table[i] = row
    return table


def _rule(c: Comparison, train_instances: dict) -> dict:
    """Return `decision_rule` of each variant but the first on the headline per-class metric (docs/decision-rule.md)."""
    metric, outcomes = RULE_METRIC.get(c.task, RULE_METRIC["detect"]), {}
    for v in c.variants[1:]:
        rows = {
            r["class"]: r for r in c.table if (r["metric"], r["variant"]) == (metric, v.name) and r["class"] != "all"
        }
        if rows and all("lo" in r for r in rows.values()):
            outcomes[v.name] = decision_rule(rows, train_instances)
    return outcomes


def _frontier(variants: list[Variant], runs: list[dict], metrics: list[dict], seed: int) -> list[dict]:
    """Return the τ frontier of each balanced classifier variant: per τ and metric, its paired Δ to the first variant.

    The metrics are balanced accuracy and accuracy at the train class frequencies; the first variant's point is its
    own (uncorrected) value of each.
    """
    rows = []
    for v in variants[1:]:
        for tau in TAU_GRID:
            for metric in ("balanced_accuracy", "prior_accuracy"):
                if own := _by_seed(runs, metrics, v.name, (metric, f"tau={tau:g}")):
                    baseline = _by_seed(runs, metrics, variants[0].name, (metric, "all"))
                    row = {"metric": metric, "class": "all", "variant": v.name, "tau": tau}
                    rows.append(row | _summary_row(own, baseline, seed))
    return rows


def write_reports(comparison: Comparison, setup: dict) -> None:
    """Write compare.md, compare.csv, compare.json (the setup and the summary) and compare.png into its folder.

    Only the `compare` command prints the markdown: `run_comparison` and `summarize` return the results as data.
    """
    out = comparison.folder
    with open(out / "compare.csv", "w", newline="") as f:
        csv.writer(f).writerows(csv_rows(comparison))
    (out / "compare.md").write_text(markdown_report(comparison))
    summary = {k: asdict(comparison)[k] for k in ("checkpoint", "table", "rule", "frontier")}
    summary["runs"] = [{k: r[k] for k in ("variant", "seed", "values")} for r in comparison.runs]
    (out / "compare.json").write_text(json.dumps(setup | {"summary": summary}, indent=2))
    plot_comparison(out / "compare.png", comparison, present_classes(comparison))
