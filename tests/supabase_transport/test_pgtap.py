"""The shipped pgTAP file (for users to check their own project) passes on ours."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import Engine

from wowlab_core.testing.databases import missing_part
from wowlab_transport_supabase import migrations

PGTAP_FILE = migrations.SQL_DIR / "tests" / "wowlab_security.test.sql"


def test_the_pgtap_security_checks_pass(supabase_db: Engine) -> None:
    psql = shutil.which("psql")
    if psql is None:
        missing_part("psql", "the PostgreSQL client is not installed")
    with supabase_db.connect() as conn:
        if not conn.exec_driver_sql(
            "select count(*) from pg_available_extensions where name = 'pgtap'"
        ).scalar():
            missing_part("pgTAP", "install postgresql-15-pgtap (scripts/ensure-services)")
    url = supabase_db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    out = subprocess.run(
        [str(psql), url, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-f", str(PGTAP_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    assert "1..16" in lines
    oks = [line for line in lines if line.startswith("ok ")]
    failures = [line for line in lines if line.startswith("not ok")]
    assert failures == [] and len(oks) == 16, out.stdout
    assert Path(PGTAP_FILE).name.endswith(".test.sql")
