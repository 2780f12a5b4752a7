# ultralytics-weighted, AGPL-3.0 license
"""The host Ultralytics: the declared patch surface, feature detection, unsupported releases, the loaders we build."""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import types
from pathlib import Path

import pytest
from conftest import run

import ultralytics_weighted  # noqa: F401  (explicit activation; the startup hook does the same)
from ultralytics_weighted import BalancedSampler
from ultralytics_weighted.host import activation, release, surface
from ultralytics_weighted.host.release import SUPPORTED_ULTRALYTICS, UnsupportedUltralyticsError
from ultralytics_weighted.host.surface import PATCH_SURFACE, REFUSAL_SURFACE, Replacement
from ultralytics_weighted.host.training import BalancedDatasetMixin

ROOT = Path(__file__).resolve().parents[1]
TRAIN = dict(epochs=1, imgsz=64, batch=8, device="cpu", plots=False, workers=0, seed=0, verbose=False)


def replaced_attributes() -> set[str]:
    """Find the functions this plugin installed in Ultralytics' loaded modules and classes, as 'module:Owner.name'."""
    found = set()
    for name, module in list(sys.modules.items()):
        if not (name == "ultralytics" or name.startswith("ultralytics.")) or module is None:
            continue
        holders = [(None, module)] + [
            (k, v) for k, v in vars(module).items() if inspect.isclass(v) and v.__module__ == name
        ]
        for owner, holder in holders:
            for attr, value in list(vars(holder).items()):
                if surface._is_patched(value):
                    found.add(f"{name}:{owner + '.' if owner else ''}{attr}")
    return found


def test_supported_range_is_the_one_in_pyproject():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"ultralytics{SUPPORTED_ULTRALYTICS}"' in pyproject
    import ultralytics

    assert release.is_supported(ultralytics.__version__), "CI runs the suite on supported releases only"


def test_the_table_is_exactly_what_is_replaced():
    for row in PATCH_SURFACE:
        importlib.import_module(row.module)
    keys = {row.key for row in PATCH_SURFACE}
    assert len(keys) == len(PATCH_SURFACE) and all(row.why for row in PATCH_SURFACE)
    assert not surface._UNAVAILABLE, "this release lacks a feature the wrappers need"
    assert replaced_attributes() == keys
    replacements = {key: getattr(holder, name) for key, (holder, name, _) in surface._ORIGINALS.items()}

    activation.activate()  # idempotent: nothing is wrapped twice
    assert {key: getattr(holder, name) for key, (holder, name, _) in surface._ORIGINALS.items()} == replacements
    assert replaced_attributes() == keys

    originals = dict(surface._ORIGINALS)
    activation.deactivate()
    try:
        assert replaced_attributes() == set()
        for holder, name, original in originals.values():
            assert vars(holder)[name] is original
        from ultralytics.utils import DEFAULT_CFG_DICT

        assert "class_balance" not in DEFAULT_CFG_DICT
    finally:
        activation.activate()
    assert replaced_attributes() == keys


def test_a_missing_feature_refuses_class_balance_and_leaves_the_function_stock(monkeypatch):
    def build_dataloader(dataset, batch, workers):  # an imagined release whose function lost `shuffle` and `rank`
        return "stock loader"

    module = types.ModuleType("imagined_ultralytics_train")
    module.build_dataloader = build_dataloader
    monkeypatch.setattr(surface, "_UNAVAILABLE", {})
    row = Replacement(module.__name__, None, "build_dataloader", surface._balanced_build_dataloader, "test",
                      ("dataset", "shuffle", "rank"))  # fmt: skip
    surface._apply(row, module)
    assert module.build_dataloader is build_dataloader
    assert surface._UNAVAILABLE == {row.key: f"{row.key} takes no shuffle, rank"}

    trainer = types.SimpleNamespace(args=types.SimpleNamespace(class_balance=True))
    with pytest.raises(UnsupportedUltralyticsError, match=re.escape(f"class_balance is not available: {row.key}")):
        surface.check_trainer(trainer)
    surface.check_trainer(types.SimpleNamespace(args=types.SimpleNamespace(class_balance=False)))  # stock use


def test_unsupported_release_refuses_the_keys_and_trains_stock(datasets, tmp_path):
    # An out-of-range version as the plugin sees it: the refusal is all it installs (CI also runs a real 8.3.253)
    code = f"""
import ultralytics
ultralytics.__version__ = "8.3.253"
import ultralytics_weighted
from ultralytics import YOLO
from ultralytics.utils import DEFAULT_CFG_DICT
from ultralytics_weighted.host.surface import _ORIGINALS
assert "class_balance" not in DEFAULT_CFG_DICT
train = dict(data=r"{datasets("detect")}", epochs=1, imgsz=64, batch=8, device="cpu", plots=False, workers=0,
             project=r"{tmp_path}")
YOLO("yolo11n.yaml").train(**train, name="plain")
print("PLAIN OK", sorted(_ORIGINALS))
YOLO("yolo11n.yaml").train(**train, name="balanced", class_balance=True)
"""
    out = run([sys.executable, "-c", code], cwd=tmp_path, env={"ULTRALYTICS_WEIGHTED_HOOK": "0"})
    assert "PLAIN OK ['ultralytics.cfg:check_dict_alignment']" in out.stdout, out.stdout[-3000:]
    assert (tmp_path / "plain" / "weights" / "last.pt").exists()
    message = out.stdout.strip().splitlines()[-1]
    assert message.startswith("ultralytics_weighted.host.release.UnsupportedUltralyticsError: class_balance is not ")
    assert "ultralytics 8.3.253 is installed" in message and f"ultralytics{SUPPORTED_ULTRALYTICS}" in message
    assert not (tmp_path / "balanced").exists()  # refused before the trainer made its run folder


