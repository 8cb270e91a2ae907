"""``wowlab db``: schema migrations and maintenance."""

from __future__ import annotations

import click

from wowlab_core.db import create_db_engine, default_database_url


@click.group("db")
def db() -> None:
    """Database schema and maintenance."""


def _url_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--database-url",
        envvar="WOWLAB_DATABASE_URL",
        default=None,
        help="SQLAlchemy URL (default: SQLite in the data directory).",
    )(f)


@db.command("upgrade")
@_url_option
@click.option("--revision", default="head", show_default=True)
def upgrade(database_url: str | None, revision: str) -> None:
    """Create or migrate the schema to the newest revision."""
    from wowlab_core.migrate import current_revision
    from wowlab_core.migrate import upgrade as do_upgrade

    engine = create_db_engine(database_url or default_database_url())
    try:
        before = current_revision(engine)
        do_upgrade(engine, revision)
        after = current_revision(engine)
    finally:
        engine.dispose()
    url = engine.url.render_as_string(hide_password=True)
    if before == after:
        click.echo(f"{url}: already at revision {after}")
    else:
        click.echo(f"{url}: upgraded from {before or 'empty'} to {after}")


@db.command("current")
@_url_option
def current(database_url: str | None) -> None:
    """Print the schema revision of the database."""
    from wowlab_core.migrate import current_revision, head_revision

    engine = create_db_engine(database_url or default_database_url())
    try:
        rev = current_revision(engine)
        head = head_revision(engine)
    finally:
        engine.dispose()
    click.echo(f"{rev or 'empty'} (newest: {head})")


@db.command("cleanup")
@_url_option
@click.option("--days", default=30, show_default=True, help="Delete nodes offline this long.")
def cleanup(database_url: str | None, days: int) -> None:
    """Delete nodes that have been offline for DAYS days (chunk history is kept)."""
    from wowlab_core.db import write_session
    from wowlab_core.migrate import ensure_schema
    from wowlab_core.nodes import delete_stale_node_ids
    from wowlab_core.plugins import get_hooks

    engine = create_db_engine(database_url or default_database_url())
    try:
        ensure_schema(engine, migrate=False)
        with write_session(engine) as session:
            removed = delete_stale_node_ids(session, days=days)
            session.commit()
    finally:
        engine.dispose()
    hooks = get_hooks()
    for node_id in removed:
        hooks.node_removed(node_id=node_id, user=None)
    click.echo(f"deleted {len(removed)} stale node(s)")
