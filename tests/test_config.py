# ultralytics-weighted, AGPL-3.0 license
"""The keys reach every entry point (CLI, cfg files, Python, fresh DDP-like processes) and bad values fail early."""

from __future__ import annotations

import sys

import pytest
from conftest import YOLO, plain, run


def python(code: str, tmp_path, env: dict | None = None):
    return run([sys.executable, "-c", code], cwd=tmp_path, env=env)


def test_startup_hook_imports_neither_ultralytics_nor_torch(tmp_path):
    out = python("pass", tmp_path, env={"PYTHONPROFILEIMPORTTIME": "1"})
    modules = [line.rsplit("|", 1)[-1].strip() for line in out.stdout.splitlines() if line.startswith("import time:")]
    assert "ultralytics_weighted_hook" in modules  # the .pth file ran
    heavy = [m for m in modules if m.split(".")[0] in {"ultralytics", "torch", "numpy", "ultralytics_weighted"}]
    assert heavy == []


def test_fresh_process_that_only_imports_ultralytics_accepts_the_keys(tmp_path):
    # What a DDP worker does: a generated script imports ultralytics and rebuilds cfg from DEFAULT_CFG_DICT.
    code = (
        "from ultralytics.utils import DEFAULT_CFG_DICT, DEFAULT_CFG\n"
        "from ultralytics.cfg import get_cfg\n"
        "cfg = get_cfg(DEFAULT_CFG_DICT.copy(), overrides={'class_balance': True, 'balance_agg': 'sum', "
        "'balance_floor': 1, 'balance_ramp': 0.5, 'balance_start': 0.7})\n"
        "print('OK', cfg.class_balance, cfg.balance_agg, cfg.balance_floor, cfg.balance_ramp, cfg.balance_start, "
        "DEFAULT_CFG.class_balance, DEFAULT_CFG_DICT['balance_agg'], DEFAULT_CFG.balance_floor, "
        "DEFAULT_CFG_DICT['balance_ramp'], DEFAULT_CFG.balance_start)"
    )
    out = python(code, tmp_path)
    assert out.returncode == 0, out.stdout
    assert "OK True sum 1 0.5 0.7 False mean 0.0 0.0 0.0" in out.stdout


def test_opt_out_variable_turns_the_hook_off(tmp_path):
    code = "from ultralytics.cfg import get_cfg\nget_cfg(overrides={'class_balance': True})"
    out = python(code, tmp_path, env={"ULTRALYTICS_WEIGHTED_HOOK": "0"})
    assert out.returncode != 0
    assert "SyntaxError: 'class_balance' is not a valid YOLO argument" in plain(out.stdout)  # Ultralytics' own error
    # explicit activation still works with the hook off
    out = python("import ultralytics_weighted\n" + code, tmp_path, env={"ULTRALYTICS_WEIGHTED_HOOK": "0"})
    assert out.returncode == 0, out.stdout


def test_with_the_hook_off_the_error_for_a_key_names_the_plugin(tmp_path):
    code = "from ultralytics.cfg import get_cfg\nget_cfg(overrides={'class_balance': True, 'epoch': 3})"
    stdout = plain(python(code, tmp_path, env={"ULTRALYTICS_WEIGHTED_HOOK": "0"}).stdout)  # older releases colour keys
    assert "SyntaxError: " in stdout  # still Ultralytics' own error, which lists the keys in set order:
    assert "'class_balance' is not a valid YOLO argument" in stdout and "'epoch' is not a valid" in stdout
    hint = (
        "'class_balance' is a key of ultralytics-weighted, whose startup hook is switched off "
        "(ULTRALYTICS_WEIGHTED_HOOK=0): unset ULTRALYTICS_WEIGHTED_HOOK, or `import ultralytics_weighted`"
    )
    assert stdout.count(hint) == 1
    assert "'epoch' is a key of ultralytics-weighted" not in stdout  # a typo of a stock key gets no hint
    out = run([*YOLO, "train", "balance_start=0.7"], cwd=tmp_path, env={"ULTRALYTICS_WEIGHTED_HOOK": "0"})
    assert out.returncode != 0 and "'balance_start' is a key of ultralytics-weighted" in plain(out.stdout)


