"""The shipped SQL: one source of truth with Alembic, applied once each, recorded."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from wowlab_core.migrate import upgrade
from wowlab_core.testing.databases import fresh_postgres_database
from wowlab_transport_supabase import migrations, schema
from wowlab_transport_supabase.testing.harness import bootstrap

NAME = re.compile(r"^\d{14}_[a-z0-9_]+\.sql$")


def test_every_alembic_revision_has_its_file_with_exactly_what_alembic_emits() -> None:
    files = schema.core_files()
    revisions = schema.revisions()
    assert [r for r, _ in revisions] == list(files)  # one file per revision, in order
    for revision, previous in revisions:
        assert files[revision].read_text(encoding="utf-8") == schema.revision_sql(
            revision, previous
        ), f"{files[revision].name} drifted from Alembic: regenerate it (schema.py)"


def test_files_are_named_in_supabases_style_and_sorted_core_first() -> None:
    names = [m.name for m in migrations.migrations()]
    assert names and all(NAME.match(n) for n in names)
    assert names == sorted(names)
    core = [n for n in names if "_wowlab_core_" in n]
    # The schema the Supabase files were written against comes first; a later core revision
    # (stamped when it was generated) follows them, as a project's migrations do.
    first_supabase = next(i for i, n in enumerate(names) if "_wowlab_supabase_" in n)
    assert all("_wowlab_core_" in n for n in names[:first_supabase])
    revisions = [n.rsplit("_", 1)[1].removesuffix(".sql") for n in core]
    assert revisions == sorted(revisions)  # core revisions in Alembic's order


def test_the_tables_match_the_portals_schema_column_for_column(supabase_db: Engine) -> None:
    """The same tables, columns, types and nullability as `wowlab db upgrade` makes."""

    def shape(engine: Engine) -> dict[str, list[tuple[str, str, str]]]:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "select table_name, column_name, data_type, is_nullable "
                    "from information_schema.columns where table_schema = 'public' "
                    "and table_name <> 'wowlab_wakeups' order by table_name, ordinal_position"
                )
            ).all()
        out: dict[str, list[tuple[str, str, str]]] = {}
        for table, column, kind, nullable in rows:
            out.setdefault(table, []).append((column, kind, nullable))
        return out

    with fresh_postgres_database(schema=False) as portal_db:
        upgrade(portal_db)
        assert shape(supabase_db) == shape(portal_db)


def test_apply_is_idempotent_and_records_what_it_applied(supabase_db: Engine) -> None:
    again = migrations.apply(supabase_db)
    assert again.applied == [] and again.skipped == []
    recorded = migrations.applied(supabase_db)
    assert set(recorded) == {m.name for m in migrations.migrations()}
    assert all(recorded[m.name] == m.checksum for m in migrations.migrations())


def test_apply_after_the_portal_made_the_tables_skips_the_core_files() -> None:
    with fresh_postgres_database(schema=False) as engine:
        bootstrap(engine)
        upgrade(engine)  # the portal came first
        report = migrations.apply(engine)
        assert report.skipped == [m.name for m in migrations.migrations() if m.core_revision]
        assert report.applied == [m.name for m in migrations.migrations() if not m.core_revision]


def wowlab(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WOWLAB_SUPABASE")}
    environ.pop("WOWLAB_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "wowlab_core", *args],
        capture_output=True,
        text=True,
        env={**environ, **env},
        timeout=120,
    )


def test_cli_sql_prints_every_file_and_apply_says_what_it_did(supabase_db: Engine) -> None:
    printed = wowlab("supabase", "sql")
    assert printed.returncode == 0, printed.stderr
    for m in migrations.migrations():
        assert f"-- ==== {m.name} ====" in printed.stdout
    url = supabase_db.url.render_as_string(hide_password=False)
    applied = wowlab("supabase", "apply", "--db-url", url)
    assert applied.returncode == 0, applied.stderr
    assert "up to date" in applied.stdout
    assert "pg_cron is not installed" in applied.stdout  # the shared server has no pg_cron


def test_cli_apply_without_a_database_is_one_clear_line() -> None:
    result = wowlab("supabase", "apply")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--db-url" in lines[0], result.stderr
    result = wowlab("supabase", "apply", "--db-url", "postgresql://postgres@127.0.0.1:1/nowhere")
    assert result.returncode != 0 and "cannot reach the database" in result.stderr


def test_a_supabase_auth_user_is_a_wowlab_user(supabase_db: Engine) -> None:
    conninfo = supabase_db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        ids = [str(uuid.uuid4()) for _ in range(3)]
        conn.execute(
            "insert into auth.users (id, email, raw_user_meta_data) values (%s, %s, %s)",
            (ids[0], "ada@example.org", json.dumps({"username": "ada"})),
        )
        conn.execute(
            "insert into auth.users (id, email) values (%s, %s)", (ids[1], "ada@elsewhere.org")
        )
        conn.execute(
            "insert into auth.users (id, email) values (%s, %s)", (ids[2], "x'); --@e.org")
        )
        names = [
            conn.execute(
                "select u.username from users u join wowlab.auth_users a on a.user_id = u.id "
                "where a.auth_id = %s",
                (i,),
            ).fetchone()[0]
            for i in ids
        ]
        assert names[0] == "ada" and names[1] == "ada-2"  # unique, from metadata or e-mail
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", names[2])
        conn.execute("update auth.users set email = 'new@example.org' where id = %s", (ids[0],))
        assert conn.execute("select email from users where username = 'ada'").fetchone()[0] == (
            "new@example.org"
        )
        conn.execute("delete from auth.users where id = %s", (ids[0],))
        assert conn.execute("select count(*) from users where username = 'ada'").fetchone()[0] == 0


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_only_the_node_and_user_functions_are_executable_through_the_api(
    supabase_db: Engine, role: str
) -> None:
    conninfo = supabase_db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "select n.nspname || '.' || p.proname, "
            "has_function_privilege(%s, p.oid, 'execute'), p.prosecdef, "
            "coalesce(array_to_string(p.proconfig, ','), '') "
            "from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
            "where n.nspname in ('public', 'wowlab')",
            (role,),
        ).fetchall()
    executable = {name for name, can, _, _ in rows if can}
    node_functions = {
        f"public.node_{n}"
        for n in (
            "register",
            "claim_status",
            "lease",
            "heartbeat",
            "complete",
            "fail",
            "release",
            "go_offline",
            "get_config",
            "touch",
        )
    }
    if role == "anon":
        assert executable == node_functions
    else:
        helpers = {
            f"wowlab.{n}"
            for n in (
                "current_user_id",
                "are_friends",
                "is_guild_member",
                "owns_guild",
                "share_a_guild",
                "may_use",
                "owns_node",
                "owns_job",
                "owns_config",
            )
        }
        assert executable == {"public.claim_node", "public.cancel_job"} | helpers
    for name, _, definer, config in rows:
        if definer:  # every SECURITY DEFINER function pins an empty search_path
            assert 'search_path=""' in config, name
