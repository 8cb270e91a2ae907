"""Two portal processes on one PostgreSQL (as two workers, or two hosts behind a proxy):
a rate limit holds across them, and a node long-polling one hears what happens on the
other at once. Each "worker" is a ``wowlab portal serve`` process of its own."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from wowlab_core.testing.processes import WowlabProcess

from .served import ServedPortal, free_port
from .workers import (
    SharedDatabase,
    as_user,
    node_headers,
    portals,
    register,
    shared_database,
    user_token,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

#: Long enough that only a cross-process wake-up can answer in time.
RECHECK = "60"


@pytest.fixture
def shared() -> Iterator[SharedDatabase]:
    with shared_database() as database:
        yield database


@pytest.fixture
def two(shared: SharedDatabase) -> Iterator[list[ServedPortal]]:
    env = {
        "WOWLAB_CLAIM_LIMIT_PER_MINUTE": "4",
        "WOWLAB_CLAIM_LIMIT_PER_ADDRESS_PER_MINUTE": "100",
        "WOWLAB_REGISTER_LIMIT_PER_MINUTE": "3",
        "WOWLAB_CLAIM_RECHECK_SECONDS": RECHECK,
    }
    with portals(shared.url, 2, env) as started:
        yield started


def test_a_rate_limit_holds_across_two_workers(
    shared: SharedDatabase, two: list[ServedPortal]
) -> None:
    a, b = (p.url for p in two)
    token = user_token(shared.db, "alice")

    def preview(base: str) -> int:
        return httpx.get(
            f"{base}/api/v1/nodes/claim/ABC-234", headers=as_user(token), timeout=10
        ).status_code

    # Each worker alone would allow 4 a minute; together they allow 4.
    assert [preview(a), preview(b), preview(a), preview(b)] == [404] * 4
    refused = httpx.get(f"{b}/api/v1/nodes/claim/ABC-234", headers=as_user(token), timeout=10)
    assert refused.status_code == 429 and "too many claim attempts" in refused.text
    assert preview(a) == 429
    # Anonymous node registrations per address, likewise.
    assert [register(a).status_code, register(b).status_code, register(a).status_code] == [201] * 3
    assert register(b).status_code == 429


def test_a_claim_on_one_worker_ends_the_long_poll_on_the_other(
    shared: SharedDatabase, two: list[ServedPortal]
) -> None:
    a, b = (p.url for p in two)
    token = user_token(shared.db, "bob")
    registration = register(b).json()

    def long_poll() -> tuple[float, dict[str, object]]:
        reply = httpx.get(
            f"{b}/api/v1/node/claim-status",
            params={"wait": 25},
            headers=node_headers(registration),
            timeout=40,
        )
        return time.monotonic(), reply.json()

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(long_poll)
        time.sleep(1.0)  # the long poll is open on b
        assert not waiting.done()
        claimed = httpx.post(
            f"{a}/api/v1/nodes/claim",
            json={"code": registration["claim_code"]},
            headers=as_user(token),
            timeout=10,
        )
        assert claimed.status_code == 201, claimed.text
        at = time.monotonic()
        answered, status = waiting.result(30)
    assert status["claimed"] is True
    # Without the wake-up, b would notice only at its next recheck (60 s).
    assert answered - at < 3.0


def test_work_submitted_on_one_worker_wakes_a_node_waiting_on_the_other(
    shared: SharedDatabase, two: list[ServedPortal]
) -> None:
    a, b = (p.url for p in two)
    token = user_token(shared.db, "carol")
    registration = register(b).json()
    claimed = httpx.post(
        f"{a}/api/v1/nodes/claim",
        json={"code": registration["claim_code"]},
        headers=as_user(token),
        timeout=10,
    )
    assert claimed.status_code == 201, claimed.text

    def wait_for_work() -> tuple[float, dict[str, object]]:
        reply = httpx.get(
            f"{b}/api/v1/node/wait-for-work",
            params={"timeout": 25},
            headers=node_headers(registration),
            timeout=40,
        )
        return time.monotonic(), reply.json()

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(wait_for_work)
        time.sleep(1.0)
        assert not waiting.done()
        job = httpx.post(
            f"{a}/api/v1/jobs",
            json={"engine": "toy", "config": {"base_dps": 100, "spread": 10}, "iterations": 10},
            headers=as_user(token),
            timeout=10,
        )
        assert job.status_code == 201, job.text
        at = time.monotonic()
        answered, reply = waiting.result(30)
    assert reply == {"woken": True}
    assert answered - at < 3.0


def children(pid: int) -> list[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    with open(path) as f:
        return [int(p) for p in f.read().split()]


def test_serve_with_workers_keeps_serving_when_a_worker_dies(shared: SharedDatabase) -> None:
    port = free_port()
    process = WowlabProcess(
        "portal", "serve", "--workers", "2", "--port", str(port),
        "--database-url", shared.url, "--no-upgrade",
    )  # fmt: skip
    try:
        served = ServedPortal(process, port)
        served.wait_until_up()
        process.wait_for(r"2 workers\)")
        workers = wait_until_two(process.proc.pid)
        os.kill(workers[0], signal.SIGKILL)
        # The other worker answers meanwhile; the supervisor starts a new one.
        for _ in range(20):
            assert httpx.get(f"{served.url}/healthz", timeout=5).status_code == 200
        deadline = time.monotonic() + 30
        while len(set(children(process.proc.pid)) - {workers[0]}) < 2:
            assert time.monotonic() < deadline, process.output
            time.sleep(0.2)
    finally:
        assert process.terminate() == 0, process.output
    assert "portal stopped" in process.output


def wait_until_two(pid: int) -> list[int]:
    deadline = time.monotonic() + 30
    while len(found := children(pid)) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return found


def test_serve_refuses_workers_on_sqlite(tmp_path: Path) -> None:
    process = WowlabProcess(
        "portal", "serve", "--workers", "3", "--database-url", f"sqlite:///{tmp_path}/x.db"
    )
    assert process.proc.wait(60) != 0
    time.sleep(0.2)
    lines = [line for line in process.lines if line.strip()]
    assert lines == [
        "error: --workers > 1 needs PostgreSQL (--database-url postgresql://...): "
        "SQLite serves one process"
    ]
    assert not (tmp_path / "x.db").exists()  # refused before anything was made
    other = WowlabProcess(
        "portal", "serve", "--workers", "2", "--database-url", "mysql://wowlab@db/wowlab"
    )
    assert other.proc.wait(60) != 0
    time.sleep(0.2)
    assert [line for line in other.lines if line.strip()] == [
        "error: --workers > 1 needs PostgreSQL (--database-url postgresql://...), not mysql"
    ]
