# ultralytics-weighted, AGPL-3.0 license
"""compare's validation of one run folder: every image's results recorded as Ultralytics' validator computes them.

`validate` runs `model.val()` on a run's weights and stores each image's results (`per_image.npz`) next to the metrics
Ultralytics reports; `evaluate` does so for the trained weights or for them corrected by τ (`priors`). To record each
image, `record_per_image` replaces attributes of the validator *instance* of that one `model.val()` call, through an
`on_val_start` callback: `update_metrics` (wrapped: the original runs unchanged, the wrapper copies what it added),
for detection `postprocess` (wrapped: the original runs unchanged; the wrapper also keeps the single-label detections
of the operating point) and, for classification, `dataloader` (rebuilt unshuffled). No Ultralytics class or module is
changed; host/surface.py lists this beside `PATCH_SURFACE`.

Internal entry point (compare's child process; documented, not a user command): compare validates each run folder in a
process of its own, so that parallel runs do not share one interpreter:

    python -m ultralytics_weighted.host.validation RUN_FOLDER DATA TRAIN_JSON TAUS_JSON CHECKPOINT [OPERATING_CONF]

TRAIN_JSON: the run's train keys (`imgsz`, `batch`, `device` are used); TAUS_JSON: the results to validate in order,
e.g. `[null, 1.0]` = the trained weights, then them corrected by τ = 1; CHECKPOINT: `last` (the final weights) or
`best` (`CHECKPOINTS`); OPERATING_CONF: the confidence of detection's operating point (default `OPERATING_CONF`).
For each it writes `per_image*.npz`, then `val*.json` (with `val_seconds`, `checkpoint`, for detection
`operating_conf` and, for a classifier's trained weights, `logit_offsets`); together they mark it validated.
`validation_command` builds this command line.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

CHECKPOINTS = ("last", "best")  # the weights compare may evaluate: weights/last.pt (the final ones) or best.pt
OPERATING_CONF = 0.25  # detection's operating point: Ultralytics' `predict` default confidence (compare's key)


def record_per_image(model, task: str, operating_conf: float | None = None) -> dict:
    """Make `model.val()` hand over every image's results as its validator computes them; return the lists they fill.

    The validator's own `update_metrics` runs unchanged; the wrapper installed at `on_val_start` only copies what it
    added for each image: for detection (and segment, pose, obb) the entries of `metrics.stats` (tp matrices at the 10
    IoU thresholds, confidences, predicted and target classes) and the image file, for classification the true class,
    the top-1 class and the class probabilities the model gave. Ultralytics shuffles the classification val loader and
    its batches carry no file names, so for classification the loader is rebuilt unshuffled (the same Ultralytics
    `build_dataloader`, `shuffle=False`) and the files are the dataset's samples in order.

    With `operating_conf`, detection also records the single-label detections of Ultralytics' `predict` path
    (`operating_point_detections`): `postprocess` is wrapped too, and its original still runs and is what the
    validator scores.
    """
    from ultralytics.data.build import build_dataloader

    record, single = {}, []  # single: the current batch's single-label detections, from postprocess to update_metrics

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
            for si, detections in enumerate(single[: len(preds)]):  # matched as the validator matches its own
                pbatch, predn = validator._prepare_batch(si, batch), validator._prepare_pred(detections)
                record.setdefault("op_hit", []).append(validator._process_batch(predn, pbatch)["tp"][:, 0])
                record.setdefault("op_conf", []).append(predn["conf"].cpu().numpy())
                record.setdefault("op_cls", []).append(predn["cls"].cpu().numpy())

        validator.update_metrics = update_metrics
        if task == "detect" and operating_conf is not None:
            postprocess = validator.postprocess

            def postprocess_both(preds):
                single[:] = operating_point_detections(validator, preds, operating_conf)
                return postprocess(preds)

            validator.postprocess = postprocess_both

    model.add_callback("on_val_start", on_val_start)
    return record


def operating_point_detections(validator, preds, conf: float) -> list[dict]:
    """Return a batch's detections as Ultralytics' `predict` keeps them: one class per box, confidence >= `conf`.

    The validator's own NMS keeps every class of a box above its 0.001 threshold (`multi_label=True`), which AP needs;
    `predict` keeps a box's best class only (`multi_label=False`) at confidence 0.25 by default: the boxes and classes
    a user deploys. Same raw outputs, IoU, `max_det` and class-agnostic setting as the validator's NMS.
    """
    from ultralytics.utils import nms

    raw = preds[0] if isinstance(preds, (list, tuple)) else preds
    args = validator.args
    kept = nms.non_max_suppression(
        raw.clone(),  # NMS must not change what the validator's own NMS then reads
        conf,
        args.iou,
        multi_label=False,
        agnostic=args.single_cls or args.agnostic_nms,
        max_det=args.max_det,
        end2end=getattr(validator, "end2end", False),
    )
    return [{"bboxes": x[:, :4], "conf": x[:, 4], "cls": x[:, 5], "extra": x[:, 6:]} for x in kept]


def per_image_arrays(record: dict, task: str, operating_conf: float | None = None) -> dict:
    """Return the arrays `per_image.npz` stores from what `record_per_image` collected (see `evaluate_runs`)."""
    images = np.array(record["images"], dtype=str)  # the image files, in the order of the other arrays
    if task == "classify":
        return {k: np.concatenate(record[k]) for k in ("true", "pred", "probs")} | {"images": images}
    tp = "tp_m" if task == "segment" else "tp"  # the masks' matches for segmentation, as its reported metric
    preds, targets = [len(x) for x in record["conf"]], [len(x) for x in record["target_cls"]]
    operating = {}
    if "op_conf" in record:  # the single-label detections at the operating point (`operating_point_detections`)
        shown = [len(x) for x in record["op_conf"]]
        operating = {
            "op_hit": np.concatenate(record["op_hit"]).astype(bool),
            "op_conf": np.concatenate(record["op_conf"]).astype(np.float32),
            "op_cls": np.concatenate(record["op_cls"]).astype(np.int32),
            "op_image": np.repeat(np.arange(len(shown)), shown).astype(np.int32),
            "op_threshold": np.float64(operating_conf),
        }
    return operating | {
        "tp": np.concatenate(record[tp]).astype(bool),
        "conf": np.concatenate(record["conf"]).astype(np.float32),
        "pred_cls": np.concatenate(record["pred_cls"]).astype(np.int32),
        "pred_image": np.repeat(np.arange(len(preds)), preds).astype(np.int32),
        "target_cls": np.concatenate(record["target_cls"]).astype(np.int32),
        "target_image": np.repeat(np.arange(len(targets)), targets).astype(np.int32),
        "n_images": np.int64(len(preds)),
        "images": images,
    }


def validate(
    best: Path, data: str, train: dict, per_image: Path | None = None, operating_conf: float | None = None
) -> dict:
    """Validate weights on the val split; return overall and per-class metrics, and store per-image results.

    Args:
        best (Path): The weights.
        data (str): The dataset.
        train (dict): The run's train keys (`imgsz`, `batch`, `device`, `task` are used).
        per_image (Path, optional): Where to write the per-image results (`per_image.npz`); None writes nothing.
        operating_conf (float, optional): For detection, also store the single-label detections at this confidence
            (`operating_point_detections`: `op_hit` (matched at IoU 0.5), `op_conf`, `op_cls`, `op_image` and
            `op_threshold`).

    Returns:
        (dict): `task`, `all` (AP50 and AP50-95, or top-1 and top-5 accuracy for classification) and `classes`
            (per class id: AP50 and AP50-95; none for classification, whose per-class recall comes from the per-image
            results), as Ultralytics reports them.
    """
    from ultralytics import YOLO

    model = YOLO(best)
    task = model.task
    keys = {k: train[k] for k in ("imgsz", "batch", "device") if k in train}
    record = record_per_image(model, task, operating_conf)
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
        np.savez_compressed(per_image, **per_image_arrays(record, task, operating_conf))
    if task == "classify":
        return {"task": task, "all": {"top1": float(metrics.top1), "top5": float(metrics.top5)}, "classes": {}}
    box = metrics.seg if task == "segment" else metrics.box
    per_class = {
        int(c): {"ap50": float(box.ap50[i]), "ap50_95": float(box.ap[i])} for i, c in enumerate(box.ap_class_index)
    }
    return {"task": task, "all": {"ap50": float(box.map50), "ap50_95": float(box.map)}, "classes": per_class}


def result_files(folder: Path, tau: float | None = None, checkpoint: str = "last") -> dict[str, Path]:
    """Return the files of a run's results: those of its trained weights, or of them corrected by tau.

    `checkpoint` names the weights evaluated (`CHECKPOINTS`); the result files are named alike for both, and record
    which weights they hold (`checkpoint` in val.json and metrics.json).

    Examples:
        >>> files = result_files(Path("runs/mean-seed0"), 1.0, "best")
        >>> {k: v.name for k, v in files.items()}  # doctest: +NORMALIZE_WHITESPACE
        {'weights': 'best-tau1.pt', 'val': 'val-tau1.json', 'per_image': 'per_image-tau1.npz',
         'metrics': 'metrics-tau1.json'}
        >>> result_files(Path("runs/mean-seed0"))["weights"].name
        'last.pt'
    """
    from ultralytics_weighted.extensions.config import corrected_path

    files = {"weights": folder / "weights" / f"{checkpoint}.pt", "val": folder / "val.json"}
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


def evaluate(
    folder: Path,
    data: str,
    train: dict,
    tau: float | None = None,
    checkpoint: str = "last",
    operating_conf: float = OPERATING_CONF,
) -> dict:
    """Validate a run's weights (`checkpoint`), or them corrected by tau, and store the per-image results.

    With tau, classification corrects the stored per-image probabilities of the run (validated first) by
    `logit_offsets`: the same predictions as validating the corrected checkpoint, without running the model again.
    Detection writes the corrected checkpoint (e.g. weights/last-tau1.pt) and validates it: the correction acts through
    NMS, the confidence threshold and `max_det`, which the stored results cannot replay. Detection also stores the
    single-label detections at `operating_conf` (`validate`).

    Returns:
        (dict): As `validate`.
    """
    from ultralytics_weighted.host.priors import correct_checkpoint

    files, trained = result_files(folder, tau, checkpoint), result_files(folder, None, checkpoint)
    if tau is None:
        return validate(trained["weights"], data, train, files["per_image"], operating_conf)
    if json.loads(trained["val"].read_text())["task"] != "classify":
        correct_checkpoint(trained["weights"], tau, files["weights"], exist_ok=True)  # a re-validation replaces it
        return validate(files["weights"], data, train, files["per_image"], operating_conf)
    with np.load(trained["per_image"]) as f:
        stored = dict(f)
    probs = corrected_probabilities(stored["probs"], logit_offsets(trained["weights"], tau))
    top5 = np.argsort(-probs, 1, kind="stable")[:, :5]
    stored |= {"pred": top5[:, 0].astype(np.int32), "probs": probs.astype(np.float32)}
    np.savez_compressed(files["per_image"], **stored)
    top = (top5 == stored["true"][:, None]).cumsum(1)
    accuracy = {"top1": float(top[:, 0].mean()), "top5": float(top[:, -1].mean())}
    return {"task": "classify", "all": accuracy, "classes": {}}


def write_json(path: Path, data: dict) -> None:
    """Write `data` as JSON to `path` atomically: a Ctrl-C or crash mid-write leaves the old file or none."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2))
    os.replace(partial, path)


