"""Schema migrations (Alembic), run by ``wowlab db upgrade``, and the check that a database is
ready before a command uses it (:func:`ensure_schema`)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from wowlab_core.errors import WowlabError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the bundled migrations and at ``engine``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database's schema to ``revision`` (default: the newest)."""
    cfg = alembic_config(engine)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (``base`` drops every table)."""
    cfg = alembic_config(engine)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    """The newest bundled revision."""
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


class SchemaNotReady(WowlabError):
    """The database is empty or at an older revision; the message names the command to run."""

    status_code = 503


def _has_wowlab_tables(engine: Engine) -> bool:
    return sa.inspect(engine).has_table("sim_jobs")


def ensure_schema(engine: Engine, *, migrate: bool) -> None:
    """Make sure the database has wowlab's newest schema before it is used.

    With ``migrate`` an empty or older database is upgraded on the spot (a node's own SQLite
    file); otherwise :class:`SchemaNotReady` says which command does it. A database whose
    tables were made directly (tests, ``wowlab sim``'s scratch file) is taken as it is.
    """
    current = current_revision(engine)
    head = head_revision(engine)
    if current == head or (current is None and _has_wowlab_tables(engine)):
        return
    if migrate:
        upgrade(engine)
        return
    url = engine.url.render_as_string(hide_password=True)
    state = "has no wowlab tables" if current is None else f"is at schema revision {current}"
    raise SchemaNotReady(
        f"the database {url} {state} (this wowlab needs {head}): "
        f"run: wowlab db upgrade --database-url '{url}'"
    )


__all__ = [
    "MIGRATIONS_DIR",
    "SchemaNotReady",
    "alembic_config",
    "current_revision",
    "downgrade",
    "ensure_schema",
    "head_revision",
    "upgrade",
]
