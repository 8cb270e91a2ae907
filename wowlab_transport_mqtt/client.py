"""The node side: :class:`MqttTransport`, the ``mqtt`` transport.

Every operation is an MQTT v5 request to the bridge: a QoS 1 publish on the node's request
topic with a Response Topic (this connection's reply topic) and Correlation Data (a fresh
uuid); the bridge answers there. The node's token travels in each request body, and the
bridge checks it before acting.

One paho connection per node identity, opened on first use: the connection of node ``N``
logs in as user ``N`` with the password and client id its token derives (see
:mod:`wowlab_transport_mqtt.accounts`), and the broker confines it to
``wowlab/v1/nodes/N/...``; it publishes a retained ``online`` on its status topic when it
connects, leaves a retained ``offline`` as its last will, receives its answers on
``wowlab/v1/nodes/N/reply`` and wake-ups on its inbox. Registering (before there is a node
id) uses a connection of its own as the registration identity (``wowlab-register``, or the
user of the URL), with a random client id that names its reply topic.

The bridge creates node N's account when N registers. A node whose account is missing
(registered through another transport, or a broker set up again) is refused by the
broker; it then asks the bridge, over a registration connection and with its token, to
create the account (``enroll``) and logs in again.

paho's thread only hands messages to the event loop (``anyio.from_thread.run_sync``).
Requests survive broker restarts: paho reconnects with backoff, sessions persist, and a
request without an answer is published again (same Correlation Data) after every
reconnect and after ``resend_seconds``, then twice as long each time up to 4x, each wait
±20 % (:func:`resend_waits`: a saturated bridge is not flooded with resends); the bridge
answers a repeat from its cache instead of acting twice. A result (``complete``) is kept
and resent until the bridge acknowledges it or ``result_timeout`` runs out; any other
request raises :class:`~wowlab_core.errors.TransportError` after ``timeout``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import paho.mqtt.client as mqtt

from wowlab_core.errors import AuthenticationFailed, InvalidRequest, TransportError
from wowlab_core.protocol import (
    ClaimStatus,
    Completion,
    CompletionOutcome,
    ConfigPayload,
    Heartbeat,
    HeartbeatReply,
    Lease,
    NodeCredentials,
    NodeInfo,
    Registration,
)
from wowlab_transport_mqtt import accounts, topics
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
    #: The start of the client ids of registering connections.
    client_id_prefix: str = "wowlab"


#: An unanswered request is published again after ``resend_seconds``, then after twice
#: as long each time, up to this many times ``resend_seconds`` ...
RESEND_BACKOFF_CAP = 4.0
#: ... each wait drawn within ±20 %: nodes that lost their answers together (a saturated
#: or restarted bridge) do not all resend at the same moment, and not ever faster.
RESEND_JITTER = 0.2


def resend_waits(
    resend_seconds: float, uniform: Callable[[float, float], float] = random.uniform
) -> Iterator[float]:
    """How long to wait for an answer before each resend of one request."""
    wait = resend_seconds
    while True:
        yield wait * uniform(1 - RESEND_JITTER, 1 + RESEND_JITTER)
        wait = min(wait * 2, resend_seconds * RESEND_BACKOFF_CAP)


#: CONNACK reasons that mean "no such account, or not this password / client id".
_LOGIN_REFUSED = {134, 135}


class LoginRefused(Exception):
    """The broker refused this connection's login (CONNACK 134 or 135)."""


class _Pending:
    """A request waiting for its answer."""

    def __init__(self) -> None:
        self.reply: dict[str, Any] | None = None
        self.wake = anyio.Event()


