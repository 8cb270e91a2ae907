"""Several portal processes on one PostgreSQL database, as behind a proxy: the helpers of
the multi-worker tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy.engine import Engine

from wowlab_core.db import write_session
from wowlab_core.migrate import upgrade
from wowlab_core.testing.databases import fresh_postgres_database
from wowlab_portal.accounts import create_api_token, create_user, password_hasher

from .served import ServedPortal, start_portal


@dataclass
class SharedDatabase:
    """A fresh, migrated PostgreSQL database, and its URL for portal processes."""

    db: Engine
    url: str


@contextmanager
def shared_database() -> Iterator[SharedDatabase]:
    with fresh_postgres_database(schema=False) as db:
        upgrade(db)
        yield SharedDatabase(db, db.url.render_as_string(hide_password=False))


@contextmanager
def portals(url: str, count: int, env: dict[str, str]) -> Iterator[list[ServedPortal]]:
    """``count`` ``wowlab portal serve`` processes on one database (started one after the
    other: the first makes the session key they share)."""
    started: list[ServedPortal] = []
    try:
        for _ in range(count):
            started.append(start_portal(url, env))
        yield started
    finally:
        for portal in started:
            portal.process.terminate()


def user_token(db: Engine, username: str) -> str:
    """A user made in the database, and a personal API token of theirs."""
    passwords = password_hasher(time_cost=1, memory_kib=8)
    with write_session(db) as s:
        user = create_user(s, username=username, password=None, passwords=passwords)
        s.flush()
        token = create_api_token(s, user=user, name="test").token
        s.commit()
    return token


def as_user(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(base: str) -> httpx.Response:
    return httpx.post(
        f"{base}/api/v1/node/register", json={"name": "pc", "max_parallel": 1}, timeout=10
    )


def node_headers(registration: dict[str, object]) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {registration['token']}",
        "X-Wowlab-Node": str(registration["node_id"]),
    }


__all__ = [
    "SharedDatabase",
    "as_user",
    "node_headers",
    "portals",
    "register",
    "shared_database",
    "user_token",
]
