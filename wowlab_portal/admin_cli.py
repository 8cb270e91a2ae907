"""``wowlab admin``: what the operator of a portal does on its machine, next to its
database (no portal needs to be running)."""

from __future__ import annotations

import click


@click.group("admin")
def admin() -> None:
    """Portal administration on the portal's machine (uses WOWLAB_DATABASE_URL)."""


@admin.command("reset-password")
@click.argument("username")
@click.option(
    "--prompt",
    "ask",
    is_flag=True,
    help="Type the new password (asked twice, not echoed) instead of getting a random one.",
)
@click.option(
    "--database-url",
    default=None,
    help="SQLAlchemy URL (default: WOWLAB_DATABASE_URL, else SQLite in the data directory).",
)
def reset_password(username: str, ask: bool, database_url: str | None) -> None:
    """Give USERNAME a new password and log them out everywhere.

    Without --prompt, a random password is made and printed this once. The account's
    API tokens keep working (revoke them on its Account page or with the API).
    """
    from wowlab_core.db import create_db_engine, write_session
    from wowlab_portal.accounts import (
        check_password,
        generate_password,
        password_hasher,
        set_password,
        user_by_name,
    )
    from wowlab_portal.cli import portal_settings

    settings = portal_settings(database_url=database_url)
    db = create_db_engine(settings.database_url)
    try:
        with write_session(db) as session:
            user = user_by_name(session, username=username)
            if ask:
                password = click.prompt(
                    f"new password for {user.username}", hide_input=True, confirmation_prompt=True
                )
                check_password(password, field="password")
            else:
                password = generate_password()
            passwords = password_hasher(
                time_cost=settings.password_time_cost, memory_kib=settings.password_memory_kib
            )
            set_password(session, user=user, password=password, passwords=passwords)
            session.commit()
    finally:
        db.dispose()
    if ask:
        click.echo(f"the password of {user.username} is changed; their sessions are ended")
    else:
        click.echo(
            f"new password for {user.username}: {password}  (shown this once; their "
            "sessions are ended)"
        )


@admin.command("clear-flag")
@click.argument("node_id", type=int)
@click.option(
    "--database-url",
    default=None,
    help="SQLAlchemy URL (default: WOWLAB_DATABASE_URL, else SQLite in the data directory).",
)
def clear_flag(node_id: int, database_url: str | None) -> None:
    """Let a node flagged for a wrong result run other people's jobs again.

    Do it once its owner has found the cause (an unstable overclock, faulty memory, a
    modified client). The node starts over as untrusted: its results are checked more often
    until other nodes have confirmed ten of them in a row.
    """
    from wowlab_core.db import create_db_engine, write_session
    from wowlab_core.errors import NotFound
    from wowlab_core.models import Node
    from wowlab_portal.cli import portal_settings

    settings = portal_settings(database_url=database_url)
    db = create_db_engine(settings.database_url)
    try:
        with write_session(db) as session:
            node = session.get(Node, node_id)
            if node is None:
                raise NotFound(f"no node with id {node_id}", field="node_id")
            was = node.flag_reason
            node.flagged_at = None
            node.flag_reason = None
            node.trust_score = 0
            session.add(node)
            session.commit()
            name = node.name
    finally:
        db.dispose()
    if was is None:
        click.echo(f"node {node_id} ({name!r}) was not flagged; its trust score starts over")
    else:
        click.echo(f"node {node_id} ({name!r}) may run others' jobs again (it was flagged: {was})")


__all__ = ["admin"]
