"""Scoring on a Dask cluster (nas.cluster), with real scheduler and worker processes on loopback."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

import nas
from nas.errors import NasError
from nas.store import ScoreStore

pytest.importorskip("distributed")

CELLS = 24  # naswot: slow enough per cell to kill something mid-run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scheduler(tmp_path):
    """A real `dask scheduler` and two `dask worker` processes (one thread each) on loopback."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    bin_dir = os.path.dirname(sys.executable)
    procs = [
        subprocess.Popen(
            [os.path.join(bin_dir, "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--no-dashboard"],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    from distributed import Client

    deadline = time.monotonic() + 60
    while True:
        try:
            Client(address, timeout=2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    workers = [
        subprocess.Popen(
            [os.path.join(bin_dir, "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1",
             "--no-dashboard", "--host", "127.0.0.1"],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]  # fmt: skip
    with Client(address, timeout=10) as client:
        client.wait_for_workers(2, timeout=60)
    yield address, workers
    for p in workers + procs:
        p.kill()
        p.wait()


def rows(store_url: str) -> list[tuple]:
    import sqlalchemy as sa

    store = ScoreStore(store_url)
    with store.engine.connect() as c:
        return list(c.execute(sa.text("SELECT arch, protocol FROM scores")))


def reported(caplog) -> dict[str, int]:
    """The numbers of the last cluster report line logged."""
    line = [r.getMessage() for r in caplog.records if r.getMessage().startswith("cluster: scored")][-1]
    words = line.replace(";", "").split()
    return {"scored": int(words[2]), "retried": int(words[words.index("task(s)") - 1])}


def test_a_real_scheduler_scores_each_pair_once_and_equals_one_process(scheduler, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="nas")
    address, _ = scheduler
    one = f"sqlite:///{tmp_path / 'one.db'}"
    many = f"sqlite:///{tmp_path / 'many.db'}"
    cells = 2 * CELLS
    alone = nas.score("nats-tss", "params,flops,synflow", sample=cells, seed=0, store=one)
    table = nas.score("nats-tss", "params,flops,synflow", sample=cells, seed=0, store=many, cluster=address)
    assert reported(caplog)["scored"] == cells  # every architecture computed once across the cluster
    stored = rows(many)
    assert len(stored) == 3 * cells and len(set(stored)) == len(stored)
    for label in alone.labels:
        assert {k: s.score for k, s in table[label].items()} == {k: s.score for k, s in alone[label].items()}


def test_a_killed_worker_loses_and_duplicates_nothing(scheduler, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="nas")
    address, workers = scheduler
    url = f"sqlite:///{tmp_path / 'killed.db'}"

    at_kill = []

    def kill_one():  # once the job is under way
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(rows(url)) < 5:
            time.sleep(0.1)
        workers[0].send_signal(signal.SIGKILL)
        at_kill.append(len(rows(url)))

    ScoreStore(url)  # the table exists before the watcher reads it
    killer = threading.Thread(target=kill_one)
    killer.start()
    table = nas.score("nats-tss", "naswot", sample=CELLS, seed=0, store=url, cluster=address)
    killer.join()
    assert workers[0].poll() is not None and at_kill[0] < CELLS  # killed while the job ran
    stored = rows(url)
    assert len(stored) == CELLS and len(set(stored)) == CELLS
    assert len(table["naswot"]) == CELLS
    report = reported(caplog)
    assert report["scored"] <= CELLS  # a rerun task skips what its first run stored


def test_a_killed_client_reruns_only_what_is_missing(scheduler, tmp_path):
    address, _ = scheduler
    url = f"sqlite:///{tmp_path / 'client.db'}"
    cmd = [
        sys.executable, "-m", "nas.cli", "score", "--space", "nats-tss", "--proxy", "naswot", "--sample",
        str(CELLS), "--cluster", address, "--store", url, "--quiet", "--out", str(tmp_path / "o.csv"),
    ]  # fmt: skip
    client = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(rows(url)) < 6 and time.monotonic() < deadline:
        time.sleep(0.2)
    client.send_signal(signal.SIGKILL)
    client.wait()
    before, still = len(rows(url)), time.monotonic()  # tasks already running on the workers still land
    while time.monotonic() - still < 6 and time.monotonic() < deadline:
        time.sleep(0.3)
        if len(rows(url)) != before:
            before, still = len(rows(url)), time.monotonic()
    assert 0 < before < CELLS
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(line for line in done.stderr.splitlines() if line.startswith("cluster: scored"))
    assert int(line.split()[2]) == CELLS - before
    assert len(rows(url)) == CELLS and len(set(rows(url))) == CELLS


def test_local_cluster_and_one_line_errors(tmp_path):
    url = f"sqlite:///{tmp_path / 'local.db'}"
    table = nas.score("nats-tss", "params", sample=12, seed=0, store=url, cluster="local", workers=2)
    assert len(table["params"]) == 12 and len(rows(url)) == 12
    port = free_port()
    start = time.monotonic()
    with pytest.raises(NasError, match="no Dask scheduler answers"):
        nas.score(
            "nats-tss", "params", sample=4, store=f"sqlite:///{tmp_path / 'x.db'}", cluster=f"tcp://127.0.0.1:{port}"
        )
    assert time.monotonic() - start < 60
    with pytest.raises(NasError, match="cluster must be"):
        nas.score("nats-tss", "params", sample=4, cluster="my-cluster")


def test_workers_that_cannot_open_the_store_are_one_line(tmp_path):
    from distributed import Client, LocalCluster

    from nas.cluster import check_workers

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        with Client(local) as client:
            assert check_workers(client, f"sqlite:///{tmp_path / 'ok.db'}") == 1
            with pytest.raises(NasError, match="cannot open the score store"):
                check_workers(client, "postgresql+psycopg://nobody@127.0.0.1:1/none")
