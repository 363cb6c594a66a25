"""Inference code (everything in audiosep/ but audiosep/train/) never imports the training package."""
from __future__ import annotations

import ast
from pathlib import Path

import audiosep

PACKAGE = Path(audiosep.__file__).resolve().parent


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    package = ["audiosep", *path.relative_to(PACKAGE).with_suffix("").parts]
    if package[-1] == "__init__":
        package.append("")  # the package itself: "from . import x" stays inside it
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:-node.level] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names.add(module)
            names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


def test_no_module_outside_train_imports_it():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] == "train":
            continue
        hits = {m for m in _imported_modules(path) if m == "audiosep.train" or m.startswith("audiosep.train.")}
        if hits:
            offenders[str(path.relative_to(PACKAGE))] = sorted(hits)
    assert offenders == {}


def test_the_check_sees_relative_imports(tmp_path):
    assert "audiosep.train.config" in _imported_modules(PACKAGE / "train" / "mixing.py")
    assert "audiosep.errors" in _imported_modules(PACKAGE / "bench" / "errors.py")