def trained_prior_offsets(weights: Path) -> list[float] | None:
    """Return the class-logit offsets that correct a balanced checkpoint by τ = 1, or None if it trained without.

    They are `priors.prior_offsets` of the class priors the checkpoint records; compare stores them with a
    classifier's results so that its τ frontier (`rule.tau_frontier`) is recomputed from the run folder alone.
    """
    from ultralytics.utils.patches import torch_load

    from ultralytics_weighted.host.priors import PRIORS_ATTRIBUTE, correction_share, prior_offsets

    checkpoint = torch_load(weights, map_location="cpu")
    priors = getattr(checkpoint.get("ema") or checkpoint["model"], PRIORS_ATTRIBUTE, None)
    return prior_offsets(priors["share_before"], correction_share(priors)[0], 1.0).tolist() if priors else None


def validation_command(
    folder: Path, data: str, train: dict, taus: list, checkpoint: str, operating_conf: float = OPERATING_CONF
) -> list[str]:
    """Return the command line of the internal entry point that validates `folder`'s weights for each of `taus`."""
    args = [str(folder), str(data), json.dumps(train), json.dumps(taus), checkpoint, repr(float(operating_conf))]
    return [sys.executable, "-m", __name__, *args]


def main(argv: list[str]) -> None:
    """Validate one run folder for each τ of the internal entry point's arguments (see the module docstring)."""
    folder, data, train, taus, checkpoint = Path(argv[0]), argv[1], json.loads(argv[2]), json.loads(argv[3]), argv[4]
    operating_conf = float(argv[5]) if len(argv) > 5 else OPERATING_CONF
    for tau in taus:
        start = time.time()
        val = evaluate(folder, data, train, tau, checkpoint, operating_conf)
        val |= {"val_seconds": round(time.time() - start, 1), "checkpoint": checkpoint}
        if val["task"] == "detect":  # what its stored single-label detections were kept at
            val["operating_conf"] = operating_conf
        if tau is None and val["task"] == "classify":  # the τ frontier's offsets, kept with the results
            val["logit_offsets"] = trained_prior_offsets(result_files(folder, None, checkpoint)["weights"])
        write_json(result_files(folder, tau, checkpoint)["val"], val)  # after per_image.npz: both mark it validated


if __name__ == "__main__":
    main(sys.argv[1:])
