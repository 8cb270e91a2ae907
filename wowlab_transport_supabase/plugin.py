"""The ``supabase`` plugin: the node transport ``supabase`` and ``wowlab supabase sql |
apply | worker``."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

import click

from wowlab_core.errors import InvalidRequest
from wowlab_core.hookspecs import hookimpl
from wowlab_core.transport import TransportFactory
from wowlab_transport_supabase.client import supabase_transport

log = logging.getLogger(__name__)


@hookimpl
def wowlab_register_transports(register: Any) -> None:
    """Register the ``supabase`` transport: ``https://PROJECT.supabase.co`` with ``key=``
    the project's anon key (or WOWLAB_SUPABASE_URL / WOWLAB_SUPABASE_KEY)."""
    factory: TransportFactory = supabase_transport
    register("supabase", factory)


def is_supabase_database(db: Any) -> bool:
    """Whether ``wowlab supabase apply`` has run on this database."""
    if db.dialect.name != "postgresql":
        return False
    with db.connect() as conn:
        return bool(conn.exec_driver_sql("select to_regproc('wowlab.reap_now')").scalar())


async def finisher_service(app: Any, *, task_status: Any) -> None:
    """The finisher inside the portal, on a database ``wowlab supabase apply`` prepared:
    jobs that supabase nodes finished are merged without a separate worker. It never holds
    the portal's start up: it reports started at once, then looks at the database (again
    after a minute if it could not)."""
    import anyio
    import anyio.to_thread

    from wowlab_transport_supabase.finisher import Finisher

    task_status.started()
    db, hooks = app.state.db, app.state.hooks
    while True:
        try:
            supabase = await anyio.to_thread.run_sync(is_supabase_database, db)
            break
        except Exception as exc:  # the portal reports its own database errors
            log.debug("supabase finisher: cannot look at the database yet (%s)", exc)
            await anyio.sleep(60)
    if not supabase:
        await anyio.sleep_forever()
    stop = threading.Event()
    finisher = Finisher(db, hooks=hooks)
    log.info("supabase: the portal merges the jobs supabase nodes finish")
    try:
        await anyio.to_thread.run_sync(finisher.run, stop, abandon_on_cancel=True)
    finally:
        stop.set()


@hookimpl
def wowlab_portal_services(app: Any) -> list[Any]:
    """Run the finisher in the portal when its database is a Supabase one."""
    from functools import partial

    return [partial(finisher_service, app)]


def _engine(db_url: str | None) -> Any:
    from wowlab_core.db import create_db_engine

    url = (
        db_url or os.environ.get("WOWLAB_SUPABASE_DB_URL") or os.environ.get("WOWLAB_DATABASE_URL")
    )
    if not url:
        raise InvalidRequest(
            "give the project's database URL: --db-url postgresql://postgres:PASSWORD@HOST:5432/"
            "postgres (or set WOWLAB_SUPABASE_DB_URL)",
            field="db_url",
        )
    if not url.startswith(("postgresql", "postgres")):
        raise InvalidRequest("--db-url must be a postgresql:// URL", field="db_url")
    return create_db_engine(url)


@click.group("supabase")
def supabase_group() -> None:
    """Run the pool on Supabase: print or apply the SQL, run the finisher."""


@supabase_group.command("sql")
def sql_command() -> None:
    """Print every migration (paste them into the SQL editor, or use `apply`)."""
    from wowlab_transport_supabase.migrations import all_sql

    click.echo(all_sql())


_DB_URL = click.option(
    "--db-url",
    default=None,
    help="The project's Postgres (Settings > Database > Connection string; default: "
    "WOWLAB_SUPABASE_DB_URL, else WOWLAB_DATABASE_URL).",
)


@supabase_group.command("apply")
@_DB_URL
def apply_command(db_url: str | None) -> None:
    """Apply the migrations not applied yet (idempotent) and schedule the pg_cron jobs."""
    import sqlalchemy as sa

    from wowlab_transport_supabase.migrations import apply

    engine = _engine(db_url)
    try:
        report = apply(engine)
    except sa.exc.OperationalError as exc:
        raise InvalidRequest(
            f"cannot reach the database: {str(exc.orig).splitlines()[0]}"
        ) from None
    finally:
        engine.dispose()
    for name in report.applied:
        click.echo(f"applied  {name}")
    for name in report.skipped:
        click.echo(f"present  {name} (the tables were made by `wowlab db upgrade`)")
    if not report.applied and not report.skipped:
        click.echo("up to date: every migration was applied before")
    for line in report.schedule:
        click.echo(line)
    for notice in dict.fromkeys(n for n in report.notices if n.startswith("wowlab:")):
        click.echo(f"notice: {notice}")


@supabase_group.command("worker")
@_DB_URL
@click.option(
    "--poll-seconds",
    type=float,
    default=5.0,
    show_default=True,
    help="Look for finished jobs at least this often (NOTIFY wakes it sooner).",
)
def worker_command(db_url: str | None, poll_seconds: float) -> None:
    """Merge finished jobs into their reports (the core's exact merge); reap leases."""
    from wowlab_core.plugins import get_hooks
    from wowlab_transport_supabase.finisher import Finisher

    engine = _engine(db_url)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    finisher = Finisher(engine, hooks=get_hooks())
    click.echo("wowlab supabase worker: merging finished jobs (Ctrl-C to stop)")
    try:
        finisher.run(stop, poll_seconds=poll_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()
    click.echo(f"stopped; {finisher.finished} job(s) finished")


@hookimpl
def wowlab_register_commands(cli: click.Group) -> None:
    """Add ``wowlab supabase``."""
    cli.add_command(supabase_group)
