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

Accounts: the bridge logs in as ``wowlab-bridge`` with its password and a client id
derived from it, and manages the node accounts on the broker (Mosquitto's dynamic
security, see :mod:`wowlab_transport_mqtt.accounts`): it creates node N's account when N
registers or enrols, deletes it when N is removed (the ``wowlab_node_removed`` hook, and a
periodic sweep for removals by other processes). Registration answers carry the node's
token and claim code, so they go only to a ``wowlab/v1/clients/<id>/reply`` topic that
nobody but the asking connection can name; node N's answers go only to
``wowlab/v1/nodes/N/reply``. Messages larger than the bridge accepts are dropped in
paho's thread, before they are queued or parsed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar, cast

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import paho.mqtt.client as mqtt
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from wowlab_core import request_keys
from wowlab_core.coordinator import Coordinator
from wowlab_core.errors import AuthenticationFailed, InvalidRequest, TransportError, WowlabError
from wowlab_core.hookspecs import hookimpl
from wowlab_core.protocol import (
    Completion,
    CompletionOutcome,
    Heartbeat,
    Lease,
    NodeCredentials,
    NodeInfo,
)
from wowlab_core.rate_limits import DatabaseRateLimiter
from wowlab_core.request_keys import Keyed, RequestRepeated, request_key
from wowlab_core.wakeups import CLAIMED
from wowlab_transport_mqtt import accounts, presence, topics
from wowlab_transport_mqtt.account_upkeep import AccountUpkeep
from wowlab_transport_mqtt.batching import Batcher
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
from wowlab_transport_mqtt.dynsec import DynsecControl, NodeAccounts
from wowlab_transport_mqtt.leader import Leadership

log = logging.getLogger(__name__)
T = TypeVar("T")

WORK_MESSAGE = encode({"type": "work"})


@dataclass(frozen=True)
class BridgeOptions:
    """Bounds and timings of the bridge."""

    #: The bridge's MQTT client id (its session survives a bridge restart). None: derived
    #: from the password and ``instance``. It must stay secret: whoever connects with it
    #: kicks the bridge off.
    client_id: str | None = None
    #: This bridge's name among several (``1``, ``2``, ...; stable across restarts): each
    #: has its own client id, so its own session. Empty: the only bridge.
    instance: str = ""
    #: Heartbeats (and, separately, results) carried out in one transaction at most, and
    #: such batches running at once.
    batch_max_items: int = 64
    batch_workers: int = 2
    #: Request keys are kept this long (a repeat comes within minutes).
    request_keys_seconds: float = 24 * 3600.0
    #: The largest request a node may send (a ``complete`` with many results is the
    #: biggest); larger ones are dropped before they are parsed.
    max_request_bytes: int = 4 * 1024 * 1024
    #: The largest registration or enrolment request (anyone may send those).
    max_registration_bytes: int = 64 * 1024
    #: Registrations accepted per minute, from everyone together.
    registrations_per_minute: int = 600
    #: How often to delete broker accounts of nodes removed by another process.
    account_sweep_seconds: float = 600.0
    #: How long to wait for the broker to answer an account change.
    account_timeout: float = 10.0
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
    oversized: int = 0  # dropped unparsed: larger than the bridge accepts
    misdirected: int = 0  # dropped: a Response Topic the request may not name
    accounts_created: int = 0
    accounts_deleted: int = 0
    errors: int = 0  # other error answers
    repeats_answered: int = 0  # a repeat of an answered request: the same answer again
    repeats_dropped: int = 0  # a repeat of a request still being handled
    wake_ups: int = 0
    marked_online: int = 0
    marked_offline: int = 0


class _NodeListener:
    """A plugin that ends claim-status long polls as soon as a claim is committed here,
    and deletes a node's broker account as soon as the node is removed here."""

    def __init__(
        self, on_claimed: Callable[[int], None], on_removed: Callable[[int], None]
    ) -> None:
        self._on_claimed = on_claimed
        self._on_removed = on_removed

    @hookimpl
    def wowlab_node_claimed(self, node: Any, user: Any) -> None:
        if node.id is not None:
            self._on_claimed(node.id)

    @hookimpl
    def wowlab_node_removed(self, node_id: int, user: Any) -> None:
        self._on_removed(node_id)


