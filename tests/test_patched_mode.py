# ultralytics-weighted, AGPL-3.0 license
"""Patched mode: the core (the `patches/` series) in Ultralytics without the plugin, and the plugin's match with it.

Skipped unless ULTRALYTICS_WEIGHTED_PATCHED names a patched Ultralytics source tree; `.ci/patched` builds one and runs

    ULTRALYTICS_WEIGHTED_HOOK=0 PYTHONPATH=TREE ULTRALYTICS_WEIGHTED_PATCHED=TREE pytest tests/test_patched_mode.py

This process and every `yolo` / `python` subprocess then import `ultralytics` from TREE with the plugin's startup hook
off. Nothing here imports `ultralytics_weighted` (that would activate the plugin on top of the patch): the synthetic
data generator is loaded from its file. The series holds the core only (`class_balance`, `balance_agg`, the sampler,
the trainer wiring), so these tests check the core's own behaviour; the plugin runs only in subprocesses: ones that
compare its training with the patched tree's for the keys both have, and ones with the plugin on the patched tree
(its hook on, or activated explicitly), whose extensions then go on top of the native core.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import MODELS, YOLO, balance_table, captured_log, run

ROOT = Path(__file__).resolve().parents[1]
TREE = os.environ.get("ULTRALYTICS_WEIGHTED_PATCHED")
if not TREE:
    pytest.skip(
        "patched mode: set ULTRALYTICS_WEIGHTED_PATCHED to a patched tree (see .ci/patched)", allow_module_level=True
    )
TREE = Path(TREE).resolve()
_first = os.environ.get("PYTHONPATH", "").split(os.pathsep)[0]
if os.environ.get("ULTRALYTICS_WEIGHTED_HOOK") != "0" or not _first or Path(_first).resolve() != TREE:
    raise RuntimeError(
        "patched mode needs ULTRALYTICS_WEIGHTED_HOOK=0 and the patched tree first on PYTHONPATH when pytest starts: "
        f"ULTRALYTICS_WEIGHTED_HOOK=0 PYTHONPATH={TREE} ULTRALYTICS_WEIGHTED_PATCHED={TREE} pytest {__file__}"
    )

UPSTREAM_BOUND = {  # upstream path -> module of this package (tools/make_patches.py COPIED)
    "ultralytics/data/balance.py": "core/balance.py",
    "ultralytics/data/sampler.py": "core/sampler.py",
    "ultralytics/data/balanced_training.py": "core/balanced_training.py",
}
# subprocesses with stock Ultralytics and this checkout's plugin (first on sys.path: its startup hook and package)
PLUGIN = {"PYTHONPATH": str(ROOT), "ULTRALYTICS_WEIGHTED_HOOK": "1"}
TRAIN = dict(epochs=1, imgsz=64, batch=8, device="cpu", plots=False, workers=0, seed=0, verbose=False)


def synthetic():
    """Load commands/synthetic.py as a standalone module (importing the package would activate the plugin)."""
    spec = importlib.util.spec_from_file_location("_synthetic", ROOT / "ultralytics_weighted/commands/synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def datasets(tmp_path_factory):
    """Override conftest's fixture: the same tiny datasets, made without importing the package."""
    make, made = synthetic().make_dataset, {}

    def get(task: str = "detect") -> Path:
        if task not in made:
            made[task] = make(tmp_path_factory.mktemp(f"data_{task}"), task=task, n_train=24, n_val=8)
        return made[task]

    return get


@pytest.fixture(scope="session")
def folder(tmp_path_factory):
    """A tiny imbalanced classification folder (30 / 8 / 3 train images)."""
    return synthetic().make_classification_dataset(tmp_path_factory.mktemp("cls"))


def results(run_dir: Path) -> list[dict]:
    """Return results.csv rows without the wall-clock column."""
    return [
        {k: v for k, v in row.items() if k.strip() != "time"} for row in csv.DictReader(open(run_dir / "results.csv"))
    ]


