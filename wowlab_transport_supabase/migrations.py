"""The shipped SQL files, and applying them to a database once each.

``wowlab supabase apply`` runs every file not applied yet, in name order, each in its own
transaction, and records it in ``wowlab.applied_migrations`` (name, sha256, when). A core
file is skipped (and recorded) when the database's Alembic revision already includes it:
the portal's ``wowlab db upgrade`` may have made the tables first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from wowlab_transport_supabase import schema

SQL_DIR = schema.SQL_DIR
RECORD_TABLE = "wowlab.applied_migrations"


@dataclass(frozen=True)
class Migration:
    """One shipped SQL file."""

    name: str
    path: Path

    @property
    def sql(self) -> str:
        """The file's text."""
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        """sha256 of the file."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    @property
    def core_revision(self) -> str | None:
        """The Alembic revision a generated core file holds (None: a Supabase file)."""
        match = schema.CORE_FILE.match(self.path.name)
        return match.group(2) if match else None


@dataclass(frozen=True)
class ApplyReport:
    """What ``apply`` did."""

    applied: list[str]
    skipped: list[str]
    notices: list[str]
    #: What scheduling the cleanup did (pg_cron, or why not).
    schedule: list[str] = field(default_factory=list)


def migrations() -> list[Migration]:
    """Every shipped file, in the order it applies."""
    return [Migration(p.name, p) for p in sorted(SQL_DIR.glob("*.sql"))]


def all_sql() -> str:
    """Every file, concatenated with a header each (what ``wowlab supabase sql`` prints)."""
    parts = [f"-- ==== {m.name} ====\n{m.sql}" for m in migrations()]
    return "\n".join(parts)


def _ensure_record(conn: Connection) -> None:
    conn.exec_driver_sql("create schema if not exists wowlab")
    conn.exec_driver_sql(
        f"create table if not exists {RECORD_TABLE} ("
        " name text primary key, checksum text not null,"
        " applied_at timestamptz not null default now(), how text not null default 'applied')"
    )
    conn.exec_driver_sql(f"alter table {RECORD_TABLE} enable row level security")


def _alembic_revisions_present(conn: Connection) -> set[str]:
    exists = conn.exec_driver_sql("select to_regclass('public.alembic_version')").scalar()
    if exists is None:
        return set()
    current = [r[0] for r in conn.exec_driver_sql("select version_num from alembic_version")]
    script = ScriptDirectory.from_config(schema._config())
    present: set[str] = set()
    for head in current:
        present.update(rev.revision for rev in script.iterate_revisions(head, "base"))
    return present


def applied(engine: Engine) -> dict[str, str]:
    """Names of the files already applied, with their checksum."""
    with engine.begin() as conn:
        _ensure_record(conn)
        return dict(conn.exec_driver_sql(f"select name, checksum from {RECORD_TABLE}").all())


def apply(engine: Engine) -> ApplyReport:
    """Apply every file not applied yet, each in one transaction; idempotent."""
    done = applied(engine)
    report = ApplyReport(applied=[], skipped=[], notices=[])
    for migration in migrations():
        if migration.name in done:
            continue
        with engine.begin() as conn:
            dbapi = conn.connection.dbapi_connection
            notices_before = _notices(dbapi)
            revision = migration.core_revision
            how = "applied"
            if revision is not None and revision in _alembic_revisions_present(conn):
                how = "already present (alembic)"
                report.skipped.append(migration.name)
            else:
                run_script(conn, migration.sql)
                report.applied.append(migration.name)
            conn.execute(
                sa.text(f"insert into {RECORD_TABLE} (name, checksum, how) values (:n, :c, :h)"),
                {"n": migration.name, "c": migration.checksum, "h": how},
            )
            report.notices.extend(_notices(dbapi)[len(notices_before) :])
    with engine.begin() as conn:
        dbapi = conn.connection.dbapi_connection
        notices_before = _notices(dbapi)
        # PostgREST answers from a schema cache: tell it about the new functions.
        conn.exec_driver_sql("select pg_notify('pgrst', 'reload schema')")
        if conn.exec_driver_sql("select to_regproc('wowlab.schedule_cleanup')").scalar():
            report.schedule.append(
                str(conn.exec_driver_sql("select wowlab.schedule_cleanup()").scalar())
            )
        report.notices.extend(_notices(dbapi)[len(notices_before) :])
    return report


def run_script(conn: Connection, sql: str) -> None:
    """Run a script of several statements as it is (no placeholders: ``%`` stays ``%``)."""
    with conn.connection.dbapi_connection.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(sql)


def _notices(dbapi: object) -> list[str]:
    """Server notices psycopg collected on the connection (``raise notice``)."""
    found = getattr(dbapi, "wowlab_notices", None)
    if found is None:
        found = []
        add = getattr(dbapi, "add_notice_handler", None)
        if add is not None:
            add(lambda diag: found.append(str(diag.message_primary)))
        dbapi.wowlab_notices = found  # type: ignore[attr-defined]
    return list(found)


__all__ = [
    "ApplyReport",
    "Migration",
    "all_sql",
    "applied",
    "apply",
    "migrations",
    "run_script",
]
