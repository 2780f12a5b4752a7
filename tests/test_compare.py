# ultralytics-weighted, AGPL-3.0 license
"""`ultralytics-weighted compare`: end to end on a tiny dataset, resumable, and strict about its arguments."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run

from ultralytics_weighted.commands.compare import parse_variants, summarize
from ultralytics_weighted.commands.compare.metrics import run_metrics
from ultralytics_weighted.extensions.schedule import BalanceSchedule
from ultralytics_weighted.host.labels import load_label_classes

PNG = b"\x89PNG\r\n\x1a\n"


def compare(*args, cwd):
    return run([sys.executable, "-m", "ultralytics_weighted.commands.cli", "compare", *args], cwd=cwd, timeout=600)


def test_compare_end_to_end_and_resume(datasets, tmp_path):
    args = [
        f"data={datasets('detect')}",
        "variants=none,mean@0.5+balance_floor=1",
        "seeds=1",
        "parallel=2",
        "epochs=1",
        "imgsz=64",
        "batch=8",
        f"project={tmp_path}",
        "name=cmp",
    ]
    out = compare(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "[1/2] none seed 0: training" in out.stdout and "[2/2] mean@0.5+balance_floor=1 seed 0: AP50" in out.stdout
    folder = tmp_path / "cmp"
    md = (folder / "compare.md").read_text()
    assert md in out.stdout and f"Results saved to {folder} (compare.md" in out.stdout  # the command prints its report
    assert md.splitlines()[2].startswith("Command: `ultralytics-weighted compare data=")
    for row in ("| common | 26 |", "| rare | 4 |", "| **all** (mAP50) | 37 |"):
        assert row in md
    assert "| class | train instances | none | mean@0.5+balance_floor=1 | Δ mean@0.5+balance_floor=1 [95%] |" in md
    # a grown epoch is more compute: the images each run trained on are reported next to its AP
    grown = BalanceSchedule(load_label_classes({"data": str(datasets("detect"))})[0], 3, 0.5, floor=1).epoch_size
    assert "| none | 24 | 1 | 24 | 1.00x |" in md
    assert f"| mean@0.5+balance_floor=1 | {grown} | 1 | {grown} | {grown / 24:.2f}x |" in md
    rows = list(csv.DictReader((folder / "compare.csv").open()))
    runs = [r for r in rows if r["kind"] == "run"]
    assert {(r["variant"], r["metric"], r["class"], r["images"]) for r in runs} >= {("none", "ap50", "all", "24")}
    assert all(float(r["train_seconds"]) > 0 for r in runs)
    assert len({r["variant"] for r in rows}) == 2
    # the per-image results stored with each run give Ultralytics' own per-class AP back
    for run_folder in (folder / "runs").iterdir():
        ultralytics = json.loads((run_folder / "metrics.json").read_text())
        with np.load(run_folder / "per_image.npz") as f:
            per_image = dict(f)
        assert int(per_image["n_images"]) == len(per_image["images"]) == 8 and per_image["tp"].shape[1:] == (10,)
        values = run_metrics(per_image, 3, np.ones((1, 8)))
        for c, m in ultralytics["classes"].items():
            assert values["ap50", int(c)][0] == pytest.approx(m["ap50"], abs=1e-9)
            assert values["ap50_95", int(c)][0] == pytest.approx(m["ap50_95"], abs=1e-9)
    assert (folder / "compare.png").read_bytes()[:8] == PNG
    best = folder / "runs" / "mean_s0.5_balance_floor_1-seed0" / "weights" / "best.pt"
    stamp = best.stat().st_mtime_ns

    again = compare(*args, cwd=tmp_path)  # a re-run resumes: nothing is trained twice
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.stdout.count("finished earlier, skipped") == 2 and "training ..." not in again.stdout
    assert best.stat().st_mtime_ns == stamp
    assert (folder / "compare.md").read_text() == md  # the same intervals, recomputed from the stored results

    (folder / "runs" / "none-seed0" / "per_image.npz").unlink()  # as a run of an earlier compare: no per-image results
    (folder / "runs" / "none-seed0" / "train.json").unlink(missing_ok=True)  # nor a training record
    third = compare(*args, cwd=tmp_path)
    assert third.returncode == 0, third.stdout[-3000:]
    assert "none seed 0: settings or data changed since the earlier run (no per_image.npz" in third.stdout
    assert third.stdout.count("training ...") == 1 and (folder / "runs" / "none-seed0" / "per_image.npz").exists()

    # as after a Ctrl-C during the final validations: one run with best.pt and val.json written, one with best.pt
    # alone; a re-run validates what is missing and trains nothing again
    md = (folder / "compare.md").read_text()
    (best.parent.parent / "metrics.json").unlink()
    for name in ("metrics.json", "val.json", "per_image.npz"):
        (folder / "runs" / "none-seed0" / name).unlink()
    stamps = {p: p.stat().st_mtime_ns for p in (best, folder / "runs" / "none-seed0" / "weights" / "best.pt")}
    fourth = compare(*args, cwd=tmp_path)
    assert fourth.returncode == 0, fourth.stdout[-3000:]
    assert "training ..." not in fourth.stdout and "changed" not in fourth.stdout, fourth.stdout[-3000:]
    assert "[1/2] none seed 0: AP50" in fourth.stdout and "[2/2] mean@0.5+balance_floor=1 seed 0: AP50" in fourth.stdout
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())
    assert (folder / "compare.md").read_text() == md  # the same results: the same weights validated again


@pytest.fixture(scope="module")
def classification_comparison(tmp_path_factory):
    """One classification compare of none and mean, 2 seeds of 1 epoch, shared by the tests that read it.

    Returns (args, its stdout, the folder that holds the project, the comparison folder).
    """
    from ultralytics_weighted.commands.synthetic import make_classification_dataset

    tmp_path = tmp_path_factory.mktemp("cls_compare")
    data = make_classification_dataset(tmp_path / "cls", {"common": 30, "medium": 8, "rare": 3}, n_val=6, imgsz=32)
    args = [f"data={data}", "variants=none,mean", "seeds=2", "epochs=1", "imgsz=32", "batch=16", "resamples=200"]
    args += [f"project={tmp_path}", "name=cmp", "val=False"]
    out = compare(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:]
    return args, out.stdout, tmp_path, tmp_path / "cmp"


def test_compare_classification_end_to_end(classification_comparison):
    _, stdout, _, folder = classification_comparison
    assert "[4/4] mean seed 1: top-1" in stdout
    md = (folder / "compare.md").read_text()
    assert "## Recall (per-class accuracy)" in md and "| rare | 3 |" in md
    assert "| **top-1 accuracy** | 41 |" in md and "| **balanced accuracy** | 41 |" in md
    assert "200 bootstrap resamples" in md and "| mean | 41 | 1 | 41 | 1.00x |" in md
    with np.load(folder / "runs" / "none-seed0" / "per_image.npz") as f:
        true, pred, probs, images = f["true"], f["pred"], f["probs"], f["images"]
    # each row is the image it names (Ultralytics shuffles its classification val loader; compare's is in file order)
    assert [Path(x).parent.name for x in images] == [["common", "medium", "rare"][c] for c in true]
    with np.load(folder / "runs" / "mean-seed1" / "per_image.npz") as f:
        assert (f["images"] == images).all() and (f["true"] == true).all()
    # every val image: its true class, the predicted class and the probability of every class, as the model gave them
    assert probs.dtype == np.float32 and probs.shape == (18, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.bincount(true).tolist() == [6, 6, 6] and (probs[np.arange(18), pred] == probs.max(1)).all()
    ultralytics = json.loads((folder / "runs" / "none-seed0" / "metrics.json").read_text())
    assert np.mean(true == pred) == pytest.approx(ultralytics["all"]["top1"], abs=1e-6)
    comparison = summarize(folder)  # rebuilt from the run folders, without training
    row = comparison.row("recall", "rare", "mean")
    assert row["seeds"] == 2 and len(row["delta_by_seed"]) == 2 and row["lo"] <= row["delta"] <= row["hi"]
    assert row["verdict"] in ("better", "worse", "not established")


@pytest.mark.parametrize(
    "args, message",
    [
        (["variants=none,foo"], "unknown variant 'foo'"),
        (["variants=mean@2"], "the strength must lie in (0, 1]"),
        (["seeds=0"], "seeds=0 must be at least 1"),
        (["variants=none,cls_pw=abc"], "variant 'cls_pw=abc'"),
        (["variants=mean@abc"], "variant 'mean@abc': the strength 'abc' is not a number"),
        (["variants=balance_floor=1"], "variant 'balance_floor=1' sets balance_floor without balancing"),
        (["variants=mean+balance_ramp=2"], "variant 'mean+balance_ramp=2': 'balance_ramp=2' is an invalid value"),
        (["variants=balance_start=0.7"], "variant 'balance_start=0.7' sets balance_start without balancing"),
        (["variants=mean+balance_start=1"], "variant 'mean+balance_start=1': 'balance_start=1' is an invalid value"),
        (["variants=mean+sum"], "variant 'mean+sum' sets balance_agg, class_balance twice"),
        (["parallel=0"], "parallel=0 must be at least 1"),
        (["epoch=2"], "'epoch' is not a valid key (similar: epochs)"),
        (["epochs=-1"], "epochs"),
    ],
)
def test_bad_arguments_fail_before_any_training(args, message, datasets, tmp_path):
    out = compare(f"data={datasets('detect')}", *args, f"project={tmp_path}", cwd=tmp_path)
    assert out.returncode != 0 and message in out.stdout
    assert "Train a detection model" not in out.stdout  # one message, not Ultralytics' whole CLI help
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
    assert variants[3].schedule([], 3, epochs=10) is None  # stock sampling
    combined = parse_variants("auto@0.5+balance_floor=1+balance_ramp=0.5")[0]
    assert combined.overrides == {"class_balance": 0.5, "balance_agg": "auto", "balance_floor": 1, "balance_ramp": 0.5}
    schedule = combined.schedule([np.array([0]), np.array([1]), np.array([1])], 2, epochs=11)
    assert (schedule.strength, schedule.agg, schedule.floor, schedule.ramp, schedule.full_strength_epoch) == (
        0.5,
        "auto",
        1.0,
        0.5,
        5,
    )


def test_rerun_trains_again_when_settings_or_data_changed(datasets, tmp_path):
    from ultralytics_weighted.commands.synthetic import make_dataset

    base = ["variants=none", "seeds=1", "imgsz=64", "batch=8", f"project={tmp_path}", "name=cmp"]
    first = compare(f"data={datasets('detect')}", "epochs=1", *base, cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:]
    again = compare(f"data={datasets('detect')}", "epochs=2", *base, cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "settings or data changed since the earlier run (epochs 1 -> 2): training again" in again.stdout
    assert "| none | 24 | 2 | 48 |" in (tmp_path / "cmp" / "compare.md").read_text()
    # another dataset, in a folder of the same name: its labels differ, so the earlier run does not count
    other = make_dataset(tmp_path / "other" / datasets("detect").parent.name, n_train=16, n_val=6, rare_every=4)
    third = compare(f"data={other}", "epochs=2", *base, cwd=tmp_path)
    assert third.returncode == 0, third.stdout[-3000:]
    assert "settings or data changed since the earlier run (data" in third.stdout and "labels" in third.stdout
    assert "| none | 16 | 2 | 32 |" in (tmp_path / "cmp" / "compare.md").read_text()
    late = parse_variants("none,mean+balance_start=0.7")[1]
    assert late.overrides == {"class_balance": 1.0, "balance_agg": "mean", "balance_start": 0.7}
    schedule = late.schedule([np.array([0]), np.array([1]), np.array([1])], 2, epochs=10)
    assert (schedule.start, schedule.start_epoch, schedule.full_strength_epoch) == (0.7, 7, 7)


@pytest.fixture(scope="module")
def fresh_folder_comparison(datasets, tmp_path_factory):
    """A compare run as a user runs it, from an empty folder and without project=; returns that folder.

    Shared by the tests of where compare writes: one comparison, none and mean+tau=1 (none and mean trained).
    """
    empty = tmp_path_factory.mktemp("fresh") / "work"
    empty.mkdir()
    args = [f"data={datasets('detect')}", "variants=none,mean+tau=1", "seeds=1", "epochs=1", "imgsz=64", "batch=8"]
    cmd = [sys.executable, "-m", "ultralytics_weighted.commands.cli", "compare", *args, "name=default", "val=False"]
    # as a user runs it: Ultralytics moves its default save folders elsewhere while PYTEST_CURRENT_TEST is set
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    out = subprocess.run(cmd, cwd=empty, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert out.returncode == 0, out.stdout[-3000:]
    return empty


def test_default_project_is_found_from_a_fresh_folder(fresh_folder_comparison):
    # no project=: Ultralytics would put a relative project under its runs folder and the task, not where compare reads
    tmp_path = fresh_folder_comparison
    folder = tmp_path / "runs" / "compare" / "default"
    assert (folder / "compare.md").is_file() and (folder / "runs" / "mean-seed0" / "weights" / "best.pt").is_file()
    assert not (tmp_path / "runs" / "detect").exists()


def test_one_ctrl_c_ends_every_training_keeps_finished_runs_and_exits_130(datasets, tmp_path):
    import signal
    import time

    import psutil

    cmd = [sys.executable, "-m", "ultralytics_weighted.commands.cli", "compare", f"data={datasets('detect')}"]
    cmd += ["variants=epochs=1,mean+epochs=200", "seeds=1", "imgsz=64", "batch=8", f"project={tmp_path}", "name=cmp"]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )  # its own process group, as a shell gives a command
    runs = tmp_path / "cmp" / "runs"
    finished, unfinished = runs / "epochs_1-seed0" / "metrics.json", runs / "mean_epochs_200-seed0" / "train.log"
    descendants, deadline = [], time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if finished.exists() and unfinished.exists() and "Epoch" in unfinished.read_text(errors="replace"):
            descendants = psutil.Process(proc.pid).children(recursive=True)  # the training and its workers
            break
        time.sleep(0.5)
    assert descendants, "the second run never started training"
    os.killpg(proc.pid, signal.SIGINT)  # one Ctrl-C in the terminal
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    assert stderr.strip().splitlines() == [stderr.strip()] and "interrupted (Ctrl-C): 1 of 2 runs finished" in stderr
    assert "Traceback" not in stderr + stdout
    survivors = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not survivors, survivors
    assert finished.exists() and not (unfinished.parent / "metrics.json").exists()
    assert "a re-run of compare trains it again" in unfinished.read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["variants=mean+foo=1"], "variant 'mean+foo=1': 'foo' is not a valid key"),
        (["variants=mean+balance_floor=inf"], "'balance_floor=inf' is an invalid value: not a finite number"),
        (["variants=mean+balance_floor=1e9"], "Valid 'balance_floor' values are between 0.0 and 1"),
        (["seeds=abc"], "seeds=abc must be a whole number"),
        (["parallel=1.5"], "parallel=1.5 must be a whole number"),
    ],
)
def test_bad_variant_keys_and_counts_fail_in_one_line(args, message, datasets, tmp_path):
    out = compare(f"data={datasets('detect')}", *args, f"project={tmp_path}", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout.strip().splitlines() == [out.stdout.strip()], out.stdout[-3000:]
    assert message in out.stdout and not (tmp_path / "runs").exists()


def test_a_classification_folder_names_its_own_comparison(tmp_path):
    from ultralytics_weighted.commands.compare.plan import parse_options as _parse_options
    from ultralytics_weighted.commands.synthetic import make_classification_dataset

    # two datasets in one parent folder: each comparison is named after its dataset, so neither replaces the other
    first = make_classification_dataset(tmp_path / "datasets" / "cars", {"a": 4, "b": 2}, n_val=2, imgsz=32)
    second = make_classification_dataset(tmp_path / "datasets" / "birds", {"a": 4, "b": 2}, n_val=2, imgsz=32)
    outs = [_parse_options({"data": str(d), "project": str(tmp_path / "cmp")}).out for d in (first, second)]
    assert outs == [tmp_path / "cmp" / "cars", tmp_path / "cmp" / "birds"]
    yaml = _parse_options({"data": str(tmp_path / "datasets" / "coco" / "data.yaml"), "project": "p"}).out
    assert yaml.name == "coco"  # a data YAML: the folder holding it, as before


def _comparison_with(values: dict, std: float, folder: Path):
    """Return a detection Comparison of variants none and mean whose AP50 is `values[variant]` for every class."""
    from ultralytics_weighted.commands.compare import Comparison

    names = {0: "common", 1: "rare"}
    variants = parse_variants("none,mean")
    table = [
        {"metric": m, "class": c, "variant": v.name, "mean": values[v.name], "std": std, "seeds": 3}
        for m in ("ap50", "ap50_95")
        for c in ["common", "rare", "all"]
        for v in variants
    ]
    shares = {v.name: {"instances": np.array([10, 2]), "share_after": np.array([0.5, 0.5])} for v in variants}
    return Comparison(folder, "detect", variants, names, shares, [], table)


def test_the_plot_says_when_every_value_is_0_and_keeps_error_bars_inside(tmp_path):
    from ultralytics_weighted.commands.compare.figure import plot_comparison as _plot

    blank = _plot(tmp_path / "zero.png", _comparison_with({"none": 0.0, "mean": 0.0}, 0.0, tmp_path), [0, 1])
    notes = [t.get_text() for t in blank.axes[0].texts]
    assert len(notes) == 1 and notes[0].startswith("every AP50 is 0") and (tmp_path / "zero.png").is_file()
    high = _plot(tmp_path / "high.png", _comparison_with({"none": 0.9, "mean": 0.95}, 0.1, tmp_path), [0, 1])
    assert high.axes[0].get_ylim()[1] >= 0.95 + 0.1 and not high.axes[0].texts  # the top error bar is not cut off
    usual = _plot(tmp_path / "usual.png", _comparison_with({"none": 0.3, "mean": 0.5}, 0.05, tmp_path), [0, 1])
    assert usual.axes[0].get_ylim() == (0, 1.05)  # the usual axis where every bar fits


def test_compare_leaves_nothing_outside_its_project_folder(fresh_folder_comparison):
    empty = fresh_folder_comparison  # its project folder is the default one, runs/compare
    assert [p.name for p in empty.iterdir()] == ["runs"]  # no runs/detect/val* of Ultralytics' validations
    assert [p.name for p in (empty / "runs").iterdir()] == ["compare"]
    folder = empty / "runs" / "compare" / "default"
    assert (folder / "compare.md").is_file()
    assert not [p for p in folder.rglob("val*") if p.is_dir()]  # nor their empty folders inside


def test_after_ctrl_c_a_run_not_started_makes_no_folder_and_no_progress_line(tmp_path, capsys):
    import threading

    from ultralytics_weighted.commands.compare import Interrupted, Variant
    from ultralytics_weighted.commands.compare.runs import Children, Run, _run_folder

    children = Children()
    children.stop()  # as after a Ctrl-C: nothing runs, nothing starts
    run = Run(Variant("none"), 0, tmp_path / "runs" / "none-seed0", {}, {"args": {}}, 24, "[2/2] none seed 0")
    with pytest.raises(Interrupted):
        _run_folder([run], "data.yaml", {}, threading.Lock(), children)
    assert not (tmp_path / "runs").exists() and "training" not in capsys.readouterr().out


def test_compare_reports_controlled_verdicts_the_rule_the_tau_dial_and_final_weights_and_recomputes_them(
    classification_comparison,
):
    args, _, tmp_path, folder = classification_comparison  # checkpoint=best at the end: this test reads it last
    md = (folder / "compare.md").read_text()
    # the final weights are evaluated by default, and compare.md says so
    assert "each run's final weights (last.pt) validated on the val split" in md
    assert json.loads((folder / "runs" / "mean-seed1" / "metrics.json").read_text())["checkpoint"] == "last"
    # what the interval is, and that 2 seeds make it wide
    assert "t-interval on the per-seed Δ (1 degrees of freedom)" in md and "resamples of the seeds" not in md
    assert "An interval from 2 seeds is wide by design" in md
    # per-class verdicts come from Holm across the classes; the unadjusted interval and verdict stay in compare.csv
    rows = list(csv.DictReader((folder / "compare.csv").open()))
    per_class = [r for r in rows if r["kind"] == "summary" and r["variant"] == "mean" and r["metric"] == "recall"]
    assert len(per_class) == 3 and all(len(r["delta_by_seed"].split()) == 2 for r in per_class)
    for r in per_class:
        assert float(r["p_adjusted"]) >= float(r["p"]) and r["verdict_unadjusted"] in (
            "better",
            "worse",
            "not established",
        )
        called = float(r["p_adjusted"]) < 0.05
        assert (r["verdict"] != "not established") == called
    # accuracy at the training class frequencies beside top-1: per-class recall weighted by the train instances
    assert "| **top-1 accuracy** | 41 |" in md and "| **accuracy at train class frequencies** | 41 |" in md
    values = {(r["variant"], r["seed"], r["metric"], r["class"]): float(r["value"]) for r in rows if r["kind"] == "run"}
    recall = [values["mean", "0", "recall", c] for c in ("common", "medium", "rare")]
    assert values["mean", "0", "prior_accuracy", "all"] == pytest.approx(np.dot(recall, [30, 8, 3]) / 41)
    # the rule, per variant, with the rare tier chosen from the train counts
    assert "## Decision rule (docs/decision-rule.md)" in md and "the rare tier (rare: the rarest third" in md
    outcome = next(line for line in md.splitlines() if line.startswith("| mean | ") and "rule" not in line)
    assert outcome.split(" | ")[1].startswith(("passes the rule", "fails (a)", "fails (b)"))
    # the τ frontier of the balanced variant, no retraining; τ = 0 is the variant as trained
    assert "## The τ dial (without retraining)" in md
    for tau in ("0", "0.25", "0.5", "0.75", "1"):
        assert f"| mean | {tau} | " in md
    mean_ba = next(line for line in md.splitlines() if line.startswith("| **balanced accuracy** |")).split(" | ")[3]
    assert f"| mean | 0 | {mean_ba} |" in md
    # report= recomputes compare.md, compare.csv and compare.json from the folder, byte for byte, without training
    reports = {name: (folder / name).read_bytes() for name in ("compare.md", "compare.csv", "compare.json")}
    for name in (*reports, "compare.png"):
        (folder / name).unlink()
    again = compare(f"report={folder}", cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "training ..." not in again.stdout and (folder / "compare.png").read_bytes()[:8] == PNG
    assert {name: (folder / name).read_bytes() for name in reports} == reports
    # compare.png draws the τ dial beside the bars
    from ultralytics_weighted.commands.compare.figure import plot_comparison

    figure = plot_comparison(tmp_path / "dial.png", summarize(folder), [0, 1, 2])
    assert len(figure.axes) == 2 and figure.axes[1].get_xlabel().startswith("accuracy at train class frequencies")
    assert len(figure.axes[1].lines) >= 2  # the first variant's point (with its error bars) and mean's τ curve
    # checkpoint=best validates best.pt instead, without training again, and says so
    best = compare(*args, "checkpoint=best", cwd=tmp_path)
    assert best.returncode == 0, best.stdout[-3000:]
    assert "training ..." not in best.stdout and "finished earlier" not in best.stdout
    assert json.loads((folder / "runs" / "mean-seed1" / "metrics.json").read_text())["checkpoint"] == "best"
    assert "each run's best.pt (picked by Ultralytics on this same val split" in (folder / "compare.md").read_text()


def test_checkpoint_and_report_keys_fail_in_one_line(tmp_path, capsys):
    from ultralytics_weighted.commands.compare import main
    from ultralytics_weighted.commands.compare.plan import parse_options

    assert parse_options({"data": "x.yaml"}).checkpoint == "last"
    best = parse_options({"data": "x.yaml", "checkpoint": "best"})
    assert best.checkpoint == "best" and "checkpoint" not in best.train  # compare's key, no train key
    with pytest.raises(ValueError, match="checkpoint=final must be last"):
        parse_options({"data": "x.yaml", "checkpoint": "final"})
    assert main({"report": str(tmp_path)}) == 2
    assert "holds no comparison" in capsys.readouterr().err
    assert main({"report": str(tmp_path), "seeds": 3}) == 2
    assert "takes no other key: seeds" in capsys.readouterr().err
