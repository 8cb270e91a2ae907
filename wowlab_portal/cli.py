"""``wowlab portal``: run the self-hosted portal."""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from wowlab_core.errors import InvalidRequest

if TYPE_CHECKING:
    from fastapi import FastAPI

    from wowlab_portal.settings import PortalSettings


class _Stopped(Exception):
    """SIGTERM arrived: stop like on Ctrl-C."""


#: How uvicorn serves the portal, one process or several.
UVICORN_OPTIONS: dict[str, Any] = {
    "log_level": "info",
    # X-Forwarded-For is honoured by the app, from WOWLAB_TRUSTED_PROXIES only; uvicorn's
    # own handling would trust it from 127.0.0.1.
    "proxy_headers": False,
    # Nodes call every few seconds: keep their connections; do not let open long polls
    # hold a shutdown up for long.
    "timeout_keep_alive": 30,
    "timeout_graceful_shutdown": 5,
}


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def portal_settings(**given: Any) -> PortalSettings:
    """Settings from the environment, overridden by the options given (not None)."""
    import pydantic

    from wowlab_portal.settings import PortalSettings

    try:
        return PortalSettings(**{k: v for k, v in given.items() if v is not None})
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"])
        raise InvalidRequest(f"portal setting {name}: {first['msg']}", field=name) from None


@click.group("portal")
def portal() -> None:
    """The self-hosted web portal (node endpoints of the HTTP transport, ...)."""


@portal.command("serve")
@click.option(
    "--host", default=None, help="Address to listen on (default: WOWLAB_HOST, else 127.0.0.1)."
)
@click.option(
    "--port", type=int, default=None, help="Port to listen on (default: WOWLAB_PORT, else 8000)."
)
@click.option(
    "--database-url",
    default=None,
    help="SQLAlchemy URL (default: WOWLAB_DATABASE_URL, else SQLite in the data directory).",
)
@click.option(
    "--upgrade/--no-upgrade",
    default=True,
    show_default=True,
    help="Create or migrate the database schema before serving.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes sharing the port (PostgreSQL only; SQLite serves one process).",
)
def serve(
    host: str | None, port: int | None, database_url: str | None, upgrade: bool, workers: int
) -> None:
    """Serve the portal with uvicorn until Ctrl-C (or SIGTERM)."""
    from sqlalchemy.engine import make_url

    from wowlab_core.db import create_db_engine, normalize_url
    from wowlab_core.migrate import ensure_schema
    from wowlab_portal.app import create_app
    from wowlab_portal.database_wait import wait_for_database
    from wowlab_portal.embedded import listen

    settings = portal_settings(host=host, port=port, database_url=database_url)
    # Refused before the engine exists: it would create an empty SQLite file. (No URL:
    # the default SQLite database.)
    url = settings.database_url or None
    backend = make_url(normalize_url(url)).get_backend_name() if url else "sqlite"
    if workers > 1 and backend != "postgresql":
        raise InvalidRequest(
            "--workers > 1 needs PostgreSQL (--database-url postgresql://...)"
            + (": SQLite serves one process" if backend == "sqlite" else f", not {backend}"),
            field="workers",
        )
    if workers > 1 and settings.mqtt_url:
        raise InvalidRequest(
            "--workers > 1 cannot host the MQTT bridge (each worker would be one more "
            "bridge with the same session): unset WOWLAB_MQTT_URL and run "
            "'wowlab mqtt bridge --instance N' beside the portal",
            field="workers",
        )
    db = create_db_engine(settings.database_url)
    shown_url = db.url.render_as_string(hide_password=True)
    wait_for_database(db, total_seconds=settings.database_wait_seconds)
    # --no-upgrade: refuse an empty or older database with the command that fixes it.
    ensure_schema(db, migrate=upgrade)
    # A port in use is one line, not a traceback (with --workers, uvicorn binds it).
    sock = listen(settings.host, settings.port) if workers <= 1 else None
    many = f", {workers} workers" if workers > 1 else ""
    click.echo(
        f"wowlab portal on http://{settings.host}:{settings.port} (database {shown_url}{many})"
    )
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        if sock is None:
            db.dispose()
            _serve_workers(settings, workers)
        else:
            serve_until_stopped(create_app(settings, db=db), sock)
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if sock is not None:
            sock.close()
        db.dispose()
    click.echo("portal stopped")


def serve_until_stopped(app: FastAPI, sock: socket.socket) -> None:
    """Run uvicorn on ``sock``; if the portal fails to start (a service such as the MQTT
    bridge cannot reach its broker), raise that error instead of uvicorn's traceback."""
    import uvicorn

    from wowlab_core.cli.failures import debug_enabled

    failures: list[BaseException] = []
    lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def recorded(app: FastAPI) -> AsyncIterator[Any]:
        try:
            async with lifespan(app) as state:
                yield state
        except Exception as exc:
            failures.append(exc)
            raise

    app.router.lifespan_context = recorded

    def quiet(record: logging.LogRecord) -> bool:
        # Once startup failed, uvicorn's traceback and "startup failed" lines are replaced
        # by the one line the CLI prints for the error (WOWLAB_DEBUG keeps them).
        return not failures or debug_enabled()

    error_log = logging.getLogger("uvicorn.error")
    error_log.addFilter(quiet)
    try:
        server = uvicorn.Server(uvicorn.Config(app, **UVICORN_OPTIONS))
        try:
            server.run(sockets=[sock])
        except SystemExit:  # uvicorn's exit when the startup failed
            if failures:
                raise failures[0] from None
            raise
    finally:
        error_log.removeFilter(quiet)
    if failures and not server.started:
        raise failures[0]


