# ultralytics-weighted, AGPL-3.0 license
"""The host is never harmed by the plugin: if activating it fails, Ultralytics works as without it."""

from __future__ import annotations

import os
import sys

import pytest
from conftest import YOLO, plain, run

SHADOWS = {  # a dependency of the plugin as a broken install leaves it
    "missing": "raise ModuleNotFoundError(\"No module named 'threadpoolctl'\", name='threadpoolctl')",
    "broken": "raise ImportError('threadpoolctl is broken in this test')",
}
CAUSES = {
    "missing": "threadpoolctl is missing (ModuleNotFoundError: No module named 'threadpoolctl'): pip install "
    "ultralytics-weighted again",
    "broken": "threadpoolctl cannot be imported (ImportError: threadpoolctl is broken in this test): pip install "
    "--force-reinstall threadpoolctl",
}


@pytest.fixture(params=sorted(SHADOWS))
def shadowed(request, tmp_path):
    """Return (env, cause): threadpoolctl shadowed by a module that fails to import, first on PYTHONPATH."""
    folder = tmp_path / "shadow"
    folder.mkdir()
    (folder / "threadpoolctl.py").write_text(SHADOWS[request.param] + "\n")
    path = os.pathsep.join(filter(None, (str(folder), os.environ.get("PYTHONPATH"))))
    return {"PYTHONPATH": path}, CAUSES[request.param]


def test_a_failed_activation_leaves_stock_commands_working(shadowed, tmp_path):
    env, _ = shadowed
    out = run([*YOLO, "cfg"], cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "imgsz: 640" in out.stdout and "class_balance" not in out.stdout  # stock defaults, no plugin key
    code = "from ultralytics.cfg import get_cfg\nprint('OK', get_cfg(overrides={'epochs': 2}).epochs)"
    out = run([sys.executable, "-c", code], cwd=tmp_path, env=env)
    assert out.returncode == 0 and "OK 2" in out.stdout, out.stdout[-3000:]


def test_a_failed_activation_refuses_a_balancing_key_naming_the_plugin_and_the_cause(shadowed, tmp_path):
    env, cause = shadowed
    cmd = [*YOLO, "train", "model=yolo11n.yaml", "data=data.yaml", "class_balance=True", f"project={tmp_path / 'p'}"]
    out = run(cmd, cwd=tmp_path, env=env)
    assert out.returncode != 0
    message = plain(out.stdout).strip().splitlines()[-1]
    assert message == (
        "ultralytics_weighted_hook.PluginUnavailableError: 'class_balance' is a key of ultralytics-weighted, which "
        f"failed to start in this process: {cause}. Everything else in Ultralytics works as without "
        "ultralytics-weighted."
    )
    assert "not a valid YOLO argument" not in out.stdout  # one message, not Ultralytics' help with a line added
    assert not (tmp_path / "p").exists()  # refused before any run folder
