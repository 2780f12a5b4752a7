# ultralytics-weighted, AGPL-3.0 license
"""The layers a reader can guess: the command line on top, and nothing below it imports it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ultralytics_weighted"


def imported_modules(path: Path) -> set[str]:
    """Return every module a file imports, at any depth (imports inside functions count too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "ultralytics_weighted" if node.level else ""  # relative imports stay inside the package
            module = ".".join(filter(None, (base, node.module)))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_below_the_command_line_imports_it():
    below = [p for p in PACKAGE.glob("*.py") if p.name != "cli.py"]
    assert len(below) > 5
    offenders = {p.name for p in below if "ultralytics_weighted.commands.cli" in imported_modules(p)}
    assert offenders == set()
