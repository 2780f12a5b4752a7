# ultralytics-weighted, AGPL-3.0 license
"""Patched mode: the plugin's behaviours, checked against Ultralytics with `patches/` applied and without the plugin.

Skipped unless ULTRALYTICS_WEIGHTED_PATCHED names a patched Ultralytics source tree; `.ci/patched` builds one and runs

    ULTRALYTICS_WEIGHTED_HOOK=0 PYTHONPATH=TREE ULTRALYTICS_WEIGHTED_PATCHED=TREE pytest tests/test_patched_mode.py

This process and every `yolo` / `python` subprocess then import `ultralytics` from TREE with the plugin's startup hook
off. Nothing here imports `ultralytics_weighted` (that would activate the plugin on top of the patch): the synthetic
data generator is loaded from its file. The project's CLI-level tests of test_config.py and test_cli_train.py run here
too, unchanged; the plugin itself runs only in subprocesses that compare its training and messages with the patched
tree's.
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

# The project's own CLI-level tests, collected again in this module and so run against the patched tree
from test_cli_train import test_cfg_file_carries_the_keys, test_yolo_train_cli_balances_every_task  # noqa: E402, F401
from test_config import (  # noqa: E402
    test_bad_values_fail_before_any_data_is_loaded,  # noqa: F401
    test_bad_values_in_python_and_cfg_files,  # noqa: F401
    test_fresh_process_that_only_imports_ultralytics_accepts_the_keys,  # noqa: F401
    test_yolo_cfg_lists_the_keys,  # noqa: F401
)

UPSTREAM_BOUND = {  # upstream path -> module of this package (tools/make_patches.py COPIED)
    "ultralytics/data/balance.py": "balance.py",
    "ultralytics/data/sampler.py": "sampler.py",
    "ultralytics/data/config.py": "config.py",
    "ultralytics/data/balanced_training.py": "training.py",
}
PLUGIN = {"PYTHONPATH": "", "ULTRALYTICS_WEIGHTED_HOOK": "1"}  # subprocesses with stock Ultralytics and the plugin
TRAIN = dict(epochs=1, imgsz=64, batch=8, device="cpu", plots=False, workers=0, seed=0, verbose=False)


def synthetic():
    """Load ultralytics_weighted/synthetic.py as a standalone module (importing the package would activate it)."""
    spec = importlib.util.spec_from_file_location("_synthetic", ROOT / "ultralytics_weighted" / "synthetic.py")
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


@pytest.mark.parametrize(
    "task, extra",
    [("detect", ["cache=ram", "mixup=0.5", "balance_agg=sum"]), ("classify", ["balance_agg=max"])],
)
def test_patched_training_matches_the_plugin(task, extra, datasets, folder, tmp_path):
    # Same seed and arguments: the patched tree must log the same table and train to the same numbers as the plugin.
    data = folder if task == "classify" else datasets(task)
    patched = yolo_train(task, data, tmp_path / "patched", "class_balance=True", *extra)
    plugin = yolo_train(task, data, tmp_path / "plugin", "class_balance=True", *extra, env=PLUGIN)
    assert patched.returncode == 0, patched.stdout[-3000:]
    assert plugin.returncode == 0, plugin.stdout[-3000:]
    table = balance_table(patched.stdout)
    assert table and table == balance_table(plugin.stdout)
    assert results(tmp_path / "patched" / "run") == results(tmp_path / "plugin" / "run")


def test_the_plugin_stays_inactive_on_a_patched_tree(datasets, tmp_path):
    # Plugin installed and its hook on, Ultralytics patched: the native feature runs alone (one table, no crash).
    out = yolo_train(
        "detect", datasets("detect"), tmp_path, "class_balance=True", env={"ULTRALYTICS_WEIGHTED_HOOK": "1"}
    )
    assert out.returncode == 0, out.stdout[-3000:]
    assert sum("max/min class share" in line for line in balance_table(out.stdout)) == 1


def test_feature_off_trains_exactly_like_stock(datasets, tmp_path):
    patched = yolo_train("detect", datasets("detect"), tmp_path / "patched")
    stock = yolo_train("detect", datasets("detect"), tmp_path / "stock", env={"PYTHONPATH": ""})
    assert patched.returncode == 0 and stock.returncode == 0, patched.stdout[-2000:] + stock.stdout[-2000:]
    assert not balance_table(patched.stdout)
    assert results(tmp_path / "patched" / "run") == results(tmp_path / "stock" / "run")


def test_only_the_train_loader_is_balanced(datasets, tmp_path):
    from ultralytics import YOLO as Model
    from ultralytics.data.balanced_training import BalancedDatasetMixin
    from ultralytics.data.sampler import BalancedSampler

    model = Model("yolo11n.yaml")
    model.train(data=str(datasets("detect")), class_balance=True, **TRAIN, project=str(tmp_path), name="run")
    train, val = model.trainer.train_loader, model.trainer.test_loader
    assert isinstance(train.sampler, BalancedSampler) and isinstance(train.dataset, BalancedDatasetMixin)
    assert not isinstance(val.dataset, BalancedDatasetMixin) and not isinstance(val.sampler, BalancedSampler)
    trained = Model(model.trainer.best)
    kwargs = dict(data=str(datasets("detect")), imgsz=64, batch=4, device="cpu", plots=False, verbose=False)
    on, off = trained.val(class_balance=True, balance_agg="sum", **kwargs), trained.val(class_balance=False, **kwargs)
    assert on.results_dict == off.results_dict  # validation ignores the keys
    np.testing.assert_array_equal(on.box.maps, off.box.maps)


def test_error_messages_match_the_plugin(tmp_path):
    from ultralytics.cfg import get_cfg

    bad = [
        {"balance_agg": "foo"},
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
        "    except Exception as e:\n        out.append([type(e).__name__, str(e)])\n"
        "print('MESSAGES', json.dumps(out))"
    )
    out = run([sys.executable, "-c", code, json.dumps(bad)], cwd=tmp_path, env=PLUGIN)
    assert out.returncode == 0, out.stdout[-2000:]
    plugin = json.loads(out.stdout.split("MESSAGES ", 1)[1])
    patched = []
    for overrides in bad:
        with pytest.raises((TypeError, ValueError)) as error:
            get_cfg(overrides=overrides)
        patched.append([error.type.__name__, str(error.value)])
    assert patched == plugin


def test_conflicts_are_refused_or_warned_before_training(datasets, tmp_path):
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.models.yolo.semantic import SemanticSegmentationTrainer

    args = dict(model="yolo11n.yaml", data=str(datasets("detect")), class_balance=True, **TRAIN, project=str(tmp_path))
    with pytest.raises(ValueError, match="'rect=True' cannot be combined with class_balance"):
        DetectionTrainer(overrides={**args, "rect": True, "name": "rect"})
    with pytest.raises(NotImplementedError, match="class_balance is not supported for task=semantic"):
        SemanticSegmentationTrainer(overrides={**args, "model": "yolo11n-seg.yaml", "name": "semantic"})
    with captured_log() as messages:
        trainer = DetectionTrainer(overrides={**args, "single_cls": True, "cls_pw": 1.0, "name": "warn"})
    assert any("'single_cls=True' merges all classes into one, so class_balance has no effect" in m for m in messages)
    assert any("cls_pw=1.0 (loss weighting) both favour rare classes" in m for m in messages)
    trainer.model = trainer.get_model(cfg="yolo11n.yaml", verbose=False)
    from ultralytics.data.dataset import YOLODataset

    assert type(trainer.build_dataset(trainer.data["train"], mode="train", batch=8)) is YOLODataset
