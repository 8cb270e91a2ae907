"""The production layout under faults: 3 portal processes on one PostgreSQL with 12 HTTP
nodes spread over them, and 2 MQTT bridges (``wowlab mqtt bridge --instance N``) with 4
MQTT nodes, each a process of its own. Mid-job one portal process and one bridge are
SIGKILLed and started again (as systemd would); the job's report is byte-identical to an
undisturbed run and every chunk is counted once."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from portal.served import free_port
from portal.workers import SharedDatabase, shared_database
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from wowlab_core.agent import AgentOptions, NodeAgent
from wowlab_core.cache import CacheSettings, MemoryDiskCache
from wowlab_core.db import read_session
from wowlab_core.http_client import HttpTransport
from wowlab_core.models import ChunkLease, SimChunk, SimJob, User
from wowlab_core.nodes import claim_and_announce
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import ClaimStatus, NodeInfo
from wowlab_core.testing.processes import WowlabProcess
from wowlab_transport_mqtt.client import MqttTransport

from .helpers import assert_same_report, wait_until
from .mosquitto import Broker

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CONFIG = {"base_dps": 2200, "spread": 500, "sleep_ms": 1200}
ITERATIONS, CHUNKS, SEED = 1280, 64, 11


class Layout:
    """The server processes, each startable again on its own port or instance."""

    def __init__(self, database: SharedDatabase, broker: Broker, tmp: Path) -> None:
        self.database, self.broker = database, broker
        self.env = {
            "WOWLAB_DATA_DIR": str(tmp / "data"),
            "WOWLAB_LEASE_SECONDS": "8",
            "WOWLAB_HEARTBEAT_SECONDS": "1",
            "WOWLAB_MQTT_PASSWORD_FILE": str(broker.bridge_password_file),
        }
        self.ports = [free_port() for _ in range(3)]
        self.portals: dict[int, WowlabProcess] = {}
        self.bridges: dict[str, WowlabProcess] = {}
        self.every: list[WowlabProcess] = []

    def start_portal(self, index: int) -> None:
        process = WowlabProcess(
            "portal", "serve", "--port", str(self.ports[index]),
            "--database-url", self.database.url, "--no-upgrade", env=self.env,
        )  # fmt: skip
        self.portals[index] = process
        self.every.append(process)
        url = f"http://127.0.0.1:{self.ports[index]}/healthz"
        wait_until(f"portal {index}", lambda: _up(url, process), timeout=60, every=0.1)

    def start_bridge(self, instance: str) -> None:
        process = WowlabProcess(
            "mqtt", "bridge", "--url", self.broker.url, "--database-url", self.database.url,
            "--instance", instance, env=self.env,
        )  # fmt: skip
        self.bridges[instance] = process
        self.every.append(process)
        process.wait_for("wowlab MQTT bridge on", timeout=60)

    def kill(self, process: WowlabProcess) -> None:
        process.proc.send_signal(signal.SIGKILL)
        process.proc.wait(10)

    def stop(self) -> None:
        for process in self.every:
            process.kill()


def _up(url: str, process: WowlabProcess) -> bool:
    assert process.proc.poll() is None, process.output
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def layout(broker: Broker, tmp_path: Path) -> Iterator[Layout]:
    with shared_database() as database:
        started = Layout(database, broker, tmp_path)
        try:
            yield started
        finally:
            started.stop()


def submit(db: Engine, hooks: Hooks, owner_id: int) -> int:
    from wowlab_core.db import write_session
    from wowlab_core.jobs import submit_job

    with write_session(db) as s:
        owner = s.get(User, owner_id)
        assert owner is not None
        job = submit_job(
            s, user=owner, config=CONFIG, iterations=ITERATIONS, engine_name="toy", seed=SEED,
            hooks=hooks, chunks=CHUNKS,
        )  # fmt: skip
        s.commit()
        return job.id or 0


def progress(db: Engine, job_id: int) -> float:
    with read_session(db) as s:
        done = s.exec(
            select(SimChunk).where(
                col(SimChunk.job_id) == job_id, col(SimChunk.status) == "completed"
            )
        ).all()
    return len(done) / CHUNKS


def counted(db: Engine, job_id: int) -> int:
    with read_session(db) as s:
        job = s.get(SimJob, job_id)
        assert job is not None
        return job.completed_iterations


@pytest.mark.anyio
async def test_a_portal_and_a_bridge_killed_mid_job_change_nothing_in_the_report(
    layout: Layout, wowlab_hooks: Hooks, tmp_path: Path
) -> None:
    db = layout.database.db
    for index in range(3):
        layout.start_portal(index)
    layout.start_bridge("1")
    layout.start_bridge("2")
    from wowlab_core.db import write_session

    with write_session(db) as s:
        owner = User(username="owner")
        s.add(owner)
        s.commit()
        owner_id = owner.id or 0

    def claim(status: ClaimStatus) -> None:
        claim_and_announce(db, user_id=owner_id, code=status.claim_code or "", hooks=wowlab_hooks)

    transports: list[Any] = [
        HttpTransport(f"http://127.0.0.1:{layout.ports[i % 3]}") for i in range(12)
    ] + [MqttTransport(layout.broker.url, timeout=15.0) for _ in range(4)]
    agents = [
        NodeAgent(
            t,
            info=NodeInfo(name=f"{'http' if i < 12 else 'mqtt'}-{i}", max_parallel=1),
            hooks=wowlab_hooks,
            cache=MemoryDiskCache(CacheSettings(directory=tmp_path / f"cache{i}")),
            options=AgentOptions(
                heartbeat_seconds=1.0,
                idle_wait_seconds=0.5,
                claim_wait_seconds=1.0,
                retry_seconds=0.5,
                drain_seconds=0.0,
            ),
            on_claim_code=claim,
        )
        for i, t in enumerate(transports)
    ]
    try:
        with anyio.fail_after(240):
            async with anyio.create_task_group() as tg:
                for agent in agents:
                    tg.start_soon(agent.run)
                await anyio.to_thread.run_sync(
                    lambda: wait_until(
                        "every node at work",
                        lambda: all(a.stats.state in ("idle", "working") for a in agents),
                        timeout=90,
                    )
                )
                job_id = submit(db, wowlab_hooks, owner_id)
                most_counted = 0  # the job's count as its page shows it, at its highest
                while progress(db, job_id) < 0.3:
                    most_counted = max(most_counted, counted(db, job_id))
                    await anyio.sleep(0.1)
                # The faults: one portal process (4 HTTP nodes talk to it) and one bridge.
                killed_at = progress(db, job_id)
                layout.kill(layout.portals[2])
                layout.kill(layout.bridges["2"])
                await anyio.sleep(2.0)
                await anyio.to_thread.run_sync(layout.start_portal, 2)
                await anyio.to_thread.run_sync(layout.start_bridge, "2")
                while True:
                    with read_session(db) as s:
                        job = s.get(SimJob, job_id)
                        assert job is not None
                    if job.status in ("pending", "running"):
                        most_counted = max(most_counted, job.completed_iterations)
                    else:
                        break
                    await anyio.sleep(0.1)
                for agent in agents:
                    agent.stop(hand_back=True)
    finally:
        for t in transports:
            await t.aclose()
    assert killed_at < 0.9, "the faults came too late to prove anything"
    assert job.status == "completed", job.error
    assert job.completed_iterations == ITERATIONS
    await anyio.to_thread.run_sync(
        lambda: assert_same_report(
            job.result, CONFIG, wowlab_hooks, iterations=ITERATIONS, seed=SEED
        )
    )
    with read_session(db) as s:
        chunks = s.exec(select(SimChunk).where(col(SimChunk.job_id) == job_id)).all()
        leases = s.exec(select(ChunkLease)).all()
    assert len(chunks) == CHUNKS and {c.status for c in chunks} == {"completed"}
    assert sum(c.iterations for c in chunks) == ITERATIONS
    # Every chunk counted once. The merge recounts from the chunks (the report above), so
    # a result counted twice shows only while the job runs: its count passes the total
    # (and stays past it, the merge waiting for the chunks still out) until the merge.
    assert most_counted <= ITERATIONS
    assert all(c.computed_by is not None for c in chunks)
    assert len(leases) >= CHUNKS
    # Both kinds of node did work. (Their own counts need not add up to the chunks: a
    # result accepted just before its portal or bridge died never got its answer home.)
    http_done = sum(a.stats.chunks_completed for a in agents[:12])
    mqtt_done = sum(a.stats.chunks_completed for a in agents[12:])
    assert http_done > 0 and mqtt_done > 0
