"""The node side: :class:`MqttTransport`, the ``mqtt`` transport.

Every operation is an MQTT v5 request to the bridge: a QoS 1 publish on the node's request
topic with a Response Topic (this connection's reply topic) and Correlation Data (a fresh
uuid); the bridge answers there. The node's token travels in each request body, and the
bridge checks it before acting.

One paho connection per node identity, opened on first use: the connection of node ``N``
logs in as user ``N`` (unless a username is configured), so a broker ACL can confine it to
``wowlab/v1/nodes/N/...``; it publishes a retained ``online`` on its status topic when it
connects, leaves a retained ``offline`` as its last will, and receives wake-ups on its
inbox. Registering (before there is a node id) uses an anonymous connection of its own.

paho's thread only hands messages to the event loop (``anyio.from_thread.run_sync``).
Requests survive broker restarts: paho reconnects with backoff, sessions persist, and a
request without an answer is published again (same Correlation Data) after every
reconnect and every ``resend_seconds``; the bridge answers a repeat from its cache
instead of acting twice. A result (``complete``) is kept and resent until the bridge
acknowledges it or ``result_timeout`` runs out; any other request raises
:class:`~wowlab_core.errors.TransportError` after ``timeout``.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import paho.mqtt.client as mqtt

from wowlab_core.errors import InvalidRequest, TransportError
from wowlab_core.protocol import (
    ClaimStatus,
    Completion,
    CompletionOutcome,
    ConfigPayload,
    HeartbeatReply,
    Lease,
    NodeCredentials,
    NodeInfo,
    Registration,
)
from wowlab_transport_mqtt import topics
from wowlab_transport_mqtt.broker import (
    BrokerSettings,
    correlation_of,
    decode,
    encode,
    end_session_properties,
    error_from_reply,
    make_client,
    publish_properties,
    set_nodelay,
    start,
)

log = logging.getLogger(__name__)

#: The longest claim-status long poll asked of the bridge.
MAX_LONG_POLL_SECONDS = 60.0


@dataclass(frozen=True)
class ClientOptions:
    """Timings of the node client."""

    #: Seconds a request may take (a long poll: its wait plus this) before TransportError.
    timeout: float = 30.0
    #: Seconds a result is kept and resent before ``complete`` gives up.
    result_timeout: float = 120.0
    #: A request without an answer is published again this often (and on every reconnect).
    resend_seconds: float = 5.0
    #: The start of this client's MQTT client ids.
    client_id_prefix: str = "wowlab"


class _Pending:
    """A request waiting for its answer."""

    def __init__(self) -> None:
        self.reply: dict[str, Any] | None = None
        self.wake = anyio.Event()


class _Connection:
    """One paho client: a node identity (or the anonymous one that registers)."""

    def __init__(
        self,
        settings: BrokerSettings,
        *,
        node_id: int | None,
        prefix: str,
        resend_seconds: float,
        loop_token: anyio.lowlevel.EventLoopToken,
    ) -> None:
        self.node_id = node_id
        self.resend_seconds = resend_seconds
        who = str(node_id) if node_id is not None else "new"
        self.client_id = f"{prefix}-{who}-{secrets.token_hex(6)}"
        self.reply_topic = topics.reply_topic(self.client_id)
        self.inbox_topic = topics.inbox_topic(node_id) if node_id is not None else None
        self.settings = settings.with_username(who) if node_id is not None else settings
        self.pending: dict[bytes, _Pending] = {}
        self.up = anyio.Event()  # set while connected
        self.last_error: str | None = None
        self._work = anyio.Event()
        self._loop_token = loop_token
        self._closing = False
        self.client = make_client(self.settings, self.client_id)
        if node_id is not None:
            self.client.will_set(topics.status_topic(node_id), topics.OFFLINE, qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        start(self.client, self.settings)

    # --- paho's thread: hand over to the event loop, nothing else ----------------------

    def _to_loop(self, fn: Callable[..., None], *args: Any) -> None:
        if self._closing:
            return
        try:
            anyio.from_thread.run_sync(fn, *args, token=self._loop_token)
        except Exception as exc:  # the event loop is gone: nobody is waiting any more
            log.debug("could not hand an MQTT event to the event loop: %s", exc)

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            self._to_loop(self._failed, f"the broker refused the connection: {reason}")
            return
        set_nodelay(client)
        subscriptions = [(self.reply_topic, 1)]
        if self.inbox_topic is not None:
            subscriptions.append((self.inbox_topic, 1))
        client.subscribe(subscriptions)
        if self.node_id is not None:
            client.publish(topics.status_topic(self.node_id), topics.ONLINE, qos=1, retain=True)
        self._to_loop(self._connected)

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self._to_loop(self._failed, f"cannot reach the MQTT broker at {self.settings.address}")

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._to_loop(self._disconnected, str(reason))

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._to_loop(self._deliver, message)

    # --- the event loop -------------------------------------------------------------

    def _connected(self) -> None:
        self.last_error = None
        self.up.set()
        for pending in self.pending.values():
            pending.wake.set()  # publish again on the new connection

    def _failed(self, error: str) -> None:
        self.last_error = error

    def _disconnected(self, reason: str) -> None:
        if self.up.is_set():
            self.up = anyio.Event()
            log.info("MQTT connection %s lost (%s); reconnecting", self.client_id, reason)
        self.last_error = f"disconnected from the MQTT broker ({reason})"

    def _deliver(self, message: mqtt.MQTTMessage) -> None:
        if message.topic == self.reply_topic:
            correlation = correlation_of(message)
            pending = self.pending.get(correlation) if correlation else None
            if pending is None or pending.reply is not None:
                return  # a repeat answer, or one nobody waits for any more
            try:
                body = decode(message.payload)
            except InvalidRequest:
                body = None
            if not isinstance(body, dict):
                log.warning("ignoring a malformed answer on %s", message.topic)
                return
            pending.reply = body
            pending.wake.set()
        elif message.topic == self.inbox_topic:
            try:
                body = decode(message.payload)
            except InvalidRequest:
                return
            if isinstance(body, dict) and body.get("type") == "work":
                self._work.set()

    async def request(self, topic: str, body: dict[str, Any], timeout: float) -> Any:
        """Publish ``body`` on ``topic`` and return the answer's result, or raise its error."""
        correlation = uuid.uuid4().bytes
        payload = encode(body)
        pending = self.pending[correlation] = _Pending()
        try:
            with anyio.move_on_after(timeout):
                while pending.reply is None:
                    await self.up.wait()
                    pending.wake = anyio.Event()
                    self.client.publish(
                        topic,
                        payload,
                        qos=1,
                        properties=publish_properties(
                            correlation=correlation,
                            response_topic=self.reply_topic,
                            expiry=int(timeout) + 1,
                        ),
                    )
                    with anyio.move_on_after(self.resend_seconds):
                        await pending.wake.wait()
        finally:
            del self.pending[correlation]
        reply = pending.reply
        if reply is None:
            why = self.last_error or "no answer from the wowlab bridge"
            raise TransportError(f"{why} (after {timeout:g} s)")
        if reply.get("ok"):
            return reply.get("result")
        raise error_from_reply(reply)

    async def wait_for_work(self, timeout: float) -> None:
        """Return on a wake-up pushed to the inbox (or one that came while busy), or after
        ``timeout``."""
        with anyio.move_on_after(timeout):
            await self._work.wait()
        if self._work.is_set():
            self._work = anyio.Event()

    def close(self) -> None:
        """Say offline (retained), end the session and stop paho's thread (blocking)."""
        self._closing = True
        if self.client.is_connected():
            if self.node_id is not None:
                info = self.client.publish(
                    topics.status_topic(self.node_id), topics.OFFLINE, qos=1, retain=True
                )
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(timeout=2.0)
            self.client.disconnect(properties=end_session_properties())
        self.client.loop_stop()


