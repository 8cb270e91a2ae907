"""pg_cron: the migration schedules the cleanup where pg_cron exists (and says so where it
does not); the cleanup functions do what the core's do."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import Engine

from wowlab_core.db import create_db_engine
from wowlab_transport_supabase import migrations
from wowlab_transport_supabase.testing.harness import bootstrap

from .cron_postgres import CronPostgres

JOBS = {
    ("wowlab-reap", "* * * * *", "select wowlab.reap_now()"),
    ("wowlab-delete-stale-nodes", "0 3 * * *", "select wowlab.delete_stale_nodes()"),
    ("wowlab-delete-unused-configs", "15 3 * * *", "select wowlab.delete_unused_configs()"),
}


@pytest.fixture(scope="module")
def cron_server() -> Iterator[CronPostgres]:
    server = CronPostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


def test_apply_schedules_the_cleanup_in_cron_job(cron_server: CronPostgres) -> None:
    engine = create_db_engine(cron_server.url)
    try:
        bootstrap(engine)  # creates pg_cron: the server preloads it for this database
        report = migrations.apply(engine)
        assert report.schedule == [
            "pg_cron: wowlab-reap, wowlab-delete-stale-nodes, wowlab-delete-unused-configs "
            "scheduled"
        ]
        assert not [n for n in report.notices if "pg_cron is not installed" in n]
        again = migrations.apply(engine)  # idempotent: the same three rows
        assert again.applied == []
        with psycopg.connect(cron_server.url) as conn:
            rows = conn.execute("select jobname, schedule, command from cron.job").fetchall()
        assert set(rows) == JOBS and len(rows) == 3
    finally:
        engine.dispose()


def _q(engine: Engine, sql: str, *args: object) -> list[tuple[object, ...]]:
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, args)  # type: ignore[arg-type]
        return list(cur.fetchall()) if cur.description else []


def _node(engine: Engine, name: str, status: str, days: int, owner: int | None) -> int:
    return int(
        _q(
            engine,
            "insert into nodes (user_id, name, token_hash, max_parallel, status, trust_score, "
            "created_at, last_seen_at) values (%s, %s, md5(random()::text), 1, %s, 0, now(), "
            "now() - make_interval(days => %s)) returning id",
            owner,
            name,
            status,
            days,
        )[0][0]
    )


def test_cleanup_functions(supabase_db: Engine) -> None:
    owner = int(
        _q(
            supabase_db,
            "insert into users (username, is_admin, created_at) "
            "values ('o', false, now()) returning id",
        )[0][0]
    )
    stale = _node(supabase_db, "stale", "offline", 31, owner)
    recent = _node(supabase_db, "recent", "offline", 29, owner)
    never_claimed = _node(supabase_db, "pending", "pending", 31, None)
    online = _node(supabase_db, "online", "online", 40, owner)
    for h, days in (("a", 8), ("b", 8), ("c", 6)):
        _q(
            supabase_db,
            "insert into sim_configs (hash, config, engine, created_at, last_used_at)"
            " values (repeat(%s, 64), '{}', 'toy', now(), now() - make_interval(days => %s))",
            h,
            days,
        )
    job = _q(
        supabase_db,
        "insert into sim_jobs (user_id, config_hash, engine, total_iterations, "
        "completed_iterations, seed, status, max_attempts, own_nodes_only, allow_public, "
        "created_at) values (%s, repeat('b', 64), 'toy', 10, 0, 1, 'running', 2, false, false,"
        " now()) returning id",
        owner,
    )[0][0]
    chunk = _q(
        supabase_db,
        "insert into sim_chunks (job_id, config_hash, iterations, seed_offset, status, node_id,"
        " attempts, failures, expirations, progress, lease_token_hash, lease_expires_at, "
        "created_at) values (%s, repeat('b', 64), 10, 0, 'leased', %s, 1, 0, 0, 0, 'x', "
        "now() - interval '1 second', now()) returning id",
        job,
        stale,
    )[0][0]
    _q(
        supabase_db,
        "insert into wowlab_wakeups (topic, created_at) values "
        "('work', now() - interval '11 minutes'), ('work', now())",
    )

    # reap: the expired lease goes back, the silent online node goes offline, old hints go.
    assert _q(supabase_db, "select wowlab.reap_now()")[0][0] == 1
    assert _q(
        supabase_db,
        "select status, expirations, lease_token_hash from sim_chunks where id = %s",
        chunk,
    )[0] == ("pending", 1, None)
    assert _q(supabase_db, "select status from nodes where id = %s", online)[0][0] == "offline"
    assert (
        _q(
            supabase_db,
            "select count(*) from wowlab_wakeups where created_at < now() - interval '10 minutes'",
        )[0][0]
        == 0
    )

    # stale nodes: offline or never claimed for 30 days; chunk history keeps its rows.
    assert _q(supabase_db, "select wowlab.delete_stale_nodes()")[0][0] == 3
    left = {r[0] for r in _q(supabase_db, "select id from nodes")}
    assert left == {recent} and stale not in left and never_claimed not in left
    assert _q(supabase_db, "select node_id from sim_chunks where id = %s", chunk)[0][0] is None

    # configs unused for 7 days that nothing refers to.
    assert _q(supabase_db, "select wowlab.delete_unused_configs()")[0][0] == 1
    hashes = {r[0][0] for r in _q(supabase_db, "select hash from sim_configs")}
    assert hashes == {"b", "c"}
