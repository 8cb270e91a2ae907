"""Real Mosquitto brokers for the tests: started on a free port, killed and restarted at will,
and a bridge running on its own event loop in a background thread (as in a portal).

Every broker runs the shipped configuration: ``wowlab mqtt setup-broker``'s settings
(:func:`setup_broker`, only the port, the address and the file paths changed), included
from a main file like Debian's own ``mosquitto.conf`` (persistence, log), with the
dynamic-security accounts it makes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from anyio.from_thread import BlockingPortal, start_blocking_portal

from wowlab_core.coordinator import Coordinator
from wowlab_core.testing.databases import missing_part
from wowlab_transport_mqtt.bridge import MqttBridge
from wowlab_transport_mqtt.broker_setup import BrokerFiles, find_plugin, setup_broker

T = TypeVar("T")
MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def mosquitto_binary() -> str:
    """The mosquitto executable, or a loud skip (a failure under CI)."""
    for path in (*MOSQUITTO_PATHS, shutil.which("mosquitto")):
        if path and os.access(path, os.X_OK):
            return path
    missing_part("Mosquitto", "no mosquitto executable; install the Debian package mosquitto")
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Broker:
    """One mosquitto process with its own config, accounts, persistence directory and log."""

    def __init__(self, directory: Path) -> None:
        self.binary = mosquitto_binary()
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = directory / "mosquitto.conf"
        self.log = directory / "mosquitto.log"
        plugin = find_plugin()
        if plugin is None:
            missing_part("Mosquitto", "no mosquitto_dynamic_security.so; install mosquitto")
            raise AssertionError("unreachable")
        self.files = BrokerFiles(
            conf=directory / "conf.d" / "wowlab.conf",
            dynsec=directory / "dynamic-security.json",
            bridge_password_file=directory / "bridge.password",
            port=self.port,
            bind_address="127.0.0.1",
            plugin=plugin,
        )
        setup_broker(self.files, owner=None)

    @property
    def url(self) -> str:
        """What nodes are given (they register with the public registration password)."""
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def bridge_password_file(self) -> Path:
        return self.files.bridge_password_file

    @property
    def bridge_password(self) -> str:
        return self.files.bridge_password_file.read_text().strip()

    def _write_conf(self) -> None:
        # What Debian's /etc/mosquitto/mosquitto.conf says, with this test's paths.
        lines = [
            "persistence true",
            f"persistence_location {self.directory}/",
            f"log_dest file {self.log}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            f"include_dir {self.files.conf.parent}",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> None:
        self._write_conf()
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited: {err}\n{self.log_text()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port}\n{self.log_text()}")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no will for anyone, nothing saved since the last save."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@contextlib.contextmanager
def running_broker(directory: Path) -> Iterator[Broker]:
    broker = Broker(directory)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@contextlib.contextmanager
def running_bridge(
    coordinator: Coordinator, broker: Broker, url: str | None = None, **options: Any
) -> Iterator[MqttBridge]:
    """An :class:`MqttBridge` on its own event loop in a background thread, logged in
    with the broker's bridge password (from its file)."""
    options.setdefault("connect_timeout", 10.0)
    options.setdefault("poll_seconds", 0.2)
    options.setdefault("claim_poll_seconds", 0.1)
    options.setdefault("password_file", str(broker.bridge_password_file))
    bridge = MqttBridge(coordinator, url or broker.url, **options)
    with start_blocking_portal() as portal:
        future, _ = portal.start_task(bridge.run)
        _PORTALS[id(bridge)] = portal
        try:
            yield bridge
        finally:
            del _PORTALS[id(bridge)]
            future.cancel()
            with contextlib.suppress(BaseException):
                future.result(10)


_PORTALS: dict[int, BlockingPortal] = {}


async def in_bridge_loop(bridge: MqttBridge, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``await fn(*args)`` in the event loop of a :func:`running_bridge` (the bridge's
    account calls wait for answers that arrive there)."""
    portal = _PORTALS[id(bridge)]
    return await anyio.to_thread.run_sync(lambda: portal.call(fn, *args))
