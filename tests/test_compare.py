# ultralytics-weighted, AGPL-3.0 license
"""`ultralytics-weighted compare`: end to end on a tiny dataset, resumable, and strict about its arguments."""

from __future__ import annotations

import csv
import sys

import pytest
from conftest import run

from ultralytics_weighted.compare import parse_variants

PNG = b"\x89PNG\r\n\x1a\n"


def compare(*args, cwd):
    return run([sys.executable, "-m", "ultralytics_weighted.cli", "compare", *args], cwd=cwd, timeout=600)


def test_compare_end_to_end_and_resume(datasets, tmp_path):
    args = [
        f"data={datasets('detect')}",
        "variants=none,mean@0.5",
        "seeds=1",
        "epochs=1",
        "imgsz=64",
        "batch=8",
        f"project={tmp_path}",
        "name=cmp",
    ]
    out = compare(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "[1/2] none seed 0: training" in out.stdout and "[2/2] mean@0.5 seed 0: AP50" in out.stdout
    folder = tmp_path / "cmp"
    md = (folder / "compare.md").read_text()
    assert md.splitlines()[2].startswith("Command: `ultralytics-weighted compare data=")
    for row in ("| common | 26 |", "| rare | 4 |", "| **all** |"):
        assert row in md
    assert "| class | none | mean@0.5 | Δ mean@0.5 |" in md
    rows = list(csv.DictReader((folder / "compare.csv").open()))
    assert {(r["variant"], r["class"]) for r in rows} >= {("none", "all"), ("mean@0.5", "all"), ("none", "common")}
    assert len({r["variant"] for r in rows}) == 2
    assert (folder / "compare.png").read_bytes()[:8] == PNG
    best = folder / "runs" / "mean_s0.5-seed0" / "weights" / "best.pt"
    stamp = best.stat().st_mtime_ns

    again = compare(*args, cwd=tmp_path)  # a re-run resumes: nothing is trained twice
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.stdout.count("finished earlier, skipped") == 2 and "training ..." not in again.stdout
    assert best.stat().st_mtime_ns == stamp


@pytest.mark.parametrize(
    "args, message",
    [
        (["variants=none,foo"], "unknown variant 'foo'"),
        (["variants=mean@2"], "the strength must lie in (0, 1]"),
        (["seeds=0"], "seeds=0 must be at least 1"),
        (["variants=none,cls_pw=abc"], "cls_pw"),
        (["epochs=-1"], "epochs"),
    ],
)
def test_bad_arguments_fail_before_any_training(args, message, datasets, tmp_path):
    out = compare(f"data={datasets('detect')}", *args, f"project={tmp_path}", cwd=tmp_path)
    assert out.returncode != 0 and message in out.stdout
    assert not list(tmp_path.rglob("*.pt"))


def test_missing_data_fails(tmp_path):
    out = compare("variants=none", cwd=tmp_path)
    assert out.returncode != 0 and "data=... is required" in out.stdout
    out = compare(f"data={tmp_path / 'nope.yaml'}", cwd=tmp_path)
    assert out.returncode != 0 and "nope.yaml" in out.stdout


def test_variants_parse():
    variants = parse_variants("mean,none,sum@0.25,cls_pw=1.0")
    assert [v.name for v in variants] == ["none", "mean", "sum@0.25", "cls_pw=1.0"]
    assert variants[2].overrides == {"class_balance": 0.25, "balance_agg": "sum"}
    assert variants[3].strength_and_agg() == (0.0, "mean")
