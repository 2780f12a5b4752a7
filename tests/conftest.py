# ultralytics-weighted, AGPL-3.0 license
"""Shared fixtures: tiny synthetic datasets and a runner for the stock `yolo` CLI (offline)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ["YOLO_OFFLINE"] = "1"  # no downloads, also in subprocesses
YOLO = [str(Path(sys.executable).parent / "yolo")]
MODELS = {
    "detect": "yolo11n.yaml",
    "segment": "yolo11n-seg.yaml",
    "pose": "yolo11n-pose.yaml",
    "obb": "yolo11n-obb.yaml",
}


@pytest.fixture(scope="session")
def datasets(tmp_path_factory):
    """Return a function task -> data.yaml path of a tiny imbalanced dataset (made once per session and task)."""
    from ultralytics_weighted.commands.synthetic import make_dataset

    made = {}

    def get(task: str = "detect") -> Path:
        if task not in made:
            made[task] = make_dataset(tmp_path_factory.mktemp(f"data_{task}"), task=task, n_train=24, n_val=8)
        return made[task]

    return get


def run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a command with stdout and stderr merged into `.stdout`."""
    return subprocess.run(
        cmd,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def yolo_train(data: Path, project: Path, *args: str, env: dict | None = None, task: str = "detect"):
    """Run `yolo train` on CPU for 1 epoch at imgsz 64 with extra key=value arguments."""
    cmd = [
        *YOLO,
        "train",
        f"task={task}",
        f"model={MODELS[task]}",
        f"data={data}",
        "epochs=1",
        "imgsz=64",
        "batch=8",
        "device=cpu",
        "plots=False",
        f"project={project}",
        "name=run",
        *args,
    ]
    return run(cmd, cwd=project.parent, env=env)


@pytest.fixture
def yolo():
    """The `yolo_train` helper, for tests that train through the stock CLI."""
    return yolo_train


def plain(text: str) -> str:
    """Remove terminal color codes (Ultralytics colors its log prefixes)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def balance_table(stdout: str) -> list[str]:
    """Return the logged balance lines without their colored 'balance: ' prefix."""
    return [line.split("balance: ", 1)[1] for line in plain(stdout).splitlines() if line.startswith("balance: ")]


@contextmanager
def captured_log():
    """Collect the messages Ultralytics' LOGGER emits inside the block (color codes removed)."""
    from ultralytics.utils import LOGGER

    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(plain(record.getMessage()))
    LOGGER.addHandler(handler)
    try:
        yield records
    finally:
        LOGGER.removeHandler(handler)
