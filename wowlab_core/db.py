"""Database engines and sessions: SQLite by default, PostgreSQL by URL.

The default database is a SQLite file under the platformdirs data directory; set
``WOWLAB_DATABASE_URL`` (``postgresql://user@host/db`` or any SQLAlchemy URL) to use
PostgreSQL. Writers that must be atomic on SQLite (leasing) use :func:`write_session`,
which opens the transaction with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import os
import select
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import platformdirs
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from wowlab_core import models as _models  # noqa: F401  (registers the tables)

APP_NAME = "wowlab"
_IMMEDIATE = "wowlab_immediate"


def data_dir() -> Path:
    """Where wowlab keeps its database and node settings (created on demand)."""
    path = Path(os.environ.get("WOWLAB_DATA_DIR") or platformdirs.user_data_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_database_url() -> str:
    """``WOWLAB_DATABASE_URL``, else a SQLite file in :func:`data_dir`."""
    url = os.environ.get("WOWLAB_DATABASE_URL")
    if url:
        return normalize_url(url)
    return f"sqlite:///{data_dir() / 'wowlab.db'}"


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` / ``postgres://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_postgres(engine: Engine) -> bool:
    """Whether the engine talks to PostgreSQL."""
    return engine.dialect.name == "postgresql"


def session_is_postgres(session: Session) -> bool:
    """Whether the session's connection talks to PostgreSQL (``session.get_bind()`` is typed
    as an engine or a connection; both have a dialect)."""
    return session.get_bind().dialect.name == "postgresql"


def rowcount(result: object) -> int:
    """The rows an ``UPDATE`` or ``DELETE`` matched. SQLAlchemy's ``Result`` type does not
    declare ``rowcount`` (only the cursor result of such statements has it)."""
    return int(getattr(result, "rowcount", 0) or 0)


def create_db_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (default: :func:`default_database_url`)."""
    url = normalize_url(url) if url else default_database_url()
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        make_sqlite_file_private(engine.url.database)
        _configure_sqlite(engine)
    else:
        kwargs.setdefault("pool_size", 20)
        kwargs.setdefault("max_overflow", 40)
        quick = "pool_pre_ping" not in kwargs and sa.engine.make_url(url).get_driver_name() == (
            "psycopg"
        )
        kwargs.setdefault("pool_pre_ping", not quick)
        engine = sa.create_engine(url, **kwargs)
        if quick:
            event.listen(engine, "checkout", _check_alive)
    return engine


def _check_alive(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout (psycopg): hand out a connection only if the server is still there.

    SQLAlchemy's ``pool_pre_ping`` asks the server (a round trip for every checkout, a
    tenth of a small lease's time). A server that went away (restart, crash,
    ``pg_terminate_backend``, an idle timeout, a proxy closing) has said so on the socket
    (a FATAL message, or end of file): an idle connection whose socket has nothing to read
    is alive as far as any ping could tell, without the round trip. When there is
    something to read, the server is asked as the pre-ping would. Raising
    ``DisconnectionError`` makes the pool drop the connection and take another (the
    pessimistic disconnect handling of SQLAlchemy's pooling documentation).
    """
    from psycopg import pq

    pgconn = dbapi_conn.pgconn
    if dbapi_conn.closed or pgconn.status != pq.ConnStatus.OK:
        raise sa.exc.DisconnectionError("the connection is closed")
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
        if not poller.poll(0):
            return
    elif not select.select([pgconn.socket], [], [], 0)[0]:  # Windows
        return
    try:
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        try:
            dbapi_conn.execute("SELECT 1")
        finally:
            dbapi_conn.autocommit = autocommit
    except Exception as exc:
        raise sa.exc.DisconnectionError(str(exc)) from exc


def make_sqlite_file_private(database: str | None) -> None:
    """Create the SQLite file ``database`` with mode 0600 (it holds password hashes and
    token hashes), and take group and other access away from an existing one.

    SQLite gives its ``-wal`` and ``-shm`` files the mode of the database file, so they are
    private too. In-memory databases and ``file:`` URIs are left alone.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        try:
            if name.stat().st_mode & 0o077:
                os.chmod(name, 0o600)
        except FileNotFoundError:
            pass
        except PermissionError:  # not ours: the owner decided
            pass


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling cannot do BEGIN IMMEDIATE; take it over
    # (the recipe in SQLAlchemy's SQLite dialect documentation).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_all(engine: Engine) -> None:
    """Create every table directly (throwaway databases; real ones use :func:`upgrade`)."""
    SQLModel.metadata.create_all(engine)


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose transaction takes SQLite's write lock at its start.

    Read-then-write sequences (leasing, completing) are then atomic on SQLite; on
    PostgreSQL this is an ordinary session and the queries lock rows themselves.
    """
    bind = engine.execution_options(**{_IMMEDIATE: True}) if not is_postgres(engine) else engine
    with Session(bind, expire_on_commit=False) as session:
        yield session


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """An ordinary session (objects stay readable after commit)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


__all__ = [
    "create_all",
    "create_db_engine",
    "data_dir",
    "default_database_url",
    "is_postgres",
    "make_sqlite_file_private",
    "normalize_url",
    "read_session",
    "rowcount",
    "session_is_postgres",
    "write_session",
]