class MqttBridge:
    """Maps MQTT requests of nodes onto a :class:`Coordinator`. Run it with :meth:`run`."""

    def __init__(self, coordinator: Coordinator, url: str = "", **options: Any) -> None:
        names = set(BridgeOptions.__dataclass_fields__)
        self.coordinator = coordinator
        self.options = BridgeOptions(**{k: v for k, v in options.items() if k in names})
        broker = BrokerSettings.from_url(
            url, **{k: v for k, v in options.items() if k not in names}
        )
        if broker.username is None:
            broker = replace(broker, username=accounts.BRIDGE_USERNAME)
        password = broker.login_password()
        if not password:
            raise InvalidRequest(
                "the MQTT bridge needs its broker password: a file "
                "(--password-file / WOWLAB_MQTT_PASSWORD_FILE, written by "
                "`wowlab mqtt setup-broker`) or WOWLAB_MQTT_PASSWORD",
                field="password",
            )
        self.broker = broker
        self.client_id = self.options.client_id or accounts.bridge_client_id(
            password, self.options.instance
        )
        #: Nodes whose status says online (they get wake-ups).
        self.present: set[int] = set()
        #: Nodes whose last lease came back empty (woken first).
        self.idle: set[int] = set()
        self.stats = BridgeStats()
        #: Whether this bridge does the chores (wake-ups, requeues, sweeps).
        self.leadership = Leadership(coordinator.db)
        batches = {"max_items": self.options.batch_max_items, "workers": self.options.batch_workers}
        #: Heartbeats and results carried out together (one transaction per batch).
        self.heartbeats: Batcher[tuple[NodeCredentials, Heartbeat, Keyed], bytes | None] = Batcher(
            coordinator.heartbeat_batch, **batches
        )
        self.completions: Batcher[tuple[NodeCredentials, list[Completion], Keyed], bytes | None] = (
            Batcher(coordinator.complete_batch, **batches)
        )
        # A cache of the answers stored with the request keys in the database (the
        # truth, shared by every bridge): None while this bridge is still answering.
        self._replies: OrderedDict[tuple[str, bytes], bytes | None] = OrderedDict()
        self._claim_waiters: dict[int, anyio.Event] = {}
        self._closing = False
        self._client: mqtt.Client | None = None
        self._loop_token: anyio.lowlevel.EventLoopToken | None = None
        self._loop_thread: int | None = None
        self._send: MemoryObjectSendStream[mqtt.MQTTMessage] | None = None
        self._last_error: str | None = None
        # Counted in the database: several bridges share the limit.
        self._registrations = DatabaseRateLimiter(
            coordinator.db,
            name="mqtt_registrations",
            limit=self.options.registrations_per_minute,
            window_seconds=60,
        )
        self.accounts = NodeAccounts(
            DynsecControl(self._publish_control, timeout=self.options.account_timeout)
        )
        self.upkeep = AccountUpkeep(
            self.accounts,
            coordinator.db,
            sweep_seconds=self.options.account_sweep_seconds,
            on_deleted=self._account_deleted,
            may_sweep=lambda: self.leadership.leading,
        )

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
        client = self._client = make_client(self.broker, self.client_id)
        client.max_inflight_messages_set(1000)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        listening = ExitStack()
        listening.enter_context(
            self.coordinator.hooks.listen(
                _NodeListener(self._claimed_elsewhere, self.upkeep.removed)
            )
        )
        wakeups = self.coordinator.wakeups
        if wakeups is not None:  # claims made by portal workers elsewhere
            wakeups.subscribe(CLAIMED, self._claim_published)
        # The session outlives the bridge: requests sent while it restarts wait for it.
        start(client, self.broker, clean_start=False)
        try:
            async with anyio.create_task_group() as tg:
                # Reading first: a resumed session may deliver a backlog before SUBACK.
                tg.start_soon(self._dispatch, receive, status_send, tg)
                tg.start_soon(self._track_presence, status_receive)
                tg.start_soon(self.heartbeats.run)
                tg.start_soon(self.completions.run)
                await self._wait_ready()
                name = f" {self.options.instance}" if self.options.instance else ""
                log.info("wowlab MQTT bridge%s serving on %s", name, self.broker.address)
                tg.start_soon(self._lead)
                tg.start_soon(self._push_work)
                tg.start_soon(self._reap)
                tg.start_soon(self.upkeep.run)
                task_status.started()
        except BaseExceptionGroup as group:
            # Not reaching the broker is one error, not a group of one.
            if len(group.exceptions) == 1 and isinstance(group.exceptions[0], TransportError):
                raise group.exceptions[0] from None
            raise
        finally:
            self._closing = True
            send.close()
            receive.close()
            status_send.close()
            status_receive.close()
            listening.close()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._stop_client, client)
                await anyio.to_thread.run_sync(self.leadership.close)

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
        limit = self._size_limit(message.topic)
        if len(message.payload) > limit:
            self._to_loop(self._note_oversized, message.topic, len(message.payload), limit)
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

    def _size_limit(self, topic: str) -> int:
        if topic in (topics.REGISTER, topics.ENROLL):
            return self.options.max_registration_bytes
        return self.options.max_request_bytes

    # --- the event loop: connection state ----------------------------------------------

    def _note_oversized(self, topic: str, size: int, limit: int) -> None:
        self.stats.oversized += 1
        log.warning("dropped a %d-byte message on %s unread (the limit is %d)", size, topic, limit)

    def _note_error(self, error: str) -> None:
        if self._ready.is_set():
            log.warning("MQTT bridge: %s; paho reconnects", error)
        self._last_error = error

    def _subscribed(self) -> None:
        if not self._ready.is_set():
            self._ready.set()
        else:
            log.info("MQTT bridge reconnected to %s", self.broker.address)

    def _claim_published(self, payload: str) -> None:
        # A portal worker in another process claimed a node (empty: maybe several).
        if payload.isdigit():
            self._claimed_elsewhere(int(payload))
        else:
            for node_id in list(self._claim_waiters):
                self._claimed_elsewhere(node_id)

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
            if message.topic == topics.DYNSEC_RESPONSE:
                self.accounts.control.deliver(message.payload)
                continue
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
        expected = _reply_topic_rule(parsed)
        if (
            response_topic is None
            or correlation is None
            or len(correlation) > 64
            or not _may_answer_on(parsed, response_topic)
        ):
            self.stats.misdirected += 1
            log.warning(
                "dropped a request on %s: it needs the Response Topic %s "
                "and Correlation Data of at most 64 bytes",
                message.topic,
                expected,
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
        keyed = Keyed(request_key(response_topic, correlation), ok=ok_reply, error=error_reply)
        try:
            answer = await self._perform(parsed, message.payload, release_slot, keyed)
            if answer is None:  # a copy is being answered by another bridge right now
                self.stats.repeats_dropped += 1
                self._replies.pop(key, None)
                return
            reply = answer
        except RequestRepeated as repeated:
            stored = repeated.reply or await self._call(
                request_keys.lookup, self.coordinator.db, keyed.key
            )
            if stored is None:
                self.stats.repeats_dropped += 1
                self._replies.pop(key, None)
                return
            self.stats.repeats_answered += 1
            reply = stored
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
        self,
        parsed: topics.Parsed,
        payload: bytes | bytearray,
        release_slot: Callable[[], None],
        keyed: Keyed,
    ) -> bytes | None:
        """Carry a request out; its answer (None: a copy is answered elsewhere). Requests
        with effects carry ``keyed``'s key into their transaction (done once, whichever
        bridge gets them, however often they are resent)."""
        body = decode(payload)
        if not isinstance(body, dict):
            raise InvalidRequest("a request body must be a JSON object")
        coordinator = self.coordinator
        if parsed.kind == "register":
            return ok_reply(await self._register(body, keyed))
        if parsed.kind == "enroll":
            return ok_reply(await self._enroll(body))
        token = body.get("token")
        if parsed.node_id is None or not isinstance(token, str):
            raise AuthenticationFailed("node id or token is not valid")
        creds = NodeCredentials(node_id=parsed.node_id, token=token)
        op = parsed.op
        if op == "claim_status":
            return ok_reply(await self._claim_status(creds, body.get("wait", 0.0), release_slot))
        if op == "heartbeat":
            beat = Heartbeat.from_dict(body.get("beat"))
            return await self.heartbeats.submit(
                (creds, beat, replace(keyed, ok=lambda r: ok_reply(r.to_dict())))
            )
        if op == "lease":
            leases = await self._call(
                partial(
                    coordinator.lease,
                    creds,
                    cast(int, body.get("max_chunks")),  # checked by the coordinator
                    keyed=replace(keyed, ok=_encode_leases),
                )
            )
            if leases:
                self.idle.discard(creds.node_id)
            else:
                self.idle.add(creds.node_id)
            return _encode_leases(leases)
        if op == "config":
            config_hash = _typed(body, "config_hash", str)
            return ok_reply(
                (await self._call(coordinator.get_config, creds, config_hash)).to_dict()
            )
        if op == "complete":
            completions = [Completion.from_dict(c) for c in _typed(body, "completions", list)]
            return await self.completions.submit(
                (creds, completions, replace(keyed, ok=_encode_outcomes))
            )
        if op == "fail":
            await self._call(
                partial(
                    coordinator.fail,
                    creds,
                    _typed(body, "chunk_id", int),
                    _typed(body, "lease_token", str),
                    _typed(body, "error", str),
                    _optional(body, "reason", str),
                    keyed=keyed,
                )
            )
            return ok_reply(None)
        if op == "release":
            chunk_ids = _typed(body, "chunk_ids", list)
            if not all(isinstance(c, int) for c in chunk_ids):
                raise InvalidRequest("chunk_ids must be integers", field="chunk_ids")
            return ok_reply(
                await self._call(
                    coordinator.release, creds, chunk_ids, _typed(body, "lease_token", str)
                )
            )
        if op == "offline":
            await self._call(coordinator.go_offline, creds)
            return ok_reply(None)
        raise InvalidRequest(f"unknown operation {op!r}", field="op")

    async def _register(self, body: dict[str, Any], keyed: Keyed) -> Any:
        info = NodeInfo.from_dict(body.get("info"))
        await self._call(
            partial(self._registrations.hit, "all", what="node registrations over MQTT")
        )
        registration = await self._call(
            partial(
                self.coordinator.register,
                info,
                keyed=replace(keyed, ok=lambda r: ok_reply(r.to_dict())),
            )
        )
        try:
            await self.accounts.create(registration.node_id, registration.token)
            self.stats.accounts_created += 1
        except TransportError as exc:
            # The node is registered; it enrols when its first login is refused.
            log.warning(
                "node %s registered without a broker account: %s", registration.node_id, exc
            )
        return registration.to_dict()

    async def _enroll(self, body: dict[str, Any]) -> Any:
        node_id, token = body.get("node_id"), body.get("token")
        if (
            not isinstance(node_id, int)
            or isinstance(node_id, bool)
            or not isinstance(token, str)
            or not await self._call(presence.token_is_valid, self.coordinator.db, node_id, token)
        ):
            raise AuthenticationFailed("node id or token is not valid")
        await self.accounts.create(node_id, token)
        self.stats.accounts_created += 1
        log.info("node %s enrolled: its broker account was (re)created", node_id)
        return {"username": accounts.node_username(node_id)}

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
            if not self.leadership.leading:
                continue  # another bridge wakes the nodes
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

    # --- node accounts -----------------------------------------------------------------

    def _publish_control(self, payload: bytes) -> None:
        if self._client is None:
            raise TransportError("the bridge is not connected to the broker")
        self._client.publish(topics.DYNSEC_CONTROL, payload, qos=1)

    def _account_deleted(self, node_id: int) -> None:
        self.stats.accounts_deleted += 1
        self.present.discard(node_id)
        self.idle.discard(node_id)

    async def _lead(self) -> None:
        while True:
            await anyio.to_thread.run_sync(self.leadership.check)
            await anyio.sleep(self.options.poll_seconds)

    async def _reap(self) -> None:
        last_purge = 0.0
        while True:
            await anyio.sleep(
                max(self.options.poll_seconds, self.coordinator.settings.reap_interval_seconds)
            )
            if not self.leadership.leading:
                continue
            try:
                await self._call(self.coordinator.reap)
                if time.monotonic() - last_purge > min(3600.0, self.options.request_keys_seconds):
                    last_purge = time.monotonic()
                    await self._call(
                        partial(
                            request_keys.purge,
                            self.coordinator.db,
                            older_than=timedelta(seconds=self.options.request_keys_seconds),
                        )
                    )
            except Exception:
                log.exception("could not requeue expired leases")


def _encode_leases(leases: list[Lease]) -> bytes:
    return ok_reply([lease.to_dict() for lease in leases])


def _encode_outcomes(outcomes: list[CompletionOutcome]) -> bytes:
    return ok_reply([outcome.to_dict() for outcome in outcomes])


def _reply_topic_rule(parsed: topics.Parsed) -> str:
    if parsed.node_id is None:
        return topics.registration_reply_topic("<client id>")
    return topics.node_reply_topic(parsed.node_id)


def _may_answer_on(parsed: topics.Parsed, response_topic: str) -> bool:
    """Node N's answers go to N's reply topic only; registration answers to a client's."""
    if parsed.node_id is None:
        return topics.is_registration_reply_topic(response_topic)
    return response_topic == topics.node_reply_topic(parsed.node_id)


def _typed(body: dict[str, Any], name: str, kind: type[T]) -> T:
    value = body.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidRequest(f"{name} must be a {kind.__name__}", field=name)
    return value


def _optional(body: dict[str, Any], name: str, kind: type[T]) -> T | None:
    return None if body.get(name) is None else _typed(body, name, kind)


__all__ = ["BridgeOptions", "BridgeStats", "MqttBridge"]
