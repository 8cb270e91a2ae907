"""The CLI against a portal, as a user runs it (subprocesses): ``wowlab node run --transport
http`` works for a served portal, and ``wowlab portal serve`` serves one."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import create_db_engine, read_session
from wowlab_core.http_client import HttpTransport
from wowlab_core.migrate import current_revision, head_revision
from wowlab_core.models import JobStatus, Node
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import NodeInfo, Registration
from wowlab_core.testing.conformance import TransportHarness
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_core.testing.processes import WowlabProcess
from wowlab_portal.app import create_app

from .server import serve


@pytest.fixture
def processes() -> Iterator[list[WowlabProcess]]:
    started: list[WowlabProcess] = []
    yield started
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(10)


def test_node_process_over_http_is_claimed_and_completes_a_job(
    sqlite_db: Engine, wowlab_hooks: Hooks, tmp_path: Path, processes: list[WowlabProcess]
) -> None:
    # Leases long enough for a subprocess on a loaded machine; heartbeats stay quick.
    coordinator = Coordinator(
        sqlite_db, hooks=wowlab_hooks, settings=replace(TEST_SETTINGS, lease_seconds=30)
    )
    harness = TransportHarness(coordinator, lambda: None)
    with serve(create_app(coordinator=coordinator)) as url:
        node = WowlabProcess(
            "node", "run", "--transport", "http", "--url", url, "--name", "http-node",
            "--max-parallel", "2", "--settings-file", str(tmp_path / "node.json"),
        )  # fmt: skip
        processes.append(node)
        code = node.wait_for(r"claim code: (\w{3}-\w{3})").group(1)
        harness.claim(code)  # as the portal's claim page will: the node's long poll answers
        node.wait_for("claimed by owner", timeout=10)
        job_id = harness.submit(4000, chunks=4, seed=11)
        deadline = time.monotonic() + 60
        while harness.job(job_id).status != JobStatus.COMPLETED.value:
            assert time.monotonic() < deadline, f"job not done; node output:\n{node.output}"
            time.sleep(0.1)
        assert node.terminate() == 0, node.output
    node.wait_for("node stopped")
    assert len(re.findall(r"chunk \d+: 1000 iterations .*\(accepted\)", node.output)) == 4
    job = harness.job(job_id)
    assert job.completed_iterations == 4000 and job.result["iterations"] == 4000
    with read_session(sqlite_db) as s:
        stored = s.exec(select(Node).where(col(Node.name) == "http-node")).one()
        assert stored.status == "offline"  # it said goodbye over HTTP
        assert stored.platform and stored.version


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_portal_serve_migrates_the_database_and_answers(
    tmp_path: Path, processes: list[WowlabProcess]
) -> None:
    port = free_port()
    database_url = f"sqlite:///{tmp_path / 'portal.db'}"
    portal = WowlabProcess("portal", "serve", "--port", str(port), "--database-url", database_url)
    processes.append(portal)
    portal.wait_for(rf"wowlab portal on http://127\.0\.0\.1:{port}")
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            health = httpx.get(f"{base}/healthz", timeout=2)
            break
        except httpx.TransportError:
            assert portal.proc.poll() is None, portal.output
            assert time.monotonic() < deadline, portal.output
            time.sleep(0.1)
    assert health.status_code == 200 and health.json() == {"status": "ok", "database": "ok"}

    # A node can register on the schema the command created.
    async def register() -> Registration:
        transport = HttpTransport(base)
        try:
            return await transport.register(NodeInfo(name="first"))
        finally:
            await transport.aclose()

    registration = anyio.run(register)
    assert len(registration.claim_code) == 6
    assert portal.terminate() == 0, portal.output
    portal.wait_for("portal stopped")
    engine = create_db_engine(database_url)
    try:
        assert current_revision(engine) == head_revision(engine)
    finally:
        engine.dispose()


def test_portal_serve_refuses_bad_settings_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wowlab_core", "portal", "serve", "--port", "99999"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "WOWLAB_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"},
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: portal setting port: Input should be less than or equal to 65535"
    ]


def test_without_the_portal_extra_the_plugin_is_listed_with_its_fix(tmp_path: Path) -> None:
    # As on a node installed with wowlab[node]: no web stack, yet the http transport is there.
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\nfor name in ('fastapi', 'uvicorn', 'starlette', 'pydantic_settings'):\n"
        "    sys.modules[name] = None\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, "-m", "wowlab_core", "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    [portal] = [u for u in listed["unavailable"] if u["name"] == "portal"]
    assert portal["fix"] == "pip install 'wowlab[portal]'"
    [http] = [p for p in listed["plugins"] if p["module"] == "wowlab_core.http_client"]
    assert http["builtin"] and http["hooks"] == ["wowlab_register_transports"]


def test_portal_serve_failures_are_one_line(tmp_path: Path) -> None:
    """A port in use, and a portal whose startup fails (here: an MQTT URL without the mqtt
    plugin), each end with one line instead of uvicorn's traceback."""
    url = f"sqlite:///{tmp_path / 'portal.db'}"
    env = {**os.environ, "WOWLAB_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run(
            [sys.executable, "-m", "wowlab_core", "portal", "serve", "--port", str(port),
             "--database-url", url],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
    assert busy.returncode == 2
    assert busy.stderr.splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    no_plugin = subprocess.run(
        [sys.executable, "-m", "wowlab_core", "portal", "serve", "--port", str(free_port()),
         "--database-url", url],
        capture_output=True, text=True, timeout=120,
        env={
            **env,
            "WOWLAB_MQTT_URL": "mqtt://127.0.0.1:9",
            "WOWLAB_MQTT_PASSWORD": "bridge-password",
            "WOWLAB_DISABLE_PLUGINS": "mqtt",
        },
    )  # fmt: skip
    assert no_plugin.returncode == 2
    errors = [line for line in no_plugin.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        "error: mqtt_url is set but the mqtt transport is not installed: pip install 'wowlab[mqtt]'"
    ], no_plugin.stderr
    assert "Traceback" not in no_plugin.stderr
