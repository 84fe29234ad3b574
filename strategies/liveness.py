"""Workers that die: find their running trials, fail them, and queue their evaluations again.

Every trial is tagged with its worker (``host:pid:start-time``) before the sampler runs. A running
trial whose worker is a dead process on this host is failed at once; on another host, RDB
storages notice the stopped heartbeat instead (Optuna's ``fail_stale_trials``). Either way
:func:`retry_trial` queues a retry of a failed evaluation, with the same parameters and the same
claim, so the budget is neither lost nor spent twice. Nothing else is retried: a trial that had
not claimed an architecture yet had spent nothing.
"""

from __future__ import annotations

import datetime
import os
import socket
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from nas.strategies.ledger import CLAIM, RETRY_OF, WORKER, Ledger, claim_of

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study

#: A running trial with no worker tag this old is taken for dead (its worker died between
#: creating the trial and tagging it: a window of one storage call).
ORPHAN_SECONDS = 600.0


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot, to tell a reused pid apart."""
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else "?"


def worker_id(pid: int | None = None) -> str:
    """This process as ``host:pid:start-time``."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def worker_alive(worker: str) -> bool | None:
    """Whether a tagged worker still runs; None when it runs on another host (cannot tell)."""
    parts = worker.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    host, pid_text, started = parts
    if host != socket.gethostname():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    fields = _proc_stat(pid)
    if fields is None:
        return True  # no /proc: the pid exists, that is all we can tell
    if fields[0] in ("Z", "X"):  # killed, not yet reaped by its parent
        return False
    return started == "?" or len(fields) <= 19 or fields[19] == started


class TaggingSampler(BaseSampler):
    """Wraps a sampler and tags each trial with its worker before the sampler runs."""

    def __init__(self, sampler: BaseSampler) -> None:
        self.sampler = sampler
        self.worker = worker_id()

    def __str__(self) -> str:
        return str(self.sampler)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.sampler.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.sampler.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self.sampler.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        study._storage.set_trial_user_attr(trial._trial_id, WORKER, self.worker)
        self.sampler.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        self.sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()


def retry_trial(study: Study, trial: FrozenTrial) -> None:
    """Queue a retry of a failed trial if it had claimed an evaluation (Optuna's
    ``heartbeat_stale_trial_callback`` signature)."""
    claim = claim_of(trial)
    if claim is None or claim.role != "evaluate":
        return
    user_attrs = {k: v for k, v in trial.user_attrs.items() if k in (CLAIM, "arch", "index", "params")}
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=user_attrs,
            system_attrs={RETRY_OF: trial.number},
        )
    )


def _fail(study: Study, trial: FrozenTrial) -> bool:
    try:
        return study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False  # another worker got there first


def fail_dead_trials(study: Study, trials: Sequence[FrozenTrial] | None = None) -> int:
    """Fail the running trials of dead workers and queue their evaluations again; returns how
    many. Safe to call from every worker at once: only one fails (and retries) each trial."""
    if trials is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    now = datetime.datetime.now()
    mine = worker_id()
    count = 0
    for trial in trials:
        if trial.state != TrialState.RUNNING:
            continue
        worker = trial.user_attrs.get(WORKER)
        if worker == mine:
            continue
        if worker is None:
            started = trial.datetime_start
            dead = started is not None and (now - started).total_seconds() > ORPHAN_SECONDS
        else:
            dead = worker_alive(str(worker)) is False
        if dead and _fail(study, trial):
            retry_trial(study, study._storage.get_trial(trial._trial_id))
            count += 1
    with warnings.catch_warnings():  # RDB storages: trials whose heartbeat stopped
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return count


def recover(study: Study) -> int:
    """Before and after a run: fail dead workers' trials and retry every claimed evaluation
    none of whose attempts is alive (e.g. trials failed by Ctrl-C). Returns retries queued."""
    count = fail_dead_trials(study)
    for trial in Ledger.read(study).orphans():
        retry_trial(study, trial)
        count += 1
    return count
