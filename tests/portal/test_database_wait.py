"""The portal starts before its database (a compose file, a reboot): it waits and retries,
logging each attempt, instead of exiting; and it gives up after the configured time."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from wowlab_core.testing.databases import missing_part, postgres_admin_url

from .served import start_portal


@pytest.fixture
def late_database() -> Iterator[tuple[str, sa.Engine]]:
    """The URL of a PostgreSQL database that does not exist yet, and the server's admin
    connection to create it with."""
    admin = sa.create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        missing_part("PostgreSQL", str(exc.orig or exc).splitlines()[0])
    name = f"wowlab_test_late_{uuid.uuid4().hex[:10]}"
    url = sa.make_url(postgres_admin_url()).set(database=name)
    try:
        yield url.render_as_string(hide_password=False), admin
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_the_portal_waits_for_a_database_that_comes_up_late(
    late_database: tuple[str, sa.Engine],
) -> None:
    url, admin = late_database
    portal = start_portal(url, env={"WOWLAB_DATABASE_WAIT_SECONDS": "60"}, wait=False)
    try:
        portal.process.wait_for(r"not reachable \(attempt 2\).*retrying in", timeout=30)
        assert portal.process.proc.poll() is None, portal.process.output
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{sa.make_url(url).database}"')
        portal.process.wait_for(r"database .* is up \(attempt \d+\)", timeout=30)
        portal.wait_until_up()  # migrated, serving, healthy
    finally:
        assert portal.process.terminate() == 0, portal.process.output


def test_the_wait_is_bounded_and_ends_in_one_error_line(
    late_database: tuple[str, sa.Engine],
) -> None:
    url, _ = late_database
    started = time.monotonic()
    portal = start_portal(url, env={"WOWLAB_DATABASE_WAIT_SECONDS": "2"}, wait=False)
    code = portal.process.proc.wait(30)
    took = time.monotonic() - started
    output = portal.process.output
    assert code == 1, output  # it ran, and the database never came
    assert output.count("not reachable (attempt") >= 2, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot use the database" in errors[0], output
    assert took < 20, took
