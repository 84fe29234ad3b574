"""The house's layout rules that no import-linter contract covers: ``scripts/`` and ``tests/``
do not import each other (what both need lives in the library), and tests run scripts only as
processes."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    """Top-level module names a file imports, and folders it puts on ``sys.path`` or loads from."""
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("spec_from_file_location", "insert"):
            text = ast.unparse(node)
            out |= {word for word in ("scripts", "tests") if f'"{word}"' in text or f"'{word}'" in text}
    return out


def test_scripts_and_tests_do_not_import_each_other():
    scripts = {p.stem for p in (ROOT / "scripts").glob("*.py")}
    tests = {p.stem for p in (ROOT / "tests").glob("*.py")}
    for path in (ROOT / "scripts").glob("*.py"):
        wrong = _imports(path) & (tests | {"tests"})
        assert not wrong, f"{path.relative_to(ROOT)} imports from tests/: {sorted(wrong)}"
    for path in (ROOT / "tests").glob("*.py"):
        wrong = _imports(path) & ((scripts - tests) | {"scripts"})
        assert not wrong, f"{path.relative_to(ROOT)} imports from scripts/: {sorted(wrong)}"


def test_the_checker_sees_both_kinds_of_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import sys\nsys.path.insert(0, str(ROOT / 'tests'))\nfrom reproduce import main\n")
    assert {"tests", "reproduce", "sys"} <= _imports(sample)
