"""Node processes (``wowlab node run --transport mqtt``), in-process agents, and waiting on
the database, for the MQTT acceptance tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from wowlab_core.coordinator import CoordinatorSettings
from wowlab_core.db import read_session
from wowlab_core.localpool import run_local_simulation
from wowlab_core.models import Node, SimChunk, SimJob
from wowlab_core.plugins import Hooks
from wowlab_core.report import dumps_report
from wowlab_core.testing import wait_until
from wowlab_core.testing.processes import WowlabProcess, node_process

#: Leases short enough to watch one run out, heartbeats to keep the others alive, and
#: silence-based offline far away, so "offline" can only come from the last will.
SETTINGS = CoordinatorSettings(
    lease_seconds=2.0, heartbeat_seconds=0.5, offline_after_seconds=60.0, reap_interval_seconds=0.0
)


def NodeProcess(
    url: str, settings_file: Path, name: str, *, max_parallel: int = 1
) -> WowlabProcess:
    """``wowlab node run --transport mqtt`` in a subprocess, its output collected."""
    return node_process("mqtt", url, settings_file, name, max_parallel=max_parallel, verbose=True)


def node_named(db: Engine, name: str) -> Node | None:
    with read_session(db) as s:
        return s.exec(select(Node).where(col(Node.name) == name)).first()


def finished_job(db: Engine, job_id: int, timeout: float = 60) -> SimJob:
    def done() -> SimJob | None:
        with read_session(db) as s:
            job = s.get(SimJob, job_id)
            assert job is not None
            return job if job.status not in ("pending", "running") else None

    job: SimJob = wait_until(f"job {job_id} to finish", done, timeout, every=0.05)
    return job


def leased_chunk(db: Engine, job_id: int) -> SimChunk:
    def leased() -> SimChunk | None:
        with read_session(db) as s:
            return s.exec(
                select(SimChunk).where(
                    col(SimChunk.job_id) == job_id, col(SimChunk.status) == "leased"
                )
            ).first()

    chunk: SimChunk = wait_until("a chunk to be leased", leased)
    return chunk


def assert_same_report(
    report: dict[str, Any], config: dict[str, Any], hooks: Hooks, *, iterations: int, seed: int
) -> None:
    """The job's report is byte-identical to an undisturbed local run of the same job
    (except the config hash when ``sleep_ms`` made the configs differ)."""
    undisturbed = run_local_simulation(
        config | {"sleep_ms": 0},
        hooks=hooks,
        iterations=iterations,
        seed=seed,
        nodes=2,
        engine_name="toy",
        chunks=5,
    )
    got, expected = dict(report), dict(undisturbed.report or {})
    if config.get("sleep_ms"):
        got.pop("config_hash")
        expected.pop("config_hash")
    assert dumps_report(got) == dumps_report(expected)


class RawClient:
    """A bare paho client (MQTT v5), to act as an attacker or a misbehaving node.

    ``connected`` is the broker's CONNACK reason (``"Success"``, ``"Not authorized"``);
    ``received`` every message delivered; ``disconnects`` the reasons of lost connections.
    """

    def __init__(
        self,
        port: int,
        *,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        reconnect: bool = False,
    ) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.received: list[tuple[str, bytes]] = []
        self.acks: dict[int, str] = {}
        self.subacks: dict[int, list[str]] = {}
        self.connected: str | None = None
        self.disconnects: list[str] = []
        self.client.on_connect = lambda _c, _u, _f, rc, _p: setattr(self, "connected", str(rc))
        self.client.on_disconnect = lambda _c, _u, _f, rc, _p: self.disconnects.append(str(rc))
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, m.payload))
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.acks.__setitem__(mid, str(rc))
        self.client.on_subscribe = lambda _c, _u, mid, rcs, _p: self.subacks.__setitem__(
            mid, [str(rc) for rc in rcs]
        )
        if reconnect:
            self.client.connect_async("127.0.0.1", port)
        else:
            self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_until("the broker to answer CONNECT", lambda: self.connected, timeout=5)
        if not reconnect and self.connected != "Success":
            self.client.loop_stop()  # refused: do not retry

    def subscribe(self, *topics: str) -> list[str]:
        """Subscribe with QoS 1; returns the broker's SUBACK reason per topic."""
        _, mid = self.client.subscribe([(t, 1) for t in topics])
        codes: list[str] = wait_until(f"SUBACK for {topics}", lambda: self.subacks.get(mid), 5)
        return codes

    def publish(self, topic: str, payload: bytes, **kwargs: Any) -> str:
        """Publish with QoS 1; returns the broker's PUBACK reason."""
        info = self.client.publish(topic, payload, qos=1, **kwargs)
        return str(wait_until(f"PUBACK for {topic}", lambda: self.acks.get(info.mid), timeout=5))

    def seen(self) -> bytes:
        """Everything received, topics and payloads, as one byte string to search."""
        return b"\n".join(t.encode() + b" " + bytes(p) for t, p in self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