def test_yolo_cfg_lists_the_keys(tmp_path):
    out = run([*YOLO, "cfg"], cwd=tmp_path)
    assert out.returncode == 0
    keys = "class_balance: false", "balance_agg: mean", "balance_floor: 0.0", "balance_ramp: 0.0", "balance_start: 0.0"
    for line in keys:
        assert line in out.stdout


def test_default_keys_and_namespace_explicit_import():
    from ultralytics.cfg import get_cfg
    from ultralytics.utils import DEFAULT_CFG, DEFAULT_CFG_DICT

    import ultralytics_weighted  # noqa: F401

    assert DEFAULT_CFG_DICT["class_balance"] is False and DEFAULT_CFG.balance_agg == "mean"
    assert get_cfg(overrides={"class_balance": 0.5}).class_balance == 0.5
    assert get_cfg(overrides={"class_balance": 1}).class_balance == 1


@pytest.mark.parametrize(
    "arg, error, valid",
    [
        ("balance_agg=foo", "'balance_agg=foo' is an invalid value", "mean, max, median, sum, auto"),
        ("class_balance=2", "'class_balance=2' is an invalid value", "between 0.0 and 1.0"),
        ("class_balance=-0.1", "'class_balance=-0.1' is an invalid value", "between 0.0 and 1.0"),
        ("class_balance=yes", "'class_balance=yes' is of invalid type str", "bool (i.e. 'class_balance=True')"),
    ],
)
def test_bad_values_fail_before_any_data_is_loaded(arg, error, valid, datasets, yolo, tmp_path):
    out = yolo(datasets("detect"), tmp_path / "runs", arg)
    assert out.returncode != 0
    assert error in out.stdout and valid in out.stdout
    assert "Scanning" not in out.stdout  # no labels were read
    assert not (tmp_path / "runs").exists()  # nothing trained, no run folder


def test_bad_values_in_python_and_cfg_files(datasets, tmp_path):
    from ultralytics.cfg import get_cfg

    with pytest.raises(ValueError, match="'balance_agg=foo' is an invalid value"):
        get_cfg(overrides={"balance_agg": "foo"})
    with pytest.raises(TypeError, match="'class_balance=None' is invalid"):
        get_cfg(overrides={"class_balance": None})
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("class_balance: 1.5\n")
    out = run([*YOLO, "train", f"cfg={cfg}", f"data={datasets('detect')}", "model=yolo11n.yaml"], cwd=tmp_path)
    assert out.returncode != 0 and "'class_balance=1.5' is an invalid value" in out.stdout


@pytest.mark.parametrize(
    "arg, message",
    [
        ("balance_floor=inf", "'balance_floor=inf' is an invalid value: not a finite number"),
        ("balance_ramp=nan", "'balance_ramp=nan' is an invalid value: not a finite number"),
        ("class_balance=-inf", "'class_balance=-inf' is an invalid value: not a finite number"),
        ("balance_floor=1e9", "Valid 'balance_floor' values are between 0.0 and 1 (the least expected draws"),
    ],
)
def test_non_finite_and_unbounded_values_fail_before_the_run_folder(arg, message, datasets, yolo, tmp_path):
    on = [] if arg.startswith("class_balance") else ["class_balance=True"]
    out = yolo(datasets("detect"), tmp_path / "runs", *on, arg)
    assert out.returncode != 0 and message in plain(out.stdout), out.stdout[-2000:]
    assert "Scanning" not in out.stdout and not (tmp_path / "runs").exists()  # refused before any label or folder


def test_non_finite_floor_from_a_cfg_file_and_python_fails_before_the_run_folder(datasets, tmp_path):
    from ultralytics import YOLO as Model

    cfg = tmp_path / "inf.yaml"
    cfg.write_text("class_balance: true\nbalance_floor: .inf\n")  # YAML's infinity is a float, not a string
    args = [f"cfg={cfg}", f"data={datasets('detect')}", "model=yolo11n.yaml", f"project={tmp_path / 'runs'}"]
    out = run([*YOLO, "train", *args], cwd=tmp_path)
    assert out.returncode != 0 and "'balance_floor=inf' is an invalid value: not a finite number" in out.stdout
    for floor in (float("inf"), float("nan"), 1e6):
        with pytest.raises(ValueError, match=f"'balance_floor={floor}' is an invalid value"):
            Model("yolo11n.yaml").train(
                data=str(datasets("detect")),
                class_balance=True,
                balance_floor=floor,
                epochs=1,
                imgsz=64,
                project=str(tmp_path / "runs"),
            )
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "key", ["balance_floor", "balance_ramp", "balance_start", "balance_rfs_threshold", "balance_tau"]
)
def test_a_type_error_suggests_values_the_key_accepts(key):
    import re

    from ultralytics_weighted.extensions.config import check_balance_args

    with pytest.raises(TypeError) as error:
        check_balance_args({key: True})
    suggested = re.findall(rf"'{key}=([^']+)'", str(error.value))[1:]  # after the value given
    assert len(suggested) == 2, str(error.value)
    for value in suggested:
        check_balance_args({key: float(value) if "." in value else int(value)})  # each suggestion is itself valid


