# ultralytics-weighted, AGPL-3.0 license
"""`ultralytics-weighted compare`: train every variant x seed with otherwise identical settings, then report per class.

A variant is one or more parts joined by `+`: `none` (stock shuffling), an aggregation (`mean`, `sum`, `auto`, ... at
strength 1), an aggregation with a strength (`mean@0.5`), or any train key=value such as `cls_pw=1.0` (Ultralytics'
loss-side class weighting) or `balance_floor=1`; e.g. `mean+balance_floor=1` or `auto@0.5+balance_ramp=0.5`. Each run
trains through the stock `yolo train` CLI in its own folder, its log in `train.log`, and its best weights are validated
on the val split in a process of their own. `parallel=N` runs N of them at once (for one large GPU), the dataloader
workers split between them.

A run is keyed by its full settings and data (`run.json`: the train keys, a digest of the train and val labels, the
Ultralytics and ultralytics-weighted versions). A re-run skips the runs whose `metrics.json` was written under the same
key, so an interrupted comparison resumes, and trains again those whose settings or data changed, saying what changed.
One Ctrl-C ends every process compare started (each runs in a session of its own) and exits 130.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ultralytics_weighted.balance import AGGREGATIONS, BalanceSchedule, balance_stats
from ultralytics_weighted.config import DEFAULTS, balance_strength

FIXED_KEYS = {"seed", "name", "project", "exist_ok", "plots"}  # set per run by compare itself
COMPARE_KEYS = {"data", "variants", "seeds", "project", "name", "parallel"}  # compare's own options


@dataclass
class Variant:
    """One way to train: a name for tables and folders, and the train keys it sets."""

    name: str
    overrides: dict = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """Folder-safe name."""
        return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in self.name.replace("@", "_s"))

    def schedule(self, classes: list[np.ndarray], nc: int, epochs: int) -> BalanceSchedule | None:
        """Return the balance schedule this variant trains with, or None for stock shuffling."""
        strength = balance_strength(self.overrides.get("class_balance", DEFAULTS["class_balance"]))
        if not strength:
            return None
        keys = {k: self.overrides.get(k, DEFAULTS[k]) for k in ("balance_agg", "balance_floor", "balance_ramp")}
        return BalanceSchedule(classes, nc, strength, *keys.values(), epochs=epochs)


def _parse_part(part: str, token: str) -> dict:
    """Return the train keys of one `+` part of variant `token`: none, agg, agg@strength or key=value."""
    from ultralytics.cfg import smart_value

    if part == "none":
        return {}
    if "=" in part:
        key, value = (x.strip() for x in part.split("=", 1))
        if not key or not value:
            raise ValueError(f"variant '{token}': '{part}' is not a key=value part.")
        return {key: smart_value(value)}
    agg, at, strength = part.partition("@")
    if agg not in AGGREGATIONS:
        raise ValueError(
            f"unknown variant '{token}'. A variant is none, {', '.join(AGGREGATIONS)} (optionally with @strength, "
            "e.g. mean@0.5), a train key=value such as cls_pw=1.0, or such parts joined by '+' "
            "(e.g. mean+balance_floor=1)."
        )
    try:
        value = float(strength) if at else 1.0
    except ValueError:
        raise ValueError(f"variant '{token}': the strength '{strength}' is not a number (e.g. {agg}@0.5).") from None
    if not 0.0 < value <= 1.0:
        raise ValueError(f"variant '{token}': the strength must lie in (0, 1].")
    return {"class_balance": value, "balance_agg": agg}


def parse_variants(text: str) -> list[Variant]:
    """Parse a comma-separated variant list such as 'none,mean,sum@0.5,mean+balance_floor=1,cls_pw=1.0'.

    Args:
        text (str): The `variants=` value.

    Returns:
        (list[Variant]): The variants, in the given order, `none` first if present.

    Raises:
        ValueError: For an unknown aggregation, a strength that is not a number or outside (0, 1], a balancing key
            without an aggregation to act on, a key set twice in one variant, a duplicate or an empty list. The message
            names the variant.

    Examples:
        >>> [(v.name, v.overrides) for v in parse_variants("none,mean@0.5,cls_pw=1.0")]
        [('none', {}), ('mean@0.5', {'class_balance': 0.5, 'balance_agg': 'mean'}), ('cls_pw=1.0', {'cls_pw': 1.0})]
        >>> parse_variants("auto+balance_floor=1")[0].overrides
        {'class_balance': 1.0, 'balance_agg': 'auto', 'balance_floor': 1}
    """
    variants = []
    for token in (t.strip() for t in str(text).split(",")):
        if not token:
            continue
        overrides = {}
        for part in (p.strip() for p in token.split("+")):
            keys = _parse_part(part, token)
            if twice := overrides.keys() & keys.keys():
                raise ValueError(f"variant '{token}' sets {', '.join(sorted(twice))} twice.")
            overrides.update(keys)
        unused = [k for k in DEFAULTS if k != "class_balance" and k in overrides]
        if unused and not balance_strength(overrides.get("class_balance", False)):
            raise ValueError(
                f"variant '{token}' sets {', '.join(unused)} without balancing, so it would train as stock: add an "
                f"aggregation, e.g. mean+{unused[0]}={overrides[unused[0]]}."
            )
        variants.append(Variant(token, overrides))
    names = [v.name for v in variants]
    if not variants or len(set(names)) != len(names):
        raise ValueError(f"variants={text} must name at least one variant, each once.")
    return sorted(variants, key=lambda v: v.name != "none")


def yolo_command() -> list[str]:
    """Return the command that runs the stock `yolo` CLI of this interpreter's Ultralytics."""
    script = Path(sys.executable).parent / "yolo"
    if script.is_file():
        return [str(script)]
    found = shutil.which("yolo")
    return [found] if found else [sys.executable, "-c", "from ultralytics.cfg import entrypoint; entrypoint()"]


