"""The portal runs the MQTT bridge when ``WOWLAB_MQTT_URL`` is set: a node on the mqtt
transport registers, gets claimed in the portal and completes a job it serves."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.errors import TransportUnavailable
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import NodeCredentials, NodeInfo
from wowlab_core.testing.conformance import TransportHarness, complete_all
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_portal.app import create_app
from wowlab_portal.settings import PortalSettings
from wowlab_transport_mqtt import plugin as mqtt_plugin
from wowlab_transport_mqtt.client import MqttTransport

from .mosquitto import Broker


def test_portal_serves_mqtt_nodes_through_its_bridge(
    sqlite_db: Engine,
    wowlab_hooks: Hooks,
    register_plugin: Any,
    broker: Broker,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WOWLAB_DATA_DIR", str(tmp_path))
    # The bridge comes from the mqtt plugin's wowlab_portal_services, as when installed.
    register_plugin(mqtt_plugin)
    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    harness = TransportHarness(coordinator, lambda: MqttTransport(broker.url))
    app = create_app(
        PortalSettings(mqtt_url=broker.url, mqtt_password_file=str(broker.bridge_password_file)),
        coordinator=coordinator,
    )

    async def node_side() -> int:
        transport = MqttTransport(broker.url)
        try:
            reg = await transport.register(NodeInfo(name="over-mqtt", max_parallel=3))
            creds = NodeCredentials(reg.node_id, reg.token)
            await anyio.to_thread.run_sync(harness.claim, reg.claim_code)
            job_id = await anyio.to_thread.run_sync(lambda: harness.submit(30, chunks=3))
            leases = await transport.lease(creds, 3)
            outcomes = await complete_all(transport, creds, leases)
            assert [o.outcome for o in outcomes] == ["accepted"] * 3
            return job_id
        finally:
            await transport.aclose()

    with TestClient(app):  # the lifespan starts the bridge
        job_id = anyio.run(node_side)
    job = harness.job(job_id)
    assert job.status == "completed" and job.completed_iterations == 30


def test_the_portal_needs_the_bridges_password_with_an_mqtt_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from wowlab_portal.cli import portal

    monkeypatch.setenv("WOWLAB_MQTT_URL", "mqtt://broker.example:1883")
    monkeypatch.delenv("WOWLAB_MQTT_PASSWORD_FILE", raising=False)
    monkeypatch.delenv("WOWLAB_MQTT_PASSWORD", raising=False)
    result = CliRunner().invoke(portal, ["serve"])
    assert result.exit_code != 0
    assert "mqtt_url needs the bridge's broker password" in str(result.exception or result.output)


def test_portal_with_an_mqtt_url_but_no_mqtt_plugin_refuses_to_start(
    sqlite_db: Engine, wowlab_hooks: Hooks, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WOWLAB_DATA_DIR", str(tmp_path))
    app = create_app(
        PortalSettings(mqtt_url="mqtt://127.0.0.1:9", mqtt_password="bridge-password"),
        hooks=wowlab_hooks,
        db=sqlite_db,
    )
    refused = pytest.raises(TransportUnavailable, match=r"pip install 'wowlab\[mqtt\]'")
    with refused, TestClient(app):
        pass
