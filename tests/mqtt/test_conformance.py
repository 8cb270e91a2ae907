"""The MQTT transport passes the transport conformance suite (SQLite and PostgreSQL),
against a real Mosquitto and a bridge on its own event loop."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.plugins import Hooks
from wowlab_core.testing.conformance import TransportConformance, TransportHarness
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_transport_mqtt.client import MqttTransport

from .mosquitto import Broker, running_bridge


class TestMqttTransport(TransportConformance):
    @pytest.fixture
    def transport_harness(
        self, db: Engine, wowlab_hooks: Hooks, broker: Broker
    ) -> Iterator[TransportHarness]:
        coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
        with running_bridge(coordinator, broker):
            yield TransportHarness(
                coordinator,
                lambda: MqttTransport(broker.url, timeout=10.0),
                # No broker listens on port 9 (discard) here.
                make_unreachable_transport=lambda: MqttTransport("mqtt://127.0.0.1:9", timeout=2.0),
            )
