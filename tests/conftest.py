"""Shared fixtures. Real data is read from ../shared/data beside the repository; under CI
(CI=true) missing data is a failure, never a silent skip."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def require(path: Path) -> Path:
    """Return ``path`` if it exists; fail under CI, skip elsewhere."""
    if not path.exists():
        message = f"shared data missing: {path}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require(SHARED_DATA)


@pytest.fixture(autouse=True)
def isolated_nas_home(tmp_path, monkeypatch):
    """Every test gets its own $NAS_HOME so none reads or writes the user's tables."""
    home = tmp_path / "nas_home"
    monkeypatch.setenv("NAS_HOME", str(home))
    return home
