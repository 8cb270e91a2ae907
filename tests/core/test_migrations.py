"""Alembic migrations build exactly the schema of the models, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from wowlab_core.migrate import current_revision, downgrade, head_revision, upgrade
from wowlab_core.testing.databases import fresh_postgres_database, fresh_sqlite_database


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        with fresh_sqlite_database(str(tmp_path), schema=False) as engine:
            yield engine
    else:
        with fresh_postgres_database(schema=False) as engine:
            yield engine


def test_upgrade_builds_the_models_schema_and_downgrade_removes_it(empty_db: Engine) -> None:
    assert current_revision(empty_db) is None
    upgrade(empty_db)
    assert current_revision(empty_db) == head_revision(empty_db)
    with empty_db.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        tables = set(sa.inspect(conn).get_table_names())
    assert diff == [], f"migrations and models differ: {diff}"
    assert set(SQLModel.metadata.tables) <= tables
    upgrade(empty_db)  # idempotent
    downgrade(empty_db, "base")
    with empty_db.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}


def test_deleting_a_node_keeps_chunk_history_at_the_database_level(empty_db: Engine) -> None:
    """The foreign key itself says ON DELETE SET NULL (seed defect 5), not only the ORM."""
    upgrade(empty_db)
    with empty_db.connect() as conn:
        fks = sa.inspect(conn).get_foreign_keys("sim_chunks")
    node_fks = {fk["constrained_columns"][0]: fk for fk in fks if fk["referred_table"] == "nodes"}
    # who holds it, who computed it, who verified it, who disagreed: all history
    assert set(node_fks) == {"node_id", "computed_by", "verified_by", "alt_node_id"}
    for fk in node_fks.values():
        assert fk["options"].get("ondelete", "").upper() == "SET NULL"
