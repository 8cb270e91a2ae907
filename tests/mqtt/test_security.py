"""The attacks of the security review, against a real Mosquitto running the shipped
configuration (``wowlab mqtt setup-broker``): each one worked with the old example
(``allow_anonymous true``, an ACL keyed on claimed user names, the fixed client id
``wowlab-bridge``) and fails now.

The attacker knows everything public: the topic names, the node ids, the bridge's user
name and the registration identity's public password.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator, CoordinatorSettings
from wowlab_core.errors import AuthenticationFailed, TransportError
from wowlab_core.models import ChunkStatus, NodeStatus
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import Heartbeat, NodeCredentials, NodeInfo, Registration
from wowlab_core.testing.conformance import TransportHarness, complete_all
from wowlab_transport_mqtt import accounts, topics
from wowlab_transport_mqtt.bridge import MqttBridge
from wowlab_transport_mqtt.broker import publish_properties
from wowlab_transport_mqtt.client import MqttTransport

from .helpers import RawClient, node_named, wait_until
from .mosquitto import Broker, in_bridge_loop, running_bridge

SETTINGS = CoordinatorSettings(lease_seconds=600.0, heartbeat_seconds=0.5)
DENIED = "Not authorized"
#: Every wildcard an eavesdropper would try, and the topics it would like to read.
WILDCARDS = (
    "#",
    "+/#",
    "+/+/+/+/+",
    "wowlab/#",
    "wowlab/v1/#",
    "wowlab/v1/clients/+/reply",
    "wowlab/v1/clients/#",
    "wowlab/v1/nodes/+/reply",
    "wowlab/v1/nodes/+/inbox",
    "wowlab/v1/nodes/+/status",
    "wowlab/v1/nodes/+/req/+",
    "wowlab/v1/register",
    "wowlab/v1/enroll",
    "$share/spy/wowlab/v1/clients/+/reply",
    "$share/spy/#",
    # Joining the bridges' shared group would take requests meant for a bridge.
    "$share/wowlab/wowlab/v1/nodes/+/req/+",
    "$share/wowlab/wowlab/v1/register",
    "$share/wowlab/wowlab/v1/#",
    "$share/wowlab/#",
    "$CONTROL/#",
    "$CONTROL/dynamic-security/v1/response",
    "$SYS/#",
)


@dataclass
class Pool:
    broker: Broker
    bridge: MqttBridge
    harness: TransportHarness
    honest: MqttTransport


@pytest.fixture
async def pool(sqlite_db: Engine, wowlab_hooks: Hooks, broker: Broker) -> AsyncIterator[Pool]:
    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks, settings=SETTINGS)
    harness = TransportHarness(coordinator, lambda: MqttTransport(broker.url, timeout=5.0))
    with running_bridge(coordinator, broker) as bridge:
        honest = harness.make_transport()
        try:
            yield Pool(broker, bridge, harness, honest)
        finally:
            await honest.aclose()


async def register_and_work(pool: Pool, name: str) -> tuple[Registration, NodeCredentials]:
    """An honest node registers, is claimed, heartbeats, leases and completes a chunk."""
    reg = await pool.honest.register(NodeInfo(name=name))
    creds = NodeCredentials(reg.node_id, reg.token)
    await anyio.to_thread.run_sync(pool.harness.claim, reg.claim_code)
    await pool.honest.heartbeat(creds, Heartbeat())
    pool.harness.submit(10, chunks=1)
    leases = await pool.honest.lease(creds, 1)
    assert [o.outcome for o in await complete_all(pool.honest, creds, leases)] == ["accepted"]
    return reg, creds


def attacker(pool: Pool, client_id: str = "spy", **login: Any) -> RawClient:
    """A client logged in as the registration identity (anyone can), unless told otherwise."""
    login.setdefault("username", accounts.REGISTRATION_USERNAME)
    login.setdefault("password", accounts.REGISTRATION_PASSWORD)
    return RawClient(pool.broker.port, client_id=client_id, **login)


@pytest.mark.anyio
async def test_no_login_without_the_right_password(pool: Pool) -> None:
    reg, _ = await register_and_work(pool, "victim")
    port = pool.broker.port
    attempts = {
        "anonymous": RawClient(port, client_id="a1"),
        "bridge, no password": RawClient(port, client_id="a2", username="wowlab-bridge"),
        "bridge, wrong password": RawClient(
            port, client_id="a3", username="wowlab-bridge", password="guess"
        ),
        "bridge, its client id": RawClient(
            port,
            client_id=pool.bridge.client_id,
            username="wowlab-bridge",
            password="guess",
        ),
        "node, no password": RawClient(port, client_id="a4", username=str(reg.node_id)),
        "node, wrong password": RawClient(
            port,
            client_id=accounts.node_client_id(reg.node_id, reg.token),
            username=str(reg.node_id),
            password=accounts.node_password("another token"),
        ),
        "node, its token as password": RawClient(
            port, client_id="a5", username=str(reg.node_id), password=reg.token
        ),
        "node, right password, other client id": RawClient(
            port,
            client_id="a6",
            username=str(reg.node_id),
            password=accounts.node_password(reg.token),
        ),
        "user name +": RawClient(port, client_id="a7", username="+", password="x"),
        "user name #": RawClient(port, client_id="a8", username="#", password="x"),
        "registration, wrong password": RawClient(
            port, client_id="a9", username=accounts.REGISTRATION_USERNAME, password="x"
        ),
    }
    assert {who: c.connected for who, c in attempts.items()} == dict.fromkeys(attempts, DENIED)
    # The bridge was never disconnected by any of them.
    assert pool.bridge._client is not None and pool.bridge._client.is_connected()
    assert "closing old connection" not in pool.broker.log_text()


@pytest.mark.anyio
@pytest.mark.parametrize("client_id", ["spy", "#", "+", "wowlab-bridge"])
async def test_registration_replies_reach_only_the_registering_client(
    pool: Pool, client_id: str
) -> None:
    spy = attacker(pool, client_id)
    try:
        assert spy.connected == "Success"
        assert spy.subscribe(*WILDCARDS) == [DENIED] * len(WILDCARDS)
        reg, creds = await register_and_work(pool, "victim")
        await pool.honest.claim_status(creds)
        await anyio.sleep(0.3)
        assert spy.received == []
        # A node's secrets never reach a topic the spy may read.
        for secret in (reg.token, reg.claim_code, accounts.node_password(reg.token)):
            assert secret.encode() not in spy.seen()
    finally:
        spy.close()
    assert pool.bridge._client is not None and pool.bridge._client.is_connected()


@pytest.mark.anyio
async def test_a_reply_topic_needs_its_random_name(pool: Pool) -> None:
    """The registration identity may read a reply topic it names: its own random one."""
    spy = attacker(pool, "spy-1")
    mine = topics.registration_reply_topic("spy-1")
    try:
        assert spy.subscribe(mine) == ["Granted QoS 1"]
        props: Any = publish_properties(correlation=b"c" * 16, response_topic=mine)
        body = json.dumps({"info": {"name": "spy"}}).encode()
        assert spy.publish(topics.REGISTER, body, properties=props) == "Success"
        wait_until("the spy's own registration answer", lambda: spy.received, timeout=5)
        [(topic, payload)] = spy.received
        assert topic == mine and json.loads(payload)["ok"] is True
        # It may not publish anything else, answers included.
        for target in (mine, topics.inbox_topic(1), topics.request_topic(1, "lease")):
            assert spy.publish(target, b"{}") == DENIED
    finally:
        spy.close()


@pytest.mark.anyio
async def test_a_node_is_confined_to_its_own_topics(pool: Pool, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger="wowlab_transport_mqtt")
    _, a = await register_and_work(pool, "a")
    other = pool.harness.make_transport()
    try:
        reg_b = await other.register(NodeInfo(name="b"))
        b = NodeCredentials(reg_b.node_id, reg_b.token)
        await anyio.to_thread.run_sync(pool.harness.claim, reg_b.claim_code)
        await other.heartbeat(b, Heartbeat())
        job_id = pool.harness.submit(100, chunks=4)
        # Node a, logged in as itself (a second connection would kick its own first one).
        await pool.honest.aclose()
        node_a = RawClient(
            pool.broker.port,
            client_id=accounts.node_client_id(a.node_id, a.token),
            username=accounts.node_username(a.node_id),
            password=accounts.node_password(a.token),
        )
        try:
            assert node_a.connected == "Success"
            own = [topics.node_reply_topic(a.node_id), topics.inbox_topic(a.node_id)]
            assert node_a.subscribe(*own) == ["Granted QoS 1"] * 2
            theirs = [
                topics.node_reply_topic(b.node_id),
                topics.inbox_topic(b.node_id),
                topics.status_topic(b.node_id),
            ]
            assert node_a.subscribe(*theirs, *WILDCARDS) == [DENIED] * (3 + len(WILDCARDS))
            # Publishing as node b, with b's token even, is refused by the broker.
            lease_b = json.dumps({"token": b.token, "max_chunks": 4}).encode()
            props: Any = publish_properties(
                correlation=b"x" * 16, response_topic=topics.node_reply_topic(a.node_id)
            )
            for topic in (topics.request_topic(b.node_id, "lease"), topics.inbox_topic(b.node_id)):
                assert node_a.publish(topic, lease_b, properties=props) == DENIED
            assert node_a.publish(topics.status_topic(b.node_id), b"offline", retain=True) == DENIED
            assert node_a.publish(topics.REGISTER, b"{}", properties=props) == DENIED
            # Its own request, answered on another node's reply topic: the bridge drops it.
            misdirected = pool.bridge.stats.misdirected
            lease_a = json.dumps({"token": a.token, "max_chunks": 4}).encode()
            for elsewhere in (
                topics.node_reply_topic(b.node_id),
                topics.registration_reply_topic("spy"),
            ):
                props = publish_properties(correlation=os.urandom(16), response_topic=elsewhere)
                topic = topics.request_topic(a.node_id, "lease")
                assert node_a.publish(topic, lease_a, properties=props) == "Success"
            wait_until("both dropped", lambda: pool.bridge.stats.misdirected == misdirected + 2)
            # New work wakes node b: node a sees nothing of it.
            wake_ups = pool.bridge.stats.wake_ups
            pool.harness.submit(100, chunks=2)
            wait_until("a wake-up", lambda: pool.bridge.stats.wake_ups > wake_ups)
            await anyio.sleep(0.3)
            # (A wake-up in its own inbox is fine: the job may be one it may run, too.)
            assert [(t, m) for t, m in node_a.received if t not in own] == []
        finally:
            node_a.close()
        node_b = node_named(pool.harness.coordinator.db, "b")
        assert node_b is not None and node_b.status == NodeStatus.ONLINE.value
        assert [c.status for c in pool.harness.chunks(job_id)] == [ChunkStatus.PENDING.value] * 4
    finally:
        await other.aclose()
    assert any("needs the Response Topic" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_nobody_takes_the_bridges_or_a_nodes_client_id(pool: Pool) -> None:
    reg, creds = await register_and_work(pool, "victim")
    requests = pool.bridge.stats.requests
    # The client ids an attacker could know: the old fixed ones, the public prefixes.
    guesses = ["wowlab-bridge", "wowlab-bridge-0", f"wowlab-node-{reg.node_id}", "wowlab-1"]
    intruders = [attacker(pool, guess) for guess in guesses]
    try:
        assert [i.connected for i in intruders] == ["Success"] * len(guesses)
        await anyio.sleep(0.3)
        # Bridge and node are still connected: the node's requests are still answered.
        assert pool.bridge._client is not None and pool.bridge._client.is_connected()
        await pool.honest.heartbeat(creds, Heartbeat())
        assert pool.bridge.stats.requests == requests + 1
        assert "closing old connection" not in pool.broker.log_text()
    finally:
        for intruder in intruders:
            intruder.close()
    # The real ids are secrets: nothing the attacker can read ever holds them.
    assert pool.bridge.client_id != "wowlab-bridge" and len(pool.bridge.client_id) >= 45
    assert accounts.node_client_id(reg.node_id, reg.token).startswith("wowlab-node-")


@pytest.mark.anyio
async def test_oversized_messages_are_refused_before_parsing(pool: Pool) -> None:
    _, creds = await register_and_work(pool, "sender")
    big = attacker(pool, "big")
    try:
        props: Any = publish_properties(
            correlation=b"b" * 16, response_topic=topics.registration_reply_topic("big")
        )
        # 48 MiB: the broker drops the connection (max_packet_size), nothing reaches the bridge.
        big.client.publish(topics.REGISTER, b"x" * (48 * 1024 * 1024), qos=1, properties=props)
        wait_until("the broker to drop the connection", lambda: big.disconnects, timeout=10)
        assert "oversize packet" in pool.broker.log_text()
    finally:
        big.client.loop_stop()
    requests, oversized = pool.bridge.stats.requests, pool.bridge.stats.oversized
    # Below the broker's limit but above the bridge's: dropped unread.
    small = attacker(pool, "small")
    try:
        body = b'{"info": {"name": "' + b"y" * (1024 * 1024) + b'"}}'
        assert small.publish(topics.REGISTER, body, properties=props) == "Success"
        wait_until("the bridge to drop it", lambda: pool.bridge.stats.oversized == oversized + 1)
    finally:
        small.close()
    # A node's own request above 4 MiB: dropped as well (the node gets no answer).
    huge = {"completions": [{"chunk_id": 1, "lease_token": "t", "result": {"x": "z" * 5_000_000}}]}
    with pytest.raises(TransportError):
        await pool.honest._ask(creds, "complete", huge, timeout=1.5)
    assert pool.bridge.stats.oversized == oversized + 2
    assert pool.bridge.stats.requests == requests


@pytest.mark.anyio
async def test_a_node_without_an_account_enrols_with_its_token(
    pool: Pool, sqlite_db: Engine
) -> None:
    from wowlab_core.db import write_session
    from wowlab_core.nodes import register_node

    with write_session(sqlite_db) as s:  # registered elsewhere (HTTP, the database ...)
        new = register_node(s, info=NodeInfo(name="elsewhere"))
        s.commit()
    creds = NodeCredentials(new.node.id or 0, new.token)
    assert creds.node_id not in await in_bridge_loop(pool.bridge, pool.bridge.accounts.node_ids)
    # A wrong token creates no account.
    with pytest.raises(AuthenticationFailed):
        await pool.honest.claim_status(NodeCredentials(creds.node_id, "stolen?"))
    assert creds.node_id not in await in_bridge_loop(pool.bridge, pool.bridge.accounts.node_ids)
    # The right one: refused once by the broker, enrolled, then answered.
    status = await pool.honest.claim_status(creds)
    assert status.claim_code == new.node.claim_code
    assert creds.node_id in await in_bridge_loop(pool.bridge, pool.bridge.accounts.node_ids)
    # Made again over an existing one (a reused id): the node logs in again.
    created = pool.bridge.stats.accounts_created
    await in_bridge_loop(pool.bridge, pool.bridge.accounts.create, creds.node_id, creds.token)
    assert (await pool.honest.claim_status(creds)).claim_code == new.node.claim_code
    assert pool.bridge.stats.accounts_created == created  # no second enrolment was needed


@pytest.mark.anyio
async def test_a_removed_node_loses_its_account_at_once(pool: Pool, wowlab_hooks: Hooks) -> None:
    from wowlab_core.db import write_session
    from wowlab_core.models import Node

    _, creds = await register_and_work(pool, "leaving")
    _, stays = await register_and_work(pool, "staying")
    assert {creds.node_id, stays.node_id} <= await in_bridge_loop(
        pool.bridge, pool.bridge.accounts.node_ids
    )
    with write_session(pool.harness.coordinator.db) as s:
        node = s.get(Node, creds.node_id)
        s.delete(node)
        s.commit()
    wowlab_hooks.node_removed(node_id=creds.node_id, user=None)  # as the portal does
    await anyio.to_thread.run_sync(
        wait_until,
        "the account to go",
        lambda: pool.bridge.stats.accounts_deleted == 1,
    )
    accounts_left = await in_bridge_loop(pool.bridge, pool.bridge.accounts.node_ids)
    assert creds.node_id not in accounts_left and stays.node_id in accounts_left
    # Its connection was closed; it cannot log in, nor enrol again.
    with pytest.raises(AuthenticationFailed):
        await pool.honest.heartbeat(creds, Heartbeat())
    await pool.honest.heartbeat(stays, Heartbeat())


@pytest.mark.anyio
async def test_the_sweep_deletes_accounts_of_nodes_removed_elsewhere(pool: Pool) -> None:
    from wowlab_core.db import write_session
    from wowlab_core.models import Node

    _, creds = await register_and_work(pool, "gone")
    with write_session(pool.harness.coordinator.db) as s:  # another process, no hook here
        s.delete(s.get(Node, creds.node_id))
        s.commit()
    assert creds.node_id in await in_bridge_loop(pool.bridge, pool.bridge.accounts.node_ids)
    assert await in_bridge_loop(pool.bridge, pool.bridge.upkeep.sweep) == 1
    assert creds.node_id not in await in_bridge_loop(pool.bridge, pool.bridge.accounts.node_ids)


@pytest.mark.anyio
async def test_registrations_are_rate_limited(
    sqlite_db: Engine, wowlab_hooks: Hooks, broker: Broker
) -> None:
    from wowlab_core.errors import RateLimited

    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks, settings=SETTINGS)
    with running_bridge(coordinator, broker, registrations_per_minute=2):
        transport = MqttTransport(broker.url, timeout=5.0)
        try:
            for name in ("one", "two"):
                await transport.register(NodeInfo(name=name))
            with pytest.raises(RateLimited, match="too many node registrations"):
                await transport.register(NodeInfo(name="three"))
        finally:
            await transport.aclose()
    assert node_named(sqlite_db, "three") is None