def test_a_data_yaml_key_given_as_a_train_key_is_told_where_it_belongs(datasets, yolo, tmp_path):
    from ultralytics.cfg import get_cfg

    out = yolo(datasets("detect"), tmp_path / "runs", "class_weights=3")
    assert out.returncode != 0 and not (tmp_path / "runs").exists()
    assert "'class_weights' belongs in the data YAML (next to names:), not among the train keys" in plain(out.stdout)
    with pytest.raises(SyntaxError, match="'source_weights' belongs in the data YAML"):
        get_cfg(overrides={"source_weights": [1, 2]})
    stats = run(
        [
            sys.executable,
            "-m",
            "ultralytics_weighted.commands.cli",
            "stats",
            f"data={datasets('detect')}",
            "image_weights=w.csv",
        ],
        cwd=tmp_path,
    )
    assert stats.returncode == 2 and stats.stdout.strip() == (
        "ultralytics-weighted stats: 'image_weights' belongs in the data YAML (next to names:), not among the train "
        "keys. See `ultralytics-weighted stats --help`."
    )


@pytest.mark.parametrize("key, value", [("class_balance", 2.0), ("class_balance", "half"), ("balance_agg", "solve")])
def test_each_key_has_one_check_and_one_message(key, value):
    """The probabilities refuse a bad strength or aggregation with the very error the train keys' check gives."""
    import numpy as np

    from ultralytics_weighted.extensions.config import check_balance_args
    from ultralytics_weighted.extensions.schedule import weighted_probabilities

    with pytest.raises((TypeError, ValueError)) as checked:
        check_balance_args({key: value})
    with pytest.raises(type(checked.value)) as computed:
        weighted_probabilities(
            [np.array([0]), np.array([1])], 2, **{"agg" if key == "balance_agg" else "strength": value}
        )
    assert str(computed.value) == str(checked.value)


def test_balancing_on_is_one_decision_for_keys_namespaces_and_data_weights():
    from types import SimpleNamespace

    from ultralytics_weighted.extensions.config import balancing_on, unused_balance_keys

    for value, on in [(True, True), (1.0, True), (0.5, True), (False, False), (0.0, False), (0, False), (None, False)]:
        assert balancing_on({"class_balance": value}) is on
        assert balancing_on(SimpleNamespace(class_balance=value)) is on
        assert balancing_on({"class_balance": value}, weights={"class_multipliers": [1.0, 2.0]})  # data weights
        assert (unused_balance_keys({"class_balance": value, "balance_agg": "sum"}) == []) is on
    assert not balancing_on({}) and not balancing_on(SimpleNamespace(), weights=None)


def test_no_function_shares_its_name_with_a_data_yaml_key():
    import importlib
    import inspect
    import pkgutil

    import ultralytics_weighted
    from ultralytics_weighted.extensions.keys import DATA_YAML_KEYS

    clashes = []
    for info in pkgutil.walk_packages(ultralytics_weighted.__path__, "ultralytics_weighted."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == info.name:
                clashes += [f"{info.name}.{name}" for key in DATA_YAML_KEYS if name == key]
    assert clashes == []


def test_the_marker_key_is_no_setting():
    # every run's arguments hold ultralytics_weighted=True, so that a checkpoint resumed without the plugin names it
    from ultralytics.cfg import get_cfg

    assert get_cfg(overrides={"class_balance": 0.5}).ultralytics_weighted is True
    with pytest.raises(ValueError, match="'ultralytics_weighted' is no setting"):
        get_cfg(overrides={"ultralytics_weighted": False})
