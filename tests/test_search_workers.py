"""Several `nas search` processes on one study: journal files (one host) and PostgreSQL (many
hosts), workers killed with SIGKILL, resumed runs. Every check reads the study back: the number
of unique evaluations, no architecture scored twice, no trial number twice, killed evaluations
retried.

The PostgreSQL test needs a server: `.ci/run` starts Debian's on loopback and exports
ZCNAS_TEST_POSTGRES_URL. Under CI a missing server is a failure; elsewhere the test is skipped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

from nas.strategies import open_storage
from nas.strategies.ledger import CLAIM, RETRY_OF, WORKER, Ledger

#: ~0.2-0.4 s per architecture: wide enough to kill a worker in the middle of a trial.
SLOW_PROXY = "near(repetitions=2)"


def search(*argv: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "nas.cli",
        "search",
        "--space",
        "nats-tss",
        "--sampler",
        "random",
        "--batch-size",
        "16",
        "--quiet",
        *argv,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
    return out


def load(storage: str, study: str) -> optuna.Study:
    return optuna.load_study(study_name=study, storage=open_storage(storage))


def wait_for_running_evaluation(
    storage: str, study: str, procs, timeout: float = 180, spawned_only: bool = False
) -> optuna.trial.FrozenTrial:
    """A trial that is scoring an architecture right now (claimed, running); with
    ``spawned_only``, one run by a worker process that a command spawned."""
    commands = {str(p.pid) for p in procs}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), "the search ended before a worker could be killed"
        try:
            trials = load(storage, study).get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        except KeyError:  # the study is not created yet
            trials = []
        for t in trials:
            if t.user_attrs.get(CLAIM, {}).get("role") != "evaluate" or WORKER not in t.user_attrs:
                continue
            if not spawned_only or t.user_attrs[WORKER].split(":")[1] not in commands:
                return t
        time.sleep(0.05)
    raise AssertionError("no running evaluation appeared")


def kill_worker_of(trial) -> int:
    pid = int(trial.user_attrs[WORKER].split(":")[1])
    os.kill(pid, signal.SIGKILL)
    return pid


def check_study(storage: str, study: str, evaluations: int, killed: list[int] = ()) -> Ledger:
    """The invariants: exact budget, each architecture scored once, numbers unique, kills retried."""
    trials = load(storage, study).trials
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    ledger = Ledger(trials)
    done = ledger.evaluations()
    assert len(done) == evaluations == ledger.claimed
    assert len({e.key for e in done}) == evaluations and all(e.ok for e in done)
    scored = Counter(
        t.user_attrs[CLAIM]["arch"]
        for t in trials
        if t.state == TrialState.COMPLETE and t.user_attrs[CLAIM]["role"] == "evaluate"
    )
    assert set(scored.values()) == {1}  # no completed evaluation is duplicated
    states = Counter(t.state for t in trials)
    assert states[TrialState.RUNNING] == states[TrialState.WAITING] == 0
    for number in killed:
        assert trials[number].state == TrialState.FAIL
        retries = [t for t in trials if t.system_attrs.get(RETRY_OF) == number]
        assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
        assert retries[0].params == trials[number].params
    return ledger


def test_journal_two_workers_and_a_killed_worker(tmp_path):
    """Two worker processes on one journal file; one is killed with SIGKILL mid-trial; the other
    retries its evaluation and finishes the budget exactly."""
    storage, study = f"journal:{tmp_path / 'search.log'}", "journal-test"
    proc = search("--proxy", SLOW_PROXY, "--trials", "10", "--storage", storage, "--study", study, "--workers", "2")
    victim = wait_for_running_evaluation(storage, study, [proc], spawned_only=True)
    kill_worker_of(victim)
    out = finish(proc)
    assert "10 unique evaluations of 10" in out and "killed by signal 9" not in out
    ledger = check_study(storage, study, 10, killed=[victim.number])
    workers = {t.user_attrs[WORKER] for t in ledger.trials if WORKER in t.user_attrs}
    assert len(workers) == 2 and victim.user_attrs[WORKER] in workers


def test_a_killed_run_resumes(tmp_path):
    """SIGKILL of a whole single-process run mid-trial; rerunning the command continues it."""
    storage, study = f"journal:{tmp_path / 'resume.log'}", "resume-test"
    argv = ("--proxy", SLOW_PROXY, "--trials", "4", "--storage", storage, "--study", study)
    proc = search(*argv)
    victim = wait_for_running_evaluation(storage, study, [proc])
    proc.kill()
    proc.wait()
    assert load(storage, study).trials[victim.number].state == TrialState.RUNNING  # as it was left
    finish(search(*argv))
    check_study(storage, study, 4, killed=[victim.number])


def postgres_url() -> str:
    url = os.environ.get("ZCNAS_TEST_POSTGRES_URL")
    if not url:
        message = "no PostgreSQL server: set ZCNAS_TEST_POSTGRES_URL (.ci/run starts one on loopback)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return url


def test_postgres_workers_kill_and_resume():
    """The many-host storage: two workers on PostgreSQL, one killed mid-trial, then a resumed
    run that extends the study."""
    url = postgres_url()
    study = f"pg-{uuid.uuid4().hex[:8]}"
    argv = ("--proxy", SLOW_PROXY, "--storage", url, "--study", study, "--workers", "2")
    proc = search(*argv, "--trials", "8")
    victim = wait_for_running_evaluation(url, study, [proc], spawned_only=True)
    kill_worker_of(victim)
    out = finish(proc)
    assert "8 unique evaluations of 8" in out
    first = check_study(url, study, 8, killed=[victim.number])
    out = finish(search(*argv[:-2], "--trials", "12"))  # resume in one process: continue to 12
    assert "12 unique evaluations of 12" in out
    ledger = check_study(url, study, 12, killed=[victim.number])
    assert [e.key for e in ledger.evaluations()[:8]] == [e.key for e in first.evaluations()]
