"""The ``mqtt`` plugin: the node transport ``mqtt`` and the ``wowlab mqtt bridge`` command."""

from __future__ import annotations

import logging
import signal
from typing import Any

import anyio
import click

from wowlab_core.hookspecs import hookimpl
from wowlab_core.transport import TransportFactory
from wowlab_transport_mqtt.client import mqtt_transport

log = logging.getLogger(__name__)


@hookimpl
def wowlab_register_transports(register: Any) -> None:
    """Register the ``mqtt`` transport: ``mqtt://host:port`` (``mqtts://`` for TLS); options
    ``username``, ``password``, ``tls``, ``ca_certs``, ``certfile``, ``keyfile``,
    ``keepalive`` go to paho, ``timeout``/``result_timeout`` bound requests."""
    factory: TransportFactory = mqtt_transport
    register("mqtt", factory)


@click.group("mqtt")
def mqtt_group() -> None:
    """The MQTT transport: run the bridge between a broker and the coordinator."""


@mqtt_group.command("bridge")
@click.option(
    "--url",
    default="mqtt://127.0.0.1:1883",
    show_default=True,
    help="The broker: mqtt://host:port, or mqtts://host:port for TLS.",
)
@click.option(
    "--database-url",
    default=None,
    help="The coordinator's database (default: WOWLAB_DATABASE_URL, else the local SQLite file).",
)
@click.option("--username", default=None, help="The bridge's MQTT user name.")
@click.option("--password", default=None, envvar="WOWLAB_MQTT_PASSWORD", help="Its password.")
@click.option("--ca-certs", default=None, help="CA file for TLS (implies TLS).")
@click.option("--certfile", default=None, help="Client certificate for TLS.")
@click.option("--keyfile", default=None, help="Client key for TLS.")
@click.option("--client-id", default="wowlab-bridge", show_default=True, help="MQTT client id.")
def bridge_command(
    url: str,
    database_url: str | None,
    username: str | None,
    password: str | None,
    ca_certs: str | None,
    certfile: str | None,
    keyfile: str | None,
    client_id: str,
) -> None:
    """Answer nodes' MQTT requests with the coordinator until Ctrl-C."""
    from wowlab_core.coordinator import Coordinator, CoordinatorSettings
    from wowlab_core.db import create_db_engine
    from wowlab_core.plugins import get_hooks
    from wowlab_transport_mqtt.bridge import MqttBridge

    coordinator = Coordinator(
        create_db_engine(database_url), hooks=get_hooks(), settings=CoordinatorSettings.from_env()
    )
    bridge = MqttBridge(
        coordinator,
        url,
        username=username,
        password=password,
        tls=True if ca_certs else None,
        ca_certs=ca_certs,
        certfile=certfile,
        keyfile=keyfile,
        client_id=client_id,
    )

    async def main() -> None:
        async with anyio.create_task_group() as tg:

            async def stop_on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        tg.cancel_scope.cancel()
                        return

            tg.start_soon(stop_on_signal)
            await tg.start(bridge.run)
            click.echo(f"wowlab MQTT bridge on {bridge.broker.address}; Ctrl-C stops it")

    anyio.run(main)
    click.echo("bridge stopped")


@hookimpl
def wowlab_register_commands(cli: click.Group) -> None:
    """Add ``wowlab mqtt bridge``."""
    cli.add_command(mqtt_group)


__all__ = ["mqtt_group", "wowlab_register_commands", "wowlab_register_transports"]
