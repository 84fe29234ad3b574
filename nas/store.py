"""The score store: (space, architecture key, protocol digest) -> score, shared by every command.

It uses the URL style of Optuna's storages (SQLAlchemy): ``sqlite:///path/scores.db`` by default
under ``$NAS_HOME``, or any RDB URL (``postgresql://...``) for many hosts. Writes are single-row
upserts in their own transactions, so several worker processes can fill one store; SQLite runs in
WAL mode with a busy timeout for that. A stopped run loses nothing already written, and a rerun
scores only what is missing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any, NamedTuple, TypeAlias

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from nas.errors import NasError
from nas.machine import machine_digest
from nas.paths import nas_home
from nas.records import Score

_META = sa.MetaData()
SCORES = sa.Table(
    "scores",
    _META,
    sa.Column("space", sa.String(32), primary_key=True),
    sa.Column("arch", sa.String(512), primary_key=True),
    sa.Column("protocol", sa.String(32), primary_key=True),
    sa.Column("proxy", sa.String(128), nullable=False),
    sa.Column("score", sa.Float),
    sa.Column("seconds", sa.Float),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("created", sa.Float),
    # the machine that computed it (nas.machine.machine_digest); NULL for scores stored before 0.2
    sa.Column("machine", sa.String(16)),
)
MACHINES = sa.Table(
    "machines",
    _META,
    sa.Column("digest", sa.String(16), primary_key=True),
    sa.Column("info", sa.Text, nullable=False),
)
PROTOCOLS = sa.Table(
    "protocols",
    _META,
    sa.Column("digest", sa.String(32), primary_key=True),
    sa.Column("protocol", sa.Text, nullable=False),
)


def default_store_url() -> str:
    return f"sqlite:///{nas_home() / 'scores.db'}"


#: Stored scores are the one score record, :class:`nas.records.Score` (names kept for callers).
StoredScore: TypeAlias = Score
ScoreRow: TypeAlias = Score


def _absolute(url: str) -> str:
    """A SQLite URL with an absolute path (``~`` expanded), so that every process, and every
    worker of a cluster, opens the same file whatever its working directory."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix + ":memory:":
        return url
    from pathlib import Path

    return prefix + str(Path(url[len(prefix) :]).expanduser().resolve())


class GroupCount(NamedTuple):
    """One group of :meth:`ScoreStore.group_counts`."""

    space: str
    proxy: str
    protocol: str
    machine: str  # "" where not recorded
    scores: int
    failed: int
    seconds: float  # the sum of the stored seconds (one core each; a shared pass's split among its proxies)
    timed: int  # how many scores record their seconds


def mean_seconds(groups: Iterable[GroupCount]) -> float | None:
    """The mean stored seconds of the scores in ``groups`` that record them (None if none do)."""
    groups = list(groups)
    timed = sum(g.timed for g in groups)
    return sum(g.seconds for g in groups) / timed if timed else None


