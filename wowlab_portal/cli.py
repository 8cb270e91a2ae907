"""``wowlab portal``: run the self-hosted portal."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

import click

from wowlab_core.errors import InvalidRequest


class _Stopped(Exception):
    """SIGTERM arrived: stop like on Ctrl-C."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


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
    import pydantic
    import uvicorn

    from wowlab_core.db import create_db_engine
    from wowlab_portal.app import create_app
    from wowlab_portal.settings import PortalSettings

    given: dict[str, Any] = {"host": host, "port": port, "database_url": database_url}
    try:
        settings = PortalSettings(**{k: v for k, v in given.items() if v is not None})
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"])
        raise InvalidRequest(f"portal setting {name}: {first['msg']}", field=name) from None
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


__all__ = ["portal"]
