"""The broker is killed (SIGKILL) and restarted mid-job: nodes and bridge reconnect, the job
completes, no chunk is counted twice, and the report is byte-identical."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy.engine import Engine

from wowlab_core.agent import AgentOptions, NodeAgent
from wowlab_core.cache import CacheSettings, MemoryDiskCache
from wowlab_core.coordinator import Coordinator
from wowlab_core.hookspecs import hookimpl
from wowlab_core.models import JobStatus
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import NodeInfo
from wowlab_core.testing.conformance import TransportHarness
from wowlab_transport_mqtt.client import MqttTransport

from .helpers import SETTINGS, assert_same_report
from .mosquitto import Broker, running_bridge

CONFIG = {"base_dps": 1500, "spread": 400, "sleep_ms": 250}
ITERATIONS, CHUNKS, SEED = 2400, 24, 5


class CompletionCounter:
    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()

    @hookimpl
    def wowlab_chunk_completed(self, chunk: Any, result: Any) -> None:
        self.counts[chunk.id] += 1


@pytest.mark.anyio
async def test_broker_killed_and_restarted_mid_job(
    sqlite_db: Engine,
    wowlab_hooks: Hooks,
    register_plugin: Any,
    broker: Broker,
    tmp_path: Path,
) -> None:
    counter = register_plugin(CompletionCounter())
    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks, settings=SETTINGS)
    harness = TransportHarness(coordinator, lambda: None)
    transports = [MqttTransport(broker.url, resend_seconds=1.0) for _ in range(3)]

    def claim(status: Any) -> None:
        harness.claim(status.claim_code)

    agents = [
        NodeAgent(
            t,
            info=NodeInfo(name=f"agent{i}", max_parallel=2),
            hooks=wowlab_hooks,
            cache=MemoryDiskCache(CacheSettings(directory=tmp_path / f"cache{i}")),
            options=AgentOptions(
                heartbeat_seconds=0.5, idle_wait_seconds=0.5, claim_wait_seconds=0.5
            ),
            on_claim_code=claim,
        )
        for i, t in enumerate(transports)
    ]
    outage = 0.0
    with running_bridge(coordinator, broker) as bridge:
        try:
            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    for agent in agents:
                        tg.start_soon(agent.run)
                    job_id = harness.submit(ITERATIONS, chunks=CHUNKS, seed=SEED, config=CONFIG)
                    while harness.job(job_id).completed_iterations == 0:
                        await anyio.sleep(0.02)
                    done_before = harness.job(job_id).completed_iterations
                    killed_at = time.monotonic()
                    broker.kill()  # chunks are running and leases held right now
                    await anyio.sleep(1.0)
                    await anyio.to_thread.run_sync(broker.start)
                    outage = time.monotonic() - killed_at
                    while harness.job(job_id).status != JobStatus.COMPLETED.value:
                        await anyio.sleep(0.05)
                    for agent in agents:
                        agent.stop()
        finally:
            for t in transports:
                await t.aclose()
    job = harness.job(job_id)
    print(f"broker down {outage:.2f} s after {done_before}/{ITERATIONS} iterations; {bridge.stats}")
    assert done_before < ITERATIONS
    assert job.completed_iterations == ITERATIONS
    assert len(counter.counts) == CHUNKS and set(counter.counts.values()) == {1}
    assert sum(a.stats.chunks_completed for a in agents) >= CHUNKS
    await anyio.to_thread.run_sync(
        lambda: assert_same_report(
            job.result, CONFIG, wowlab_hooks, iterations=ITERATIONS, seed=SEED
        )
    )
