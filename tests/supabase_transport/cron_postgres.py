"""A PostgreSQL of the test's own with pg_cron preloaded (the shared server on 5432 has no
``shared_preload_libraries = 'pg_cron'`` and must never be restarted by a test)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from wowlab_core.testing.databases import missing_part


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CronPostgres:
    """initdb + pg_ctl in a temporary directory, with pg_cron on database ``postgres``."""

    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            missing_part("PostgreSQL server binaries (pg_ctl)", "no pg_ctl found")
        assert bindir is not None
        lib = (
            subprocess.run(
                [str(bindir / "pg_config"), "--pkglibdir"], capture_output=True, text=True
            ).stdout.strip()
            if (bindir / "pg_config").exists()
            else ""
        )
        if not glob.glob(f"{lib or '/usr/lib/postgresql/*/lib'}/pg_cron.so"):
            missing_part("pg_cron", "install postgresql-15-cron (scripts/ensure-services)")
        self.bindir = bindir
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="wowlab-pgcron-"))
        self.data = self.root / "data"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the server's ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        """Start with pg_cron preloaded for database ``postgres``."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c shared_preload_libraries=pg_cron -c cron.database_name=postgres"
        )
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def close(self) -> None:
        """Stop and remove everything."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
