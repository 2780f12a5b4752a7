# ultralytics-weighted, AGPL-3.0 license
"""compare's process supervision: each run trained by the stock `yolo train` CLI and validated in a child process.

Each run trains in its own folder, its log in `train.log`, and its weights are validated in a process of their own
(`host.validation`'s internal entry point). `parallel=N` runs N folders at once. A run is keyed by its full settings and
data (`run.json`, see `plan.plan_runs`): a re-run skips the runs whose `metrics.json` was written under the same key,
validates without training again those trained to the end (`train.json`) but not validated, and trains again those
whose settings or data changed, saying what changed. One Ctrl-C ends every process compare started (each runs in a
session of its own: `Children`) and raises `Interrupted`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

from ultralytics_weighted.commands.compare.variants import Variant
from ultralytics_weighted.host.validation import OPERATING_CONF, result_files, validation_command, write_json


def yolo_command() -> list[str]:
    """Return the command that runs the stock `yolo` CLI of this interpreter's Ultralytics."""
    script = Path(sys.executable).parent / "yolo"
    if script.is_file():
        return [str(script)]
    found = shutil.which("yolo")
    return [found] if found else [sys.executable, "-c", "from ultralytics.cfg import entrypoint; entrypoint()"]


def _headline(result: dict) -> str:
    """Return a run's overall metrics for its progress line, e.g. 'AP50 0.512, AP50-95 0.301'."""
    if result.get("task") == "classify":
        return f"top-1 {result['all']['top1']:.3f}"
    return f"AP50 {result['all']['ap50']:.3f}, AP50-95 {result['all']['ap50_95']:.3f}"


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
    checkpoint: str = "last"  # the weights evaluated (`validation.CHECKPOINTS`)
    operating_conf: float = OPERATING_CONF  # detection's operating point (`validation.operating_point_detections`)

    @property
    def tau(self) -> float | None:
        """The correction this run's results are evaluated with (None: the trained weights as they are)."""
        return self.variant.tau

    def finished(self) -> dict | None:
        """Return the stored results if this run finished earlier under the same key, else None."""
        files, keyed = result_files(self.folder, self.tau, self.checkpoint), self.folder / "run.json"
        done = files["metrics"].exists() and files["per_image"].exists()  # earlier versions lack per-image results
        if done and keyed.exists() and json.loads(keyed.read_text()) == self.key:
            metrics = json.loads(files["metrics"].read_text())
            return metrics if _same_evaluation(metrics, self.checkpoint, self.operating_conf) else None  # else: again
        return None

    def trained(self) -> dict | None:
        """Return the training record (`train.json`) if the folder was trained to the end under the same key, else None.

        It is written once `yolo train` ended well, before the final validation: a run interrupted during that
        validation is validated again on a re-run, not trained again.
        """
        keyed, record = self.folder / "run.json", self.folder / "train.json"
        if record.exists() and keyed.exists() and result_files(self.folder, None, self.checkpoint)["weights"].exists():
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


def _same_evaluation(val: dict, checkpoint: str, operating_conf: float) -> bool:
    """Return whether stored results (val.json or metrics.json) are those compare would now validate.

    That is: they evaluated `checkpoint`, and for detection kept the single-label detections at `operating_conf`
    (results stored before either existed: best.pt, and no operating point).
    """
    if val.get("checkpoint", "best") != checkpoint:
        return False
    return val.get("task") != "detect" or val.get("operating_conf") == operating_conf


def _validated(folder: Path, tau: float | None, checkpoint: str, operating_conf: float = OPERATING_CONF) -> bool:
    """Return whether a run folder's weights (or them corrected by tau) were validated: val.json and per_image.npz."""
    files = result_files(folder, tau, checkpoint)
    if not (files["val"].exists() and files["per_image"].exists()):
        return False
    return _same_evaluation(json.loads(files["val"].read_text()), checkpoint, operating_conf)


def _stop_if_interrupted(children: Children, log, label: str, again: str = "trains it again") -> None:
    """Raise Interrupted after a Ctrl-C, with a note in the run's log of what a re-run does (`again`)."""
    if children.stopping.is_set():
        log.write(f"\n{INTERRUPTED}: this run is unfinished (no metrics.json), a re-run of compare {again}.\n")
        raise Interrupted(label)


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
    write_json(base.folder / "train.json", trained)  # trained to the end: a re-run only validates
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
    files = result_files(base.folder, None, base.checkpoint)
    env = {**os.environ, "YOLO_OFFLINE": "1"}

    def say(run, text):
        with log_lock:
            print(f"{run.label}: {text}", flush=True)

    taus = [run.tau for run in todo if run.tau is not None]
    if (trained := base.finished() or base.trained()) is None:
        trained = _train(base, todo[0].label, children, env, lambda text: say(todo[0], text))
    if base.finished() is None:
        taus.insert(0, None)  # the trained weights first: classification corrects their stored results
    if pending := [tau for tau in taus if not _validated(base.folder, tau, base.checkpoint, base.operating_conf)]:
        command = validation_command(base.folder, data, train, pending, base.checkpoint, base.operating_conf)
        with open(base.folder / "train.log", "a") as log:
            rc = children.call(command, log, env)
            _stop_if_interrupted(children, log, todo[0].label, "validates it again (its training is kept)")
        if rc:
            raise RuntimeError(f"{todo[0].label} failed to validate (exit {rc}); see {base.folder / 'train.log'}")
    if taus[:1] == [None]:
        trained |= json.loads(files["val"].read_text())
        write_json(files["metrics"], trained)
    results = {}
    for run in todo:
        own = result_files(run.folder, run.tau, run.checkpoint)
        result = {**trained, **json.loads(own["val"].read_text()), "variant": run.variant.name}
        if run.tau is not None:
            result["train_shared_with"] = base.variant.name  # one training for the base variant and its corrections
            write_json(own["metrics"], result)
        shared = f", shared with {base.variant.name}" if run.tau is not None else ""
        say(run, f"{_headline(result)}, {result['images']:,} images ({result['train_seconds']:.0f} s training{shared})")
        results[run.label] = result
    return results


def _unfinished(runs: list[Run]) -> dict[Path, list[Run]]:
    """Return the runs still to do by run folder (a variant's run and its tau variants'); say which finished earlier."""
    todo = {}
    for run in runs:
        if (earlier := run.finished()) is not None:
            print(f"{run.label}: finished earlier, skipped ({_headline(earlier)})", flush=True)
        else:
            todo.setdefault(run.folder, []).append(run)
    return todo


def finish_runs(runs: list[Run], data: str, train: dict, parallel: int, out: Path) -> None:
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
