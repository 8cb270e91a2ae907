"""Real Mosquitto brokers for the tests: started on a free port, killed and restarted at will,
and a bridge running on its own event loop in a background thread (as in a portal)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from anyio.from_thread import start_blocking_portal

from wowlab_core.coordinator import Coordinator
from wowlab_core.testing.databases import missing_part
from wowlab_transport_mqtt.bridge import MqttBridge

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
    """One mosquitto process with its own config, persistence directory and log."""

    def __init__(self, directory: Path, *, acl_file: Path | None = None) -> None:
        self.binary = mosquitto_binary()
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.acl_file = acl_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = directory / "mosquitto.conf"
        self.log = directory / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_conf(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "set_tcp_nodelay true",
            "persistence true",
            f"persistence_location {self.directory}/",
            f"log_dest file {self.log}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "max_queued_messages 100000",
            "max_inflight_messages 1000",
        ]
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
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
def running_broker(directory: Path, **kwargs: Any) -> Iterator[Broker]:
    broker = Broker(directory, **kwargs)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@contextlib.contextmanager
def running_bridge(coordinator: Coordinator, url: str, **options: Any) -> Iterator[MqttBridge]:
    """An :class:`MqttBridge` on its own event loop in a background thread."""
    options.setdefault("connect_timeout", 10.0)
    options.setdefault("poll_seconds", 0.2)
    options.setdefault("claim_poll_seconds", 0.1)
    bridge = MqttBridge(coordinator, url, **options)
    with start_blocking_portal() as portal:
        future, _ = portal.start_task(bridge.run)
        try:
            yield bridge
        finally:
            future.cancel()
            with contextlib.suppress(BaseException):
                future.result(10)
