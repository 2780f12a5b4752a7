# ultralytics-weighted, AGPL-3.0 license
"""The layers a reader can see: core · extensions · host · commands, each importing only the layers below it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ultralytics_weighted"
LAYERS = ("core", "extensions", "host", "commands")  # bottom to top
# What an extension may import besides the core and the other extensions: the standard library and the numpy stack
NUMPY_STACK = {"numpy", "threadpoolctl", "matplotlib"}  # threadpoolctl: the solver's BLAS threads; matplotlib: figures
KEY_DECLARATION = "extensions/keys.py"  # the one extension that reads YAML (the keys as default.yaml states them)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Return every module a file imports, at any depth (imports inside functions count too), relative ones resolved."""
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(filter(None, (base, node.module)))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def layer_files(layer: str) -> list[Path]:
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files, f"no layer folder {layer}/"
    return files


def package_imports(path: Path) -> set[str]:
    """Return the package's own modules a file imports, as 'ultralytics_weighted.<layer>...' names."""
    return {m for m in imported_modules(path) if m.split(".")[0] == "ultralytics_weighted"}


def test_the_layers_are_folders_and_every_module_lies_in_one():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert loose == []
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} == set(LAYERS)
    for layer in LAYERS:
        assert ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text())), f"{layer}/ says what it is"


def test_the_core_imports_nothing_of_the_package():
    offenders = {
        p.name: sorted(m for m in package_imports(p) if not m.startswith("ultralytics_weighted.core"))
        for p in layer_files("core")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_extensions_import_only_the_core_the_standard_library_and_the_numpy_stack():
    offenders = {}
    for path in layer_files("extensions"):
        allowed = NUMPY_STACK | ({"yaml"} if path.relative_to(PACKAGE).as_posix() == KEY_DECLARATION else set())
        found = sorted(
            m
            for m in imported_modules(path)
            if not m.startswith(("ultralytics_weighted.core", "ultralytics_weighted.extensions"))
            and m.split(".")[0] not in sys.stdlib_module_names | allowed | {"__future__"}
        )
        if found:
            offenders[path.name] = found
    assert offenders == {}


def test_nothing_below_the_commands_imports_them():
    below = [*PACKAGE.glob("*.py"), ROOT / "ultralytics_weighted_hook.py"]
    below += [p for layer in LAYERS[:-1] for p in layer_files(layer)]
    assert len(below) > 5
    offenders = {
        p.name for p in below if any(m.startswith("ultralytics_weighted.commands") for m in imported_modules(p))
    }
    assert offenders == set()
    # the command-line dispatcher is the top: no other module imports it
    dispatched = {p.name for p in PACKAGE.rglob("*.py") if "ultralytics_weighted.commands.cli" in imported_modules(p)}
    assert dispatched <= {"cli.py"}


def test_the_host_never_imports_the_commands_and_the_layers_below_never_import_the_host():
    for layer in LAYERS[:2]:
        for path in layer_files(layer):
            assert not any(m.startswith("ultralytics_weighted.host") for m in package_imports(path)), path.name
    for path in layer_files("host"):
        assert not any(m.startswith("ultralytics_weighted.commands") for m in package_imports(path)), path.name


def imported_at_startup(statement: str) -> list[str]:
    """Return the name of every module `python -X importtime -c statement` imports."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return [line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")]


@pytest.mark.parametrize(
    "module",
    [
        "ultralytics_weighted",
        "ultralytics_weighted.core.balance",
        *(module_name(p) for p in sorted((PACKAGE / "extensions").glob("*.py"))),
    ],
)
def test_importing_the_package_the_core_or_an_extension_imports_neither_ultralytics_nor_torch(module):
    modules = imported_at_startup(f"import {module}")
    assert module in modules  # the module itself was imported (and timed)
    heavy = sorted({m for m in modules if m.split(".")[0] in {"ultralytics", "torch"}})
    assert heavy == []


def test_importing_the_package_imports_none_of_its_modules():
    modules = imported_at_startup("import ultralytics_weighted")
    assert [m for m in modules if m.startswith("ultralytics_weighted.")] == []
