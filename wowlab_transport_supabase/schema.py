"""The core's tables as Supabase migration files, generated from the Alembic revisions.

One source of truth: every Alembic revision of :mod:`wowlab_core.migrations` becomes one
``YYYYMMDDHHMMSS_wowlab_core_<revision>.sql`` file, the SQL Alembic itself emits for
PostgreSQL (offline mode), including the ``alembic_version`` bookkeeping, so the portal
(``wowlab db upgrade``) and ``wowlab supabase apply`` agree on what a database holds.
``python -m wowlab_transport_supabase.schema`` writes the files of revisions that have none
yet; a test checks that every shipped file is exactly what Alembic emits today.
"""

from __future__ import annotations

import io
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from wowlab_core.migrate import MIGRATIONS_DIR

SQL_DIR = Path(__file__).parent / "sql"
CORE_FILE = re.compile(r"^(\d{14})_wowlab_core_(\w+)\.sql$")
HEADER = (
    "-- Generated from the Alembic revision {revision} of wowlab_core by\n"
    "-- `python -m wowlab_transport_supabase.schema`. Do not edit: change the Alembic\n"
    "-- revision (wowlab_core/migrations/versions) and generate again.\n"
)


def _config() -> Config:
    cfg = Config(output_buffer=io.StringIO())
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", "postgresql://")
    return cfg


def revisions() -> list[tuple[str, str | None]]:
    """The Alembic revisions, oldest first, as (revision, previous revision)."""
    script = ScriptDirectory.from_config(_config())
    ordered = list(script.walk_revisions("base", "heads"))
    ordered.reverse()
    out: list[tuple[str, str | None]] = []
    for rev in ordered:
        down = rev.down_revision
        if down is not None and not isinstance(down, str):
            raise RuntimeError(f"revision {rev.revision} merges branches; not supported")
        out.append((rev.revision, down))
    return out


def revision_sql(revision: str, previous: str | None) -> str:
    """The SQL Alembic emits for PostgreSQL to go from ``previous`` to ``revision``,
    without its BEGIN/COMMIT (``apply`` runs each file in its own transaction)."""
    cfg = _config()
    command.upgrade(cfg, f"{previous}:{revision}" if previous else revision, sql=True)
    buffer = cfg.output_buffer
    assert isinstance(buffer, io.StringIO)
    lines = [
        line for line in buffer.getvalue().splitlines() if line.strip() not in ("BEGIN;", "COMMIT;")
    ]
    body = "\n".join(lines).strip() + "\n"
    return HEADER.format(revision=revision) + "\n" + body


def core_files() -> dict[str, Path]:
    """Shipped core files by Alembic revision."""
    found: dict[str, Path] = {}
    for path in sorted(SQL_DIR.glob("*.sql")):
        match = CORE_FILE.match(path.name)
        if match:
            found[match.group(2)] = path
    return found


def write_missing(now: datetime | None = None) -> list[Path]:
    """Write the files of revisions that have none yet (stamped now, so they sort after
    every file already shipped)."""
    existing = core_files()
    written: list[Path] = []
    stamp = int((now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S"))
    for revision, previous in revisions():
        if revision in existing:
            continue
        path = SQL_DIR / f"{stamp}_wowlab_core_{revision}.sql"
        stamp += 1
        path.write_text(revision_sql(revision, previous), encoding="utf-8")
        written.append(path)
    return written


def main() -> int:
    """Write missing files; print what was written."""
    for path in write_missing():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
