# ultralytics-weighted, AGPL-3.0 license
"""`ultralytics-weighted compare`: train every variant x seed with otherwise identical settings, then report per class.

The package, by what each module holds:

- `variants`: the variant grammar (`none`, `mean@0.5`, `mean+balance_floor=1`, `cls_pw=1.0`, `mean+tau=1`, ...);
- `plan`: compare's options checked, each variant's settings and data, every variant x seed as a `Run`;
- `runs`: process supervision: training with the stock `yolo train` CLI, validation in a child process
  (`host.validation`, which records every image's results), resume, Ctrl-C;
- `summary`: every metric recomputed from the stored per-image results, each variant's paired Δ (`summarize`);
- `metrics`, `intervals`, `rule`: the statistics, numpy only (per-class AP and recall under resampled images; paired
  intervals and Holm; docs/decision-rule.md and the τ frontier);
- `report`, `figure`: compare.md, compare.csv and compare.png.

A tau variant's results sit in its base run's folder, named like the corrected weights (`corrected_path`:
metrics-tau1.json, per_image-tau1.npz). Classification corrects the stored per-image probabilities by the offsets
the corrected checkpoint adds to the class logits; detection validates the corrected checkpoint (weights/last-tau1.pt),
as its NMS, confidence threshold and `max_det` act on the corrected scores. Classification data (a class folder
dataset) is compared by per-class recall, top-1 and balanced accuracy.

`report=FOLDER` recomputes compare.md, compare.csv, compare.json and compare.png of a finished comparison from its
folder (setup.json, each run's metrics.json and per_image.npz; no weights needed), byte for byte.

Ultralytics' per-validation save folders go into the run folder and are removed when empty: compare writes nothing
outside its own folder. One Ctrl-C ends every process compare started and exits 130.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import numpy as np

from ultralytics_weighted.commands.compare.plan import (
    Splits,
    check_same_val,
    parse_options,
    plan_runs,
    shared_train_keys,
    variant_settings,
)
from ultralytics_weighted.commands.compare.report import markdown_report
from ultralytics_weighted.commands.compare.runs import INTERRUPTED, Interrupted, finish_runs
from ultralytics_weighted.commands.compare.summary import SETUP, Comparison, load_runs, run_entry, summarize
from ultralytics_weighted.commands.compare.variants import Variant, parse_variants

__all__ = (
    "INTERRUPTED",
    "Comparison",
    "Interrupted",
    "Variant",
    "load_runs",
    "main",
    "parse_variants",
    "run_comparison",
    "summarize",
)


def run_comparison(options: dict, command: str = "") -> Comparison:
    """Train and validate every variant x seed, then write compare.md, compare.csv and compare.png.

    Args:
        options (dict): `data`, `variants`, `seeds`, `parallel`, `resamples` (bootstrap resamples per interval,
            default RESAMPLES), optional `project` / `name` for the output folder, and any other `yolo train` keys
            (model, epochs, imgsz, fraction, ...) applied to every run; `checkpoint` (last, the default: each run's
            final weights; or best); `operating_conf` (detection: the confidence of the operating point whose
            precision, recall and F1 are reported, default 0.25).
        command (str): The command line, written at the top of compare.md.

    Returns:
        (Comparison): The variants, every run's results and the summary table (see `summarize`).
    """
    parsed = parse_options(options)
    out = parsed.out
    cfgs, weights = variant_settings(parsed.variants, parsed.data, parsed.train)
    splits = Splits(parsed.label_keys)
    names, task = splits(parsed.data)[2:]
    check_same_val(parsed.variants, cfgs, parsed.data, splits)
    train = shared_train_keys(parsed.train, task, parsed.parallel)
    runs, shares = plan_runs(parsed, cfgs, weights, splits, train)
    out.mkdir(parents=True, exist_ok=True)
    finish_runs(runs, str(parsed.data), train, parsed.parallel, out)
    setup = {
        "command": command,
        "task": task,
        "variants": [{"name": v.name, "overrides": v.overrides, "tau": v.tau, "base": v.base} for v in parsed.variants],
        "names": {int(k): str(v) for k, v in names.items()},
        "shares": {v: {k: np.asarray(x).tolist() for k, x in share.items()} for v, share in shares.items()},
        "runs": [run_entry(str(r.folder.relative_to(out)), r.tau) for r in runs],
        "resamples": parsed.resamples,
        "checkpoint": parsed.checkpoint,
        "operating_conf": parsed.operating_conf,
    }
    (out / SETUP).write_text(json.dumps(setup, indent=2))  # what `summarize` and `report=` read; compare.json adds
    return summarize(out)  # the summary to it


def _report_only(options: dict) -> Comparison:
    """Return the comparison `report=FOLDER` recomputes from a finished comparison's folder (no other key)."""
    if extra := sorted(set(options) - {"report"}):
        raise ValueError(
            f"report= recomputes a finished comparison's reports and takes no other key: {', '.join(extra)}."
        )
    return summarize(Path(str(options["report"])).expanduser())


def main(options: dict) -> int:
    """Run `compare` from parsed key=value options; bad arguments fail before any training."""
    command = "ultralytics-weighted compare " + " ".join(shlex.quote(f"{k}={v}") for k, v in options.items())
    try:
        comparison = _report_only(options) if "report" in options else run_comparison(dict(options), command)
    except (ValueError, TypeError, SyntaxError, FileNotFoundError) as e:
        print(f"ultralytics-weighted compare: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # a run failed: its train.log says why
        print(f"ultralytics-weighted compare: {e}", file=sys.stderr)
        return 1
    except (Interrupted, KeyboardInterrupt) as e:  # KeyboardInterrupt: before any training started
        print(f"ultralytics-weighted compare: {str(e) or INTERRUPTED}", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports a command ended by Ctrl-C
    print(markdown_report(comparison))
    print(f"Results saved to {comparison.folder} (compare.md, compare.csv, compare.json, compare.png)")
    return 0
