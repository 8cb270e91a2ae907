"""What the node long polls wait on, without holding a thread or a database connection each.

- :class:`WorkBroadcast`: one thread watches the coordinator's :class:`WorkSignal` (a
  ``threading.Condition``, bumped by other workers too through
  :class:`~wowlab_core.wakeups.Wakeups`) for every waiting node, and wakes them in the
  event loop.
- :class:`ClaimSignal`: a plugin on ``wowlab_node_claimed`` that wakes the claim-status
  long poll of the node just claimed, in this process or in another worker.
- :class:`RecentNodes`: credentials a coordinator call accepted lately, so waiting for
  work does not cost a database round trip per poll. Per worker, and only a shortcut for a
  hint ("work may be there"): every answer that matters checks the token in the database.
- :func:`unless_disconnected`: ends a long poll whose client has gone.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from anyio.from_thread import BlockingPortal
from starlette.requests import Request

from wowlab_core.coordinator import WorkSignal
from wowlab_core.hookspecs import hookimpl
from wowlab_core.protocol import NodeCredentials
from wowlab_core.wakeups import CLAIMED, Wakeups

T = TypeVar("T")

#: How long the watcher thread blocks before it looks whether it should stop.
WATCH_SECONDS = 1.0


class WorkBroadcast:
    """Wakes every waiting node when the coordinator's work signal is bumped."""

    def __init__(self, signal: WorkSignal) -> None:
        self.signal = signal
        self._changed = anyio.Event()
        # Its own limiter: the watcher must not take a slot of the database calls.
        self._limiter = anyio.CapacityLimiter(1)

    async def run(self) -> None:
        """Watch the signal until cancelled (a task of the portal's lifespan)."""
        seen = self.signal.generation
        while True:
            now = await anyio.to_thread.run_sync(
                self.signal.wait, seen, WATCH_SECONDS, abandon_on_cancel=True, limiter=self._limiter
            )
            if now != seen:
                seen = now
                self._changed.set()
                self._changed = anyio.Event()

    async def wait(self, timeout: float) -> bool:
        """Wait for the next bump, at most ``timeout`` seconds. True if woken."""
        with anyio.move_on_after(timeout):
            await self._changed.wait()
            return True
        return False


class ClaimSignal:
    """Wakes the claim-status long polls of a node when it is claimed, in this process or
    (through ``wakeups``) in another worker on the same database.

    Registered as a plugin on the portal's hooks: ``wowlab_node_claimed`` is called in
    whatever thread made the claim, and hands the wake-up to the event loop; it is also
    published to the other workers, whose claims arrive in the wake-ups' listener thread.
    """

    def __init__(self, portal: BlockingPortal, wakeups: Wakeups | None = None) -> None:
        # The portal hands wake-ups to the event loop without blocking the claiming thread
        # (and refuses them once the portal app has stopped).
        self._portal = portal
        self._loop_thread = threading.get_ident()
        self._waiters: dict[int, set[anyio.Event]] = {}
        self._wakeups = wakeups
        if wakeups is not None:
            wakeups.subscribe(CLAIMED, self._claimed_elsewhere)

    def _claimed_elsewhere(self, payload: str) -> None:
        # An empty payload: the listener reconnected and may have missed claims.
        node_id = int(payload) if payload.isdigit() else None
        with suppress(RuntimeError):
            self._portal.start_task_soon(self._wake_soon, node_id)

    @contextmanager
    def watch(self, node_id: int) -> Iterator[anyio.Event]:
        """An event set when ``node_id`` is claimed; watch before reading the status, so
        a claim in between is not missed."""
        event = anyio.Event()
        self._waiters.setdefault(node_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(node_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[node_id]

    def _wake(self, node_id: int | None) -> None:
        if node_id is None:  # any node
            for waiters in self._waiters.values():
                for event in waiters:
                    event.set()
            return
        for event in self._waiters.get(node_id, ()):
            event.set()

    async def _wake_soon(self, node_id: int | None) -> None:
        self._wake(node_id)

    @hookimpl
    def wowlab_node_claimed(self, node: Any, user: Any) -> None:
        """Wake the node's long polls, here and in the other workers."""
        if node.id is None:
            return
        if self._wakeups is not None:
            self._wakeups.publish(CLAIMED, str(node.id))
        if threading.get_ident() == self._loop_thread:
            self._wake(node.id)
            return
        # RuntimeError: the portal app has stopped, so nobody is waiting.
        with suppress(RuntimeError):
            self._portal.start_task_soon(self._wake_soon, node.id)


class RecentNodes:
    """Credentials that a coordinator call accepted in the last ``ttl`` seconds."""

    def __init__(self, *, ttl: float = 60.0, max_size: int = 100_000) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(creds: NodeCredentials) -> str:
        return hashlib.sha256(f"{creds.node_id}:{creds.token}".encode()).hexdigest()

    def remember(self, creds: NodeCredentials) -> None:
        """Note that ``creds`` were accepted just now."""
        key = self._key(creds)
        with self._lock:
            self._seen[key] = time.monotonic() + self.ttl
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_size:
                self._seen.popitem(last=False)

    def known(self, creds: NodeCredentials) -> bool:
        """Whether ``creds`` were accepted within the last ``ttl`` seconds."""
        key = self._key(creds)
        with self._lock:
            until = self._seen.get(key)
            if until is None:
                return False
            if until < time.monotonic():
                del self._seen[key]
                return False
            return True


async def unless_disconnected(request: Request, wait: Callable[[], Awaitable[T]]) -> T | None:
    """Run ``wait``; None if the client hung up first (its long poll is then dropped)."""
    result: T | None = None
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        result = await wait()
        tg.cancel_scope.cancel()
    return result


__all__ = ["ClaimSignal", "RecentNodes", "WorkBroadcast", "unless_disconnected"]
