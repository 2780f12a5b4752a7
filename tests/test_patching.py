# ultralytics-weighted, AGPL-3.0 license
"""`ultralytics-weighted patch`: check, apply and revert the upstream series on copies of the installed Ultralytics."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import run

from ultralytics_weighted.commands import patching
from ultralytics_weighted.host.release import is_supported

ROOT = Path(__file__).resolve().parents[1]
PATCHES = ROOT / "patches"
SERIES = json.loads((PATCHES / "series.json").read_text())


def installed_ultralytics() -> Path:
    """Return the folder of the installed ultralytics package (found, not imported)."""
    return Path(importlib.util.find_spec("ultralytics").submodule_search_locations[0])


def copy_package(dest: Path) -> Path:
    """Copy the installed ultralytics package to dest/ultralytics (without caches) and return that folder."""
    installed = patching.tree_version(installed_ultralytics())
    if installed != SERIES["ultralytics"]:
        pytest.skip(f"the series is for ultralytics {SERIES['ultralytics']}, {installed} is installed")
    return Path(
        shutil.copytree(installed_ultralytics(), dest / "ultralytics", ignore=shutil.ignore_patterns("__pycache__"))
    )


def main(*args) -> int:
    return patching.main([str(a) for a in args])


def test_series_is_complete_and_made_for_a_supported_release():
    assert is_supported(SERIES["ultralytics"]), "the series targets the newest release of the supported range"
    for name in SERIES["patches"] + SERIES["docs"]:
        text = (PATCHES / name).read_text()
        assert text.startswith("From 0000000000000000000000000000000000000000 ") and "\nSubject: [PATCH] " in text
    diffs = dict(d for name in SERIES["patches"] for d in patching.file_diffs((PATCHES / name).read_text()))
    assert {"ultralytics/data/balance.py", "ultralytics/data/sampler.py", "ultralytics/cfg/default.yaml"} <= set(diffs)


def test_check_apply_revert_an_installed_package(tmp_path, capsys):
    package = copy_package(tmp_path / "site")
    assert main("--check", package) == 0
    assert "applies cleanly to package" in capsys.readouterr().out
    assert main("--apply", package) == 0
    applied = capsys.readouterr().out
    assert "Applied the class-balance series" in applied
    assert "`class_balance`, `balance_agg` are now Ultralytics train arguments (the series is the core" in applied
    assert not (tmp_path / "site" / "tests").exists()  # the tests patch is for checkouts only
    assert main("--check", package) == 0 and "already applied" in capsys.readouterr().out
    assert main("--apply", package) == 0 and "Nothing to do" in capsys.readouterr().out

    # the patched copy has the keys natively: no plugin in this process
    code = (
        "import sys, ultralytics\nfrom ultralytics.cfg import get_cfg\n"
        "print('OK', get_cfg(overrides={'class_balance': 0.5}).class_balance, ultralytics.__file__)\n"
        "get_cfg(overrides={'class_balance': 2})"
    )
    env = {"PYTHONPATH": str(tmp_path / "site"), "ULTRALYTICS_WEIGHTED_HOOK": "0"}
    out = run([sys.executable, "-c", code], cwd=tmp_path, env=env)
    assert f"OK 0.5 {package}" in out.stdout
    assert "ValueError: 'class_balance=2' is an invalid value. Valid 'class_balance' values are" in out.stdout

    assert main("--revert", package) == 0 and "Reverted" in capsys.readouterr().out
    assert not (package / "data" / "balance.py").exists()
    original = installed_ultralytics() / "cfg" / "__init__.py"
    assert (package / "cfg" / "__init__.py").read_bytes() == original.read_bytes()


def test_apply_to_a_checkout_adds_the_tests_but_not_the_docs(tmp_path, capsys):
    copy_package(tmp_path / "checkout")
    assert main("--apply", tmp_path / "checkout") == 0
    assert "checkout" in capsys.readouterr().out
    assert (tmp_path / "checkout" / "tests" / "test_class_balance.py").exists()
    assert not (tmp_path / "checkout" / "docs").exists()
    balance = tmp_path / "checkout" / "ultralytics" / "data" / "balance.py"
    assert b"def image_probabilities(" in balance.read_bytes()


def test_other_release_is_refused(tmp_path, capsys):
    (tmp_path / "ultralytics").mkdir()
    (tmp_path / "ultralytics" / "__init__.py").write_text('__version__ = "8.4.189"\n')
    assert main("--apply", tmp_path) == 1
    err = capsys.readouterr().err
    assert "is ultralytics 8.4.189, but the patch series is for ultralytics " + SERIES["ultralytics"] in err
    assert "refusing" in err and not (tmp_path / "ultralytics" / "data").exists()


def test_not_an_ultralytics_tree_and_local_changes_are_reported(tmp_path, capsys):
    assert main("--check", tmp_path) == 1
    assert "is not an Ultralytics tree" in capsys.readouterr().err
    assert main("--check", tmp_path / "missing") == 1
    assert f"{tmp_path / 'missing'} does not exist." in capsys.readouterr().err
    renamed = copy_package(tmp_path / "copy").rename(tmp_path / "copy" / "ultralytics-8.4")
    assert main("--apply", renamed) == 1
    assert "the folder must be named 'ultralytics'" in capsys.readouterr().err
    package = copy_package(tmp_path / "site")
    default = package / "cfg" / "default.yaml"
    default.write_text(default.read_text().replace("fraction: 1.0", "fraction: 0.5"))  # a conflicting local change
    assert main("--check", package) == 1
    assert "does not apply" in capsys.readouterr().err


def test_patch_without_git(tmp_path, capsys, monkeypatch):
    if not shutil.which("patch"):
        pytest.skip("GNU patch is not installed")
    which = shutil.which
    monkeypatch.setattr(patching.shutil, "which", lambda name: None if name == "git" else which(name))
    package = copy_package(tmp_path / "site")
    assert main("--apply", package) == 0
    assert "class BalancedSampler(" in (package / "data" / "sampler.py").read_text()
    assert main("--check", package) == 0 and "already applied" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    assert main() == 2
    assert main("--check", "a", "--apply", "b") == 2


def test_make_patches_keeps_no_python_source_in_strings():
    # the series is copies of the package's modules plus real call-site diffs; the script holds prose and data only
    code_line = re.compile(r"^\s*(def \w+\(|class \w+[:(]|elif |return |import \w|from [\w.]+ import )", re.M)
    tree = ast.parse((ROOT / "tools" / "make_patches.py").read_text())
    bodies = [n.body for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef))]
    docstrings = {id(b[0].value) for b in bodies if b and isinstance(b[0], ast.Expr)}
    strings = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert not [s.value[:80] for s in strings if id(s) not in docstrings and code_line.search(s.value)]
    diffs = sorted((PATCHES / "src" / "call-sites").glob("*.diff"))
    assert diffs and all(d.read_text().startswith("diff --git a/ultralytics/") for d in diffs)


def make_patches_module():
    """Load tools/make_patches.py (standard library only) as a module."""
    spec = importlib.util.spec_from_file_location("make_patches", ROOT / "tools" / "make_patches.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_make_patches_catches_texts_that_claim_what_the_core_does_not_do():
    # the errors the series' texts once held: `auto` advertised, a function and a warning that do not exist
    mp = make_patches_module()
    plugin_line = (
        "balance_agg: mean # (str) how an image's objects combine class weights, i.e. mean, max, auto (solved)"
    )
    (plugin_key,) = mp.train_keys(plugin_line)
    assert mp.listed_values(plugin_key) == {"mean", "max", "auto"}
    core = mp.core_key(plugin_key, ("mean", "max", "median", "sum"))  # what the series writes into default.yaml
    assert (
        core.line
        == "balance_agg: mean # (str) how an image's objects combine class weights, i.e. mean, max, median, sum\n"
    )
    assert ("balance_agg", "auto") in mp.claimed_values(plugin_line, {"auto"})
    assert ("balance_agg", "auto") in mp.claimed_values("Use `auto` or `yolo train balance_agg=auto`.", {"auto"})
    assert not {v for k, v in mp.claimed_values(core.line, {"auto"})} - {"mean", "max", "median", "sum"}

    installed = sorted(installed_ultralytics().rglob("*.py")) + sorted(
        (ROOT / "ultralytics_weighted" / "core").glob("*.py")
    )
    code = "\n".join(f.read_text(encoding="utf-8") for f in installed)
    defs, camel = set(re.findall(r"def (\w+)", code)), {m.group(0) for m in re.finditer(mp.CAMEL_CASE, code)}
    names = (defs, camel, {"ultralytics/data/balance.py"})
    message = "`check_class_balance()` runs right after `check_resume()`; `check_balanced_loader()` refuses rect."
    assert mp.missing_names(message, names) == [
        "function `check_class_balance()` (no `def check_class_balance` in the tree)"
    ]
    assert mp.missing_names("`BalancedSampler` in `ultralytics/data/balance.py`, `ultralytics/data/x.py`", names) == [
        "file `ultralytics/data/x.py`"
    ]

    warned, raising = mp.behaviour(ROOT / "ultralytics_weighted" / "core", ["balance.py", "balanced_training.py"])
    keys = {"single_cls", "cls_pw", "rect", "class_balance", "classes"}
    guide = "- With `single_cls=True` there is only one class to balance; training warns and runs without balancing."
    assert "said to warn" in mp.unbacked_behaviour(guide, keys, warned, raising)[0]
    assert not mp.unbacked_behaviour("Training warns when `cls_pw` is set as well.", keys, warned, raising)
    assert not mp.unbacked_behaviour("With `class_balance` on, `rect=True` raises an error.", keys, warned, raising)
    assert "said to raise" in mp.unbacked_behaviour("`single_cls=True` is an error.", keys, warned, raising)[0]


def test_patch_takes_key_value_like_every_command_and_keeps_the_flags(tmp_path, capsys):
    package = copy_package(tmp_path / "site")
    assert main(f"check={package}") == 0 and "applies cleanly to package" in capsys.readouterr().out
    assert main(f"--check={package}") == 0 and "applies cleanly to package" in capsys.readouterr().out
    assert main(f"apply={package}") == 0 and "Applied the class-balance series" in capsys.readouterr().out
    assert main(f"revert={package}") == 0 and "Reverted" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["check"], "'check' is not a key=value argument: give check=PATH, apply=PATH or revert=PATH."),
        (["--bogus"], "'--bogus' is not a valid argument: give check=PATH, apply=PATH or revert=PATH."),
        (["chek=/tmp"], "'chek=/tmp' is not a valid argument: give check=PATH, apply=PATH or revert=PATH."),
        (["--check"], "'--check' needs a path: give check=PATH."),
        (["check=a", "apply=b"], "give one of check=PATH, apply=PATH or revert=PATH (given: check=, apply=)."),
        ([], "give one of check=PATH, apply=PATH or revert=PATH."),
    ],
)
def test_a_malformed_patch_argument_is_one_line_and_exit_2(args, message, tmp_path):
    out = run([sys.executable, "-m", "ultralytics_weighted.commands.cli", "patch", *args], cwd=tmp_path)
    assert out.returncode == 2
    assert out.stdout.strip() == f"ultralytics-weighted patch: {message} See `ultralytics-weighted patch --help`."
    help_ = run([sys.executable, "-m", "ultralytics_weighted.commands.cli", "patch", "--help"], cwd=tmp_path)
    assert help_.returncode == 0 and "patch check=PATH | apply=PATH | revert=PATH" in help_.stdout
