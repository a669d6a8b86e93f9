"""Rooms stay small enough to hold in your head (STYLE.md): counted here, as the import
contracts check the layers."""

from __future__ import annotations

import ast
from pathlib import Path

import launchbay

PACKAGE = Path(launchbay.__file__).parent
MAX_MODULE_LINES = 600
MAX_CLASS_METHODS = 25


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_is_over_600_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_class_has_over_25_methods():
    big = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                methods = [
                    m for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
                ]
                if len(methods) > MAX_CLASS_METHODS:
                    big[f"{path.relative_to(PACKAGE)}:{node.name}"] = len(methods)
    assert big == {}


def test_the_counts_see_the_package():
    # The counts above would pass on an empty folder: they must have read the real tree.
    assert len(modules()) > 50
    assert any(p.name == "engine.py" for p in modules())
