"""A Supabase-like database on a plain PostgreSQL, and the conformance harness for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator, CoordinatorSettings
from wowlab_core.models import SimChunk, SimJob
from wowlab_core.testing.conformance import TransportHarness
from wowlab_core.testing.databases import fresh_postgres_database
from wowlab_transport_supabase import migrations
from wowlab_transport_supabase.finisher import Finisher

BOOTSTRAP_SQL = Path(__file__).with_name("bootstrap.sql")


def bootstrap(engine: Engine) -> None:
    """Create what a Supabase project's database has (roles, auth, publication ...)."""
    with engine.begin() as conn:
        migrations.run_script(conn, BOOTSTRAP_SQL.read_text(encoding="utf-8"))


@contextmanager
def supabase_database() -> Iterator[Engine]:
    """A fresh test database, bootstrapped like Supabase and with wowlab's SQL applied."""
    with fresh_postgres_database(schema=False) as engine:
        bootstrap(engine)
        migrations.apply(engine)
        yield engine


def write_settings(engine: Engine, settings: CoordinatorSettings) -> None:
    """Store the coordinator's timings where the SQL reads them at every call."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "update wowlab.settings set lease_seconds = :lease, heartbeat_seconds = :beat, "
                "offline_after_seconds = :offline, claim_lifetime_seconds = :claim, "
                "verify_rate = :rate, min_lease_deadline_seconds = :deadline, "
                "verify_timeout_seconds = :verify_timeout, reap_interval_seconds = :reap "
                "where id = 1"
            ),
            {
                "lease": settings.lease_seconds,
                "beat": settings.heartbeat_seconds,
                "offline": settings.offline_after_seconds,
                "claim": settings.claim_lifetime.total_seconds(),
                "rate": settings.verify_rate,
                "deadline": settings.min_lease_deadline_seconds,
                "verify_timeout": settings.verify_timeout_seconds,
                "reap": settings.reap_interval_seconds,
            },
        )


class SqlCoordinator(Coordinator):
    """The portal-side coordinator of a Supabase database: setting ``settings`` also
    stores them in ``wowlab.settings``, which the node functions read at every call."""

    @property
    def settings(self) -> CoordinatorSettings:
        return self._sql_settings

    @settings.setter
    def settings(self, value: CoordinatorSettings) -> None:
        self._sql_settings = value
        write_settings(self.db, value)


@dataclass
class SupabaseHarness(TransportHarness):
    """The conformance harness: the server side is the SQL plus the finisher, which runs
    before the suite reads a job (as the worker would have by then)."""

    finisher: Finisher | None = field(default=None)

    def job(self, job_id: int) -> SimJob:
        """A job as stored now, after the finisher merged what was done."""
        if self.finisher is not None:
            self.finisher.finish_pending()
        return super().job(job_id)

    def chunks(self, job_id: int) -> list[SimChunk]:
        """A job's chunks, after the finisher ran."""
        if self.finisher is not None:
            self.finisher.finish_pending()
        return super().chunks(job_id)


def harness_for(coordinator: Coordinator, make_transport: Any) -> SupabaseHarness:
    """A harness whose finisher uses the coordinator's database and hooks."""
    return SupabaseHarness(
        coordinator, make_transport, finisher=Finisher(coordinator.db, hooks=coordinator.hooks)
    )


__all__ = [
    "BOOTSTRAP_SQL",
    "SqlCoordinator",
    "SupabaseHarness",
    "bootstrap",
    "harness_for",
    "supabase_database",
    "write_settings",
]
