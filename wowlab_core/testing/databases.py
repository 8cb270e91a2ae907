"""Real databases for tests: a SQLite file, or a fresh database on a PostgreSQL server.

PostgreSQL comes from ``WOWLAB_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``); each test database is created with a
unique name, ``<prefix>_<random>``, and dropped afterwards. The prefix is ``wowlab_test``
unless ``WOWLAB_TEST_DB_PREFIX`` (or the pytest ini option ``wowlab_db_prefix``) says
otherwise, so a project can keep its test databases apart. Without a server the tests skip
with a loud reason, except under ``CI=true``, where a missing server is an error.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from wowlab_core.db import create_all, create_db_engine, normalize_url

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_DB_PREFIX = "wowlab_test"


def database_prefix(prefix: str | None = None) -> str:
    """The test databases' name prefix: ``prefix``, else ``WOWLAB_TEST_DB_PREFIX``, else
    ``wowlab_test``. Lower-case letters, digits and ``_``, starting with a letter."""
    chosen = prefix or os.environ.get("WOWLAB_TEST_DB_PREFIX") or DEFAULT_DB_PREFIX
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", chosen):
        raise ValueError(f"test database prefix {chosen!r}: use a-z, 0-9 and _ (41 at most)")
    return chosen


def postgres_admin_url() -> str:
    """The URL of the server's maintenance database."""
    return normalize_url(os.environ.get("WOWLAB_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))


def missing_part(what: str, why: str) -> None:
    """Skip loudly, or fail under CI, when a real part the test needs is missing."""
    message = f"MISSING PART: {what} is not available ({why}); this test did NOT run"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " -- in CI every part must be present (see .ci/run)")
    pytest.skip(message)


@contextmanager
def fresh_postgres_database(*, schema: bool = True, prefix: str | None = None) -> Iterator[Engine]:
    """A new, empty database on the test server (with wowlab's tables if ``schema``),
    named ``<prefix>_<random>`` (see :func:`database_prefix`)."""
    name = f"{database_prefix(prefix)}_{uuid.uuid4().hex[:12]}"
    admin_url = postgres_admin_url()
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        missing_part("PostgreSQL", str(exc.orig).splitlines()[0] if exc.orig else str(exc))
    url = sa.make_url(admin_url).set(database=name)
    engine = create_db_engine(url.render_as_string(hide_password=False))
    try:
        if schema:
            create_all(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def fresh_sqlite_database(directory: str, *, schema: bool = True) -> Iterator[Engine]:
    """A new SQLite file database in ``directory``."""
    engine = create_db_engine(f"sqlite:///{directory}/wowlab-test-{uuid.uuid4().hex[:8]}.db")
    try:
        if schema:
            create_all(engine)
        yield engine
    finally:
        engine.dispose()


__all__ = [
    "DEFAULT_DB_PREFIX",
    "database_prefix",
    "fresh_postgres_database",
    "fresh_sqlite_database",
    "missing_part",
    "postgres_admin_url",
]
