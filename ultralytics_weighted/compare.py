# ultralytics-weighted, AGPL-3.0 license
"""`ultralytics-weighted compare`: train every variant x seed with otherwise identical settings, then report per class.

A variant is `none` (stock shuffling), an aggregation (`mean`, `sum`, `auto`, ... at strength 1), an aggregation with a
strength (`mean@0.5`), or any train key=value such as `cls_pw=1.0` (Ultralytics' loss-side class weighting, without
balanced sampling). Each run trains through the stock `yolo train` CLI in its own folder, its log in `train.log`; its
best weights are then validated on the val split and the numbers stored in `metrics.json`. A run with `metrics.json`
is finished and skipped when the command is run again, so an interrupted comparison resumes.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ultralytics_weighted.balance import AGGREGATIONS, balance_stats, image_weights

FIXED_KEYS = {"seed", "name", "project", "exist_ok", "plots"}  # set per run by compare itself


@dataclass
class Variant:
    """One way to train: a name for tables and folders, and the train keys it sets."""

    name: str
    overrides: dict = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """Folder-safe name."""
        return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in self.name.replace("@", "_s"))

    def strength_and_agg(self) -> tuple[float, str]:
        """Return (class_balance strength, balance_agg) this variant samples with (strength 0 = stock shuffling)."""
        return float(self.overrides.get("class_balance", 0.0)), self.overrides.get("balance_agg", "mean")


def parse_variants(text: str) -> list[Variant]:
    """Parse a comma-separated variant list such as 'none,mean,sum@0.5,auto,cls_pw=1.0'.

    Args:
        text (str): The `variants=` value.

    Returns:
        (list[Variant]): The variants, in the given order, `none` first if present.

    Raises:
        ValueError: For an unknown aggregation, a strength outside (0, 1], a duplicate or an empty list.

    Examples:
        >>> [(v.name, v.overrides) for v in parse_variants("none,mean@0.5,cls_pw=1.0")]
        [('none', {}), ('mean@0.5', {'class_balance': 0.5, 'balance_agg': 'mean'}), ('cls_pw=1.0', {'cls_pw': 1.0})]
    """
    from ultralytics.cfg import smart_value

    variants = []
    for token in (t.strip() for t in str(text).split(",")):
        if not token:
            continue
        if token == "none":
            variants.append(Variant("none"))
        elif "=" in token:
            key, value = token.split("=", 1)
            variants.append(Variant(token, {key.strip(): smart_value(value.strip())}))
        else:
            agg, _, strength = token.partition("@")
            if agg not in AGGREGATIONS:
                raise ValueError(
                    f"unknown variant '{token}'. Valid variants are none, {', '.join(AGGREGATIONS)} (optionally "
                    "with @strength, e.g. mean@0.5) or a train key=value such as cls_pw=1.0."
                )
            value = float(strength) if strength else 1.0
            if not 0.0 < value <= 1.0:
                raise ValueError(f"variant '{token}': the strength must lie in (0, 1].")
            variants.append(Variant(token, {"class_balance": value, "balance_agg": agg}))
    names = [v.name for v in variants]
    if not variants or len(set(names)) != len(names):
        raise ValueError(f"variants={text} must name at least one variant, each once.")
    return sorted(variants, key=lambda v: v.name != "none")


def _yolo() -> list[str]:
    from ultralytics_weighted.cli import yolo_command

    return yolo_command()


def _validate(best: Path, data: str, train: dict) -> dict:
    """Validate best weights on the val split and return overall and per-class AP50 / AP50-95."""
    from ultralytics import YOLO

    keys = {k: train[k] for k in ("imgsz", "batch", "device", "task") if k in train}
    metrics = YOLO(best).val(data=data, split="val", plots=False, verbose=False, **keys)
    box = metrics.seg if getattr(metrics, "seg", None) is not None and keys.get("task") == "segment" else metrics.box
    per_class = {
        int(c): {"ap50": float(box.ap50[i]), "ap50_95": float(box.ap[i])} for i, c in enumerate(box.ap_class_index)
    }
    return {"all": {"ap50": float(box.map50), "ap50_95": float(box.map)}, "classes": per_class}


def run_comparison(options: dict, command: str = "") -> Path:
    """Train and validate every variant x seed, then write compare.md, compare.csv and compare.png.

    Args:
        options (dict): `data`, `variants`, `seeds`, optional `project` / `name` for the output folder, and any other
            `yolo train` keys (model, epochs, imgsz, fraction, ...) applied to every run.
        command (str): The command line, written at the top of compare.md.

    Returns:
        (Path): The output folder.
    """
    from ultralytics.cfg import get_cfg, smart_value

    from ultralytics_weighted.integration import load_label_classes

    options = {k: smart_value(str(v)) if isinstance(v, str) else v for k, v in options.items()}
    data = options.pop("data", None)
    if not data:
        raise ValueError("data=... is required.")
    variants = parse_variants(options.pop("variants", "none,mean,sum,auto"))
    seeds = int(options.pop("seeds", 3))
    if seeds < 1:
        raise ValueError(f"seeds={seeds} must be at least 1.")
    out = Path(str(options.pop("project", "runs/compare"))) / str(options.pop("name", Path(str(data)).parent.name))
    train = {"model": "yolo11n.yaml", **{k: v for k, v in options.items() if k not in FIXED_KEYS}}
    for v in variants:  # every run's keys must pass Ultralytics' checks before anything trains
        get_cfg(overrides={"data": data, **train, **v.overrides, "mode": "train"})
    classes, names, _ = load_label_classes(
        {"data": data, **{k: train[k] for k in ("task", "classes", "fraction") if k in train}}
    )

    out.mkdir(parents=True, exist_ok=True)
    total, results = len(variants) * seeds, []
    for k, (variant, seed) in enumerate(((v, s) for v in variants for s in range(seeds)), 1):
        run_dir = out / "runs" / f"{variant.slug}-seed{seed}"
        done = run_dir / "metrics.json"
        label = f"[{k}/{total}] {variant.name} seed {seed}"
        if done.exists():
            results.append(json.loads(done.read_text()))
            print(f"{label}: finished earlier, skipped (AP50 {results[-1]['all']['ap50']:.3f})", flush=True)
            continue
        args = {
            **train,
            "data": data,
            **variant.overrides,
            "seed": seed,
            "project": str(out / "runs"),
            "name": run_dir.name,
            "exist_ok": True,
            "plots": False,
        }
        cmd = [*_yolo(), "train", *(f"{key}={value}" for key, value in args.items())]
        print(f"{label}: training ...", flush=True)
        start = time.time()
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(run_dir / "train.log", "w") as log:
            rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "YOLO_OFFLINE": "1"})
        if rc:
            raise RuntimeError(f"{label} failed (exit {rc}); see {run_dir / 'train.log'}")
        metrics = _validate(run_dir / "weights" / "best.pt", data, train)
        result = {"variant": variant.name, "seed": seed, "seconds": round(time.time() - start, 1), **metrics}
        done.write_text(json.dumps(result, indent=2))
        results.append(result)
        print(
            f"{label}: AP50 {metrics['all']['ap50']:.3f}, AP50-95 {metrics['all']['ap50_95']:.3f} "
            f"({result['seconds']:.0f} s)",
            flush=True,
        )

    shares = {}
    for v in variants:
        strength, agg = v.strength_and_agg()
        p = image_weights(classes, len(names), agg, strength) if strength else None
        shares[v.name] = balance_stats(classes, len(names), p)
    write_reports(out, variants, results, names, shares, command)
    return out


def _summary(results: list[dict], variant: str, cls, metric: str) -> tuple[float, float, int]:
    """Return (mean, std, n) of one metric over the seeds of a variant; cls = class id or 'all'."""
    values = [
        (r["all"] if cls == "all" else r["classes"].get(str(cls), r["classes"].get(cls, {}))).get(metric)
        for r in results
        if r["variant"] == variant
    ]
    values = np.array([v for v in values if v is not None], dtype=float)
    if not values.size:
        return float("nan"), float("nan"), 0
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0, int(values.size)


def write_reports(out: Path, variants: list[Variant], results: list[dict], names: dict, shares: dict, command: str):
    """Write compare.md, compare.csv and compare.png into `out` and print the markdown table."""
    names = dict(names)
    rows_csv = [["variant", "seed", "class", "ap50", "ap50_95", "seconds"]]
    for r in results:
        rows_csv.append([r["variant"], r["seed"], "all", r["all"]["ap50"], r["all"]["ap50_95"], r["seconds"]])
        for c, m in sorted(r["classes"].items(), key=lambda x: int(x[0])):
            rows_csv.append([r["variant"], r["seed"], names[int(c)], m["ap50"], m["ap50_95"], r["seconds"]])
    with open(out / "compare.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows_csv)

    base = variants[0].name if variants[0].name == "none" else None
    seeds = max((r["seed"] for r in results), default=0) + 1
    lines = [
        "# Class balance comparison",
        "",
        f"Command: `{command}`" if command else "",
        "",
        f"{len(results)} runs: {len(variants)} variants x {seeds} seeds. AP on the val split, mean ± std over seeds"
        + (f"; Δ = difference of the means to `{base}`." if base else "."),
        "",
    ]
    present = [c for c in sorted(names) if shares[variants[0].name]["instances"][c] > 0]
    head = ["class", "train instances"] + [f"share/epoch {v.name}" for v in variants]
    lines += ["## Expected share of each class per epoch", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in present:
        cells = [names[c], str(shares[variants[0].name]["instances"][c])]
        cells += [f"{shares[v.name]['share_after'][c]:.1%}" for v in variants]
        lines.append("| " + " | ".join(cells) + " |")
    for metric, title in (("ap50", "AP50"), ("ap50_95", "AP50-95")):
        head = ["class"] + [v.name for v in variants] + ([f"Δ {v.name}" for v in variants[1:]] if base else [])
        lines += ["", f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for c in [*present, "all"]:
            stats = [_summary(results, v.name, c, metric) for v in variants]
            cells = [str(names[c]) if c != "all" else "**all**"]
            cells += [f"{m:.3f} ± {s:.3f}" if n > 1 else f"{m:.3f}" for m, s, n in stats]
            if base:
                cells += [f"{m - stats[0][0]:+.3f}" for m, _, _ in stats[1:]]
            lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    (out / "compare.md").write_text(text)
    _plot(out / "compare.png", variants, results, names, present)
    print(text)
    print(f"Results saved to {out} (compare.md, compare.csv, compare.png)")


def _plot(path: Path, variants: list[Variant], results: list[dict], names: dict, present: list[int]) -> None:
    """Grouped bars: per-class (and all-class) AP50 by variant, error bars = std over seeds."""
    from matplotlib.figure import Figure

    groups = [*present, "all"]
    width = 0.8 / len(variants)
    fig = Figure(figsize=(max(6.0, 1.2 * len(groups) * max(1, len(variants) / 3) + 2), 4.5), tight_layout=True)
    ax = fig.add_subplot()
    x = np.arange(len(groups))
    for k, v in enumerate(variants):
        stats = [_summary(results, v.name, c, "ap50") for c in groups]
        ax.bar(
            x + (k - (len(variants) - 1) / 2) * width,
            [m for m, _, _ in stats],
            width,
            yerr=[s for _, s, _ in stats],
            capsize=3,
            label=v.name,
        )
    ax.set_xticks(x, [str(names[c]) if c != "all" else "all classes" for c in groups])
    ax.set_ylabel("AP50 on val (mean ± std over seeds)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, frameon=False, ncols=min(len(variants), 6), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    fig.savefig(path, dpi=150)


def main(options: dict) -> int:
    """Run `compare` from parsed key=value options; bad arguments fail before any training."""
    command = "ultralytics-weighted compare " + " ".join(shlex.quote(f"{k}={v}") for k, v in options.items())
    try:
        run_comparison(dict(options), command)
    except (ValueError, TypeError, SyntaxError, FileNotFoundError) as e:
        print(f"ultralytics-weighted compare: {e}", file=sys.stderr)
        return 2
    return 0
