"""Several bridges on one PostgreSQL share the nodes' requests through the broker's shared
subscriptions (``$share/wowlab/...``): each request is carried out once whichever bridge
gets it and however often it is resent, a restarted bridge resumes its session, and one
bridge at a time does the chores. Each bridge has its own coordinator and database engine,
as a bridge in its own process has."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack

import anyio
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from wowlab_core.coordinator import Coordinator, CoordinatorSettings
from wowlab_core.db import create_db_engine, read_session
from wowlab_core.models import ChunkLease, RequestKey, SimChunk
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import Heartbeat, NodeCredentials, NodeInfo
from wowlab_core.testing.conformance import TransportHarness, complete_all
from wowlab_core.wakeups import Wakeups
from wowlab_transport_mqtt import accounts, topics
from wowlab_transport_mqtt.bridge import MqttBridge
from wowlab_transport_mqtt.broker import publish_properties
from wowlab_transport_mqtt.client import MqttTransport

from .helpers import RawClient, wait_until
from .mosquitto import Broker, running_bridge

pytestmark = pytest.mark.postgres
SETTINGS = CoordinatorSettings(lease_seconds=600.0, heartbeat_seconds=0.5)


class Bridges:
    """Bridges named 1, 2, ... each on its own engine and coordinator; stop one at will."""

    def __init__(self, db: Engine, hooks: Hooks, broker: Broker) -> None:
        self.db, self.hooks, self.broker = db, hooks, broker
        self.running: dict[str, tuple[ExitStack, MqttBridge]] = {}
        self.coordinators: list[Coordinator] = []

    def start(self, name: str) -> MqttBridge:
        stack = ExitStack()
        engine = create_db_engine(self.db.url.render_as_string(hide_password=False))
        stack.callback(engine.dispose)
        coordinator = Coordinator(engine, hooks=self.hooks, settings=SETTINGS)
        stack.callback(coordinator.settle)  # before the engine goes (callbacks run LIFO)
        self.coordinators.append(coordinator)
        wakeups = stack.enter_context(Wakeups(engine))
        coordinator.share_wakeups(wakeups)
        bridge = stack.enter_context(running_bridge(coordinator, self.broker, instance=name))
        self.running[name] = (stack, bridge)
        return bridge

    def stop(self, name: str) -> None:
        stack, _ = self.running.pop(name)
        stack.close()

    def settle(self) -> None:
        """Wait until every bridge's coordinator merged the jobs it finished."""
        for coordinator in self.coordinators:
            assert coordinator.settle(), "a bridge's finisher did not settle in 30 s"

    def close(self) -> None:
        for name in list(self.running):
            self.stop(name)


@pytest.fixture
def bridges(postgres_db: Engine, wowlab_hooks: Hooks, broker: Broker) -> Iterator[Bridges]:
    started = Bridges(postgres_db, wowlab_hooks, broker)
    try:
        yield started
    finally:
        started.close()


def harness(db: Engine, hooks: Hooks, broker: Broker) -> TransportHarness:
    coordinator = Coordinator(db, hooks=hooks, settings=SETTINGS)
    return TransportHarness(coordinator, lambda: MqttTransport(broker.url, timeout=10.0))


async def claimed_node(h: TransportHarness, transport: MqttTransport, name: str) -> NodeCredentials:
    reg = await transport.register(NodeInfo(name=name, max_parallel=2))
    await anyio.to_thread.run_sync(h.claim, reg.claim_code)
    return NodeCredentials(reg.node_id, reg.token)


def node_login(broker: Broker, creds: NodeCredentials) -> RawClient:
    """A bare client logged in as the node (to resend a request byte for byte)."""
    client = RawClient(
        broker.port,
        client_id=accounts.node_client_id(creds.node_id, creds.token),
        username=accounts.node_username(creds.node_id),
        password=accounts.node_password(creds.token),
    )
    assert client.subscribe(topics.node_reply_topic(creds.node_id)) == ["Granted QoS 1"]
    return client


def resend_lease(client: RawClient, creds: NodeCredentials, correlation: bytes) -> None:
    client.publish(
        topics.request_topic(creds.node_id, "lease"),
        json.dumps({"token": creds.token, "max_chunks": 1}).encode(),
        properties=publish_properties(
            correlation=correlation, response_topic=topics.node_reply_topic(creds.node_id)
        ),
    )


