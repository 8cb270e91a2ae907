"""A PostgreSQL of the test's own with pg_cron preloaded (the shared server on 5432 has no
``shared_preload_libraries = 'pg_cron'`` and must never be restarted by a test)."""

from __future__ import annotations

import glob
import subprocess

from wowlab_core.testing.databases import missing_part
from wowlab_core.testing.private_postgres import PrivatePostgres


class CronPostgres(PrivatePostgres):
    """A private server with pg_cron on database ``postgres``."""

    SERVER_OPTIONS = "-c shared_preload_libraries=pg_cron -c cron.database_name=postgres"

    def __init__(self) -> None:
        super().__init__()
        pg_config = self.bindir / "pg_config"
        lib = (
            subprocess.run(
                [str(pg_config), "--pkglibdir"], capture_output=True, text=True
            ).stdout.strip()
            if pg_config.exists()
            else ""
        )
        if not glob.glob(f"{lib or '/usr/lib/postgresql/*/lib'}/pg_cron.so"):
            self.close()
            missing_part("pg_cron", "install postgresql-15-cron (scripts/ensure-services)")


__all__ = ["CronPostgres"]
