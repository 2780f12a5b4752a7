# ultralytics-weighted, AGPL-3.0 license
"""computed_once: of several processes asking for the same key, one computes and the others load its result."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ultralytics_weighted.extensions.once import computed_once, digest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the lock is POSIX flock")

# A process asking for KEY in FOLDER: its computation takes SECONDS, marks its start and is logged in FOLDER/computed.
# With CRASH set it dies (os._exit) in the middle of writing the memo, as a killed rank would.
CHILD = """
import os, sys, time
import numpy as np
from pathlib import Path
from ultralytics_weighted.extensions import once

folder, key, seconds, crash = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "crash"

def compute():
    Path(folder, f"started-{key}").touch()
    time.sleep(seconds)
    with open(Path(folder, "computed"), "a") as log:
        log.write(f"{key} {os.getpid()}\\n")
    return np.arange(1000, dtype=np.float64) * len(key)

if crash:
    def half_write(file, array, **kwargs):
        file.write(b"\\x93NUMPY partial")
        file.flush()
        os._exit(3)
    once.np.save = half_write
result = once.computed_once(folder, key, compute)
print(float(result.sum()))
"""


def ask(folder: Path, key: str, seconds: float = 0.0, crash: bool = False) -> subprocess.Popen:
    """Start a process asking `computed_once` for `key` in `folder`."""
    script = folder / "child.py"
    script.write_text(CHILD)
    args = [sys.executable, str(script), str(folder), key, str(seconds), "crash" if crash else "-"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> str:
    """Wait for `process` and return its stdout, failing the test on a non-zero exit."""
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out.strip()


def computations(folder: Path) -> list[str]:
    """Return the keys computed so far in `folder`, one per computation."""
    log = folder / "computed"
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


def wait_for(path: Path, timeout: float = 60.0) -> None:
    """Wait until `path` exists."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_second_process_waits_and_loads(tmp_path):
    """A process asking while another computes waits for it and loads its result instead of computing again."""
    first = ask(tmp_path, "probabilities", seconds=1.5)
    wait_for(tmp_path / "started-probabilities")  # the first one holds the lock and computes
    second = ask(tmp_path, "probabilities")
    assert finish(first) == finish(second) == str(float(np.arange(1000).sum() * len("probabilities")))
    assert computations(tmp_path) == ["probabilities"]  # computed once, by the first
    assert (tmp_path / "probabilities.npy").exists()


def test_different_key_computes_again(tmp_path):
    """A memo answers only its own key: other inputs (another key) are computed, once each."""
    finish(ask(tmp_path, "strength-0.5"))
    finish(ask(tmp_path, "strength-1.0"))
    finish(ask(tmp_path, "strength-0.5"))
    assert computations(tmp_path) == ["strength-0.5", "strength-1.0"]


def test_crash_mid_write_leaves_no_memo(tmp_path):
    """A process dying while it writes leaves no (partial) memo: the next process computes and gets the full array."""
    crashed = ask(tmp_path, "epoch-3", crash=True)
    crashed.communicate(timeout=120)
    assert crashed.returncode == 3  # it died inside the write, after computing
    assert computations(tmp_path) == ["epoch-3"]
    assert not (tmp_path / "epoch-3.npy").exists()
    assert finish(ask(tmp_path, "epoch-3")) == str(float(np.arange(1000).sum() * len("epoch-3")))
    assert computations(tmp_path) == ["epoch-3", "epoch-3"]  # computed again, not loaded from a partial file
    assert np.load(tmp_path / "epoch-3.npy").shape == (1000,)


def test_killed_holder_releases_the_lock(tmp_path):
    """A process killed while it computes does not block the others: the next one takes the lock and computes."""
    holder = ask(tmp_path, "weights", seconds=60.0)
    wait_for(tmp_path / "started-weights")
    waiting = ask(tmp_path, "weights")
    holder.kill()
    holder.communicate(timeout=120)
    assert finish(waiting) == str(float(np.arange(1000).sum() * len("weights")))
    assert computations(tmp_path) == ["weights"]  # the killed one never finished


def test_in_process_memo_and_digest(tmp_path):
    """Asked twice in one process, the second call loads; the digest tells inputs apart by value and dtype."""
    calls = []

    def compute():
        calls.append(1)
        return np.linspace(0, 1, 5)

    key = digest(np.array([0, 1, 1]), np.array([0, 0, 1]), "mean", 0.5)
    first, second = computed_once(tmp_path, key, compute), computed_once(tmp_path, key, compute)
    np.testing.assert_array_equal(first, second)
    assert len(calls) == 1
    assert key != digest(np.array([0, 1, 1]), np.array([0, 0, 1]), "mean", 1.0)
    assert key != digest(np.array([0, 1, 1], dtype=np.int32), np.array([0, 0, 1]), "mean", 0.5)


def test_a_schedule_with_a_memo_computes_each_strength_once_per_training(tmp_path, monkeypatch):
    # Two DDP ranks' schedules of one training share the run's memo folder: every strength of a ramp is computed once,
    # and each rank draws from exactly the probabilities a schedule without a memo computes.
    from types import SimpleNamespace

    from ultralytics_weighted.extensions import schedule as schedule_module
    from ultralytics_weighted.extensions.schedule import BalanceSchedule
    from ultralytics_weighted.host.training import memo_folder, remove_memo

    labels = [np.array([0, 0])] * 5 + [np.array([1])] * 2 + [np.array([0, 2])] * 3
    computed, real = [], schedule_module.weighted_probabilities
    monkeypatch.setattr(
        schedule_module, "weighted_probabilities", lambda *a, **k: computed.append(a[3]) or real(*a, **k)
    )
    trainer = SimpleNamespace(save_dir=tmp_path / "run", world_size=2)
    ranks = [BalanceSchedule(labels, 3, 1.0, "auto", ramp=1.0, epochs=3, memo=memo_folder(trainer)) for _ in range(2)]
    for epoch in range(3):
        np.testing.assert_array_equal(ranks[0].probabilities(epoch), ranks[1].probabilities(epoch))
    assert sorted(computed) == [0.0, 0.5, 1.0]  # one computation per strength, not per rank
    alone = BalanceSchedule(labels, 3, 1.0, "auto", ramp=1.0, epochs=3)
    np.testing.assert_array_equal(ranks[1].probabilities(1), alone.probabilities(1))
    assert memo_folder(SimpleNamespace(save_dir=tmp_path / "run", world_size=1)) is None  # one process: no files
    assert any(memo_folder(trainer).glob("*.npy"))
    remove_memo(trainer)  # at the end of the training
    assert not memo_folder(trainer).exists()
