"""A wrong token, or a node publishing on another node's topics, achieves nothing: the
bridge refuses it and logs why, and with the example ACL the broker does not even pass it on."""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator, CoordinatorSettings
from wowlab_core.errors import AuthenticationFailed
from wowlab_core.models import ChunkStatus, NodeStatus
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import NodeCredentials
from wowlab_core.testing.conformance import (
    TransportHarness,
    complete_all,
    registered_node,
)
from wowlab_transport_mqtt import topics
from wowlab_transport_mqtt.broker import publish_properties
from wowlab_transport_mqtt.client import MqttTransport

from .helpers import RawClient, node_named
from .mosquitto import Broker, running_bridge, running_broker

EXAMPLE_ACL = Path(__file__).parents[2] / "wowlab_transport_mqtt" / "examples" / "acl"
SETTINGS = CoordinatorSettings(lease_seconds=600.0, heartbeat_seconds=0.5)


@pytest.mark.anyio
async def test_wrong_token_and_another_nodes_topic_are_refused_and_logged(
    sqlite_db: Engine, wowlab_hooks: Hooks, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wowlab_transport_mqtt")
    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks, settings=SETTINGS)
    harness = TransportHarness(coordinator, lambda: MqttTransport(broker.url, timeout=5.0))
    with running_bridge(coordinator, broker.url):
        transport = harness.make_transport()
        try:
            a = await registered_node(harness, transport, name="a")
            b = await registered_node(harness, transport, name="b")
            job_id = harness.submit(100, chunks=4)
            with pytest.raises(AuthenticationFailed):
                await transport.lease(NodeCredentials(a.node_id, "not-the-token"), 4)
            # Node a asks on node b's request topic, with its own token.
            with pytest.raises(AuthenticationFailed):
                await transport.lease(NodeCredentials(b.node_id, a.token), 4)
            with pytest.raises(AuthenticationFailed):
                await transport.complete(NodeCredentials(b.node_id, a.token), [])
            assert {c.status for c in harness.chunks(job_id)} == {ChunkStatus.PENDING.value}
        finally:
            await transport.aclose()
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any(
        f"refused lease from node {a.node_id}" in m and "token is not valid" in m for m in refusals
    ), refusals
    assert any(f"refused lease from node {b.node_id}" in m for m in refusals), refusals
    assert any(f"refused complete from node {b.node_id}" in m for m in refusals), refusals


@pytest.mark.anyio
async def test_example_acl_confines_each_node_to_its_own_topics(
    sqlite_db: Engine, wowlab_hooks: Hooks, tmp_path: Path
) -> None:
    acl = tmp_path / "acl"
    shutil.copy(EXAMPLE_ACL, acl)
    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks, settings=SETTINGS)
    with running_broker(tmp_path / "broker", acl_file=acl) as broker:
        harness = TransportHarness(coordinator, lambda: MqttTransport(broker.url, timeout=5.0))
        with running_bridge(coordinator, broker.url, username="wowlab-bridge") as bridge:
            honest, other = harness.make_transport(), harness.make_transport()
            attacker: RawClient | None = None
            try:
                # Honest nodes work under the ACL: register, claim, lease, complete.
                a = await registered_node(harness, honest, name="a")
                b = await registered_node(harness, other, name="b")
                await other.heartbeat(b)
                job_id = harness.submit(100, chunks=4)
                [lease] = await other.lease(b, 1)
                [outcome] = await complete_all(other, b, [lease])
                assert outcome.outcome == "accepted"
                with anyio.fail_after(5):
                    while b.node_id not in bridge.present:
                        await anyio.sleep(0.02)

                # Node a's user, on its own connection, goes after node b's topics.
                client_id = f"wowlab-{a.node_id}-{uuid.uuid4().hex[:8]}"
                attacker = RawClient(broker.port, client_id=client_id, username=str(a.node_id))
                attacker.subscribe(
                    topics.reply_topic(client_id),
                    topics.inbox_topic(b.node_id),
                    topics.status_topic(b.node_id),
                )
                request = json.dumps({"token": a.token, "max_chunks": 3}).encode()
                props: Any = publish_properties(
                    correlation=b"x" * 16, response_topic=topics.reply_topic(client_id)
                )
                denied = "Not authorized"
                assert (
                    attacker.publish(
                        topics.request_topic(b.node_id, "lease"), request, properties=props
                    )
                    == denied
                )
                assert (
                    attacker.publish(topics.status_topic(b.node_id), b"offline", retain=True)
                    == denied
                )
                assert attacker.publish(topics.inbox_topic(b.node_id), b'{"type":"work"}') == denied
                # Its own request topic is fine (and answered on its own reply topic).
                assert (
                    attacker.publish(
                        topics.request_topic(a.node_id, "heartbeat"), request, properties=props
                    )
                    == "Success"
                )
                with anyio.fail_after(5):
                    while not attacker.received:
                        await anyio.sleep(0.02)
                # New work wakes node b: the attacker, subscribed to b's inbox, sees nothing.
                wake_ups = bridge.stats.wake_ups
                harness.submit(100, chunks=2)
                with anyio.fail_after(5):
                    while bridge.stats.wake_ups == wake_ups:
                        await anyio.sleep(0.02)
                await anyio.sleep(0.3)
                assert [t for t, _ in attacker.received] == [topics.reply_topic(client_id)]
                # Nothing changed for node b.
                node_b = node_named(sqlite_db, "b")
                assert node_b is not None and node_b.status == NodeStatus.ONLINE.value
                assert [c.status for c in harness.chunks(job_id)].count("pending") == 3
            finally:
                if attacker is not None:
                    attacker.close()
                await honest.aclose()
                await other.aclose()
