"""``wowlab portal``: run the self-hosted portal."""

from __future__ import annotations

import functools
import os
import signal
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from wowlab_core.errors import InvalidRequest

if TYPE_CHECKING:
    from wowlab_portal.settings import PortalSettings


class _Stopped(Exception):
    """SIGTERM arrived: stop like on Ctrl-C."""


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
def serve(host: str | None, port: int | None, database_url: str | None, upgrade: bool) -> None:
    """Serve the portal with uvicorn until Ctrl-C (or SIGTERM)."""
    import uvicorn

    from wowlab_core.db import create_db_engine
    from wowlab_portal.app import create_app

    settings = portal_settings(host=host, port=port, database_url=database_url)
    db = create_db_engine(settings.database_url)
    shown_url = db.url.render_as_string(hide_password=True)
    if upgrade:
        from wowlab_core.migrate import upgrade as upgrade_schema

        upgrade_schema(db)
    click.echo(f"wowlab portal on http://{settings.host}:{settings.port} (database {shown_url})")
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        uvicorn.run(
            create_app(settings, db=db),
            host=settings.host,
            port=settings.port,
            log_level="info",
            # Nodes call every few seconds: keep their connections; do not let open long
            # polls hold a shutdown up for long.
            timeout_keep_alive=30,
            timeout_graceful_shutdown=5,
        )
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        db.dispose()
    click.echo("portal stopped")


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
    from wowlab_portal.login_store import PortalLogin

    count = node_count if node_count is not None else max(1, min(os.cpu_count() or 1, 8))
    if not 1 <= count <= embedded.MAX_NODES:
        raise InvalidRequest(f"--nodes must be between 1 and {embedded.MAX_NODES}", field="nodes")
    settings = portal_settings(host=host, port=port, database_url=database_url)
    db = create_db_engine(settings.database_url)
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
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


__all__ = ["portal", "portal_settings", "up"]
