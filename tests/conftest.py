"""Shared fixtures. Real data is read from ../shared/data beside the repository; under CI
(CI=true) missing data is a failure, never a silent skip."""

from __future__ import annotations

import bz2
import csv
import json
import os
import pickle
import subprocess
import sys
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


@pytest.fixture
def one_thread():
    """One torch thread for the test (small matmuls are slower, and noisier, with more)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def builtin_network_proxies() -> list[str]:
    """The built-in proxies that score one network from its own weights: not the plugins other
    tests register (a fresh process does not know them), not population proxies, and not those
    that bring their own weights (the supernet needs a trained checkpoint)."""
    from nas.proxies import list_proxies, proxy_class
    from nas.proxies.base import PROXIES

    return [
        p
        for p in list_proxies()
        if PROXIES.source(p).startswith("nas.") and not proxy_class(p).population and proxy_class(p).needs.network
    ]


def smallest_nb101_cell(shared_data: Path):
    """The NB101 architecture with the fewest parameters in the 1,000-cell subset (its fastest)."""
    from nas.searchspaces import get_space

    with open(require(shared_data / "nb101" / "nb101_subset_1000.csv"), newline="") as f:
        smallest = min(csv.DictReader(f), key=lambda r: int(r["params"]))
    return get_space("nb101").resolve((json.loads(smallest["adjacency"]), json.loads(smallest["ops"])))


NATS_FIXTURE_INDICES = (0, 11, 284)


def load_pbz2(path: Path):
    """A NATS-Bench bz2 pickle (meta or per-architecture file)."""
    with bz2.open(require(path), "rb") as fh:
        return pickle.load(fh)


def nats_fixture_records(directory: Path) -> list:
    """``(index, arch_str, dataset, seed, record)`` for every (hp, dataset, seed) of the three
    real NATS-Bench fixture files in ``directory``."""
    out = []
    for index in NATS_FIXTURE_INDICES:
        for results in load_pbz2(directory / f"{index:06d}.pickle.pbz2").values():
            for (dataset, seed), record in results["all_results"].items():
                out.append((index, results["arch_str"], dataset, seed, record))
    return out


@pytest.fixture(scope="module")
def one_torch_thread():
    """Single-image forwards gain nothing from threads, and on shared, busy cores torch's thread
    pool makes them up to 10x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def install_plugin(package: Path, target: Path) -> dict[str, str]:
    """``pip install`` a plugin into its own folder (not our environment); the env that sees it."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-build-isolation",
            "--no-deps",
            "--target",
            str(target),
            str(package),
        ],
        check=True,
        capture_output=True,
    )
    return {**os.environ, "PYTHONPATH": str(target)}