class _Connection:
    """One paho client: a node identity (or the registration identity)."""

    def __init__(
        self,
        settings: BrokerSettings,
        *,
        creds: NodeCredentials | None,
        prefix: str,
        resend_seconds: float,
        loop_token: anyio.lowlevel.EventLoopToken,
    ) -> None:
        node_id = creds.node_id if creds is not None else None
        self.node_id = node_id
        self.token = creds.token if creds is not None else None
        self.resend_seconds = resend_seconds
        if creds is not None:
            self.client_id = accounts.node_client_id(creds.node_id, creds.token)
            self.reply_topic = topics.node_reply_topic(creds.node_id)
            self.inbox_topic: str | None = topics.inbox_topic(creds.node_id)
            self.settings = settings.with_login(
                accounts.node_username(creds.node_id), accounts.node_password(creds.token)
            )
        else:
            self.client_id = accounts.registration_client_id(prefix)
            self.reply_topic = topics.registration_reply_topic(self.client_id)
            self.inbox_topic = None
            self.settings = (
                settings
                if settings.username is not None
                else settings.with_login(
                    accounts.REGISTRATION_USERNAME, accounts.REGISTRATION_PASSWORD
                )
            )
        self.pending: dict[bytes, _Pending] = {}
        self.up = anyio.Event()  # set while connected
        self.last_error: str | None = None
        #: Why the broker refused the login, until a login succeeds.
        self.refusal: str | None = None
        self._state_changed = anyio.Event()
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
            if reason.value in _LOGIN_REFUSED:
                self._to_loop(self._refused, f"{reason} (user {self.settings.username})")
            else:
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
        self.refusal = None
        self.up.set()
        self._notify_state()
        for pending in self.pending.values():
            pending.wake.set()  # publish again on the new connection

    def _failed(self, error: str) -> None:
        self.last_error = error

    def _refused(self, why: str) -> None:
        self.last_error = self.refusal = f"the MQTT broker refused the login: {why}"
        self._notify_state()
        for pending in self.pending.values():
            pending.wake.set()  # stop waiting for an answer that cannot come

    def _notify_state(self) -> None:
        self._state_changed.set()
        self._state_changed = anyio.Event()

    async def wait_connected(self) -> None:
        """Return once connected; raise :class:`LoginRefused` if the broker refuses."""
        while not self.up.is_set():
            if self.refusal is not None:
                raise LoginRefused(self.refusal)
            await self._state_changed.wait()

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
        waits = resend_waits(self.resend_seconds)
        try:
            with anyio.move_on_after(timeout):
                while pending.reply is None:
                    await self.wait_connected()
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
                    with anyio.move_on_after(next(waits)):
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
        # Close the sockets now: the client is freed only by the cyclic garbage collector
        # (its callbacks point back here), and paho's select() fails for any descriptor
        # above 1023, so leaked ones break the other connections of this process.
        getattr(self.client, "_reset_sockets", lambda: None)()


