"""Presence over MQTT with real node processes: a node killed with SIGKILL is marked offline
by its last will, and its leased chunk is reissued after the lease runs out; a node that
hangs (SIGSTOP: no packets, no FIN, like a host that vanished) is marked offline once the
broker notices 1.5 x keepalive of silence (Mosquitto 2.0 looks every 5 s)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session
from wowlab_core.models import JobStatus, NodeStatus, SimChunk
from wowlab_core.plugins import Hooks
from wowlab_core.testing.conformance import TransportHarness
from wowlab_core.testing.processes import WowlabProcess

from .helpers import (
    SETTINGS,
    NodeProcess,
    assert_same_report,
    finished_job,
    leased_chunk,
    node_named,
    wait_until,
)
from .mosquitto import Broker, running_bridge

SLOW = {"base_dps": 2000, "spread": 500, "sleep_ms": 1000}
KEEPALIVE = 2
#: Mosquitto 2.0 sweeps for silent clients every 5 s (its "old keepalive" loop) and counts
#: silence in whole seconds, strictly more than 1.5 x keepalive: up to 5 + 1 + 1 s late.
BROKER_SWEEP = 7.0


@pytest.fixture
def nodes() -> Iterator[list[WowlabProcess]]:
    started: list[WowlabProcess] = []
    yield started
    for node in started:
        node.kill()


def test_killed_node_goes_offline_by_its_will_and_its_chunk_is_reissued(
    sqlite_db: Engine,
    wowlab_hooks: Hooks,
    broker: Broker,
    nodes: list[WowlabProcess],
    tmp_path: Path,
) -> None:
    db = sqlite_db
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=SETTINGS)
    harness = TransportHarness(coordinator, lambda: None)
    url = f"{broker.url}?keepalive={KEEPALIVE}"
    with running_bridge(coordinator, broker) as bridge:
        victim = NodeProcess(url, tmp_path / "victim.json", "victim")
        rescuer = NodeProcess(url, tmp_path / "rescuer.json", "rescuer")
        nodes += [victim, rescuer]
        harness.claim(victim.claim_code())
        victim.wait_for("claimed by owner")
        wait_until("the victim's online status", lambda: bridge.present)
        job_id = harness.submit(600, chunks=3, seed=99, config=SLOW)
        chunk = leased_chunk(db, job_id)
        victim_node = node_named(db, "victim")
        assert victim_node is not None and victim_node.status == NodeStatus.ONLINE.value
        assert chunk.node_id == victim_node.id

        time.sleep(0.3)  # well inside the 1 s chunk
        killed_at = time.monotonic()
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)

        def victim_offline() -> bool:
            node = node_named(db, "victim")
            return node is not None and node.status == NodeStatus.OFFLINE.value

        wait_until("the victim to be marked offline", victim_offline, timeout=1.5 * KEEPALIVE)
        offline_after = time.monotonic() - killed_at
        print(f"victim marked offline {offline_after * 1000:.0f} ms after SIGKILL")
        assert victim_node.id not in bridge.present

        # The rescuer joins; it gets the victim's chunk once that lease has run out.
        harness.claim(rescuer.claim_code())
        job = finished_job(db, job_id)
        assert job.status == JobStatus.COMPLETED.value, job.error
        rescuer_node = node_named(db, "rescuer")
        with read_session(db) as s:
            reissued = s.get(SimChunk, chunk.id)
            assert reissued is not None and reissued.attempts >= 2 and reissued.expirations >= 1
            assert rescuer_node is not None and reissued.node_id == rescuer_node.id
        assert job.completed_iterations == 600
        assert_same_report(job.result, SLOW, wowlab_hooks, iterations=600, seed=99)

        # The rescuer hangs: only the broker's keepalive can tell.
        assert rescuer_node.status == NodeStatus.ONLINE.value
        stopped_at = time.monotonic()
        rescuer.proc.send_signal(signal.SIGSTOP)

        def rescuer_offline() -> bool:
            node = node_named(db, "rescuer")
            return node is not None and node.status == NodeStatus.OFFLINE.value

        bound = 1.5 * KEEPALIVE + BROKER_SWEEP
        wait_until("the hung node to be marked offline", rescuer_offline, timeout=bound + 1.0)
        hung_for = time.monotonic() - stopped_at
        print(f"hung node marked offline {hung_for:.2f} s after SIGSTOP")
        assert hung_for >= 1.5 * KEEPALIVE - 0.5  # the will, not anything else
        rescuer.proc.send_signal(signal.SIGCONT)
