"""The plugin: the ``mqtt`` transport and ``wowlab mqtt bridge``; URLs and topics."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

from wowlab_core.db import create_all, create_db_engine
from wowlab_core.errors import InvalidRequest
from wowlab_core.plugins import Hooks, build_registry
from wowlab_core.protocol import NodeCredentials, NodeInfo
from wowlab_transport_mqtt import topics
from wowlab_transport_mqtt.broker import BrokerSettings
from wowlab_transport_mqtt.client import MqttTransport

from .mosquitto import Broker


def test_entry_point_registers_the_mqtt_transport() -> None:
    hooks = Hooks(build_registry().pm)
    transport = hooks.transport("mqtt")("mqtts://bridge:s%40cret@broker.example?keepalive=5")
    assert isinstance(transport, MqttTransport)
    assert transport.broker == BrokerSettings(
        host="broker.example",
        port=8883,
        username="bridge",
        password="s@cret",
        tls=True,
        keepalive=5,
    )


def test_broker_urls_and_options() -> None:
    settings = BrokerSettings.from_url("mqtt://h:1999", ca_certs="/ca.pem", tls=True, timeout=None)
    assert (settings.host, settings.port, settings.tls, settings.ca_certs) == (
        "h",
        1999,
        True,
        "/ca.pem",
    )
    assert BrokerSettings.from_url("").address == "127.0.0.1:1883"
    with pytest.raises(InvalidRequest, match="mqtt://"):
        BrokerSettings.from_url("http://h")
    with pytest.raises(InvalidRequest, match="unknown MQTT option"):
        BrokerSettings.from_url("mqtt://h?colour=red")
    with pytest.raises(InvalidRequest, match="keepalive"):
        BrokerSettings.from_url("mqtt://h?keepalive=soon")
    transport = MqttTransport("mqtt://h", timeout=3, resend_seconds=0.5)
    assert transport.options.timeout == 3 and transport.broker.host == "h"


def test_topics_round_trip() -> None:
    assert topics.parse(topics.request_topic(17, "lease")) == topics.Parsed("request", 17, "lease")
    assert topics.parse(topics.status_topic(3)) == topics.Parsed("status", 3)
    assert topics.parse(topics.REGISTER) == topics.Parsed("register")
    for foreign in ("wowlab/v1/nodes/x/req/lease", "wowlab/v1/nodes/1/inbox", "other/topic"):
        assert topics.parse(foreign) is None
    assert topics.parse(topics.ENROLL) == topics.Parsed("enroll")
    assert topics.is_registration_reply_topic(topics.registration_reply_topic("wowlab-reg-abc"))
    for not_a_reply in (
        "wowlab/v1/clients/+/reply",
        "wowlab/v1/clients/#",
        "wowlab/v1/nodes/3/inbox",
    ):
        assert not topics.is_registration_reply_topic(not_a_reply)


def test_cli_has_the_bridge_command() -> None:
    from wowlab_core.cli import cli
    from wowlab_transport_mqtt.plugin import wowlab_register_commands

    wowlab_register_commands(cli)
    result = CliRunner().invoke(cli, ["mqtt", "bridge", "--help"])
    assert result.exit_code == 0 and "--database-url" in result.output


def test_bridge_command_serves_nodes_until_sigterm(broker: Broker, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'pool.db'}"
    engine = create_db_engine(db_url)
    create_all(engine)
    engine.dispose()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wowlab_core",
            "mqtt",
            "bridge",
            "--url",
            broker.url,
            "--database-url",
            db_url,
            "--password-file",
            str(broker.bridge_password_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:

        async def register() -> tuple[str, bool]:
            transport = MqttTransport(broker.url, timeout=20.0)
            try:
                reg = await transport.register(NodeInfo(name="via-cli"))
                status = await transport.claim_status(NodeCredentials(reg.node_id, reg.token))
                return reg.claim_code, status.claimed
            finally:
                await transport.aclose()

        code, claimed = anyio.run(register)
        assert len(code) == 6 and not claimed
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0, out
        assert "bridge stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_unanswered_requests_are_resent_ever_less_often_and_out_of_step() -> None:
    from wowlab_transport_mqtt.client import RESEND_BACKOFF_CAP, RESEND_JITTER, resend_waits

    exact = resend_waits(5.0, uniform=lambda lo, hi: (lo + hi) / 2)
    assert [next(exact) for _ in range(5)] == [5.0, 10.0, 20.0, 20.0, 20.0]
    assert RESEND_BACKOFF_CAP * 5.0 == 20.0
    rng = random.Random(7)  # fixed seed: 200 nodes' first waits spread over ±20 %
    firsts = [next(resend_waits(5.0, uniform=rng.uniform)) for _ in range(200)]
    assert all(5.0 * (1 - RESEND_JITTER) <= w <= 5.0 * (1 + RESEND_JITTER) for w in firsts)
    assert max(firsts) - min(firsts) > 1.5  # out of step, not all at 5 s
