"""The study's ledger: which trial scores which architecture, and the budget of unique ones.

Optuna repeats architectures in finite spaces, and several workers may propose the same one at
once. Each trial therefore writes a *claim* (user attribute ``zcnas.claim``) before it scores
anything: ``{"arch": key, "role": role, "position": p}``. Roles:

``evaluate``
    the first trial of this architecture within the budget: it scores it; counts one evaluation.
``duplicate``
    the architecture is already claimed by an evaluation: the trial gets its stored value (or is
    pruned while that evaluation is unfinished) and costs nothing.
``over_budget``
    a new architecture, but every evaluation of the budget is already claimed: pruned.
``invalid``
    the sampler proposed something the space rejects (an invalid NB101 spec): pruned.

The position of a trial is its number, except for the retry of a killed evaluation, which keeps
the claim (and so the position) of the trial it retries. A trial's role is a function of the
claims at lower positions only, and a trial decides only once every *running* trial with a lower
number has claimed. So every process computes the same roles, the budget is exact with any number
of workers, and no architecture is scored twice within a study.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    import optuna

CLAIM = "zcnas.claim"
WORKER = "zcnas.worker"
RETRY_OF = "zcnas.retry_of"
ROLES = ("evaluate", "duplicate", "over_budget", "invalid")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class Claim:
    arch: str | None
    role: str
    position: int

    def as_attr(self) -> dict[str, Any]:
        return {"arch": self.arch, "role": self.role, "position": self.position}


def claim_of(trial: FrozenTrial | optuna.Trial) -> Claim | None:
    """The claim a trial wrote, or None."""
    raw = trial.user_attrs.get(CLAIM)
    if not isinstance(raw, dict) or raw.get("role") not in ROLES:
        return None
    return Claim(raw.get("arch"), raw["role"], int(raw.get("position", trial.number)))


@dataclass(frozen=True)
class Evaluation:
    """One unique architecture the search scored (its first finished attempt)."""

    position: int
    number: int  # the trial that scored it
    key: str
    arch: str  # canonical string
    index: int | None
    params: int | None
    values: tuple[float, ...] | None  # None: the score failed
    scores: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.values is not None


class Ledger:
    """A snapshot of a study's claims (read once; cheap to query)."""

    def __init__(self, trials: Sequence[FrozenTrial]) -> None:
        self.trials = list(trials)
        self.claims: dict[int, Claim] = {}
        for t in self.trials:
            c = claim_of(t)
            if c is not None:
                self.claims[t.number] = c
        self._by_number = {t.number: t for t in self.trials}

    @classmethod
    def read(cls, study: optuna.Study) -> Ledger:
        return cls(study.get_trials(deepcopy=False))

    # -- deciding ----------------------------------------------------------------------------------
    def unclaimed_running_below(self, number: int) -> list[FrozenTrial]:
        """Running trials with a lower number that have not claimed yet (a trial waits for them)."""
        return [
            t
            for t in self.trials
            if t.number < number and t.state == TrialState.RUNNING and t.number not in self.claims
        ]

    def decide(self, key: str, position: int, budget: int) -> str:
        """The role of a new trial proposing ``key`` at ``position`` under ``budget``."""
        below = [c for c in self.claims.values() if c.role == "evaluate" and c.position < position]
        if any(c.arch == key for c in below):
            return "duplicate"
        if len({c.position for c in below}) >= budget:
            return "over_budget"
        return "evaluate"

    # -- counting ----------------------------------------------------------------------------------
    def _attempts(self) -> dict[int, list[FrozenTrial]]:
        """Evaluation position -> its attempts (the trial and any retries), by trial number."""
        out: dict[int, list[FrozenTrial]] = {}
        for number, c in sorted(self.claims.items()):
            if c.role == "evaluate":
                out.setdefault(c.position, []).append(self._by_number[number])
        return out

    @property
    def claimed(self) -> int:
        """Evaluations claimed so far (finished, running or queued for a retry)."""
        return len(self._attempts())

    @property
    def finished(self) -> int:
        """Evaluations finished (scored, or failed to score)."""
        return sum(any(t.state in FINISHED for t in ts) for ts in self._attempts().values())

    def waiting_retries(self) -> list[FrozenTrial]:
        """Queued retries of evaluations whose worker died."""
        return [t for t in self.trials if t.state == TrialState.WAITING and t.number in self.claims]

    def orphans(self) -> list[FrozenTrial]:
        """Claimed evaluations none of whose attempts is alive or finished (all failed, e.g. after
        Ctrl-C): the latest attempt of each, to be retried."""
        return [ts[-1] for ts in self._attempts().values() if all(t.state == TrialState.FAIL for t in ts)]

    def result_of(self, key: str) -> FrozenTrial | None:
        """The finished evaluation of an architecture, if there is one."""
        for number, c in sorted(self.claims.items()):
            if c.role == "evaluate" and c.arch == key and self._by_number[number].state in FINISHED:
                return self._by_number[number]
        return None

    def repeats(self) -> int:
        """Trials that were served from the evaluations (repeated architectures)."""
        return sum(c.role == "duplicate" for c in self.claims.values())

    def evaluations(self) -> list[Evaluation]:
        """Every finished unique evaluation, in the order the budget was spent."""
        out = []
        for position, attempts in sorted(self._attempts().items()):
            done = next((t for t in attempts if t.state in FINISHED), None)
            if done is None:
                continue
            out.append(evaluation_of(done, position))
        return out


def evaluation_of(trial: FrozenTrial, position: int) -> Evaluation:
    attrs = trial.user_attrs
    values = tuple(trial.values) if trial.state == TrialState.COMPLETE and trial.values else None
    claim = claim_of(trial)
    return Evaluation(
        position=position,
        number=trial.number,
        key=str(claim.arch if claim else ""),
        arch=str(attrs.get("arch", claim.arch if claim else "")),
        index=attrs.get("index"),
        params=attrs.get("params"),
        values=values,
        scores=dict(attrs.get("scores", {})),
        reason=str(attrs.get("failed", "")),
    )