class ScoreStore:
    """A store of proxy scores at one URL (see module docstring)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = _absolute(url or default_store_url())
        self._machines_written: set[str | None] = set()
        if self.url.startswith("sqlite:///"):
            from pathlib import Path

            Path(self.url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        try:
            kwargs: dict[str, Any] = {}
            if self.url.startswith("sqlite"):
                kwargs["connect_args"] = {"timeout": 60}
            self.engine = sa.create_engine(self.url, **kwargs)
            if self.url.startswith("sqlite"):
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            _META.create_all(self.engine)
            _add_machine_column(self.engine)
        except (sa.exc.SQLAlchemyError, ImportError, ValueError) as err:
            hint = " (pip install 'zcnas[postgres]')" if isinstance(err, ImportError) and "postgres" in self.url else ""
            raise NasError(f"cannot open score store {self.url!r}: {err}{hint}") from None

    def put(
        self,
        space: str,
        arch: str,
        digest: str,
        proxy: str,
        result: Any,
        protocol: dict[str, Any] | None = None,
        machine: dict[str, Any] | None = None,
    ) -> None:
        """Insert or replace one score (``result``: a Score), with the machine that computed it
        (``machine``: :func:`nas.machine.machine_info`)."""
        machine_key = machine_digest(machine) if machine else None
        row = {
            "space": space,
            "arch": arch,
            "protocol": digest,
            "proxy": proxy,
            "score": None if result.score != result.score else float(result.score),
            "seconds": float(result.seconds),
            "status": result.status,
            "reason": result.reason,
            "created": time.time(),
            "machine": machine_key,
        }
        with self.engine.begin() as conn:
            if machine and machine_key not in self._machines_written:  # once per store, not per score
                _upsert(
                    conn, MACHINES, {"digest": machine_key, "info": json.dumps(machine, sort_keys=True)}, ["digest"]
                )
                self._machines_written.add(machine_key)
            if protocol is not None:
                _upsert(
                    conn, PROTOCOLS, {"digest": digest, "protocol": json.dumps(protocol, sort_keys=True)}, ["digest"]
                )
            _upsert(conn, SCORES, row, ["space", "arch", "protocol"])

    def get_many(self, space: str, digest: str, archs: Iterable[str] | None = None) -> dict[str, StoredScore]:
        """Stored scores of one protocol (all, or those of ``archs``), keyed by arch key."""
        query = sa.select(
            SCORES.c.arch, SCORES.c.score, SCORES.c.seconds, SCORES.c.status, SCORES.c.reason, SCORES.c.machine
        ).where(SCORES.c.space == space, SCORES.c.protocol == digest)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = {
            r.arch: Score(
                float("nan") if r.score is None else r.score,
                r.seconds,
                r.status,
                r.reason or "",
                space=space,
                arch=r.arch,
                protocol=digest,
                machine=r.machine or "",
            )
            for r in rows
        }
        if archs is not None:
            wanted = set(archs)
            out = {k: v for k, v in out.items() if k in wanted}
        return out

    def get(self, space: str, arch: str, digest: str) -> StoredScore | None:
        return self.get_many(space, digest, [arch]).get(arch)

    def missing(self, space: str, archs: Iterable[str], digest: str) -> list[str]:
        """The architectures (keys) of ``archs`` with no stored score for this protocol."""
        have = self.get_many(space, digest)
        return [a for a in archs if a not in have]

    def protocol(self, digest: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            text = conn.execute(sa.select(PROTOCOLS.c.protocol).where(PROTOCOLS.c.digest == digest)).scalar()
        return json.loads(text) if text else None

    def protocols(self) -> dict[str, dict[str, Any]]:
        """Every recorded protocol, by digest."""
        with self.engine.connect() as conn:
            return {r.digest: json.loads(r.protocol) for r in conn.execute(sa.select(PROTOCOLS)).all()}

    def rows(self, space: str | None = None, digests: Iterable[str] | None = None) -> list[ScoreRow]:
        """Stored scores (of one space, of some protocols), ordered by space, protocol and arch."""
        query = sa.select(
            SCORES.c.space,
            SCORES.c.arch,
            SCORES.c.protocol,
            SCORES.c.proxy,
            SCORES.c.score,
            SCORES.c.seconds,
            SCORES.c.status,
            SCORES.c.reason,
            SCORES.c.machine,
        )
        if space is not None:
            query = query.where(SCORES.c.space == space)
        if digests is not None:
            query = query.where(SCORES.c.protocol.in_(sorted(set(digests))))
        query = query.order_by(SCORES.c.space, SCORES.c.protocol, SCORES.c.arch)
        with self.engine.connect() as conn:
            return [
                Score(
                    float("nan") if r.score is None else r.score,
                    r.seconds,
                    r.status,
                    r.reason or "",
                    proxy=r.proxy,
                    space=r.space,
                    arch=r.arch,
                    protocol=r.protocol,
                    machine=r.machine or "",
                )
                for r in conn.execute(query).all()
            ]

    def group_counts(self, space: str | None = None) -> list[GroupCount]:
        """Scores, failures and stored seconds per (space, proxy, protocol, machine), counted by
        the database (a store of a million scores is summarised without reading them)."""
        failed = sa.func.sum(sa.case((SCORES.c.status != "ok", 1), else_=0))
        keys = (SCORES.c.space, SCORES.c.proxy, SCORES.c.protocol, SCORES.c.machine)
        query = sa.select(
            *keys, sa.func.count(), failed, sa.func.sum(SCORES.c.seconds), sa.func.count(SCORES.c.seconds)
        )
        query = query.group_by(*keys)
        if space is not None:
            query = query.where(SCORES.c.space == space)
        with self.engine.connect() as conn:
            return [
                GroupCount(a, b, c, d or "", int(n), int(f or 0), float(secs or 0.0), int(timed))
                for a, b, c, d, n, f, secs, timed in conn.execute(query).all()
            ]

    def machine_counts(self) -> dict[str, int]:
        """How many stored scores each machine digest computed ("": not recorded)."""
        query = sa.select(SCORES.c.machine, sa.func.count()).group_by(SCORES.c.machine)
        with self.engine.connect() as conn:
            return {machine or "": int(n) for machine, n in conn.execute(query).all()}

    def machines(self) -> dict[str, dict[str, Any]]:
        """Every recorded machine (:func:`nas.machine.machine_info`), by digest."""
        with self.engine.connect() as conn:
            return {r.digest: json.loads(r.info) for r in conn.execute(sa.select(MACHINES)).all()}

    def delete(self, space: str, digest: str, archs: Iterable[str]) -> None:
        """Remove the scores of ``archs`` under one protocol (e.g. imported ones that did not
        reproduce here), so the next run recomputes them."""
        archs = list(archs)
        with self.engine.begin() as conn:
            for i in range(0, len(archs), 500):  # bounded IN lists
                conn.execute(
                    SCORES.delete().where(
                        SCORES.c.space == space, SCORES.c.protocol == digest, SCORES.c.arch.in_(archs[i : i + 500])
                    )
                )

    def add_new(
        self,
        rows: Iterable[ScoreRow],
        protocols: dict[str, dict[str, Any]],
        machines: dict[str, dict[str, Any]] | None = None,
    ) -> list[ScoreRow]:
        """Insert the rows whose key the store lacks, in one transaction; never replace a stored
        score. ``machines``: the records the rows' machine digests name. Returns the rows inserted."""
        rows = list(rows)
        have = {(r.space, r.protocol, r.arch) for r in self.rows(digests={r.protocol for r in rows})} if rows else set()
        new = [r for r in rows if (r.space, r.protocol, r.arch) not in have]
        now = time.time()
        with self.engine.begin() as conn:
            for digest, protocol in protocols.items():
                _upsert(
                    conn, PROTOCOLS, {"digest": digest, "protocol": json.dumps(protocol, sort_keys=True)}, ["digest"]
                )
            for digest, info in (machines or {}).items():
                _upsert(conn, MACHINES, {"digest": digest, "info": json.dumps(info, sort_keys=True)}, ["digest"])
            if new:
                conn.execute(
                    _insert_or_ignore(conn, SCORES),
                    [
                        {
                            "space": r.space,
                            "arch": r.arch,
                            "protocol": r.protocol,
                            "proxy": r.proxy,
                            "score": None if r.score != r.score else float(r.score),
                            "seconds": r.seconds,
                            "status": r.status,
                            "reason": r.reason,
                            "created": now,
                            "machine": r.machine or None,
                        }
                        for r in new
                    ],
                )
        return new


def _add_machine_column(engine: sa.engine.Engine) -> None:
    """Stores made before 0.2 have no ``machine`` column: add it (NULL: machine unrecorded)."""
    columns = {c["name"] for c in sa.inspect(engine).get_columns("scores")}
    if "machine" not in columns:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE scores ADD COLUMN machine VARCHAR(16)"))


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def _insert_or_ignore(conn, table: sa.Table):
    """An INSERT that skips rows whose key another process stored meanwhile."""
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        return (sqlite if dialect == "sqlite" else postgresql).insert(table).on_conflict_do_nothing()
    return table.insert()


def _upsert(conn, table: sa.Table, row: dict[str, Any], keys: list[str]) -> None:
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        module = sqlite if dialect == "sqlite" else postgresql
        stmt = module.insert(table).values(**row)
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_={k: v for k, v in row.items() if k not in keys})
        conn.execute(stmt)
        return
    where = sa.and_(*(table.c[k] == row[k] for k in keys))  # portable fallback
    conn.execute(table.delete().where(where))
    conn.execute(table.insert().values(**row))
