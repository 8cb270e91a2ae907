"""``wowlab portal serve`` as a user runs it, in a subprocess, for tests that need the real
server process: its memory, its uvicorn settings, its start-up."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from wowlab_core.testing.processes import WowlabProcess


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServedPortal:
    """A running ``wowlab portal serve``."""

    process: WowlabProcess
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def memory_kib(self, field: str = "VmRSS") -> int:
        """A memory figure of the portal process from /proc (VmRSS, VmHWM: peak RSS)."""
        status = Path(f"/proc/{self.process.proc.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc status")

    def wait_until_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.process.proc.poll() is None, self.process.output
            assert time.monotonic() < deadline, self.process.output
            time.sleep(0.1)


def start_portal(
    database_url: str, env: dict[str, str] | None = None, *, wait: bool = True
) -> ServedPortal:
    """``wowlab portal serve`` on a free port (the caller terminates ``.process``)."""
    port = free_port()
    process = WowlabProcess(
        "portal", "serve", "--port", str(port), "--database-url", database_url, env=env
    )
    served = ServedPortal(process, port)
    if wait:
        served.wait_until_up()
    return served


__all__ = ["ServedPortal", "free_port", "start_portal"]
