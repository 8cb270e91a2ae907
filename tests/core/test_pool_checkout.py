"""The PostgreSQL pool hands out only live connections, without a round trip per checkout
(``wowlab_core.db._check_alive``): a server that restarted, crashed or ended a session has
said so on the socket, and the pool then replaces the connection before anyone uses it.

Each test runs its own server (it is stopped and restarted) and counts what the client
sends: an idle, healthy connection is handed out with no statement at all."""

from __future__ import annotations

import select
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import Engine

from wowlab_core.db import create_db_engine
from wowlab_core.testing.private_postgres import PrivatePostgres


@pytest.fixture(scope="module")
def server() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    pg.start()
    try:
        yield pg
    finally:
        pg.close()


@pytest.fixture()
def engine(server: PrivatePostgres) -> Iterator[Engine]:
    engine = create_db_engine(server.url, pool_size=2, max_overflow=0)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture()
def asked(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the pool asked the server at checkout (its liveness check, or a pre-ping)."""
    seen: list[str] = []
    real = psycopg.Connection.execute

    def execute(self: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(query))
        return real(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", execute)

    def ping(_conn: Any) -> bool:
        seen.append("pre-ping")
        return True

    monkeypatch.setattr(engine.dialect, "do_ping", ping)
    return seen


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def test_a_healthy_connection_is_handed_out_without_asking_the_server(
    engine: Engine, asked: list[str]
) -> None:
    pid = _backend_pid(engine)
    for _ in range(5):
        assert _backend_pid(engine) == pid  # the same connection, reused
    assert asked == []


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_restarted_server_costs_no_request(
    server: PrivatePostgres, engine: Engine, asked: list[str], mode: str
) -> None:
    before = _backend_pid(engine)
    server.stop(mode)
    server.start()
    # The idle pooled connection is dead; the first request after the restart works.
    after = _backend_pid(engine)
    assert after != before
    assert asked == ["SELECT 1"]  # the closed socket was read as a question, then replaced


def test_a_terminated_session_is_replaced(
    server: PrivatePostgres, engine: Engine, asked: list[str]
) -> None:
    victim = _backend_pid(engine)  # idle in the pool now
    with psycopg.connect(server.url, autocommit=True) as admin:
        [ended] = admin.execute("SELECT pg_terminate_backend(%s)", [victim]).fetchone() or [None]
        assert ended, f"no session {victim} to terminate"
        # pg_terminate_backend only signals: wait until the session has ended (the same
        # holds for any check, a pre-ping too: a server may go away right after it).
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [victim]).fetchone():
            assert time.monotonic() < deadline, "the terminated session did not end"
            time.sleep(0.01)
    asked.clear()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != victim
        assert conn.exec_driver_sql("SELECT 41 + 1").scalar_one() == 42
    assert asked == ["SELECT 1"]  # the server's goodbye was on the socket: asked, replaced


def test_a_connection_with_a_pending_notice_is_asked_and_kept(
    engine: Engine, asked: list[str]
) -> None:
    """Something to read on an idle socket is not proof of death: the server is asked,
    and a live connection stays in the pool."""
    with engine.connect() as listener, engine.connect() as sender:
        listener.exec_driver_sql("LISTEN wowlab_pool_test")
        listener.commit()
        pid = listener.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        listener.commit()
        sender.exec_driver_sql("NOTIFY wowlab_pool_test")
        sender.commit()
        socket = listener.connection.driver_connection.pgconn.socket  # type: ignore[union-attr]
        assert select.select([socket], [], [], 10)[0], "the notification did not arrive"
    # The listener's connection went back to the pool with a notification on its socket.
    asked.clear()
    pids = set()
    with engine.connect() as a, engine.connect() as b:
        for conn in (a, b):
            pids.add(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    assert pid in pids
    assert asked == ["SELECT 1"]