class MqttTransport:
    """The ``mqtt`` node transport: requests to a wowlab bridge through an MQTT broker."""

    def __init__(self, url: str = "", **options: Any) -> None:
        names = set(ClientOptions.__dataclass_fields__)
        self.options = ClientOptions(**{k: v for k, v in options.items() if k in names})
        self.broker = BrokerSettings.from_url(
            url, **{k: v for k, v in options.items() if k not in names}
        )
        self._connections: dict[int | None, _Connection] = {}
        self._closed = False

    # --- plumbing -------------------------------------------------------------------

    def _connection(self, node_id: int | None) -> _Connection:
        if self._closed:
            raise TransportError("this MQTT transport is closed")
        conn = self._connections.get(node_id)
        if conn is None:
            conn = _Connection(
                self.broker,
                node_id=node_id,
                prefix=self.options.client_id_prefix,
                resend_seconds=self.options.resend_seconds,
                loop_token=anyio.lowlevel.current_token(),
            )
            self._connections[node_id] = conn
        return conn

    async def _ask(
        self,
        creds: NodeCredentials,
        op: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        if not isinstance(creds.node_id, int) or isinstance(creds.node_id, bool):
            raise InvalidRequest("node_id must be an integer", field="node_id")
        conn = self._connection(creds.node_id)
        body = {"token": creds.token, **(args or {})}
        return await conn.request(
            topics.request_topic(creds.node_id, op), body, timeout or self.options.timeout
        )

    # --- the transport contract -----------------------------------------------------

    async def register(self, info: NodeInfo) -> Registration:
        """Register a new node (over the anonymous connection)."""
        conn = self._connection(None)
        result = await conn.request(topics.REGISTER, {"info": info.to_dict()}, self.options.timeout)
        return Registration.from_dict(result)

    async def claim_status(self, creds: NodeCredentials, *, wait: float = 0.0) -> ClaimStatus:
        """Claim status; with ``wait`` the bridge answers when claimed or after ``wait``."""
        wait = min(max(float(wait), 0.0), MAX_LONG_POLL_SECONDS)
        result = await self._ask(
            creds, "claim_status", {"wait": wait}, timeout=wait + self.options.timeout
        )
        return ClaimStatus.from_dict(result)

    async def heartbeat(self, creds: NodeCredentials) -> HeartbeatReply:
        """Heartbeat."""
        return HeartbeatReply.from_dict(await self._ask(creds, "heartbeat"))

    async def lease(self, creds: NodeCredentials, max_chunks: int) -> list[Lease]:
        """Lease up to ``max_chunks`` chunks."""
        result = await self._ask(creds, "lease", {"max_chunks": max_chunks})
        return [Lease.from_dict(item) for item in result]

    async def get_config(self, creds: NodeCredentials, config_hash: str) -> ConfigPayload:
        """Fetch a config by hash."""
        result = await self._ask(creds, "config", {"config_hash": config_hash})
        return ConfigPayload.from_dict(result)

    async def complete(
        self, creds: NodeCredentials, completions: Sequence[Completion]
    ) -> list[CompletionOutcome]:
        """Report results; kept and resent until the bridge acknowledges them."""
        result = await self._ask(
            creds,
            "complete",
            {"completions": [c.to_dict() for c in completions]},
            timeout=self.options.result_timeout,
        )
        return [CompletionOutcome.from_dict(item) for item in result]

    async def fail(
        self, creds: NodeCredentials, chunk_id: int, lease_token: str, error: str
    ) -> None:
        """Report a failed chunk."""
        await self._ask(
            creds, "fail", {"chunk_id": chunk_id, "lease_token": lease_token, "error": error}
        )

    async def release(
        self, creds: NodeCredentials, chunk_ids: Sequence[int], lease_token: str
    ) -> int:
        """Hand chunks back."""
        result = await self._ask(
            creds, "release", {"chunk_ids": list(chunk_ids), "lease_token": lease_token}
        )
        return int(result)

    async def go_offline(self, creds: NodeCredentials) -> None:
        """Say goodbye."""
        await self._ask(creds, "offline")

    async def wait_for_work(self, creds: NodeCredentials, timeout: float) -> None:
        """Return on a wake-up pushed to the node's inbox, or after ``timeout``."""
        conn = self._connection(creds.node_id)
        await conn.wait_for_work(timeout)

    async def aclose(self) -> None:
        """Close every connection (each node's says ``offline`` first)."""
        self._closed = True
        connections = list(self._connections.values())
        self._connections.clear()
        for conn in connections:
            conn._closing = True
        with anyio.CancelScope(shield=True):
            for conn in connections:
                await anyio.to_thread.run_sync(conn.close)


def mqtt_transport(url: str = "", **options: Any) -> MqttTransport:
    """Factory: ``mqtt_transport("mqtt://broker:1883", username=..., password=..., tls=...)``."""
    return MqttTransport(url, **options)


__all__ = ["ClientOptions", "MqttTransport", "mqtt_transport"]
