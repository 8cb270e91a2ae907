"""The ``mqtt`` plugin: the node transport ``mqtt``, the bridge inside the portal (when its
``mqtt_url`` setting is set) and the ``wowlab mqtt bridge`` command."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

import anyio
import click

from wowlab_core.errors import InvalidRequest
from wowlab_core.hookspecs import hookimpl
from wowlab_core.transport import PortalService, TransportFactory
from wowlab_transport_mqtt import accounts
from wowlab_transport_mqtt.broker import BrokerSettings
from wowlab_transport_mqtt.broker_setup import BrokerFiles, find_plugin, setup_broker
from wowlab_transport_mqtt.client import mqtt_transport

log = logging.getLogger(__name__)


@hookimpl
def wowlab_register_transports(register: Any) -> None:
    """Register the ``mqtt`` transport: ``mqtt://host:port`` (``mqtts://`` for TLS); options
    ``username``, ``password``, ``tls``, ``ca_certs``, ``certfile``, ``keyfile``,
    ``keepalive`` go to paho, ``timeout``/``result_timeout`` bound requests."""
    factory: TransportFactory = mqtt_transport
    register("mqtt", factory)


@hookimpl
def wowlab_portal_services(app: Any) -> list[PortalService]:
    """Run the bridge inside the portal when its settings name a broker (``mqtt_url``)."""
    url = getattr(app.state.settings, "mqtt_url", None)
    if not url:
        return []
    from wowlab_transport_mqtt.bridge import MqttBridge

    settings = app.state.settings
    password = getattr(settings, "mqtt_password", None)
    bridge = MqttBridge(
        app.state.coordinator,
        url,
        password_file=getattr(settings, "mqtt_password_file", None),
        password=password.get_secret_value() if password else None,
        instance=getattr(settings, "mqtt_bridge_instance", None),
    )
    return [bridge.run]


@click.group("mqtt")
def mqtt_group() -> None:
    """The MQTT transport: set a broker up, run the bridge between it and the coordinator."""


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
@click.option(
    "--password-file",
    default=None,
    envvar="WOWLAB_MQTT_PASSWORD_FILE",
    help="File holding the bridge's broker password (written by `wowlab mqtt setup-broker`; "
    "or set WOWLAB_MQTT_PASSWORD). [env: WOWLAB_MQTT_PASSWORD_FILE]",
)
@click.option(
    "--username",
    default=accounts.BRIDGE_USERNAME,
    show_default=True,
    help="The bridge's MQTT user name.",
)
@click.option("--ca-certs", default=None, help="CA file for TLS (implies TLS).")
@click.option("--certfile", default=None, help="Client certificate for TLS.")
@click.option("--keyfile", default=None, help="Client key for TLS.")
@click.option(
    "--client-id",
    default=None,
    help="MQTT client id (default: derived from the password and --instance).",
)
@click.option(
    "--instance",
    default="",
    envvar="WOWLAB_MQTT_BRIDGE_INSTANCE",
    help="This bridge's name when several share the load (1, 2, ...; keep it across "
    "restarts: it names the bridge's session). [env: WOWLAB_MQTT_BRIDGE_INSTANCE]",
)
def bridge_command(
    url: str,
    database_url: str | None,
    password_file: str | None,
    username: str,
    ca_certs: str | None,
    certfile: str | None,
    keyfile: str | None,
    client_id: str | None,
    instance: str,
) -> None:
    """Answer nodes' MQTT requests with the coordinator until Ctrl-C.

    Several bridges (on one PostgreSQL) share the requests through the broker's shared
    subscriptions: give each its own --instance.
    """
    from wowlab_core.coordinator import Coordinator, CoordinatorSettings
    from wowlab_core.db import create_db_engine
    from wowlab_core.plugins import get_hooks
    from wowlab_core.wakeups import Wakeups
    from wowlab_transport_mqtt.bridge import MqttBridge

    if BrokerSettings.from_url(url).password is not None:
        raise click.UsageError(
            "put the bridge's password in --password-file or WOWLAB_MQTT_PASSWORD, not in "
            "the URL: every user of this machine sees command lines in ps"
        )
    coordinator = Coordinator(
        create_db_engine(database_url), hooks=get_hooks(), settings=CoordinatorSettings.from_env()
    )
    try:
        bridge = MqttBridge(
            coordinator,
            url,
            username=username,
            password=os.environ.get("WOWLAB_MQTT_PASSWORD") or None,
            password_file=password_file,
            tls=True if ca_certs else None,
            ca_certs=ca_certs,
            certfile=certfile,
            keyfile=keyfile,
            client_id=client_id,
            instance=instance,
        )
    except InvalidRequest as exc:
        raise click.ClickException(exc.message) from None
    # Work submitted and nodes claimed by portal workers wake this bridge's nodes at once.
    wakeups = Wakeups(coordinator.db)
    coordinator.share_wakeups(wakeups)

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

    wakeups.start()
    try:
        anyio.run(main)
    finally:
        coordinator.settle(10.0)  # a job whose last result just came in is merged first
        wakeups.stop()
        coordinator.db.dispose()
    click.echo("bridge stopped")


_DEFAULTS = BrokerFiles()


@mqtt_group.command("setup-broker")
@click.option(
    "--conf",
    type=click.Path(dir_okay=False, path_type=Path),
    default=_DEFAULTS.conf,
    show_default=True,
    help="Where to write the Mosquitto settings (Debian includes /etc/mosquitto/conf.d/).",
)
@click.option(
    "--dynsec",
    type=click.Path(dir_okay=False, path_type=Path),
    default=_DEFAULTS.dynsec,
    show_default=True,
    help="The dynamic-security plugin's file (accounts; the broker rewrites it).",
)
@click.option(
    "--bridge-password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=_DEFAULTS.bridge_password_file,
    show_default=True,
    help="Where to write the bridge's password (mode 0600).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=1883, show_default=True)
@click.option("--bind-address", default=None, help="Listen on this address only.")
@click.option("--plugin", default=None, help="Path of mosquitto_dynamic_security.so.")
@click.option(
    "--registration-password",
    default=None,
    help="A private pool's registration password (default: the public one; nodes then "
    "need mqtt://wowlab-register:PASSWORD@host).",
)
@click.option(
    "--owner",
    default="mosquitto",
    show_default=True,
    help="The user the broker runs as: it gets the dynamic-security file ('' to skip).",
)
@click.option("--force", is_flag=True, help="Make new accounts even if the file exists.")
def setup_broker_command(
    conf: Path,
    dynsec: Path,
    bridge_password_file: Path,
    port: int,
    bind_address: str | None,
    plugin: str | None,
    registration_password: str | None,
    owner: str,
    force: bool,
) -> None:
    """Configure Mosquitto for wowlab: no anonymous logins, an account for the bridge."""
    plugin = plugin or find_plugin()
    if plugin is None:
        raise click.ClickException(
            "mosquitto_dynamic_security.so not found (Debian: apt install mosquitto); "
            "give its path with --plugin"
        )
    files = BrokerFiles(
        conf=conf,
        dynsec=dynsec,
        bridge_password_file=bridge_password_file,
        port=port,
        bind_address=bind_address,
        plugin=plugin,
        registration_password=registration_password or accounts.REGISTRATION_PASSWORD,
    )
    try:
        result = setup_broker(files, force=force, owner=owner or None)
    except (InvalidRequest, OSError) as exc:
        raise click.ClickException(str(getattr(exc, "message", exc))) from None
    click.echo(f"wrote {result.conf}")
    if result.dynsec is None:
        click.echo(f"kept {files.dynsec} and {files.bridge_password_file} (--force: new accounts)")
    else:
        click.echo(f"wrote {result.dynsec} (accounts) and {result.bridge_password_file}")
    click.echo(
        "next: restart Mosquitto, and give the portal (or `wowlab mqtt bridge`) "
        f"WOWLAB_MQTT_PASSWORD_FILE={result.bridge_password_file}"
    )


@hookimpl
def wowlab_register_commands(cli: click.Group) -> None:
    """Add ``wowlab mqtt bridge`` and ``wowlab mqtt setup-broker``."""
    cli.add_command(mqtt_group)


__all__ = [
    "mqtt_group",
    "wowlab_portal_services",
    "wowlab_register_commands",
    "wowlab_register_transports",
]