@pytest.mark.anyio
async def test_two_bridges_share_the_requests_and_count_each_chunk_once(
    postgres_db: Engine, wowlab_hooks: Hooks, broker: Broker, bridges: Bridges
) -> None:
    one, two = bridges.start("1"), bridges.start("2")
    h = harness(postgres_db, wowlab_hooks, broker)
    transports = [h.make_transport() for _ in range(8)]
    try:
        nodes = [await claimed_node(h, t, f"n{i}") for i, t in enumerate(transports)]
        job_id = h.submit(160, chunks=16)
        accepted = 0

        async def work(t: MqttTransport, c: NodeCredentials) -> None:
            nonlocal accepted
            await t.heartbeat(c, Heartbeat())
            while leases := await t.lease(c, 2):
                outcomes = await complete_all(t, c, leases)
                accepted += sum(o.outcome == "accepted" for o in outcomes)

        async with anyio.create_task_group() as tg:
            for t, c in zip(transports, nodes, strict=True):
                tg.start_soon(work, t, c)
    finally:
        for t in transports:
            await t.aclose()
    assert accepted == 16
    bridges.settle()  # the bridge that counted the last result merges the job
    assert h.job(job_id).status == "completed"
    # Both bridges carried requests out; heartbeats and results went through the batches.
    assert one.stats.requests > 0 and two.stats.requests > 0
    assert one.completions.items + two.completions.items >= 8  # 2 results per request
    assert one.heartbeats.items + two.heartbeats.items == 8
    with read_session(postgres_db) as s:
        # Every lease (16 and the 8 empty last ones), result and heartbeat request: one key.
        assert len(s.exec(select(RequestKey)).all()) >= 16 + 8 + 8


@pytest.mark.anyio
async def test_a_request_resent_to_the_other_bridge_is_carried_out_once(
    postgres_db: Engine, wowlab_hooks: Hooks, broker: Broker, bridges: Bridges
) -> None:
    one, two = bridges.start("1"), bridges.start("2")
    h = harness(postgres_db, wowlab_hooks, broker)
    transport = h.make_transport()
    try:
        creds = await claimed_node(h, transport, "resender")
    finally:
        await transport.aclose()
    h.submit(40, chunks=4)
    client = node_login(broker, creds)
    try:
        before = one.stats.requests + two.stats.requests
        for _ in range(4):  # the broker hands the copies to the bridges in turn
            resend_lease(client, creds, b"same-request")
            wait_until("an answer", lambda: client.received, timeout=10)
            time.sleep(0.2)
        answers = {payload for _, payload in client.received}
    finally:
        client.close()
    assert len(answers) == 1 and b'"ok":true' in next(iter(answers))
    with read_session(postgres_db) as s:
        assert len(s.exec(select(ChunkLease)).all()) == 1
        assert len(s.exec(select(SimChunk).where(col(SimChunk.status) == "leased")).all()) == 1
    # Each bridge got copies; the one that did not lease answered from the stored key.
    assert one.stats.requests >= 1 and two.stats.requests >= 1
    assert one.stats.requests + two.stats.requests - before == 2
    assert one.stats.repeats_answered + two.stats.repeats_answered == 3


@pytest.mark.anyio
async def test_a_restarted_bridge_answers_what_arrived_while_it_was_down(
    postgres_db: Engine, wowlab_hooks: Hooks, broker: Broker, bridges: Bridges
) -> None:
    bridges.start("solo")
    h = harness(postgres_db, wowlab_hooks, broker)
    transport = h.make_transport()
    try:
        creds = await claimed_node(h, transport, "patient")
    finally:
        await transport.aclose()
    h.submit(20, chunks=2)
    bridges.stop("solo")  # its session (and subscriptions) stay with the broker
    client = node_login(broker, creds)
    try:
        resend_lease(client, creds, b"while-down")
        time.sleep(0.5)
        assert client.received == []
        bridges.start("solo")  # same instance, same client id: the session resumes
        wait_until("the queued request's answer", lambda: client.received, timeout=15)
    finally:
        client.close()
    [(_, payload)] = client.received
    assert len(json.loads(payload)["result"]) == 1
    with read_session(postgres_db) as s:
        assert len(s.exec(select(ChunkLease)).all()) == 1


def test_one_bridge_at_a_time_does_the_chores(bridges: Bridges) -> None:
    one, two = bridges.start("1"), bridges.start("2")
    wait_until("a leader", lambda: one.leadership.leading or two.leadership.leading, 10)
    time.sleep(1.0)
    assert one.leadership.leading != two.leadership.leading
    leader = "1" if one.leadership.leading else "2"
    other = two if leader == "1" else one
    bridges.stop(leader)
    wait_until("the other bridge to take over", lambda: other.leadership.leading, 10)


def test_a_bridge_that_cannot_reach_its_broker_says_so_in_one_error(
    sqlite_db: Engine, wowlab_hooks: Hooks
) -> None:
    from wowlab_core.errors import TransportError

    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks, settings=SETTINGS)
    bridge = MqttBridge(coordinator, "mqtt://127.0.0.1:1", password="x", connect_timeout=0.5)
    with pytest.raises(TransportError, match=r"cannot reach the MQTT broker at 127\.0\.0\.1:1"):
        anyio.run(bridge.run)