class MqttTransport:
    """The ``mqtt`` node transport: requests to a wowlab bridge through an MQTT broker."""

    def __init__(self, url: str = "", **options: Any) -> None:
        names = set(ClientOptions.__dataclass_fields__)
        self.options = ClientOptions(**{k: v for k, v in options.items() if k in names})
        self.broker = BrokerSettings.from_url(
            url, **{k: v for k, v in options.items() if k not in names}
        )
        self._connections: dict[int | None, _Connection] = {}
        self._retired: list[_Connection] = []
        self._enrolling: dict[int, anyio.Lock] = {}
        #: The token the bridge last accepted for each node (wait_for_work asks no one).
        self._accepted: dict[int, str] = {}
        self._closed = False

    # --- plumbing -------------------------------------------------------------------

    def _connection(self, creds: NodeCredentials | None) -> _Connection:
        if self._closed:
            raise TransportError("this MQTT transport is closed")
        key = creds.node_id if creds is not None else None
        conn = self._connections.get(key)
        if conn is not None and creds is not None and conn.token != creds.token:
            self._retire(conn)  # the same id with another token: not this identity
            conn = None
        if conn is None:
            conn = _Connection(
                self.broker,
                creds=creds,
                prefix=self.options.client_id_prefix,
                resend_seconds=self.options.resend_seconds,
                loop_token=anyio.lowlevel.current_token(),
            )
            self._connections[key] = conn
        return conn

    def _retire(self, conn: _Connection) -> None:
        if self._connections.get(conn.node_id) is conn:
            del self._connections[conn.node_id]
        conn._closing = True
        self._retired.append(conn)

    async def _close_retired(self) -> None:
        retired, self._retired = self._retired, []
        with anyio.CancelScope(shield=True):
            for conn in retired:
                await anyio.to_thread.run_sync(conn.close)

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
        if self._retired:
            await self._close_retired()
        topic = topics.request_topic(creds.node_id, op)
        body = {"token": creds.token, **(args or {})}
        try:
            answer = await self._request_logged_in(creds, topic, body, timeout)
        except AuthenticationFailed:
            self._accepted.pop(creds.node_id, None)
            raise
        self._accepted[creds.node_id] = creds.token
        return answer

    async def _request_logged_in(
        self, creds: NodeCredentials, topic: str, body: dict[str, Any], timeout: float | None
    ) -> Any:
        timeout = timeout or self.options.timeout
        conn = self._connection(creds)
        try:
            return await conn.request(topic, body, timeout)
        except LoginRefused:
            await self._enroll(creds, conn)
        try:
            return await self._connection(creds).request(topic, body, timeout)
        except LoginRefused as exc:
            raise AuthenticationFailed(
                f"node {creds.node_id} cannot log in to the MQTT broker: {exc}"
            ) from None

    async def _enroll(self, creds: NodeCredentials, refused: _Connection) -> None:
        """Have the bridge (re)create this node's account, once for all the requests
        that met the refused connection."""
        lock = self._enrolling.setdefault(creds.node_id, anyio.Lock())
        async with lock:
            if self._connections.get(creds.node_id) is not refused:
                return  # another request has enrolled already
            self._retire(refused)
            await self._close_retired()
            log.info("node %s has no MQTT account yet; asking the bridge for one", creds.node_id)
            await self._registration_request(
                topics.ENROLL, {"node_id": creds.node_id, "token": creds.token}
            )

    async def _registration_request(self, topic: str, body: dict[str, Any]) -> Any:
        conn = self._connection(None)
        try:
            return await conn.request(topic, body, self.options.timeout)
        except LoginRefused as exc:
            raise AuthenticationFailed(
                f"{exc}; a node registers as {accounts.REGISTRATION_USERNAME!r} with the "
                "pool's registration password (in the URL if the pool has its own)"
            ) from None
        finally:
            if not conn.pending:  # needed again only if this node enrols again
                self._retire(conn)
                await self._close_retired()

    # --- the transport contract -----------------------------------------------------

    async def register(self, info: NodeInfo) -> Registration:
        """Register a new node (as the registration identity)."""
        result = await self._registration_request(topics.REGISTER, {"info": info.to_dict()})
        return Registration.from_dict(result)

    async def claim_status(self, creds: NodeCredentials, *, wait: float = 0.0) -> ClaimStatus:
        """Claim status; with ``wait`` the bridge answers when claimed or after ``wait``."""
        wait = min(max(float(wait), 0.0), MAX_LONG_POLL_SECONDS)
        result = await self._ask(
            creds, "claim_status", {"wait": wait}, timeout=wait + self.options.timeout
        )
        return ClaimStatus.from_dict(result)

    async def heartbeat(self, creds: NodeCredentials, beat: Heartbeat) -> HeartbeatReply:
        """Heartbeat: name the running chunks (the others are handed back)."""
        result = await self._ask(creds, "heartbeat", {"beat": beat.to_dict()})
        return HeartbeatReply.from_dict(result)

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
        self,
        creds: NodeCredentials,
        chunk_id: int,
        lease_token: str,
        error: str,
        *,
        reason: str | None = None,
    ) -> None:
        """Report a failed chunk."""
        body: dict[str, Any] = {"chunk_id": chunk_id, "lease_token": lease_token, "error": error}
        if reason is not None:
            body["reason"] = reason
        await self._ask(creds, "fail", body)

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
        """Return on a wake-up pushed to the node's inbox, or after ``timeout``.

        Credentials the bridge has not accepted yet are checked first (with a claim-status
        request, which changes nothing), so a wrong token is refused here too.
        """
        if self._accepted.get(creds.node_id) != creds.token:
            await self._ask(creds, "claim_status", {"wait": 0.0})
        conn = self._connection(creds)
        await conn.wait_for_work(timeout)

    async def aclose(self) -> None:
        """Close every connection (each node's says ``offline`` first)."""
        self._closed = True
        for conn in list(self._connections.values()):
            self._retire(conn)
        await self._close_retired()


def mqtt_transport(url: str = "", **options: Any) -> MqttTransport:
    """Factory: ``mqtt_transport("mqtt://broker:1883", username=..., password=..., tls=...)``."""
    return MqttTransport(url, **options)


__all__ = ["ClientOptions", "LoginRefused", "MqttTransport", "mqtt_transport"]
