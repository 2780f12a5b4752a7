# ultralytics-weighted, AGPL-3.0 license
"""`ultralytics-weighted demo`: its report on a shortened run, and that it never writes into other data."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from ultralytics_weighted.commands.demo import MARKER, demo_folder

PNG = b"\x89PNG\r\n\x1a\n"


def demo(*args, cwd):
    cmd = [sys.executable, "-m", "ultralytics_weighted.commands.cli", "demo", *args]
    # as a user runs it: Ultralytics moves its default save folders elsewhere while PYTEST_CURRENT_TEST is set
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_demo_report_on_a_short_run(tmp_path):
    out = demo(f"dir={tmp_path / 'demo'}", "images=40", "epochs=1", "imgsz=64", cwd=tmp_path)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    lines = out.stdout.splitlines()
    # the balance table that training logs, before training
    start = lines.index("The balance table that balanced training logs at its start:")
    assert lines[start + 1].startswith("class_balance=1 balance_agg=mean: 40 train images")
    assert [line.split()[0] for line in lines[start + 3 : start + 6]] == ["common", "medium", "rare"]
    assert "[2/2] mean seed 0: AP50" in out.stdout and "## AP50" not in out.stdout  # progress, not compare's report
    # ends with one markdown table: a row per class and all, stock and balanced AP50
    table = lines[lines.index(next(line for line in lines if line.startswith("| class |"))) :]
    head = [cell.strip() for cell in table[0].strip("|").split("|")]
    # one seed (the demo's default): no seed-to-seed spread in the interval, and the heading says so
    delta_column = "Δ AP50 [evaluation noise only]"
    assert head[0] == "class" and {"stock AP50", "balanced AP50", delta_column, "share/epoch balanced"} <= set(head)
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]
    assert [row[0] for row in rows] == ["common", "medium", "rare", "**all**"]
    assert all(len(row) == len(head) for row in rows)
    assert all(0.0 <= float(row[head.index(col)]) <= 1.0 for row in rows for col in ("stock AP50", "balanced AP50"))
    for row in rows:  # Δ = balanced - stock, with its interval around it and the verdict the interval gives
        delta, lo, hi, verdict = re.fullmatch(r"(\S+) \[(\S+), (\S+)\] (.+)", row[head.index(delta_column)]).groups()
        stock, balanced = (float(row[head.index(col)]) for col in ("stock AP50", "balanced AP50"))
        assert abs(float(delta) - (balanced - stock)) < 2e-3 and float(lo) <= float(delta) <= float(hi)
        assert verdict == ("better" if float(lo) > 0 else "worse" if float(hi) < 0 else "not established")
    # where everything is
    folder = tmp_path / "demo"
    for path in (folder / "dataset" / "data.yaml", folder / "compare" / "compare.md", folder / "compare" / "runs"):
        assert str(path) in out.stdout and path.exists()
    assert (folder / "compare" / "compare.png").read_bytes()[:8] == PNG
    assert (folder / MARKER).is_file()
    assert list(tmp_path.iterdir()) == [folder]  # nothing outside dir= (no runs/detect/val* of the validations)


def test_demo_refuses_a_folder_with_other_data(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    out = demo(f"dir={mine}", "epochs=1", cwd=tmp_path)
    assert out.returncode == 2 and "holds notes.txt that no earlier demo wrote" in out.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]  # nothing written, nothing removed
    assert (mine / "notes.txt").read_text() == "keep me"

    (mine / MARKER).write_text("")  # a demo's marker does not make other files the demo's
    with pytest.raises(FileExistsError, match="holds notes.txt"):
        demo_folder(str(mine))
    with pytest.raises(FileExistsError, match="is a file"):
        demo_folder(str(mine / "notes.txt"))


def test_demo_folder_expands_a_home_tilde(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert demo_folder("~/demo") == tmp_path / "home" / "demo" and not (tmp_path / "~").exists()


def test_demo_folder_replaces_only_an_earlier_demo(tmp_path, monkeypatch):
    earlier = demo_folder(str(tmp_path / "d"))
    (earlier / "dataset").mkdir()
    (earlier / "compare" / "runs").mkdir(parents=True)
    assert demo_folder(str(earlier)) == earlier and sorted(p.name for p in earlier.iterdir()) == [MARKER]
    assert demo_folder(str(tmp_path / "empty")).is_dir()  # new or empty folders are fine

    monkeypatch.chdir(tmp_path)  # without dir=: runs/demo, runs/demo2, ... as Ultralytics numbers runs
    assert [demo_folder(None) for _ in range(3)] == [tmp_path.joinpath("runs", f) for f in ("demo", "demo2", "demo3")]


@pytest.mark.parametrize(
    "args, message",
    [
        (["data=x.yaml"], "data: set by the demo itself"),
        (["epoch=3"], "'epoch' is not a valid key (similar: epochs"),
        (["class_balance=0"], "class_balance=0 turns balancing off"),
        (["balance_agg=foo"], "'balance_agg=foo' is an invalid value"),
        (["epochs=-1"], "epochs"),
    ],
)
def test_demo_bad_arguments_fail_before_anything_is_written(args, message, tmp_path):
    out = demo(*args, cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_delta_heading_claims_95_percent_only_from_two_seeds():
    from ultralytics_weighted.commands.demo import delta_heading

    assert delta_heading(1) == "Δ AP50 [evaluation noise only]"
    assert delta_heading(2) == delta_heading(5) == "Δ AP50 [95%]"
