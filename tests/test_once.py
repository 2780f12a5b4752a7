# ultralytics-weighted, AGPL-3.0 license
"""computed_once: of several processes asking for the same key, one computes and the others load its result."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ultralytics_weighted.once import computed_once, digest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the lock is POSIX flock")

# A process asking for KEY in FOLDER: its computation takes SECONDS, marks its start and is logged in FOLDER/computed.
# With CRASH set it dies (os._exit) in the middle of writing the memo, as a killed rank would.
CHILD = """
import os, sys, time
import numpy as np
from pathlib import Path
from ultralytics_weighted import once

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
