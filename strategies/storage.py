"""Where a study lives: one URL names an Optuna storage.

- nothing: SQLite at ``$NAS_HOME/studies.db`` (one process, resumable);
- ``journal:PATH`` or a path ending in ``.log`` / ``.journal``: Optuna's journal file storage,
  for several processes on one host (file locks, no server);
- any SQLAlchemy URL (``sqlite:///...``, ``postgresql://user@host/db``, ``mysql+pymysql://...``):
  an RDB storage with heartbeats, for many hosts.

RDB storages record a heartbeat of every running trial; a trial whose heartbeat stops (its
worker was killed) is failed by the next worker and, if it was scoring an architecture, queued
again by :func:`nas.strategies.liveness.retry_trial`. Journal files have no heartbeat; there
the workers check each other's process ids (see :mod:`nas.strategies.liveness`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from nas.errors import NasError
from nas.paths import nas_home

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

#: Seconds between heartbeats of a running trial in RDB storages (stale after twice that).
DEFAULT_HEARTBEAT = 10
_JOURNAL_SUFFIXES = (".log", ".journal")


def default_storage_url() -> str:
    """SQLite under ``$NAS_HOME`` (the folder is created on first use)."""
    return f"sqlite:///{nas_home() / 'studies.db'}"


def journal_path(url: str) -> Path | None:
    """The journal file a URL names, or None for an RDB URL."""
    text = url.strip()
    if text.startswith("journal:"):
        text = text[len("journal:") :]
        text = text.removeprefix("//")
        return Path(text).expanduser().resolve()
    if "://" not in text and text.endswith(_JOURNAL_SUFFIXES):
        return Path(text).expanduser().resolve()
    return None


def normalize_url(url: str | None) -> str:
    """The canonical form of a storage URL: absolute journal paths as ``journal:PATH``,
    bare ``*.db`` / ``*.sqlite`` paths as ``sqlite:///ABSPATH``."""
    if not url:
        return default_storage_url()
    path = journal_path(url)
    if path is not None:
        return f"journal:{path}"
    text = url.strip()
    if "://" not in text:
        if text.endswith((".db", ".sqlite", ".sqlite3")):
            return f"sqlite:///{Path(text).expanduser().resolve()}"
        raise NasError(
            f"cannot tell what storage {url!r} is; use sqlite:///FILE.db, journal:FILE.log "
            f"or an RDB URL such as postgresql://USER@HOST/DB"
        )
    return text


def open_storage(url: str | None = None, heartbeat: int = DEFAULT_HEARTBEAT) -> BaseStorage:
    """An Optuna storage for a URL (see the module docstring)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from nas.strategies.liveness import retry_trial

    url = normalize_url(url)
    path = journal_path(url)
    try:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        engine_kwargs = {}
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///") :]).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine_kwargs = {"connect_args": {"timeout": 60}}
        elif url.startswith("postgresql"):
            engine_kwargs = {"pool_pre_ping": True}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
                heartbeat_stale_trial_callback=retry_trial,
            )
        if url.startswith("sqlite"):
            import sqlalchemy as sa

            sa.event.listen(storage.engine, "connect", _sqlite_pragmas)
            storage.engine.dispose()  # connections from now on get the pragmas
        return storage
    except NasError:
        raise
    except Exception as err:  # noqa: BLE001  (driver missing, server down, bad URL: one line for the user)
        raise NasError(
            f"cannot open study storage {url!r}: {type(err).__name__}: "
            f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        ) from None


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL: readers (workers, the dashboard) never block the writer, and a commit needs no
    fsync of the whole file; a killed process loses nothing committed."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def dashboard_command(url: str | None) -> str:
    """The command that opens optuna-dashboard on this storage."""
    url = normalize_url(url)
    path = journal_path(url)
    return f"optuna-dashboard {path if path is not None else url}"