def yolo_train(task: str, data: Path, project: Path, *args: str, env: dict | None = None):
    """Run `yolo TASK train` on CPU for one epoch with extra key=value arguments."""
    model = "yolo11n-cls.yaml" if task == "classify" else MODELS[task]
    imgsz, batch = (32, 16) if task == "classify" else (64, 8)
    common = [
        f"model={model}",
        f"data={data}",
        "epochs=1",
        f"imgsz={imgsz}",
        f"batch={batch}",
        "device=cpu",
        "plots=False",
    ]
    cmd = [*YOLO, task, "train", *common, f"project={project}", "name=run", "seed=3", *args]
    return run(cmd, cwd=project.parent, env=env)


def test_ultralytics_is_the_patched_tree_and_the_plugin_is_off(tmp_path):
    import ultralytics
    from ultralytics.cfg import get_cfg

    assert Path(ultralytics.__file__).resolve().is_relative_to(TREE)
    assert get_cfg(overrides={"class_balance": 0.5}).class_balance == 0.5
    assert not any(m.split(".")[0] == "ultralytics_weighted" for m in sys.modules)  # the plugin never ran here
    code = (
        "import sys, ultralytics\nfrom ultralytics.cfg import get_cfg\nget_cfg(overrides={'class_balance': True})\n"
        "print('FROM', ultralytics.__file__, 'PLUGIN', 'ultralytics_weighted' in sys.modules)"
    )
    out = run([sys.executable, "-c", code], cwd=tmp_path)
    assert out.returncode == 0, out.stdout
    assert f"FROM {TREE}" in out.stdout and "PLUGIN False" in out.stdout
    for upstream, ours in UPSTREAM_BOUND.items():  # one source of truth: the decisions, weights and sampler
        assert (TREE / upstream).read_bytes() == (ROOT / "ultralytics_weighted" / ours).read_bytes(), upstream


def share_line(stdout: str) -> str:
    """Return 'max/min class share A -> B' of a balanced training's log (the core's one line, the plugin's table)."""
    lines = [line for line in balance_table(stdout) if "max/min class share" in line]
    assert len(lines) == 1, lines
    return "max/min class share " + lines[0].split("max/min class share ", 1)[1].split(",")[0]


@pytest.mark.parametrize(
    "task, extra",
    [("detect", ["balance_agg=sum"]), ("segment", ["balance_agg=median"]), ("classify", ["balance_agg=max"])],
)
def test_patched_training_matches_the_plugin(task, extra, datasets, folder, tmp_path):
    # Same seed and keys: the core and the plugin compute the same probabilities and draws, so they train to the same
    # numbers (without mix partners to weight: the plugin's extension draws MixUp/CutMix/CopyPaste partners balanced).
    data = folder if task == "classify" else datasets(task)
    patched = yolo_train(task, data, tmp_path / "patched", "class_balance=True", *extra)
    plugin = yolo_train(task, data, tmp_path / "plugin", "class_balance=True", *extra, env=PLUGIN)
    assert patched.returncode == 0, patched.stdout[-3000:]
    assert plugin.returncode == 0, plugin.stdout[-3000:]
    assert share_line(patched.stdout) == share_line(plugin.stdout)
    assert "max/min class share 1.00 ->" not in share_line(patched.stdout)  # the data is imbalanced
    assert results(tmp_path / "patched" / "run") == results(tmp_path / "plugin" / "run")