def validate(best: Path, data: str, train: dict) -> dict:
    """Validate best weights on the val split and return overall and per-class AP50 / AP50-95."""
    from ultralytics import YOLO

    keys = {k: train[k] for k in ("imgsz", "batch", "device", "task") if k in train}
    metrics = YOLO(best).val(data=data, split="val", plots=False, verbose=False, **keys)
    box = metrics.seg if getattr(metrics, "seg", None) is not None and keys.get("task") == "segment" else metrics.box
    per_class = {
        int(c): {"ap50": float(box.ap50[i]), "ap50_95": float(box.ap[i])} for i, c in enumerate(box.ap_class_index)
    }
    return {"all": {"ap50": float(box.map50), "ap50_95": float(box.map)}, "classes": per_class}


def labels_digest(*splits: list[np.ndarray]) -> str:
    """Return a short digest of the label classes of one or more splits (image order and every class id count)."""
    digest = hashlib.sha256()
    for classes in splits:
        digest.update(np.array([len(c) for c in classes], dtype=np.int64).tobytes())
        digest.update(np.concatenate([np.asarray(c, dtype=np.int64).reshape(-1) for c in classes] or [[]]).tobytes())
    return digest.hexdigest()[:16]


@dataclass
class Run:
    """One variant x seed: its folder, the train keys it runs with and the key that identifies its results."""

    variant: Variant
    seed: int
    folder: Path
    args: dict
    key: dict
    epoch_images: int  # images drawn per epoch: the dataset size, or a grown epoch with balance_floor
    label: str = ""

    def finished(self) -> dict | None:
        """Return the stored results if this run finished earlier under the same key, else None."""
        done, keyed = self.folder / "metrics.json", self.folder / "run.json"
        if done.exists() and keyed.exists() and json.loads(keyed.read_text()) == self.key:
            return json.loads(done.read_text())
        return None

    def changes(self) -> list[str]:
        """Return which parts of the key differ from the earlier run in this folder (empty if there is none)."""
        keyed = self.folder / "run.json"
        if not keyed.exists():
            return ["no run.json (an earlier version of compare)"] if self.folder.exists() else []
        old = json.loads(keyed.read_text())
        before, now = old.get("args", {}), self.key["args"]
        changed = [
            f"{k} {before.get(k)} -> {now.get(k)}"
            for k in sorted(before.keys() | now.keys())
            if before.get(k) != now.get(k)
        ]
        changed += [k for k in ("labels", "versions") if old.get(k) != self.key[k]]
        return changed


