"""The portal on a Supabase database: its HTTP nodes and supabase nodes share one pool,
and a Supabase Auth session is the same wowlab user (when the JWT secret is set)."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.http_client import HttpTransport
from wowlab_core.testing.conformance import complete_all, registered_node
from wowlab_portal.app import create_app
from wowlab_portal.settings import PortalSettings
from wowlab_transport_supabase.client import SupabaseTransport
from wowlab_transport_supabase.testing import jwt
from wowlab_transport_supabase.testing.harness import harness_for


@pytest.fixture(autouse=True)
def _private_data_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WOWLAB_DATA_DIR", str(tmp_path_factory.mktemp("data")))


@pytest.fixture
def portal(sql_coordinator: Coordinator) -> Iterator[TestClient]:
    settings = PortalSettings(database_url="sqlite://", supabase_jwt_secret=jwt.TEST_JWT_SECRET)
    with TestClient(create_app(settings, coordinator=sql_coordinator)) as client:
        yield client


def _auth_user(engine: Engine, username: str) -> str:
    auth_id = str(uuid.uuid4())
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, email, raw_user_meta_data) values (%s, %s, %s)",
            (auth_id, f"{username}@example.org", json.dumps({"username": username})),
        )
    return auth_id


def test_a_supabase_session_is_the_same_wowlab_user(
    portal: TestClient, supabase_db: Engine
) -> None:
    auth_id = _auth_user(supabase_db, "grace")
    me = portal.get("/api/v1/me", headers={"Authorization": f"Bearer {jwt.user_session(auth_id)}"})
    assert me.status_code == 200 and me.json()["username"] == "grace"

    forged = jwt.sign(
        {
            "sub": auth_id,
            "role": "authenticated",
            "aud": "authenticated",
            "exp": int(time.time()) + 60,
        },
        secret="another-projects-secret-of-32-characters!",
    )
    expired = jwt.user_session(auth_id, lifetime=-10)
    anon = jwt.anon_key()
    stranger = jwt.user_session(str(uuid.uuid4()))
    for token in (forged, expired, anon, stranger):
        answer = portal.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, answer.text
        assert answer.json()["field"] is None or "Authorization" in str(answer.json())


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """The portal under uvicorn on a free port (as tests/portal/server.py does)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@pytest.mark.anyio
async def test_http_and_supabase_nodes_share_one_pool(
    sql_coordinator: Coordinator,
    make_transport: Callable[[], SupabaseTransport],
) -> None:
    """The portal on the project's database, with its own HTTP nodes beside supabase
    nodes: one job's chunks go to both, each counted once, and the job is merged."""
    app = create_app(PortalSettings(database_url="sqlite://"), coordinator=sql_coordinator)
    with serve(app) as url:
        harness = harness_for(sql_coordinator, make_transport)
        sb, http = make_transport(), HttpTransport(url)
        try:
            sb_node = await registered_node(harness, sb, name="sb", max_parallel=2)
            http_node = await registered_node(harness, http, name="http", max_parallel=2)
            job_id = harness.submit(40, chunks=4)
            from_sb = await sb.lease(sb_node, 2)
            from_http = await http.lease(http_node, 2)
            ids = {le.chunk_id for le in from_sb} | {le.chunk_id for le in from_http}
            assert len(from_sb) == 2 and len(from_http) == 2 and len(ids) == 4
            await complete_all(sb, sb_node, from_sb)
            await complete_all(http, http_node, from_http)
            job = harness.job(job_id)
            assert job.status == "completed" and job.completed_iterations == 40
            assert job.result is not None and job.result["iterations"] == 40
        finally:
            await sb.aclose()
            await http.aclose()


@pytest.mark.anyio
async def test_the_portal_merges_jobs_that_supabase_nodes_finish(
    sql_coordinator: Coordinator,
    make_transport: Callable[[], SupabaseTransport],
    supabase_db: Engine,
) -> None:
    """No worker runs: the portal on the same database runs the finisher (its
    wowlab_portal_services hook), woken by NOTIFY when the SQL counted the last result."""
    from wowlab_core.db import read_session
    from wowlab_core.models import SimJob
    from wowlab_core.testing.conformance import TransportHarness
    from wowlab_transport_supabase import plugin

    sql_coordinator.hooks.pm.register(plugin)
    app = create_app(PortalSettings(database_url="sqlite://"), coordinator=sql_coordinator)
    harness = TransportHarness(sql_coordinator, make_transport)  # no finisher of its own
    sb = make_transport()
    try:
        with serve(app):
            creds = await registered_node(harness, sb, max_parallel=4)
            job_id = harness.submit(40, chunks=4)
            await complete_all(sb, creds, await sb.lease(creds, 4))
            deadline = time.monotonic() + 15
            status = None
            while time.monotonic() < deadline:
                with read_session(supabase_db) as s:
                    job = s.get(SimJob, job_id)
                    assert job is not None
                    status = job.status
                if status == "completed":
                    break
                time.sleep(0.05)
            assert status == "completed"
            assert job.result is not None and job.result["iterations"] == 40
    finally:
        await sb.aclose()
        sql_coordinator.hooks.pm.unregister(plugin)