def test_cli_cfg_file_and_a_fresh_process_take_the_keys(datasets, tmp_path):
    assert all(
        line in run([*YOLO, "cfg"], cwd=tmp_path).stdout for line in ("class_balance: false", "balance_agg: mean")
    )
    cfg = tmp_path / "balanced.yaml"
    cfg.write_text("class_balance: 0.5\nbalance_agg: median\nepochs: 1\nimgsz: 64\nbatch: 8\nplots: False\n")
    common = ["model=yolo11n.yaml", f"data={datasets('detect')}", "device=cpu", f"project={tmp_path / 'runs'}"]
    out = run([*YOLO, "train", f"cfg={cfg}", *common, "name=run"], cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "class_balance=0.5 balance_agg=median: 24 train images, max/min class share" in balance_table(out.stdout)[0]
    code = (  # what a DDP worker does: a generated script rebuilds cfg from DEFAULT_CFG_DICT
        "from ultralytics.utils import DEFAULT_CFG_DICT\nfrom ultralytics.cfg import get_cfg\n"
        "cfg = get_cfg(DEFAULT_CFG_DICT.copy(), overrides={'class_balance': True, 'balance_agg': 'sum'})\n"
        "print('OK', cfg.class_balance, cfg.balance_agg)"
    )
    assert "OK True sum" in run([sys.executable, "-c", code], cwd=tmp_path).stdout


# the plugin on a native core: its startup hook on, this checkout's package after the patched tree
PLUGIN_ON_TREE = {"PYTHONPATH": f"{TREE}{os.pathsep}{ROOT}", "ULTRALYTICS_WEIGHTED_HOOK": "1"}


def test_the_plugin_adds_its_extensions_on_a_patched_tree(datasets, tmp_path):
    # Plugin installed and its hook on, Ultralytics patched: the plugin's keys and table on top of the native core (one
    # table, no crash), where before it stepped aside and `balance_agg=auto` failed in the native core.
    args = ["class_balance=True", "balance_agg=auto", "balance_floor=0.5", "balance_tau=1"]
    out = yolo_train("detect", datasets("detect"), tmp_path, *args, env=PLUGIN_ON_TREE)
    assert out.returncode == 0, out.stdout[-3000:]
    table = balance_table(out.stdout)
    assert sum("max/min class share" in line for line in table) == 1
    assert table[0].startswith("class_balance=1 balance_agg=auto balance_floor=0.5: 24 train images"), table
    assert any("share per epoch" in line for line in table)  # the plugin's table, not the core's one line
    assert any(line.startswith("balance_tau=1 from the ") and ": saved " in line for line in table)  # says its share
    assert (tmp_path / "run" / "weights" / "best-tau1.pt").exists()
    listed = run([*YOLO, "cfg"], cwd=tmp_path, env=PLUGIN_ON_TREE).stdout
    assert all(f"{key}: " in listed for key in ("class_balance", "balance_agg", "balance_floor", "balance_tau"))


def test_rfs_trains_on_a_patched_tree_as_with_the_plugin_alone(datasets, tmp_path):
    # balance_agg=rfs is the plugin's, like auto: on a native core the plugin's schedule draws its grown epoch
    args = ["class_balance=True", "balance_agg=rfs", "balance_rfs_threshold=0.5"]
    native = yolo_train("detect", datasets("detect"), tmp_path / "native", *args, env=PLUGIN_ON_TREE)
    alone = yolo_train("detect", datasets("detect"), tmp_path / "alone", *args, env=PLUGIN)
    assert native.returncode == 0 and alone.returncode == 0, (native.stdout[-3000:], alone.stdout[-3000:])
    table = balance_table(native.stdout)
    assert table[0].startswith("class_balance=1 balance_agg=rfs balance_rfs_threshold=0.5: 24 train images"), table
    assert any("epoch 24 -> " in line for line in table) and table == balance_table(alone.stdout)
    assert results(tmp_path / "native" / "run") == results(tmp_path / "alone" / "run")


def test_a_train_set_the_plugin_leaves_stock_trains_on_a_patched_tree(datasets, tmp_path):
    # single_cls=True: the plugin warns and trains the stock dataset; the native check of the loader must not refuse it
    out = yolo_train(
        "detect", datasets("detect"), tmp_path, "class_balance=True", "single_cls=True", env=PLUGIN_ON_TREE
    )
    assert out.returncode == 0, out.stdout[-3000:]
    assert "'single_cls=True' merges all classes into one, so class_balance has no effect" in out.stdout
    assert not any("max/min class share" in line for line in balance_table(out.stdout))


def test_the_plugin_on_a_patched_tree_uses_the_native_core(datasets, tmp_path):
    # Activated explicitly (hook off, as in this process): the ramp and the data YAML's weights drive Ultralytics' own
    # BalancedSampler (one sampler class in the process), the plugin's keys go on top of the native ones and come off
    # again without taking the native ones along.
    data = tmp_path / "weighted.yaml"
    data.write_text(datasets("detect").read_text() + "class_weights: {rare: 2}\n")
    code = f"""
import json, sys
COPY = "ultralytics_weighted.core.balanced_training"
import ultralytics_weighted
ultralytics_weighted.activate()
from ultralytics import YOLO
from ultralytics.utils import DEFAULT_CFG_DICT
from ultralytics_weighted.host.activation import deactivate
from ultralytics_weighted.host.training import BalancedDatasetMixin
model = YOLO("yolo11n.yaml")
model.train(data={str(data)!r}, class_balance=True, balance_ramp=0.5, epochs=2, imgsz=64, batch=8, device="cpu",
            plots=False, workers=0, seed=0, project={str(tmp_path)!r}, name="run")
loader = model.trainer.train_loader
keys = [k for k in DEFAULT_CFG_DICT if "balance" in k]
deactivate()
print("RESULT", json.dumps({{
    "sampler": type(loader.sampler).__module__ + "." + type(loader.sampler).__name__,
    "balanced": isinstance(loader.dataset, BalancedDatasetMixin),
    "ramp": bool((loader.sampler.probabilities(0) != loader.sampler.probabilities(1)).any()),
    "copies": sorted(m for m in sys.modules if m in {{"ultralytics_weighted.core.sampler", COPY}}),
    "keys": keys,
    "after": [k for k in DEFAULT_CFG_DICT if "balance" in k],
}}))
"""
    out = run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": f"{TREE}{os.pathsep}{ROOT}"})
    assert out.returncode == 0, out.stdout[-3000:]
    result = json.loads(out.stdout.split("RESULT ", 1)[1])
    assert result["sampler"] == "ultralytics.data.sampler.BalancedSampler" and result["balanced"] and result["ramp"]
    assert result["copies"] == []  # neither the plugin's sampler nor its balanced_training was imported
    assert result["keys"] == [
        "class_balance",
        "balance_agg",
        "balance_floor",
        "balance_ramp",
        "balance_start",
        "balance_rfs_threshold",
        "balance_tau",
    ]
    assert result["after"] == ["class_balance", "balance_agg"]  # the native keys stay
    assert any(line.startswith(f"weights from {data} (class_weights)") for line in balance_table(out.stdout))


def test_feature_off_trains_exactly_like_stock(datasets, tmp_path):
    patched = yolo_train("detect", datasets("detect"), tmp_path / "patched")
    stock = yolo_train("detect", datasets("detect"), tmp_path / "stock", env={"PYTHONPATH": ""})
    assert patched.returncode == 0 and stock.returncode == 0, patched.stdout[-2000:] + stock.stdout[-2000:]
    assert not balance_table(patched.stdout)
    assert results(tmp_path / "patched" / "run") == results(tmp_path / "stock" / "run")


def test_only_the_train_loader_is_balanced(datasets, tmp_path):
    from ultralytics import YOLO as Model
    from ultralytics.data.sampler import BalancedSampler

    model = Model("yolo11n.yaml")
    model.train(data=str(datasets("detect")), class_balance=True, **TRAIN, project=str(tmp_path), name="run")
    train, val = model.trainer.train_loader, model.trainer.test_loader
    assert isinstance(train.sampler, BalancedSampler) and hasattr(train.dataset, "balanced_sampling")
    assert not hasattr(val.dataset, "balanced_sampling") and not isinstance(val.sampler, BalancedSampler)
    trained = Model(model.trainer.best)
    kwargs = dict(data=str(datasets("detect")), imgsz=64, batch=4, device="cpu", plots=False, verbose=False)
    on, off = trained.val(class_balance=True, balance_agg="sum", **kwargs), trained.val(class_balance=False, **kwargs)
    assert on.results_dict == off.results_dict  # validation ignores the keys
    np.testing.assert_array_equal(on.box.maps, off.box.maps)


def test_bad_values_are_refused_as_the_plugin_refuses_them(tmp_path):
    # The core checks its keys with check_cfg's own rules and messages (a fraction key, a str key); the plugin names
    # the valid values in its messages. Both refuse the same values, with the same exception types.
    from ultralytics.cfg import get_cfg
    from ultralytics.data.balance import image_probabilities

    bad = [
        {"balance_agg": 3},
        {"class_balance": 2},
        {"class_balance": -0.1},
        {"class_balance": "yes"},
        {"class_balance": None},
        {"balance_agg": None},
    ]
    code = (
        "import json, sys\nimport ultralytics_weighted\nfrom ultralytics.cfg import get_cfg\nout = []\n"
        "for o in json.loads(sys.argv[1]):\n"
        "    try:\n        get_cfg(overrides=o)\n        out.append(None)\n"
        "    except Exception as e:\n        out.append(type(e).__name__)\n"
        "print('ERRORS', json.dumps(out))"
    )
    out = run([sys.executable, "-c", code, json.dumps(bad)], cwd=tmp_path, env=PLUGIN)
    assert out.returncode == 0, out.stdout[-2000:]
    patched = []
    for overrides in bad:
        with pytest.raises((TypeError, ValueError)) as error:
            get_cfg(overrides=overrides)
        assert f"'{next(iter(overrides))}=" in str(error.value)  # the message names the key
        patched.append(error.type.__name__)
    assert patched == json.loads(out.stdout.split("ERRORS ", 1)[1])
    with pytest.raises(ValueError, match="'balance_agg=foo' is an invalid value"):  # the core refuses it at the build
        image_probabilities([np.array([0]), np.array([1])], 2, "foo")


def test_settings_it_cannot_honour_are_refused_before_the_first_epoch(datasets, tmp_path):
    from ultralytics import YOLO as Model
    from ultralytics.data import build_yolo_dataset
    from ultralytics.models.yolo.detect import DetectionTrainer

    class UnbalancedTrainer(DetectionTrainer):  # as YOLO-World and YOLOE: a build_dataset() that does not balance
        def build_dataset(self, img_path, mode="train", batch=None):
            return build_yolo_dataset(self.args, img_path, batch, self.data, mode=mode, rect=mode == "val", stride=32)

    import cv2

    epochs = []
    args = dict(data=str(datasets("detect")), class_balance=True, **TRAIN, project=str(tmp_path))
    wide = synthetic().make_dataset(tmp_path / "wide", task="detect", n_train=24, n_val=8)
    for image in sorted((tmp_path / "wide").rglob("train/*.jpg"))[::2]:  # two aspect ratios: rect keeps the order
        cv2.imwrite(str(image), cv2.resize(cv2.imread(str(image)), (64, 32)))
    model = Model("yolo11n.yaml")
    model.add_callback("on_train_epoch_start", lambda trainer: epochs.append(trainer.epoch))
    with pytest.raises(NotImplementedError, match="'rect=True' orders images by aspect ratio"):
        model.train(**{**args, "data": str(wide)}, rect=True, name="rect")
    with pytest.raises(NotImplementedError, match="UnbalancedTrainer .*its datasets are not balanced yet"):
        Model("yolo11n.yaml").train(**args, trainer=UnbalancedTrainer, name="unbalanced")
    assert not epochs  # refused before any training
    with captured_log() as messages:
        trainer = DetectionTrainer(overrides={**args, "model": "yolo11n.yaml", "cls_pw": 1.0, "name": "warn"})
        trainer.model = trainer.get_model(cfg="yolo11n.yaml", verbose=False)
        trainer.build_dataset(trainer.data["train"], mode="train", batch=8)
    assert any("class_balance and cls_pw=1.0 both favour rare classes" in m for m in messages)