INTERRUPTED = "interrupted (Ctrl-C)"
STOP_SECONDS = 10  # how long a child may take to end after SIGINT before it is killed


class Interrupted(Exception):
    """Raised when compare stops on SIGINT (Ctrl-C) after ending every training it started."""


class Children:
    """The processes compare starts, each in a session of its own, so that one Ctrl-C can end each whole tree.

    A child in compare's process group would get the terminal's SIGINT itself, but not one sent to compare alone, and
    its own children (dataloader workers) would outlive it if it were killed. Starting each in a new session and
    signalling that session's process group ends them all, however compare was interrupted.
    """

    def __init__(self):
        """Start with no children and no stop requested."""
        self.running: set[subprocess.Popen] = set()
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def call(self, cmd: list[str], log, env: dict) -> int:
        """Run `cmd` to completion with its output in `log` and return its exit code (-SIGINT once stopping)."""
        with self.lock:
            if self.stopping.is_set():
                return -signal.SIGINT
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            self.running.add(proc)
        try:
            return proc.wait()
        finally:
            with self.lock:
                self.running.discard(proc)

    def stop(self) -> None:
        """Start no more children; end every running one's process group: SIGINT, then SIGKILL after STOP_SECONDS.

        The SIGKILL goes to every group, also where the leader ended in time: its dataloader workers may not have.
        """
        with self.lock:
            self.stopping.set()
            running = list(self.running)
        for sig in (signal.SIGINT, signal.SIGKILL):
            for proc in running:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, sig)  # the child leads its session: its pid is the group's id
            deadline = time.time() + STOP_SECONDS
            for proc in running:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(0.0, deadline - time.time()))


def _run_one(run: Run, data: str, train: dict, log_lock: threading.Lock, children: Children) -> dict:
    """Train one run with the stock CLI, validate it in a fresh process, store and return its results."""

    def say(text):
        with log_lock:
            print(f"{run.label}: {text}", flush=True)

    if changed := run.changes():
        say(f"settings or data changed since the earlier run ({'; '.join(changed)}): training again")
        shutil.rmtree(run.folder)
    run.folder.mkdir(parents=True, exist_ok=True)
    (run.folder / "run.json").write_text(json.dumps(run.key, indent=2))
    say("training ...")
    start, env = time.time(), {**os.environ, "YOLO_OFFLINE": "1"}
    cmd = [*yolo_command(), "train", *(f"{key}={value}" for key, value in run.args.items())]
    with open(run.folder / "train.log", "w") as log:
        rc = children.call(cmd, log, env)
        if rc == 0:
            cmd = [sys.executable, "-m", "ultralytics_weighted.compare", "validate", str(run.folder), data]
            rc = children.call([*cmd, json.dumps(train)], log, env)
        if children.stopping.is_set():
            log.write(
                f"\n{INTERRUPTED}: this run is unfinished (no metrics.json), a re-run of compare trains it again.\n"
            )
            raise Interrupted(run.label)
    if rc:
        raise RuntimeError(f"{run.label} failed (exit {rc}); see {run.folder / 'train.log'}")
    epochs = max(0, len((run.folder / "results.csv").read_text().splitlines()) - 1)  # epochs trained (header row)
    result = {
        "variant": run.variant.name,
        "seed": run.seed,
        "seconds": round(time.time() - start, 1),
        "epoch_images": run.epoch_images,
        "epochs": epochs,
        "images": run.epoch_images * epochs,
        **json.loads((run.folder / "val.json").read_text()),
    }
    (run.folder / "metrics.json").write_text(json.dumps(result, indent=2))
    m = result["all"]
    say(f"AP50 {m['ap50']:.3f}, AP50-95 {m['ap50_95']:.3f}, {result['images']:,} images ({result['seconds']:.0f} s)")
    return result


