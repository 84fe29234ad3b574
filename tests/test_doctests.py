"""Every runnable example in the public docstrings runs and prints what it shows.

The examples register things (a proxy, a sampler, an importer) and fill a score store, so they
run in one separate process with its own ``$NAS_HOME``, not in the test process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "nas": "nas",
    "proxies": "nas.proxies",
    "searchspaces": "nas.searchspaces",
    "strategies": "nas.strategies",
    "benchmarks": "nas.benchmarks",
    "nas/design": "nas.design",
    "strategies/supernet": "nas.strategies.supernet",
    "strategies/grow": "nas.strategies.grow",
}

RUNNER = """
import doctest, importlib, sys
failed = tried = 0
for name in sys.argv[1:]:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    failed += result.failed
    tried += result.attempted
print(f"doctests: {tried} examples, {failed} failed")
sys.exit(1 if failed or not tried else 0)
"""


def _modules_with_examples() -> list[str]:
    out = []
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            if ">>>" in path.read_text():
                out.append(package if path.stem == "__init__" else f"{package}.{path.stem}")
    return out


def test_docstring_examples_run(tmp_path):
    modules = _modules_with_examples()
    assert {"nas", "nas.api", "nas.registry", "nas.scoring", "nas.design", "nas.strategies.grow"} <= set(modules)
    env = {**os.environ, "NAS_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, *modules], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