def test_refusal_surface_is_one_wrapper_around_a_stock_check():
    assert [row.key for row in REFUSAL_SURFACE] == ["ultralytics.cfg:check_dict_alignment"]
    from ultralytics import cfg

    calls = []
    refuse = surface._refuse_balance_keys(lambda base, custom, e=None: calls.append(custom))
    refuse({"epochs": 1}, {"epochs": 2})
    assert calls == [{"epochs": 2}]  # stock keys pass through to the stock check
    with pytest.raises(UnsupportedUltralyticsError, match="drop class_balance, balance_agg"):
        refuse({"epochs": 1}, {"balance_agg": "sum"})
    assert callable(cfg.check_dict_alignment)


def test_balanced_loader_keeps_every_setting_the_stock_function_chose(datasets, tmp_path):
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.models.yolo.detect import train as detect_train

    trainer = DetectionTrainer(
        overrides=dict(
            model="yolo11n.yaml",
            data=str(datasets("detect")),
            class_balance=True,
            project=str(tmp_path),
            **{**TRAIN, "workers": 2},
        )  # fmt: skip
    )
    trainer.model = trainer.get_model(cfg="yolo11n.yaml", verbose=False)
    dataset = trainer.build_dataset(trainer.data["train"], mode="train", batch=4)
    assert isinstance(dataset, BalancedDatasetMixin)
    stock_build = surface._ORIGINALS[f"{detect_train.__name__}:build_dataloader"][2]
    kwargs = dict(batch=4, workers=2, shuffle=True, rank=-1, device="cpu")
    stock, balanced = stock_build(dataset, **kwargs), detect_train.build_dataloader(dataset, **kwargs)
    try:
        assert isinstance(balanced.sampler, BalancedSampler) and not isinstance(stock.sampler, BalancedSampler)
        assert type(balanced) is type(stock)
        settings = {k: surface._loader_settings(loader) for k, loader in (("stock", stock), ("balanced", balanced))}
        for loader_settings in settings.values():
            loader_settings["generator"] = loader_settings["generator"].initial_seed()
        assert settings["balanced"] == settings["stock"]
        assert settings["balanced"]["num_workers"] == 2 and stock.prefetch_factor  # workers, so prefetching
    finally:
        stock.close(), balanced.close()


def test_qat_calibration_loader_stays_stock(datasets, tmp_path, monkeypatch):
    trainer_module = pytest.importorskip("ultralytics.engine.trainer")
    if not hasattr(trainer_module, "prepare_qat"):
        pytest.skip("this Ultralytics has no quantization-aware training")
    from ultralytics import YOLO as Model

    class Stop(Exception):
        pass

    calibration = []
    monkeypatch.setattr(trainer_module, "prepare_qat", lambda model, loader, *a: calibration.append(loader) or model)

    def stop(trainer):
        raise Stop

    model = Model("yolo11n.yaml")
    model.add_callback("on_train_start", stop)  # after the train loader is built, before any quantized step
    with pytest.raises(Stop):
        model.train(data=str(datasets("detect")), class_balance=True, quantize=8, **TRAIN, project=str(tmp_path))
    (loader,) = calibration
    assert type(loader.dataset).__name__ == "YOLODataset" and not isinstance(loader.sampler, BalancedSampler)
    assert isinstance(model.trainer.train_loader.dataset, BalancedDatasetMixin)
    assert isinstance(model.trainer.train_loader.sampler, BalancedSampler)


def test_the_usage_guide_lists_the_table():
    from ultralytics_weighted.host.native import NATIVE_SURFACE

    guide = (ROOT / "docs" / "usage.md").read_text()
    for row in PATCH_SURFACE + REFUSAL_SURFACE + NATIVE_SURFACE:
        assert f"`{row.key}`" in guide, row.key


def test_a_dataset_type_the_plugin_cannot_balance_is_refused():
    # e.g. YOLO-World's multi-modal datasets, or a custom trainer's subclass: labels and transforms of their own
    from types import SimpleNamespace

    from ultralytics.data.dataset import YOLODataset

    from ultralytics_weighted.host.training import balance_train_dataset

    class CustomDataset(YOLODataset):
        def __init__(self):  # built without files: the check comes before any label is read
            pass

    args = SimpleNamespace(class_balance=True, single_cls=False, quantize=None)
    trainer = SimpleNamespace(args=args, data={"names": {0: "car", 1: "bus"}})
    with pytest.raises(NotImplementedError, match="class_balance is not supported for CustomDataset datasets yet"):
        balance_train_dataset(trainer, CustomDataset(), "train")
