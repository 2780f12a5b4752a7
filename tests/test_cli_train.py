# ultralytics-weighted, AGPL-3.0 license
"""Balanced training through the stock `yolo` CLI: every task, and keys from a cfg file.

Nothing here imports `ultralytics_weighted`: the plugin acts through its startup hook in the `yolo` subprocesses, so
the same tests also run against an Ultralytics tree patched with `patches/` (tests/test_patched_mode.py).
"""

from __future__ import annotations

import pytest
from conftest import YOLO, balance_table, run


@pytest.mark.parametrize(
    "task, extra",
    [
        ("detect", ["cache=ram", "mixup=0.5"]),  # stock picks mosaic/mixup partners uniformly with cache=ram
        ("segment", ["workers=2"]),  # Ultralytics forces workers=0 on CPU; test_train.py runs worker loaders
        ("pose", []),
        ("obb", []),
    ],
)
def test_yolo_train_cli_balances_every_task(task, extra, datasets, yolo, tmp_path):
    out = yolo(datasets(task), tmp_path / "runs", "class_balance=True", "balance_agg=sum", *extra, task=task)
    assert out.returncode == 0, out.stdout[-3000:]
    table = balance_table(out.stdout)
    assert "class_balance=1 balance_agg=sum: 24 train images (2 backgrounds keep their share)" in table[0]
    assert any(line.split()[:2] == ["rare", "4"] for line in table)  # 4 rare instances
    assert "max/min class share 6.50 ->" in table[-1] and "effective sample size" in table[-1]
    assert (tmp_path / "runs" / "run" / "weights" / "best.pt").exists()


def test_cfg_file_carries_the_keys(datasets, tmp_path):
    cfg = tmp_path / "balanced.yaml"
    keys = "class_balance: 0.5\nbalance_agg: median\nbalance_floor: 1\nbalance_ramp: 0.5\nbalance_start: 0.5\n"
    cfg.write_text(keys + "epochs: 2\nimgsz: 64\nbatch: 8\nplots: False\nval: False\n")
    out = run(
        [
            *YOLO,
            "train",
            f"cfg={cfg}",
            "model=yolo11n.yaml",
            f"data={datasets('detect')}",
            "device=cpu",
            f"project={tmp_path / 'runs'}",
            "name=run",
        ],
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-3000:]
    table = balance_table(out.stdout)
    assert "class_balance=0.5 balance_agg=median balance_floor=1 balance_ramp=0.5 balance_start=0.5:" in table[0]
    assert any("images (+" in line for line in table)  # the floor grew the epoch
    assert any(line.startswith("balance_start=0.5: stock sampling in epoch 1 (") for line in table)  # the grown length
    assert any(" balanced from epoch 2 of 2" in line for line in table)
