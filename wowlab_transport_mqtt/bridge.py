"""The portal side: :class:`MqttBridge` answers nodes' MQTT requests with a Coordinator.

The bridge subscribes to the request topics, checks the node's token on every request (the
coordinator authenticates each call) and answers on the request's Response Topic with its
Correlation Data. paho's thread only hands messages to the event loop through a bounded
memory stream; every coordinator call runs in a worker thread (``anyio.to_thread``).

QoS 1 delivers at least once, and nodes publish a request again when they get no answer
(after a reconnect, say). The bridge remembers its recent answers by Correlation Data: a
repeat of a request it has answered gets the same answer again, a repeat of one still
being handled is dropped. So a lease or a registration is never done twice.

Presence: a node's retained ``online`` marks it online; its last will ``offline`` (or the
``offline`` it publishes when it closes cleanly) marks it offline. Its leases are left to
run out and be reissued as usual. Push: whenever chunks may have become available (the
coordinator's work signal, or pending chunks appearing in the database, which is how work
submitted by another process shows up) the connected nodes that may run them get
``{"type": "work"}`` on their inbox. The bridge also requeues expired leases every
``poll_seconds``, so a dead node's chunks come back even when no other node calls in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import paho.mqtt.client as mqtt
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from wowlab_core.coordinator import Coordinator
from wowlab_core.errors import AuthenticationFailed, InvalidRequest, TransportError, WowlabError
from wowlab_core.hookspecs import hookimpl
from wowlab_core.protocol import Completion, NodeCredentials, NodeInfo
from wowlab_transport_mqtt import presence, topics
from wowlab_transport_mqtt.broker import (
    BrokerSettings,
    correlation_of,
    decode,
    encode,
    error_reply,
    make_client,
    ok_reply,
    publish_properties,
    response_topic_of,
    set_nodelay,
    start,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

WORK_MESSAGE = encode({"type": "work"})


@dataclass(frozen=True)
class BridgeOptions:
    """Bounds and timings of the bridge."""

    #: The bridge's MQTT client id (its session survives a bridge restart).
    client_id: str = "wowlab-bridge"
    #: Messages waiting between paho's thread and the event loop.
    queue_size: int = 1024
    #: Requests handled at once.
    max_concurrent: int = 256
    #: Answers remembered for repeated requests.
    reply_cache_size: int = 50_000
    #: How often to requeue expired leases and look for work submitted elsewhere.
    poll_seconds: float = 1.0
    #: How often a claim-status long poll looks at the database.
    claim_poll_seconds: float = 0.5
    #: The longest claim-status long poll.
    max_long_poll_seconds: float = 60.0
    #: The least time between two rounds of wake-ups.
    wake_interval_seconds: float = 0.05
    #: Give up starting if the broker cannot be reached for this long (None: keep trying).
    connect_timeout: float | None = None


@dataclass
class BridgeStats:
    """What the bridge has done, for logs, tests and benchmarks."""

    requests: int = 0
    refused: int = 0  # wrong token or unknown node
    errors: int = 0  # other error answers
    repeats_answered: int = 0  # a repeat of an answered request: the same answer again
    repeats_dropped: int = 0  # a repeat of a request still being handled
    wake_ups: int = 0
    marked_online: int = 0
    marked_offline: int = 0


class _ClaimListener:
    """A plugin that ends claim-status long polls as soon as a claim is committed here."""

    def __init__(self, on_claimed: Callable[[int], None]) -> None:
        self._on_claimed = on_claimed

    @hookimpl
    def wowlab_node_claimed(self, node: Any, user: Any) -> None:
        if node.id is not None:
            self._on_claimed(node.id)


class MqttBridge:
    """Maps MQTT requests of nodes onto a :class:`Coordinator`. Run it with :meth:`run`."""

    def __init__(self, coordinator: Coordinator, url: str = "", **options: Any) -> None:
        names = set(BridgeOptions.__dataclass_fields__)
        self.coordinator = coordinator
        self.options = BridgeOptions(**{k: v for k, v in options.items() if k in names})
        self.broker = BrokerSettings.from_url(
            url, **{k: v for k, v in options.items() if k not in names}
        )
        #: Nodes whose status says online (they get wake-ups).
        self.present: set[int] = set()
        #: Nodes whose last lease came back empty (woken first).
        self.idle: set[int] = set()
        self.stats = BridgeStats()
        self._replies: OrderedDict[tuple[str, bytes], bytes | None] = OrderedDict()
        self._claim_waiters: dict[int, anyio.Event] = {}
        self._closing = False
        self._client: mqtt.Client | None = None
        self._loop_token: anyio.lowlevel.EventLoopToken | None = None
        self._loop_thread: int | None = None
        self._send: MemoryObjectSendStream[mqtt.MQTTMessage] | None = None
        self._last_error: str | None = None

    # --- life cycle -----------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Connect, subscribe and serve until cancelled. ``task_status.started()`` is
        called once the subscriptions are in place."""
        send, receive = anyio.create_memory_object_stream[mqtt.MQTTMessage](self.options.queue_size)
        status_send, status_receive = anyio.create_memory_object_stream[mqtt.MQTTMessage](
            self.options.queue_size
        )
        self._send = send
        self._loop_token = anyio.lowlevel.current_token()
        self._loop_thread = threading.get_ident()
        self._slots = anyio.Semaphore(self.options.max_concurrent)
        self._ready = anyio.Event()
        self._closing = False
        client = self._client = make_client(self.broker, self.options.client_id)
        client.max_inflight_messages_set(1000)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        listener = _ClaimListener(self._claimed_elsewhere)
        self.coordinator.hooks.pm.register(listener)
        start(client, self.broker)
        try:
            await self._wait_ready()
            log.info("wowlab MQTT bridge serving on %s", self.broker.address)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._dispatch, receive, status_send, tg)
                tg.start_soon(self._track_presence, status_receive)
                tg.start_soon(self._push_work)
                tg.start_soon(self._reap)
                task_status.started()
        finally:
            self._closing = True
            send.close()
            receive.close()
            status_send.close()
            status_receive.close()
            self.coordinator.hooks.pm.unregister(listener)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._stop_client, client)

    async def _wait_ready(self) -> None:
        timeout = self.options.connect_timeout
        with anyio.move_on_after(timeout) as scope:
            await self._ready.wait()
        if scope.cancelled_caught:
            why = self._last_error or "no answer"
            raise TransportError(
                f"the bridge cannot reach the MQTT broker at {self.broker.address}: {why}"
            )

    @staticmethod
    def _stop_client(client: mqtt.Client) -> None:
        # A plain disconnect keeps the session: requests queue up while the bridge restarts.
        client.disconnect()
        client.loop_stop()

    # --- paho's thread: hand over to the event loop, nothing else ----------------------

    def _to_loop(self, fn: Callable[..., None], *args: Any) -> None:
        if self._closing or self._loop_token is None:
            return
        try:
            anyio.from_thread.run_sync(fn, *args, token=self._loop_token)
        except Exception as exc:
            log.debug("could not hand an MQTT event to the event loop: %s", exc)

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            self._to_loop(self._note_error, f"the broker refused the bridge: {reason}")
            return
        set_nodelay(client)
        client.subscribe([(topic, 1) for topic in topics.BRIDGE_SUBSCRIPTIONS])

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self._to_loop(self._note_error, "connection failed")

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._to_loop(self._note_error, f"disconnected ({reason})")

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, codes: Any, _props: Any
    ) -> None:
        failed = [str(c) for c in codes if c.is_failure]
        if failed:
            self._to_loop(self._note_error, f"subscriptions refused: {', '.join(failed)}")
        else:
            self._to_loop(self._subscribed)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self._closing or self._send is None or self._loop_token is None:
            return
        try:
            anyio.from_thread.run_sync(self._send.send_nowait, message, token=self._loop_token)
        except anyio.WouldBlock:
            # Full: wait for room, which holds back reading from the broker (backpressure).
            try:
                anyio.from_thread.run(self._send.send, message, token=self._loop_token)
            except Exception as exc:
                log.debug("dropped an MQTT message while stopping: %s", exc)
        except Exception as exc:
            log.debug("dropped an MQTT message while stopping: %s", exc)

    # --- the event loop: connection state ----------------------------------------------

    def _note_error(self, error: str) -> None:
        if self._ready.is_set():
            log.warning("MQTT bridge: %s; paho reconnects", error)
        self._last_error = error

    def _subscribed(self) -> None:
        if not self._ready.is_set():
            self._ready.set()
        else:
            log.info("MQTT bridge reconnected to %s", self.broker.address)

    def _claimed_elsewhere(self, node_id: int) -> None:
        # Called by the hook in whatever thread committed the claim.
        def wake() -> None:
            waiter = self._claim_waiters.get(node_id)
            if waiter is not None:
                waiter.set()

        if self._loop_token is None or self._closing:
            return
        if threading.get_ident() == self._loop_thread:
            wake()
            return
        try:
            anyio.from_thread.run_sync(wake, token=self._loop_token)
        except Exception as exc:
            log.debug("could not end a claim-status long poll early: %s", exc)

    # --- dispatch -------------------------------------------------------------------

    async def _dispatch(
        self,
        receive: MemoryObjectReceiveStream[mqtt.MQTTMessage],
        status_send: MemoryObjectSendStream[mqtt.MQTTMessage],
        tg: anyio.abc.TaskGroup,
    ) -> None:
        async for message in receive:
            parsed = topics.parse(message.topic)
            if parsed is None:
                log.warning("ignoring a message on unexpected topic %s", message.topic)
            elif parsed.kind == "status":
                await status_send.send(message)  # in order, one at a time
            else:
                await self._slots.acquire()
                tg.start_soon(self._answer, parsed, message)

    async def _answer(self, parsed: topics.Parsed, message: mqtt.MQTTMessage) -> None:
        released = False

        def release_slot() -> None:
            nonlocal released
            if not released:
                released = True
                self._slots.release()

        try:
            await self._answer_request(parsed, message, release_slot)
        except Exception:
            log.exception("the bridge failed on a message on %s", message.topic)
        finally:
            release_slot()

    async def _answer_request(
        self, parsed: topics.Parsed, message: mqtt.MQTTMessage, release_slot: Callable[[], None]
    ) -> None:
        response_topic = response_topic_of(message)
        correlation = correlation_of(message)
        if (
            response_topic is None
            or correlation is None
            or len(correlation) > 64
            or not topics.is_reply_topic(response_topic)
        ):
            log.warning(
                "dropped a request on %s: it needs a Response Topic wowlab/v1/clients/<id>/reply "
                "and Correlation Data of at most 64 bytes",
                message.topic,
            )
            return
        key = (response_topic, correlation)
        if key in self._replies:
            cached = self._replies[key]
            if cached is not None:  # answered before: the node missed the answer
                self.stats.repeats_answered += 1
                self._publish_reply(response_topic, correlation, cached)
            else:  # the first copy is still being handled and will answer
                self.stats.repeats_dropped += 1
            return
        self.stats.requests += 1
        self._replies[key] = None
        while len(self._replies) > self.options.reply_cache_size:
            self._replies.popitem(last=False)
        what = parsed.op or parsed.kind
        who = f"node {parsed.node_id}" if parsed.node_id is not None else "a new node"
        try:
            reply = ok_reply(await self._perform(parsed, message.payload, release_slot))
        except AuthenticationFailed as exc:
            log.warning("refused %s from %s (topic %s): %s", what, who, message.topic, exc)
            self.stats.refused += 1
            reply = error_reply(exc)
        except WowlabError as exc:
            self.stats.errors += 1
            log.info("%s from %s failed: %s: %s", what, who, type(exc).__name__, exc)
            reply = error_reply(exc)
        except Exception as exc:
            log.exception("the bridge could not handle %s from %s", what, who)
            self._replies.pop(key, None)  # not remembered: a repeat may succeed
            failure = TransportError(f"the bridge could not handle {what}: {type(exc).__name__}")
            self._publish_reply(response_topic, correlation, error_reply(failure))
            return
        self._replies[key] = reply
        self._publish_reply(response_topic, correlation, reply)

    def _publish_reply(self, topic: str, correlation: bytes, reply: bytes) -> None:
        if self._client is not None:
            self._client.publish(
                topic, reply, qos=1, properties=publish_properties(correlation=correlation)
            )

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args)

    # --- the operations ---------------------------------------------------------------

    async def _perform(
        self, parsed: topics.Parsed, payload: bytes | bytearray, release_slot: Callable[[], None]
    ) -> Any:
        body = decode(payload)
        if not isinstance(body, dict):
            raise InvalidRequest("a request body must be a JSON object")
        coordinator = self.coordinator
        if parsed.kind == "register":
            registration = await self._call(
                coordinator.register, NodeInfo.from_dict(body.get("info"))
            )
            return registration.to_dict()
        token = body.get("token")
        if parsed.node_id is None or not isinstance(token, str):
            raise AuthenticationFailed("node id or token is not valid")
        creds = NodeCredentials(node_id=parsed.node_id, token=token)
        op = parsed.op
        if op == "claim_status":
            return await self._claim_status(creds, body.get("wait", 0.0), release_slot)
        if op == "heartbeat":
            return (await self._call(coordinator.heartbeat, creds)).to_dict()
        if op == "lease":
            leases = await self._call(coordinator.lease, creds, body.get("max_chunks"))
            if leases:
                self.idle.discard(creds.node_id)
            else:
                self.idle.add(creds.node_id)
            return [lease.to_dict() for lease in leases]
        if op == "config":
            config_hash = _typed(body, "config_hash", str)
            return (await self._call(coordinator.get_config, creds, config_hash)).to_dict()
        if op == "complete":
            completions = [Completion.from_dict(c) for c in _typed(body, "completions", list)]
            outcomes = await self._call(coordinator.complete, creds, completions)
            return [outcome.to_dict() for outcome in outcomes]
        if op == "fail":
            await self._call(
                coordinator.fail,
                creds,
                _typed(body, "chunk_id", int),
                _typed(body, "lease_token", str),
                _typed(body, "error", str),
            )
            return None
        if op == "release":
            chunk_ids = _typed(body, "chunk_ids", list)
            if not all(isinstance(c, int) for c in chunk_ids):
                raise InvalidRequest("chunk_ids must be integers", field="chunk_ids")
            return await self._call(
                coordinator.release, creds, chunk_ids, _typed(body, "lease_token", str)
            )
        if op == "offline":
            await self._call(coordinator.go_offline, creds)
            return None
        raise InvalidRequest(f"unknown operation {op!r}", field="op")

    async def _claim_status(
        self, creds: NodeCredentials, wait: Any, release_slot: Callable[[], None]
    ) -> Any:
        if isinstance(wait, bool) or not isinstance(wait, int | float):
            raise InvalidRequest("wait must be a number of seconds", field="wait")
        wait = min(max(float(wait), 0.0), self.options.max_long_poll_seconds)
        deadline = anyio.current_time() + wait
        status = await self._call(self.coordinator.claim_status, creds)
        if status.claimed or wait <= 0:
            return status.to_dict()
        release_slot()  # a long poll must not hold a slot while it waits
        waiter = self._claim_waiters.setdefault(creds.node_id, anyio.Event())
        try:
            while not status.claimed and anyio.current_time() < deadline:
                pause = min(self.options.claim_poll_seconds, deadline - anyio.current_time())
                with anyio.move_on_after(max(pause, 0.0)):
                    await waiter.wait()
                status = await self._call(self.coordinator.claim_status, creds)
        finally:
            if self._claim_waiters.get(creds.node_id) is waiter:
                del self._claim_waiters[creds.node_id]
        return status.to_dict()

    # --- presence and push ------------------------------------------------------------

    async def _track_presence(self, receive: MemoryObjectReceiveStream[mqtt.MQTTMessage]) -> None:
        db = self.coordinator.db
        async for message in receive:
            parsed = topics.parse(message.topic)
            if parsed is None or parsed.node_id is None:
                continue
            node_id = parsed.node_id
            try:
                if message.payload == topics.ONLINE:
                    self.present.add(node_id)
                    # A retained replay (the bridge subscribing) is old news: only a live
                    # message says the node is up now.
                    if not message.retain and await self._call(presence.mark_online, db, node_id):
                        self.stats.marked_online += 1
                        log.info("node %s is online", node_id)
                elif message.payload == topics.OFFLINE:
                    self.present.discard(node_id)
                    self.idle.discard(node_id)
                    if await self._call(presence.mark_offline, db, node_id):
                        self.stats.marked_offline += 1
                        log.info("node %s went offline (last will or goodbye)", node_id)
                elif message.payload:
                    log.warning("ignoring status %r of node %s", message.payload[:20], node_id)
            except Exception:
                log.exception("could not record the presence of node %s", node_id)

    async def _push_work(self) -> None:
        signal = self.coordinator.work
        db = self.coordinator.db
        seen = signal.generation
        marker: tuple[int, int] | None = None
        last_wake = 0.0
        while True:
            generation = await anyio.to_thread.run_sync(
                signal.wait, seen, self.options.poll_seconds, abandon_on_cancel=True
            )
            signalled = generation != seen
            seen = generation
            try:
                current = await self._call(presence.pending_marker, db)
                # New work: the signal (submit, requeue, release ...), or more pending
                # chunks, or newer ones, than last time (a submit by another process).
                appeared = marker is None or current[0] > marker[0] or current[1] > marker[1]
                if current[0] and (signalled or appeared):
                    pause = self.options.wake_interval_seconds - (time.monotonic() - last_wake)
                    if pause > 0:
                        await anyio.sleep(pause)
                    last_wake = time.monotonic()
                    await self.wake_nodes()
                marker = current
            except Exception:
                log.exception("could not look for work to announce")
                await anyio.sleep(self.options.poll_seconds)

    async def wake_nodes(self) -> int:
        """Push a wake-up to the connected nodes that may run pending chunks. Returns how
        many were woken."""
        node_ids = await self._call(
            presence.nodes_to_wake, self.coordinator.db, set(self.present), set(self.idle)
        )
        if self._client is not None:
            for node_id in node_ids:
                self._client.publish(topics.inbox_topic(node_id), WORK_MESSAGE, qos=1)
        self.stats.wake_ups += len(node_ids)
        return len(node_ids)

    async def _reap(self) -> None:
        while True:
            await anyio.sleep(
                max(self.options.poll_seconds, self.coordinator.settings.reap_interval_seconds)
            )
            try:
                await self._call(self.coordinator.reap)
            except Exception:
                log.exception("could not requeue expired leases")


def _typed(body: dict[str, Any], name: str, kind: type[T]) -> T:
    value = body.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidRequest(f"{name} must be a {kind.__name__}", field=name)
    return value


__all__ = ["BridgeOptions", "BridgeStats", "MqttBridge"]
