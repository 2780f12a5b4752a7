# ultralytics-weighted, AGPL-3.0 license
"""Computed once per training: an array memo in a folder that the processes of one run share (e.g. its save_dir).

Under DDP every rank builds the train dataset and would compute the same sampling probabilities at the same time (and,
with `balance_ramp`, again at the start of every epoch). `computed_once` lets the first process that asks compute them
while the others wait on a file lock, then load the result: one computation per training instead of one per process.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

try:
    import fcntl  # POSIX; without it (Windows) every process computes, and the atomic write still holds
except ImportError:  # pragma: no cover
    fcntl = None

MEMO_SUFFIX = ".npy"  # the memo of key k is the file `k.npy` in the folder, written whole or not at all


def digest(*parts) -> str:
    """Return a hex digest that changes whenever one of `parts` does: arrays by dtype, shape and bytes, others by repr.

    Args:
        *parts: The inputs of a computation, e.g. the flat class ids, the image of each instance and the settings.

    Returns:
        (str): 32 hex characters, usable as a file name.

    Examples:
        >>> a = digest(np.array([0, 1, 1]), "mean", 0.5)
        >>> a == digest(np.array([0, 1, 1]), "mean", 0.5), a == digest(np.array([0, 1, 2]), "mean", 0.5)
        (True, False)
        >>> digest(np.array([0, 1])) == digest(np.array([0, 1], dtype=np.int32))  # the dtype counts
        False
    """
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"ndarray {part.dtype.str} {part.shape}".encode())
            h.update(np.ascontiguousarray(part).data)
        else:
            h.update(f"{type(part).__name__} {part!r}".encode())
        h.update(b"\0")  # ("ab", "c") and ("a", "bc") differ
    return h.hexdigest()


def computed_once(folder: str | Path, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Return `compute()`, computed by the first process that asks for `key` in `folder` and loaded by all others.

    The processes hold an exclusive lock (`fcntl.flock` on `folder/key.lock`) while they look for the memo
    `folder/key.npy`: the first one finds none, computes and writes it, the others wait for the lock and then load it.
    The memo is written to a temporary file in the same folder and renamed into place (atomic on POSIX), so a process
    that dies mid-write leaves no memo, never a partial one, and the next process computes again. A memo that cannot be
    read is computed again too. `key` must name the inputs completely (see `digest`): a different key computes anew.

    Args:
        folder (str | Path): A folder all processes see, e.g. the run's save_dir; created if missing.
        key (str): Name of the result, e.g. `digest(...)` of everything `compute` depends on.
        compute (Callable[[], np.ndarray]): Returns the array; called at most once per key while memos persist.

    Returns:
        (np.ndarray): The computed or loaded array.

    Examples:
        >>> import tempfile
        >>> calls = []
        >>> def compute():
        ...     calls.append(1)
        ...     return np.arange(3.0)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     first, second = computed_once(folder, "k", compute), computed_once(folder, "k", compute)
        >>> second.tolist(), len(calls)
        ([0.0, 1.0, 2.0], 1)
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    memo = folder / f"{key}{MEMO_SUFFIX}"
    with open(folder / f"{key}.lock", "a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also when the process dies
        if memo.exists():
            try:
                return np.load(memo, allow_pickle=False)
            except (OSError, ValueError, EOFError):  # unreadable (e.g. another format): compute it again
                pass
        result = np.asarray(compute())
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                np.save(file, result, allow_pickle=False)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, memo)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return result
