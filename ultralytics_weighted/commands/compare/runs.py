# ultralytics-weighted, AGPL-3.0 license
"""`ultralytics-weighted compare`: train every variant x seed with otherwise identical settings, then report per class.

A variant is one or more parts joined by `+`: `none` (stock shuffling), an aggregation (`mean`, `sum`, `auto`, ... at
strength 1), an aggregation with a strength (`mean@0.5`), or any train key=value such as `cls_pw=1.0` (Ultralytics'
loss-side class weighting) or `balance_floor=1`; e.g. `mean+balance_floor=1` or `auto@0.5+balance_ramp=0.5`. A part
`tau=T` is no train key: `mean+tau=1` is the trained run of `mean` (the same folder, trained once) with its class prior
corrected by T after training (`adjust`), so the tables show stock, balanced and corrected side by side with the same
training time. A part `data=other.yaml` trains the variant on its own data YAML (e.g. one with `class_weights`), which
must have the compared data's val images, as every run is validated on them. Each run trains through the stock
`yolo train` CLI in its own folder, its log in `train.log`, and its best weights are validated on the val split in a
process of their own. `parallel=N` runs N of them at once (for one large GPU), the dataloader workers split between
them.

A tau variant's results sit in its base run's folder, named like the corrected weights (`corrected_path`:
metrics-tau1.json, per_image-tau1.npz). Classification corrects the stored per-image probabilities by the offsets
the corrected checkpoint adds to the class logits; detection validates the corrected checkpoint (weights/best-tau1.pt),
as its NMS, confidence threshold and `max_det` act on the corrected scores.

Each run's validation also stores its per-image results (`per_image.npz`); from them every metric is recomputed on
bootstrap resamples of the val images, and each variant gets, per class, its paired Δ to the first variant with a 95%
interval over seeds and val images and a verdict (`summarize`, numbers in `evidence`). Classification data (a class
folder dataset) is compared by per-class recall, top-1 and balanced accuracy.

A run is keyed by its full settings and data (`run.json`: the train keys, a digest of the train and val labels, a digest
of its data YAML's weights (`DataWeights.digest`) where it has any, the Ultralytics and ultralytics-weighted versions).
A re-run skips the runs whose `metrics.json` was written under the same key, so an interrupted comparison resumes,
validates without training again those trained to the end (`train.json`) but not validated, and trains again those
whose settings or data changed, saying what changed. Ultralytics' per-validation save folders go into the run folder
and are removed when empty: compare writes nothing outside its own folder. One Ctrl-C ends every process compare started
(each runs in a session of its own) and exits 130.
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
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ultralytics_weighted.extensions.config import balance_strength, schedule_from_args
from ultralytics_weighted.extensions.keys import DEFAULTS
from ultralytics_weighted.extensions.schedule import ALL_AGGREGATIONS, BalanceSchedule, balance_stats

FIXED_KEYS = {"seed", "name", "project", "exist_ok", "plots"}  # set per run by compare itself
COMPARE_KEYS = {"data", "variants", "seeds", "project", "name", "parallel", "resamples"}  # compare's own options
RESAMPLES = 1000  # bootstrap resamples of the evaluation images (and seeds) behind each interval
TABLES = {  # per task: the report's tables, each (title, its metrics); the first table is the headline
    "detect": [("AP50", ["ap50"]), ("AP50-95", ["ap50_95"])],
    "classify": [("Recall (per-class accuracy)", ["recall", "top1", "balanced_accuracy"])],
}
ALL_ROWS = {"ap50": "**all** (mAP50)", "ap50_95": "**all** (mAP50-95)", "top1": "**top-1 accuracy**"}
ALL_ROWS["balanced_accuracy"] = "**balanced accuracy**"


@dataclass
class Variant:
    """One way to train: a name for tables, the train keys it sets and, for a tau variant, its correction.

    A tau variant (`mean+tau=1`) trains nothing of its own: `base` names the variant whose trained runs it corrects
    by `tau` (`mean`), and its runs share that variant's folders.
    """

    name: str
    overrides: dict = field(default_factory=dict)
    tau: float | None = None
    base: str | None = None

    @property
    def slug(self) -> str:
        """Folder-safe name of the trained variant (the base variant's for a tau variant)."""
        name = self.name if self.tau is None else self.base
        return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name.replace("@", "_s"))

    def schedule(
        self, classes: list[np.ndarray], nc: int, epochs: int, multipliers: dict | None = None
    ) -> BalanceSchedule | None:
        """Return the balance schedule this variant trains with, or None for stock shuffling.

        `multipliers` are the weights of the variant's data YAML (`DataWeights.multipliers`): as in training, they
        weight the draws also without `class_balance`.
        """
        if not balance_strength(self.overrides.get("class_balance", DEFAULTS["class_balance"])) and not multipliers:
            return None
        return schedule_from_args({**self.overrides, "epochs": epochs}, classes, nc, multipliers)


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
    if agg not in ALL_AGGREGATIONS:
        raise ValueError(
            f"unknown variant '{token}'. A variant is none, {', '.join(ALL_AGGREGATIONS)} (optionally with @strength, "
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


def _parse_tau(value: str, token: str) -> float:
    """Return the tau of a `tau=T` part of variant `token`: a finite number >= 0."""
    try:
        tau = float(value)
    except ValueError:
        tau = float("nan")
    if not 0.0 <= tau < float("inf"):
        raise ValueError(f"variant '{token}': tau={value} must be a finite number >= 0 (e.g. mean+tau=1).")
    return tau


def parse_variants(text: str) -> list[Variant]:
    """Parse a comma-separated variant list such as 'none,mean,sum@0.5,mean+balance_floor=1,cls_pw=1.0,mean+tau=1'.

    Args:
        text (str): The `variants=` value.

    Returns:
        (list[Variant]): The variants, in the given order, `none` first if present.

    Raises:
        ValueError: For an unknown aggregation, a strength that is not a number or outside (0, 1], a balancing key
            or tau without an aggregation to act on, a tau that is not a finite number >= 0, a key set twice in one
            variant, a duplicate or an empty list. The message names the variant.

    Examples:
        >>> [(v.name, v.overrides) for v in parse_variants("none,mean@0.5,cls_pw=1.0")]
        [('none', {}), ('mean@0.5', {'class_balance': 0.5, 'balance_agg': 'mean'}), ('cls_pw=1.0', {'cls_pw': 1.0})]
        >>> parse_variants("auto+balance_floor=1")[0].overrides
        {'class_balance': 1.0, 'balance_agg': 'auto', 'balance_floor': 1}
        >>> v = parse_variants("mean@0.5+tau=1")[0]
        >>> v.overrides, v.tau, v.base, v.slug
        ({'class_balance': 0.5, 'balance_agg': 'mean'}, 1.0, 'mean@0.5', 'mean_s0.5')
    """
    variants = []
    for token in (t.strip() for t in str(text).split(",")):
        if not token:
            continue
        overrides, tau, trained = {}, None, []  # trained: the parts of the base variant (all but tau=)
        for part in (p.strip() for p in token.split("+")):
            key, _, value = part.partition("=")
            if key.strip() == "tau":
                if tau is not None:
                    raise ValueError(f"variant '{token}' sets tau twice.")
                tau = _parse_tau(value.strip(), token)
                continue
            trained.append(part)
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
        if tau is not None and not balance_strength(overrides.get("class_balance", False)):
            raise ValueError(
                f"variant '{token}': tau corrects the prior of a balanced run and this variant trains without "
                "balancing: add an aggregation, e.g. mean+tau=1."
            )
        variants.append(Variant(token, overrides, tau, "+".join(trained) if tau is not None else None))
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


def _record_per_image(model, task: str) -> dict:
    """Make `model.val()` hand over every image's results as its validator computes them; return the lists they fill.

    The validator's own `update_metrics` runs unchanged; the wrapper installed at `on_val_start` only copies what it
    added for each image: for detection (and segment, pose, obb) the entries of `metrics.stats` (tp matrices at the 10
    IoU thresholds, confidences, predicted and target classes) and the image file, for classification the true class,
    the top-1 class and the class probabilities the model gave. Ultralytics shuffles the classification val loader and
    its batches carry no file names, so for classification the loader is rebuilt unshuffled (the same Ultralytics
    `build_dataloader`, `shuffle=False`) and the files are the dataset's samples in order.
    """
    from ultralytics.data.build import build_dataloader

    record = {}

    def on_val_start(validator):
        update = validator.update_metrics
        if task == "classify":  # the loop iterates `validator.dataloader` after this callback
            loader = validator.dataloader
            args = (loader.dataset, loader.batch_size, validator.args.workers)
            validator.dataloader = build_dataloader(*args, shuffle=False, rank=-1, device=validator.device)
            record["images"] = [str(sample[0]) for sample in loader.dataset.samples]

        def update_metrics(preds, batch):
            if task == "classify":
                update(preds, batch)
                record.setdefault("true", []).append(validator.targets[-1].numpy().astype(np.int32))
                record.setdefault("pred", []).append(validator.pred[-1][:, 0].numpy().astype(np.int32))
                record.setdefault("probs", []).append(preds.detach().float().cpu().numpy())
                return
            before = len(validator.metrics.stats["conf"])
            update(preds, batch)
            for key, values in validator.metrics.stats.items():
                record.setdefault(key, []).extend(values[before:])
            record.setdefault("images", []).extend(str(f) for f in batch["im_file"][: len(preds)])

        validator.update_metrics = update_metrics

    model.add_callback("on_val_start", on_val_start)
    return record


def per_image_arrays(record: dict, task: str) -> dict:
    """Return the arrays `per_image.npz` stores from what `_record_per_image` collected (see `evaluate_runs`)."""
    images = np.array(record["images"], dtype=str)  # the image files, in the order of the other arrays
    if task == "classify":
        return {k: np.concatenate(record[k]) for k in ("true", "pred", "probs")} | {"images": images}
    tp = "tp_m" if task == "segment" else "tp"  # the masks' matches for segmentation, as its reported metric
    preds, targets = [len(x) for x in record["conf"]], [len(x) for x in record["target_cls"]]
    return {
        "tp": np.concatenate(record[tp]).astype(bool),
        "conf": np.concatenate(record["conf"]).astype(np.float32),
        "pred_cls": np.concatenate(record["pred_cls"]).astype(np.int32),
        "pred_image": np.repeat(np.arange(len(preds)), preds).astype(np.int32),
        "target_cls": np.concatenate(record["target_cls"]).astype(np.int32),
        "target_image": np.repeat(np.arange(len(targets)), targets).astype(np.int32),
        "n_images": np.int64(len(preds)),
        "images": images,
    }


def validate(best: Path, data: str, train: dict, per_image: Path | None = None) -> dict:
    """Validate best weights on the val split; return overall and per-class metrics, and store per-image results.

    Args:
        best (Path): The weights.
        data (str): The dataset.
        train (dict): The run's train keys (`imgsz`, `batch`, `device`, `task` are used).
        per_image (Path, optional): Where to write the per-image results (`per_image.npz`); None writes nothing.

    Returns:
        (dict): `task`, `all` (AP50 and AP50-95, or top-1 and top-5 accuracy for classification) and `classes`
            (per class id: AP50 and AP50-95; none for classification, whose per-class recall comes from the per-image
            results), as Ultralytics reports them.
    """
    from ultralytics import YOLO

    model = YOLO(best)
    task = model.task
    keys = {k: train[k] for k in ("imgsz", "batch", "device") if k in train}
    record = _record_per_image(model, task)
    # Ultralytics makes a save folder per validation (runs/<task>/val, val2, ... in the current directory, empty
    # with plots=False): it goes into the run folder, and is removed once empty, so that compare writes nothing else
    saved = best.parent.parent / f"val-{best.stem}"
    folders = dict(project=str(saved.parent), name=saved.name, exist_ok=True)
    try:
        metrics = model.val(data=data, split="val", plots=False, verbose=False, **keys, **folders)
    finally:
        with contextlib.suppress(OSError):
            saved.rmdir()  # only if empty: a folder with files in it is kept
    if per_image is not None:
        np.savez_compressed(per_image, **per_image_arrays(record, task))
    if task == "classify":
        return {"task": task, "all": {"top1": float(metrics.top1), "top5": float(metrics.top5)}, "classes": {}}
    box = metrics.seg if task == "segment" else metrics.box
    per_class = {
        int(c): {"ap50": float(box.ap50[i]), "ap50_95": float(box.ap[i])} for i, c in enumerate(box.ap_class_index)
    }
    return {"task": task, "all": {"ap50": float(box.map50), "ap50_95": float(box.map)}, "classes": per_class}


def result_files(folder: Path, tau: float | None = None) -> dict[str, Path]:
    """Return the files of a run's results: those of its trained weights, or of them corrected by tau.

    Examples:
        >>> {k: v.name for k, v in result_files(Path("runs/mean-seed0"), 1.0).items()}  # doctest: +NORMALIZE_WHITESPACE
        {'weights': 'best-tau1.pt', 'val': 'val-tau1.json', 'per_image': 'per_image-tau1.npz',
         'metrics': 'metrics-tau1.json'}
    """
    from ultralytics_weighted.host.priors import corrected_path

    files = {"weights": folder / "weights" / "best.pt", "val": folder / "val.json"}
    files |= {"per_image": folder / "per_image.npz", "metrics": folder / "metrics.json"}
    return files if tau is None else {k: corrected_path(v, tau) for k, v in files.items()}


def logit_offsets(weights: Path, tau: float) -> np.ndarray:
    """Return what correcting a balanced checkpoint by tau adds to its class logits, as the corrected weights hold it.

    The correction itself is `priors.correct_class_prior` (on the model Ultralytics loads from the checkpoint, its
    EMA); the offsets are read back from the class-logit bias it changed, so they carry the checkpoint's own rounding.
    """
    from ultralytics.utils.patches import torch_load

    from ultralytics_weighted.host.priors import class_logit_layers, correct_class_prior

    checkpoint = torch_load(weights, map_location="cpu")
    model = checkpoint.get("ema") or checkpoint["model"]
    layer = class_logit_layers(model)[0]
    before = layer.bias.detach().double().clone()
    correct_class_prior(model, tau)
    return (layer.bias.detach().double() - before).numpy()


def corrected_probabilities(probs: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Return the class probabilities of a classifier whose class logits get `offsets` added, from its probabilities.

    Softmax is shift-invariant, so log(probs) + offsets are the corrected logits up to a constant per image.

    Examples:
        >>> corrected_probabilities(np.array([[0.5, 0.25, 0.25]]), np.log([1.0, 2.0, 1.0])).round(3).tolist()
        [[0.4, 0.4, 0.2]]
    """
    with np.errstate(divide="ignore"):  # a probability of 0 stays 0
        logits = np.log(np.asarray(probs, dtype=np.float64)) + offsets
    logits -= logits.max(1, keepdims=True)
    scores = np.exp(logits)
    return scores / scores.sum(1, keepdims=True)


def evaluate(folder: Path, data: str, train: dict, tau: float | None = None) -> dict:
    """Validate a run's best weights, or them corrected by tau, and store the per-image results (`result_files`).

    With tau, classification corrects the stored per-image probabilities of the run (validated first) by
    `logit_offsets`: the same predictions as validating the corrected checkpoint, without running the model again.
    Detection writes the corrected checkpoint (weights/best-tau{tau}.pt) and validates it: the correction acts through
    NMS, the confidence threshold and `max_det`, which the stored results cannot replay.

    Returns:
        (dict): As `validate`.
    """
    from ultralytics_weighted.host.priors import correct_checkpoint

    files, trained = result_files(folder, tau), result_files(folder)
    if tau is None:
        return validate(trained["weights"], data, train, files["per_image"])
    if json.loads(trained["val"].read_text())["task"] != "classify":
        correct_checkpoint(trained["weights"], tau, files["weights"], exist_ok=True)  # a re-validation replaces it
        return validate(files["weights"], data, train, files["per_image"])
    with np.load(trained["per_image"]) as f:
        stored = dict(f)
    probs = corrected_probabilities(stored["probs"], logit_offsets(trained["weights"], tau))
    top5 = np.argsort(-probs, 1, kind="stable")[:, :5]
    stored |= {"pred": top5[:, 0].astype(np.int32), "probs": probs.astype(np.float32)}
    np.savez_compressed(files["per_image"], **stored)
    top = (top5 == stored["true"][:, None]).cumsum(1)
    accuracy = {"top1": float(top[:, 0].mean()), "top5": float(top[:, -1].mean())}
    return {"task": "classify", "all": accuracy, "classes": {}}


def _headline(result: dict) -> str:
    """Return a run's overall metrics for its progress line, e.g. 'AP50 0.512, AP50-95 0.301'."""
    if result.get("task") == "classify":
        return f"top-1 {result['all']['top1']:.3f}"
    return f"AP50 {result['all']['ap50']:.3f}, AP50-95 {result['all']['ap50_95']:.3f}"


def labels_digest(*splits: list[np.ndarray]) -> str:
    """Return a short digest of the label classes of one or more splits (image order and every class id count)."""
    digest = hashlib.sha256()
    for classes in splits:
        digest.update(np.array([len(c) for c in classes], dtype=np.int64).tobytes())
        digest.update(np.concatenate([np.asarray(c, dtype=np.int64).reshape(-1) for c in classes] or [[]]).tobytes())
    return digest.hexdigest()[:16]


@dataclass
class Run:
    """One variant x seed: its folder, the train keys it runs with and the key that identifies its results.

    The run of a tau variant has the folder, train keys and key of its base variant's run (one training for both);
    its `tau` names its own result files (`result_files`).
    """

    variant: Variant
    seed: int
    folder: Path
    args: dict
    key: dict
    epoch_size: int  # images drawn per epoch: the dataset size, or a grown epoch with balance_floor
    label: str = ""

    @property
    def tau(self) -> float | None:
        """The correction this run's results are evaluated with (None: the trained weights as they are)."""
        return self.variant.tau

    def finished(self) -> dict | None:
        """Return the stored results if this run finished earlier under the same key, else None."""
        files, keyed = result_files(self.folder, self.tau), self.folder / "run.json"
        done = files["metrics"].exists() and files["per_image"].exists()  # earlier versions lack per-image results
        if done and keyed.exists() and json.loads(keyed.read_text()) == self.key:
            return json.loads(files["metrics"].read_text())
        return None

    def trained(self) -> dict | None:
        """Return the training record (`train.json`) if the folder was trained to the end under the same key, else None.

        It is written once `yolo train` ended well, before the final validation: a run interrupted during that
        validation is validated again on a re-run, not trained again.
        """
        keyed, record = self.folder / "run.json", self.folder / "train.json"
        if record.exists() and keyed.exists() and result_files(self.folder)["weights"].exists():
            if json.loads(keyed.read_text()) == self.key:
                return json.loads(record.read_text())
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
        changed += [k for k in ("labels", "weights", "versions") if old.get(k) != self.key.get(k)]
        if (self.folder / "metrics.json").exists() and not (self.folder / "per_image.npz").exists():
            changed.append("no per_image.npz (an earlier version of compare)")
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


def _validated(folder: Path, tau: float | None) -> bool:
    """Return whether a run folder's weights (or them corrected by tau) were validated: val.json and per_image.npz."""
    files = result_files(folder, tau)
    return files["val"].exists() and files["per_image"].exists()


def _stop_if_interrupted(children: Children, log, label: str, again: str = "trains it again") -> None:
    """Raise Interrupted after a Ctrl-C, with a note in the run's log of what a re-run does (`again`)."""
    if children.stopping.is_set():
        log.write(f"\n{INTERRUPTED}: this run is unfinished (no metrics.json), a re-run of compare {again}.\n")
        raise Interrupted(label)


def _write_json(path: Path, data: dict) -> None:
    """Write `data` as JSON to `path` atomically: a Ctrl-C or crash mid-write leaves the old file or none."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2))
    os.replace(partial, path)


def _train(base: Run, label: str, children: Children, env: dict, say) -> dict:
    """Train a run folder with the stock CLI, from scratch, and return its training record (written to train.json).

    Raises:
        Interrupted: On Ctrl-C; where it came before the training started, no folder is made and nothing is said.
        RuntimeError: If the training failed.
    """
    if changed := base.changes():
        say(f"settings or data changed since the earlier run ({'; '.join(changed)}): training again")
    if base.folder.exists():  # a changed run, or one cut short in training: nothing of it is reused
        shutil.rmtree(base.folder)
    with children.lock:  # no folder and no progress line for a run that a Ctrl-C stops before it starts
        if children.stopping.is_set():
            raise Interrupted(label)
        base.folder.mkdir(parents=True, exist_ok=True)
    (base.folder / "run.json").write_text(json.dumps(base.key, indent=2))
    say("training ...")
    start = time.time()
    cmd = [*yolo_command(), "train", *(f"{key}={value}" for key, value in base.args.items())]
    with open(base.folder / "train.log", "w") as log:
        rc = children.call(cmd, log, env)
        _stop_if_interrupted(children, log, label)
    if rc:
        raise RuntimeError(f"{label} failed (exit {rc}); see {base.folder / 'train.log'}")
    epochs = max(0, len((base.folder / "results.csv").read_text().splitlines()) - 1)  # epochs (header row)
    trained = {
        "variant": base.variant.name,
        "seed": base.seed,
        "train_seconds": round(time.time() - start, 1),  # the `yolo train` process alone (its per-epoch val too)
        "epoch_size": base.epoch_size,
        "epochs": epochs,
        "images": base.epoch_size * epochs,
    }
    _write_json(base.folder / "train.json", trained)  # trained to the end: a re-run only validates
    return trained


def _run_folder(
    todo: list[Run], data: str, train: dict, log_lock: threading.Lock, children: Children
) -> dict[str, dict]:
    """Finish the unfinished runs of one run folder and return their results by run label.

    The folder is trained with the stock CLI unless it was trained to the end earlier under the same key (its
    `train.json`); then its weights and each tau correction of them are validated in a fresh process, except those
    validated earlier (their val.json and per-image results written), and the results stored. After a Ctrl-C a run
    that has not started yet starts nothing: no folder, no progress line.

    `todo` holds the folder's unfinished runs: its trained variant's and those of the tau variants sharing it (a tau
    variant whose base variant is not compared still trains the base run once, which the report leaves out).
    """
    if children.stopping.is_set():  # Ctrl-C before this run started: it is not started
        raise Interrupted(todo[0].label)
    base = replace(todo[0], variant=Variant(todo[0].variant.base or todo[0].variant.name, todo[0].variant.overrides))
    files = result_files(base.folder)
    env = {**os.environ, "YOLO_OFFLINE": "1"}

    def say(run, text):
        with log_lock:
            print(f"{run.label}: {text}", flush=True)

    taus = [run.tau for run in todo if run.tau is not None]
    if (trained := base.finished() or base.trained()) is None:
        trained = _train(base, todo[0].label, children, env, lambda text: say(todo[0], text))
    if not files["metrics"].exists():
        taus.insert(0, None)  # the trained weights first: classification corrects their stored results
    if pending := [tau for tau in taus if not _validated(base.folder, tau)]:
        cmd = [sys.executable, "-m", "ultralytics_weighted.commands.compare", "validate", str(base.folder), data]
        with open(base.folder / "train.log", "a") as log:
            rc = children.call([*cmd, json.dumps(train), json.dumps(pending)], log, env)
            _stop_if_interrupted(children, log, todo[0].label, "validates it again (its training is kept)")
        if rc:
            raise RuntimeError(f"{todo[0].label} failed to validate (exit {rc}); see {base.folder / 'train.log'}")
    if taus[:1] == [None]:
        trained |= json.loads(files["val"].read_text())
        _write_json(files["metrics"], trained)
    results = {}
    for run in todo:
        own = result_files(run.folder, run.tau)
        result = {**trained, **json.loads(own["val"].read_text()), "variant": run.variant.name}
        if run.tau is not None:
            result["train_shared_with"] = base.variant.name  # one training for the base variant and its corrections
            _write_json(own["metrics"], result)
        shared = f", shared with {base.variant.name}" if run.tau is not None else ""
        say(run, f"{_headline(result)}, {result['images']:,} images ({result['train_seconds']:.0f} s training{shared})")
        results[run.label] = result
    return results


def _count(options: dict, key: str, default: int) -> int:
    """Pop `options[key]` as a whole number of at least 1 (`seeds`, `parallel`), with the key in any error."""
    value = options.pop(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key}={value} must be a whole number, e.g. {key}={default}.")
    if value < 1:
        raise ValueError(f"{key}={value} must be at least 1.")
    return value


@dataclass
class _Options:
    """compare's options, checked: what to compare, how often, where to, and the train keys every run shares."""

    variants: list[Variant]
    data: str
    seeds: int
    parallel: int
    resamples: int
    out: Path  # the comparison's folder
    train: dict  # the `yolo train` keys of every run, less FIXED_KEYS (compare sets those per run)
    label_keys: dict  # the train keys that change which labels training reads


def _parse_options(options: dict) -> _Options:
    """Return compare's options checked and parsed; an unknown key, a bad variant or count fails in one line."""
    from ultralytics.cfg import smart_value
    from ultralytics.utils import DEFAULT_CFG_DICT

    from ultralytics_weighted.extensions.config import check_keys

    options = dict(options)
    check_keys(options, {*DEFAULT_CFG_DICT, *COMPARE_KEYS}, "compare")  # one line, not Ultralytics' whole help
    variants = parse_variants(options.pop("variants", "none,mean,sum,auto"))  # before smart_value: 'none' is no None
    options = {k: smart_value(str(v)) if isinstance(v, str) else v for k, v in options.items()}
    data = options.pop("data", None)
    if not data:
        raise ValueError("data=... is required.")
    seeds, parallel, resamples = (
        _count(options, key, default) for key, default in (("seeds", 3), ("parallel", 1), ("resamples", RESAMPLES))
    )
    # absolute: Ultralytics puts a relative `project` under its runs folder and the task, not where compare looks
    project = Path(str(options.pop("project", "runs/compare"))).expanduser().resolve()
    out = project / str(options.pop("name", _default_name(str(data))))
    label_keys = {k: options[k] for k in ("task", "classes", "fraction") if k in options}
    train = {k: v for k, v in options.items() if k not in FIXED_KEYS}
    return _Options(variants, data, seeds, parallel, resamples, out, train, label_keys)


def _default_name(data: str) -> str:
    """Return the default name of a comparison on `data`: its dataset folder, so two datasets never share one.

    A data YAML is named after the folder that holds it (datasets/coco8/data.yaml -> coco8; a YAML that Ultralytics
    finds by name after its stem), a classification folder after itself (datasets/cls -> cls, not its parent, which
    other datasets share).

    Examples:
        >>> _default_name("datasets/coco8/data.yaml"), _default_name("coco8.yaml"), _default_name("imagenet10")
        ('coco8', 'coco8', 'imagenet10')
    """
    path = Path(data).expanduser()
    if path.is_dir() or not path.suffix:  # a classification folder, or a dataset Ultralytics names (mnist160)
        return path.resolve().name if path.is_dir() else path.name
    return (path.resolve().parent.name if path.is_file() else path.parent.name) or path.stem


def _variant_settings(variants: list[Variant], data: str, train: dict) -> tuple[dict, dict]:
    """Return each variant's train settings (`get_cfg`) and its data YAML weights (`DataWeights`, or None) by name.

    Every run's keys and data weights must pass their checks before any label scan or training; an error names the
    variant.
    """
    from ultralytics.cfg import get_cfg
    from ultralytics.utils import DEFAULT_CFG_DICT

    from ultralytics_weighted.extensions.config import check_keys
    from ultralytics_weighted.host.surface import data_weights

    cfgs, weights = {}, {}
    for v in variants:
        try:
            check_keys(v.overrides, set(DEFAULT_CFG_DICT), "compare")  # one line, not Ultralytics' whole help
            cfgs[v.name] = get_cfg(overrides={"data": data, **train, **v.overrides, "mode": "train"})
            weights[v.name] = data_weights(cfgs[v.name])  # as training reads them: one line naming file and key
        except (ValueError, TypeError, SyntaxError) as e:
            raise type(e)(f"variant '{v.name}': {e}") from None
    return cfgs, weights


class _Splits:
    """The data splits a comparison reads, each read once: `splits(data, split)` returns one as training reads it."""

    def __init__(self, label_keys: dict):
        """Read the splits with `label_keys` (task, classes, fraction), the train keys that select labels."""
        self.label_keys, self.read = label_keys, {}

    def __call__(self, data: str, split: str = "train") -> tuple[list[np.ndarray], list[str], dict, str]:
        """Return a data's split as training reads it: label classes, image files, class names and task."""
        from ultralytics_weighted.core.balanced_training import dataset_label_classes
        from ultralytics_weighted.host.labels import load_label_dataset

        if (data, split) not in self.read:
            dataset, names, task = load_label_dataset({"data": data, **self.label_keys}, split)
            files = getattr(dataset, "im_files", None) or [sample[0] for sample in dataset.samples]  # classify
            self.read[data, split] = dataset_label_classes(dataset), [str(f) for f in files], names, task
        return self.read[data, split]


def _check_same_val(variants: list[Variant], cfgs: dict, data: str, splits: _Splits) -> None:
    """Raise ValueError for a variant whose own data (`data=` part) has other val images or class names than `data`.

    compare pairs every run on the same val images, so each variant's data must validate on them.
    """
    names, val_images = splits(data)[2], splits(data, "val")[1]
    for v in variants:
        if str(variant_data := cfgs[v.name].data) == str(data):
            continue
        other_val, other_names = splits(variant_data, "val")[1:3]
        if sorted(map(os.path.realpath, other_val)) != sorted(map(os.path.realpath, val_images)):
            raise ValueError(
                f"variant '{v.name}': data={variant_data} has other val images than data={data}, and compare "
                "pairs every run on the same ones: give it the same val: split."
            )
        if other_names != names:
            raise ValueError(f"variant '{v.name}': data={variant_data} names other classes than data={data}.")


def _shared_train_keys(train: dict, task: str, parallel: int) -> dict:
    """Return the train keys every run trains and validates with: a default model for the task, workers split.

    The default model is built from YAML (nothing to download); parallel runs share the machine's CPU cores for data
    loading, so each gets its share of the dataloader workers.
    """
    train = {"model": "yolo11n-cls.yaml" if task == "classify" else "yolo11n.yaml", **train}
    if parallel > 1:
        from ultralytics.utils import DEFAULT_CFG

        train["workers"] = max(1, int(train.get("workers", DEFAULT_CFG.workers)) // parallel)
    return train


def _plan_runs(options: _Options, cfgs: dict, weights: dict, splits: _Splits, train: dict) -> tuple[list[Run], dict]:
    """Return every variant x seed as a labelled Run, and per variant what its balanced epochs draw (`balance_stats`).

    A run's key holds its train keys, a digest of the train and val labels, of its data YAML weights where it has
    any, and the versions; a tau variant's run shares the folder, train keys and key of its base variant's run, so
    both are trained once.
    """
    from ultralytics import __version__ as ultralytics_version

    from ultralytics_weighted import __version__

    names, val_classes = splits(options.data)[2], splits(options.data, "val")[0]
    versions = {"ultralytics": ultralytics_version, "ultralytics-weighted": __version__}
    runs, shares = [], {}
    for v in options.variants:
        own_classes, own_images = splits(cfgs[v.name].data)[:2]  # the variant's train split (its own data)
        multipliers = weights[v.name].multipliers(own_images) if weights[v.name] else None
        schedule = v.schedule(own_classes, len(names), cfgs[v.name].epochs, multipliers)
        shares[v.name] = schedule.figures if schedule else balance_stats(own_classes, len(names))
        keyed = {"labels": labels_digest(own_classes, val_classes)}
        keyed |= {"weights": weights[v.name].digest()} if weights[v.name] else {}
        for seed in range(options.seeds):
            folder = options.out / "runs" / f"{v.slug}-seed{seed}"
            args = {**train, "data": options.data, **v.overrides, "seed": seed}
            extra = {"project": str(options.out / "runs"), "name": folder.name, "exist_ok": True, "plots": False}
            key = {"args": {k: str(x) for k, x in args.items()}, **keyed, "versions": versions}
            runs.append(Run(v, seed, folder, {**args, **extra}, key, shares[v.name]["epoch_size"]))
    for k, run in enumerate(runs, 1):
        run.label = f"[{k}/{len(runs)}] {run.variant.name} seed {run.seed}"
    return runs, shares


def _unfinished(runs: list[Run]) -> dict[Path, list[Run]]:
    """Return the runs still to do by run folder (a variant's run and its tau variants'); say which finished earlier."""
    todo = {}
    for run in runs:
        if (earlier := run.finished()) is not None:
            print(f"{run.label}: finished earlier, skipped ({_headline(earlier)})", flush=True)
        else:
            todo.setdefault(run.folder, []).append(run)
    return todo


def _finish_runs(runs: list[Run], data: str, train: dict, parallel: int, out: Path) -> None:
    """Train and validate the unfinished runs, `parallel` at once; the first failure is raised once the others end.

    Raises:
        RuntimeError: If a run failed to train or validate (its train.log says why); runs not started yet are not.
        Interrupted: On Ctrl-C, after every training compare started has ended.
    """
    todo = _unfinished(runs)
    lock, children = threading.Lock(), Children()
    pool, futures = ThreadPoolExecutor(max_workers=parallel), {}
    try:  # from the first submit on: a Ctrl-C at any point must reach the children (they do not get the terminal's)
        for group in todo.values():
            futures[pool.submit(_run_folder, group, data, train, lock, children)] = group
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        pool.shutdown(wait=True, cancel_futures=True)  # after a failure: runs not started yet are not started
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        pool.shutdown(wait=False, cancel_futures=True)  # first: runs not started yet are not started
        children.stop()  # no run starts any more, and every running one ends
        pool.shutdown(wait=True)
        finished = len(runs) - sum(len(group) for group in todo.values())  # those finished earlier
        finished += sum(
            len(group) for f, group in futures.items() if f.done() and not f.cancelled() and f.exception() is None
        )
        raise Interrupted(
            f"{INTERRUPTED}: {finished} of {len(runs)} runs finished and kept in {out}; a re-run of the same command "
            "trains the other ones."
        ) from None
    for future in done:
        if future.exception() is not None:
            raise future.exception()


def run_comparison(options: dict, command: str = "") -> Comparison:
    """Train and validate every variant x seed, then write compare.md, compare.csv and compare.png.

    Args:
        options (dict): `data`, `variants`, `seeds`, `parallel`, `resamples` (bootstrap resamples per interval,
            default RESAMPLES), optional `project` / `name` for the output folder, and any other `yolo train` keys
            (model, epochs, imgsz, fraction, ...) applied to every run.
        command (str): The command line, written at the top of compare.md.

    Returns:
        (Comparison): The variants, every run's results and the summary table (see `summarize`).
    """
    parsed = _parse_options(options)
    out = parsed.out
    cfgs, weights = _variant_settings(parsed.variants, parsed.data, parsed.train)
    splits = _Splits(parsed.label_keys)
    names, task = splits(parsed.data)[2:]
    _check_same_val(parsed.variants, cfgs, parsed.data, splits)
    train = _shared_train_keys(parsed.train, task, parsed.parallel)
    runs, shares = _plan_runs(parsed, cfgs, weights, splits, train)
    out.mkdir(parents=True, exist_ok=True)
    _finish_runs(runs, str(parsed.data), train, parsed.parallel, out)
    setup = {
        "command": command,
        "task": task,
        "variants": [{"name": v.name, "overrides": v.overrides, "tau": v.tau, "base": v.base} for v in parsed.variants],
        "names": {int(k): str(v) for k, v in names.items()},
        "shares": {v: {k: np.asarray(x).tolist() for k, x in share.items()} for v, share in shares.items()},
        "runs": [_run_entry(str(r.folder.relative_to(out)), r.tau) for r in runs],
        "resamples": parsed.resamples,
    }
    (out / "compare.json").write_text(json.dumps(setup, indent=2))
    return summarize(out)


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


def _run_entry(folder: str, tau: float | None) -> str | dict:
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
    `evidence.paired_delta` turns them into each variant's Δ to the first variant, its 95% interval and verdict.

    Args:
        out (str | Path): The comparison's folder (holding compare.json and runs/).
        resamples (int, optional): Bootstrap resamples; default the comparison's own (`resamples=`, RESAMPLES).
        seed (int): Seed of the resamples.

    Returns:
        (Comparison): The summary; compare.md, compare.csv and compare.png are rewritten from it.
    """
    from ultralytics_weighted.commands.evidence import paired_delta, resample_weights, run_metrics

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


def _cell(row: dict, digits: int = 3) -> str:
    """Return 'mean ± std' (or the mean alone for one seed)."""
    return f"{row['mean']:.{digits}f} ± {row['std']:.{digits}f}" if row["seeds"] > 1 else f"{row['mean']:.{digits}f}"


def _delta_cell(row: dict) -> str:
    """Return 'Δ [lo, hi] verdict' of a summary row, the verdict in bold when the interval excludes 0."""
    if "delta" not in row:
        return "-"
    verdict = row["verdict"] if row["verdict"] == "not established" else f"**{row['verdict']}**"
    return f"{row['delta']:+.3f} [{row['lo']:+.3f}, {row['hi']:+.3f}] {verdict}"


def write_reports(comparison: Comparison) -> None:
    """Write compare.md, compare.csv and compare.png into the comparison's folder.

    Only the `compare` command prints the markdown: `run_comparison` and `summarize` return the results as data.
    """
    out = comparison.folder
    with open(out / "compare.csv", "w", newline="") as f:
        csv.writer(f).writerows(_csv_rows(comparison))
    (out / "compare.md").write_text(_markdown_report(comparison))
    _plot(out / "compare.png", comparison, _present_classes(comparison))


def _csv_rows(c: Comparison) -> list[list]:
    """Return compare.csv's rows: the header, one per run, metric and class, then one per summary table row."""
    wall = ["epochs", "images", "train_seconds", "val_seconds"]
    head = ["kind", "variant", "seed", "metric", "class", "value", "mean", "std", "seeds", "delta", "delta_by_seed"]
    rows = [[*head, "lo", "hi", "verdict", *wall]]
    for r in c.runs:
        for key, value in r["values"].items():
            metric, cls = key.split("/", 1)
            rows.append(["run", r["variant"], r["seed"], metric, cls, value, *[""] * 8, *(r.get(k) for k in wall)])
    for row in c.table:
        by_seed = " ".join(f"{x:+.6f}" for x in row.get("delta_by_seed", []))
        cells = [row["mean"], row["std"], row["seeds"], row.get("delta", ""), by_seed]
        cells += [row.get(k, "") for k in ("lo", "hi", "verdict")]
        rows.append(["summary", row["variant"], "", row["metric"], row["class"], "", *cells, *[""] * len(wall)])
    return rows


def _present_classes(c: Comparison) -> list[int]:
    """Return the class ids with rows in the summary (a class without val objects has none), in id order."""
    return [k for k in sorted(c.names) if any(row["class"] == c.names[k] for row in c.table)]


def _markdown_report(c: Comparison) -> str:
    """Return compare.md: the command, how to read it, the metric tables, images trained and the shares per epoch."""
    first = c.variants[0].name
    seeds = max((r["seed"] for r in c.runs), default=0) + 1
    lines = [
        "# Class balance comparison",
        "",
        f"Command: `{c.command}`" if c.command else "",
        "",
        f"{len(c.runs)} runs: {len(c.variants)} variants x {seeds} seeds, validated on the val split; mean ± std over "
        f"seeds. Δ = the paired difference to `{first}` (same seed), mean over seeds, with its 95% interval: "
        f"{c.resamples:,} bootstrap resamples of the seeds (paired) and of the val images (the same images for every "
        "run). **better** / **worse**: the interval lies above / below 0; otherwise the difference is not "
        "established. See docs/usage.md.",
        "",
    ]
    for title, metrics in TABLES.get(c.task, TABLES["detect"]):
        lines += [*_metric_table(c, title, metrics), ""]
    lines += [*_images_table(c), "", *_shares_table(c)]
    return "\n".join(lines) + "\n"


def _metric_table(c: Comparison, title: str, metrics: list[str]) -> list[str]:
    """Return one markdown table of `TABLES`: per class (and all) and metric, each variant and its Δ to the first."""
    first, train_instances = c.variants[0].name, c.shares[c.variants[0].name]["instances"]
    head = ["class", "train instances", first]
    for v in c.variants[1:]:
        head += [v.name, f"Δ {v.name} [95%]"]
    lines = [f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    summarized = {(row["metric"], row["class"]) for row in c.table}
    for metric in metrics:
        for cls in [*_present_classes(c), "all"]:
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


def _plot(path: Path, c: Comparison, present: list[int]):
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


def main(options: dict) -> int:
    """Run `compare` from parsed key=value options; bad arguments fail before any training."""
    command = "ultralytics-weighted compare " + " ".join(shlex.quote(f"{k}={v}") for k, v in options.items())
    try:
        comparison = run_comparison(dict(options), command)
    except (ValueError, TypeError, SyntaxError, FileNotFoundError) as e:
        print(f"ultralytics-weighted compare: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # a run failed: its train.log says why
        print(f"ultralytics-weighted compare: {e}", file=sys.stderr)
        return 1
    except (Interrupted, KeyboardInterrupt) as e:  # KeyboardInterrupt: before any training started
        print(f"ultralytics-weighted compare: {str(e) or INTERRUPTED}", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports a command ended by Ctrl-C
    print(_markdown_report(comparison))
    print(f"Results saved to {comparison.folder} (compare.md, compare.csv, compare.png)")
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["validate"]:
    # `python -m ultralytics_weighted.commands.compare validate RUN_FOLDER DATA TRAIN_JSON TAUS_JSON`: one run folder's
    # validations (TAUS_JSON: e.g. [null, 1.0] = the trained weights, then them corrected by tau=1), in a process of
    # their own so that parallel runs do not share one interpreter
    folder, data, train = Path(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
    for tau in json.loads(sys.argv[5]):
        start = time.time()
        val = evaluate(folder, data, train, tau)
        val["val_seconds"] = round(time.time() - start, 1)
        _write_json(result_files(folder, tau)["val"], val)  # after per_image.npz: together they mark it validated