def _count(options: dict, key: str, default: int) -> int:
    """Pop `options[key]` as a whole number of at least 1 (`seeds`, `parallel`), with the key in any error."""
    value = options.pop(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key}={value} must be a whole number, e.g. {key}={default}.")
    if value < 1:
        raise ValueError(f"{key}={value} must be at least 1.")
    return value


def run_comparison(options: dict, command: str = "") -> Path:
    """Train and validate every variant x seed, then write compare.md, compare.csv and compare.png.

    Args:
        options (dict): `data`, `variants`, `seeds`, `parallel`, optional `project` / `name` for the output folder, and
            any other `yolo train` keys (model, epochs, imgsz, fraction, ...) applied to every run.
        command (str): The command line, written at the top of compare.md.

    Returns:
        (Path): The output folder.
    """
    from ultralytics import __version__ as ultralytics_version
    from ultralytics.cfg import get_cfg, smart_value
    from ultralytics.utils import DEFAULT_CFG_DICT

    from ultralytics_weighted import __version__
    from ultralytics_weighted.config import check_keys
    from ultralytics_weighted.integration import load_label_classes

    options = dict(options)
    check_keys(options, {*DEFAULT_CFG_DICT, *COMPARE_KEYS}, "compare")  # one line, not Ultralytics' whole help
    variants = parse_variants(options.pop("variants", "none,mean,sum,auto"))  # before smart_value: 'none' is no None
    options = {k: smart_value(str(v)) if isinstance(v, str) else v for k, v in options.items()}
    data = options.pop("data", None)
    if not data:
        raise ValueError("data=... is required.")
    seeds, parallel = (_count(options, key, default) for key, default in (("seeds", 3), ("parallel", 1)))
    # absolute: Ultralytics puts a relative `project` under its runs folder and the task, not where compare looks
    project = Path(str(options.pop("project", "runs/compare"))).expanduser().resolve()
    out = project / str(options.pop("name", Path(str(data)).parent.name))
    train = {"model": "yolo11n.yaml", **{k: v for k, v in options.items() if k not in FIXED_KEYS}}
    if parallel > 1:  # the runs share the machine's CPU cores for data loading
        from ultralytics.utils import DEFAULT_CFG

        train["workers"] = max(1, int(train.get("workers", DEFAULT_CFG.workers)) // parallel)
    cfgs = {}
    for v in variants:  # every run's keys must pass Ultralytics' checks before anything trains
        try:
            check_keys(v.overrides, set(DEFAULT_CFG_DICT), "compare")  # one line, not Ultralytics' whole help
            cfgs[v.name] = get_cfg(overrides={"data": data, **train, **v.overrides, "mode": "train"})
        except (ValueError, TypeError, SyntaxError) as e:
            raise type(e)(f"variant '{v.name}': {e}") from None
    label_keys = {k: train[k] for k in ("task", "classes", "fraction") if k in train}
    classes, names, _ = load_label_classes({"data": data, **label_keys})
    val_classes = load_label_classes({"data": data, **label_keys}, split="val")[0]
    versions = {"ultralytics": ultralytics_version, "ultralytics-weighted": __version__}
    labels = labels_digest(classes, val_classes)

    runs, shares = [], {}  # shares: what each variant's balanced epochs draw (balance_stats), for runs and reports
    for v in variants:
        schedule = v.schedule(classes, len(names), cfgs[v.name].epochs)
        p = schedule.probabilities(schedule.full_strength_epoch) if schedule else None
        shares[v.name] = balance_stats(classes, len(names), p, schedule.epoch_size if schedule else None)
        for seed in range(seeds):
            folder = out / "runs" / f"{v.slug}-seed{seed}"
            args = {**train, "data": data, **v.overrides, "seed": seed}
            extra = {"project": str(out / "runs"), "name": folder.name, "exist_ok": True, "plots": False}
            key = {"args": {k: str(x) for k, x in args.items()}, "labels": labels, "versions": versions}
            runs.append(Run(v, seed, folder, {**args, **extra}, key, shares[v.name]["epoch_size"]))
    for k, run in enumerate(runs, 1):
        run.label = f"[{k}/{len(runs)}] {run.variant.name} seed {run.seed}"

    out.mkdir(parents=True, exist_ok=True)
    results, todo = {}, []
    for run in runs:
        if (earlier := run.finished()) is not None:
            results[run.label] = earlier
            print(f"{run.label}: finished earlier, skipped (AP50 {earlier['all']['ap50']:.3f})", flush=True)
        else:
            todo.append(run)
    lock, children = threading.Lock(), Children()
    pool, futures = ThreadPoolExecutor(max_workers=parallel), {}
    try:  # from the first submit on: a Ctrl-C at any point must reach the children (they do not get the terminal's)
        futures.update({pool.submit(_run_one, run, str(data), train, lock, children): run for run in todo})
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        pool.shutdown(wait=True, cancel_futures=True)  # after a failure: runs not started yet are not started
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        children.stop()  # no run starts any more, and every running one ends
        pool.shutdown(wait=True, cancel_futures=True)
        finished = sum(f.done() and not f.cancelled() and f.exception() is None for f in futures) + len(results)
        raise Interrupted(
            f"{INTERRUPTED}: {finished} of {len(runs)} runs finished and kept in {out}; a re-run of the same command "
            "trains the other ones."
        ) from None
    for future in done:
        if future.exception() is not None:
            raise future.exception()
        results[futures[future].label] = future.result()

    write_reports(out, variants, [results[r.label] for r in runs], names, shares, command)
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
    rows_csv = [["variant", "seed", "class", "ap50", "ap50_95", "seconds", "images"]]
    for r in results:
        run = [r["seconds"], r.get("images", "")]
        rows_csv.append([r["variant"], r["seed"], "all", r["all"]["ap50"], r["all"]["ap50_95"], *run])
        for c, m in sorted(r["classes"].items(), key=lambda x: int(x[0])):
            rows_csv.append([r["variant"], r["seed"], names[int(c)], m["ap50"], m["ap50_95"], *run])
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
    lines += ["", *_images_table(variants, results, shares)]
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


def _images_table(variants: list[Variant], results: list[dict], shares: dict) -> list[str]:
    """Return the markdown table of images trained per run: equal epochs are not equal compute when an epoch grows."""
    head = ["variant", "images per epoch", "epochs", "images trained", "coverage/epoch", "vs first"]
    lines = ["## Images trained per run", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    first = None
    for v in variants:
        runs = [r for r in results if r["variant"] == v.name]
        images = float(np.mean([r["images"] for r in runs])) if runs and all("images" in r for r in runs) else None
        epochs = sorted({r.get("epochs") for r in runs})
        first = images if first is None else first
        ratio = f"{images / first:.2f}x" if images and first else "-"
        cells = [v.name, f"{shares[v.name]['epoch_size']:,}", "/".join(map(str, epochs))]
        cells += [f"{images:,.0f}" if images is not None else "-", f"{shares[v.name]['coverage']:.1%}", ratio]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


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
    except RuntimeError as e:  # a run failed: its train.log says why
        print(f"ultralytics-weighted compare: {e}", file=sys.stderr)
        return 1
    except (Interrupted, KeyboardInterrupt) as e:  # KeyboardInterrupt: before any training started
        print(f"ultralytics-weighted compare: {str(e) or INTERRUPTED}", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports a command ended by Ctrl-C
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["validate"]:
    # `python -m ultralytics_weighted.compare validate RUN_FOLDER DATA TRAIN_JSON`: one run's validation, in a process
    # of its own so that parallel runs do not share one interpreter
    folder, data, train = Path(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
    (folder / "val.json").write_text(json.dumps(validate(folder / "weights" / "best.pt", data, train), indent=2))