def _serve_workers(settings: PortalSettings, workers: int) -> None:
    """uvicorn's supervisor: ``workers`` processes accept on one socket, each building its
    app from the environment (``WOWLAB_*``); a worker that dies is replaced.

    Nothing a correct answer depends on lives in one worker: rate limits are counted in
    PostgreSQL (or Redis), wake-ups cross workers by LISTEN/NOTIFY, sessions are rows.
    """
    import uvicorn

    from wowlab_portal.secret_key import resolve_secret_key

    # The options given on the command line reach the workers through their environment.
    os.environ["WOWLAB_DATABASE_URL"] = settings.database_url or ""
    os.environ["WOWLAB_HOST"] = settings.host
    os.environ["WOWLAB_PORT"] = str(settings.port)
    # Every worker must sign session cookies with the same key: make the stored one now,
    # before they race to make one each.
    if not settings.secret_key:
        resolve_secret_key(None)
    # The supervisor handles SIGTERM itself (it stops the workers, then returns).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    uvicorn.run(
        "wowlab_portal.app:create_app",
        factory=True,
        workers=workers,
        host=settings.host,
        port=settings.port,
        **UVICORN_OPTIONS,
    )


@click.command("up")
@click.option(
    "--nodes",
    "node_count",
    type=int,
    default=None,
    help="Local nodes to run, one simulation each (default: cores, at most 8).",
)
@click.option(
    "--host", default=None, help="Address to listen on (default: WOWLAB_HOST, else 127.0.0.1)."
)
@click.option(
    "--port", type=int, default=None, help="Port to listen on (default: WOWLAB_PORT, else 8000)."
)
@click.option(
    "--database-url",
    default=None,
    help="SQLAlchemy URL (default: WOWLAB_DATABASE_URL, else SQLite in the data directory).",
)
def up(
    node_count: int | None, host: str | None, port: int | None, database_url: str | None
) -> None:
    """The portal and local nodes on this PC, ready for 'wowlab submit', until Ctrl-C."""
    import anyio

    from wowlab_core.db import create_db_engine
    from wowlab_core.migrate import upgrade
    from wowlab_core.plugins import get_hooks
    from wowlab_portal import embedded
    from wowlab_portal.accounts import password_hasher
    from wowlab_portal.app import create_app
    from wowlab_portal.database_wait import wait_for_database
    from wowlab_portal.login_store import PortalLogin

    count = node_count if node_count is not None else max(1, min(os.cpu_count() or 1, 8))
    if not 1 <= count <= embedded.MAX_NODES:
        raise InvalidRequest(f"--nodes must be between 1 and {embedded.MAX_NODES}", field="nodes")
    settings = portal_settings(host=host, port=port, database_url=database_url)
    db = create_db_engine(settings.database_url)
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        wait_for_database(db, total_seconds=settings.database_wait_seconds)
        upgrade(db)
        hooks = get_hooks()
        passwords = password_hasher(
            time_cost=settings.password_time_cost, memory_kib=settings.password_memory_kib
        )
        admin = embedded.ensure_admin(db, passwords=passwords)
        sock = embedded.listen(settings.host, settings.port)
        url = embedded.local_url(sock)
        pool = db.url.render_as_string(hide_password=True)
        click.echo(f"wowlab portal on {url} (database {pool})")
        if admin.password is not None:
            click.echo(
                f"first run: made the account {embedded.ADMIN_USERNAME!r} with the password "
                f"{admin.password}  (shown this once: note it down)"
            )
        else:
            click.echo(f"log in as {embedded.ADMIN_USERNAME!r} (password shown on the first run)")
        stored = PortalLogin.load()
        login = embedded.cli_login(db, user=admin.user, url=url, stored=stored)
        click.echo(f"the CLI is logged in as {login.username} (token kept in {login.save()})")
        if stored is not None and stored.url != url:
            click.echo(f"(it was logged in to {stored.url}: 'wowlab login' takes you back)")
        nodes = embedded.LocalNodes(
            url=url,
            db=db,
            hooks=hooks,
            owner_id=admin.user.id or 0,
            settings=[
                embedded.load_node_settings(db, index=i, pool=pool, owner=admin.user)
                for i in range(1, count + 1)
            ],
        )

        def on_ready(ready: int) -> None:
            claimed = f"{ready} local node{'s' if ready != 1 else ''}"
            if ready < count:
                claimed = f"only {ready} of {count} local nodes (see the log)"
            click.echo(
                f"ready: {claimed} claimed by {embedded.ADMIN_USERNAME}; try "
                "'wowlab submit fire_mage --wait'; Ctrl-C stops everything"
            )

        with embedded.serve_in_thread(create_app(settings, db=db, hooks=hooks), sock) as thread:
            anyio.run(
                functools.partial(
                    embedded.run_nodes, nodes, on_ready=on_ready, portal_alive=thread.is_alive
                )
            )
            click.echo("nodes stopped")
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        db.dispose()
    click.echo("wowlab stopped")


__all__ = ["portal", "portal_settings", "serve_until_stopped", "up"]
