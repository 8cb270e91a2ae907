"""Wake-ups that cross processes: PostgreSQL ``LISTEN``/``NOTIFY``.

Several portal workers and MQTT bridges share one database. Work submitted (or a lease
handed back) in one of them must wake the nodes waiting in all of them, and a node
claimed on one worker must end the claim-status long poll held open on another.
:class:`Wakeups` carries those hints: ``publish(channel, payload)`` sends a
``NOTIFY``; every other process that ``subscribe``\\ d to the channel gets the payload in
its listener thread.

A wake-up is a hint, never the truth: the woken side always reads the database. So a
lost notification (a dropped connection, a process restarting) costs latency, not
correctness; after the listener reconnects it calls every subscriber once with an empty
payload ("something may have happened"). On SQLite (one process) there is nobody else to
tell and :class:`Wakeups` does nothing.

Two threads per process, each with its own connection outside the pool: the listener
(``LISTEN`` and ``notifies()``) and the sender (publishing never blocks the caller; hints
queued while one is being sent are merged).
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from wowlab_core.db import is_postgres

log = logging.getLogger(__name__)

#: Chunks may have become available (payload: empty).
WORK = "wowlab_work"
#: A node was claimed (payload: its id).
CLAIMED = "wowlab_claimed"
CHANNELS = (WORK, CLAIMED)

_STOP = ("", "")


class Wakeups:
    """Hints between the processes sharing one PostgreSQL database (a no-op on SQLite)."""

    def __init__(
        self, db: Engine, *, channels: tuple[str, ...] = CHANNELS, retry_seconds: float = 1.0
    ) -> None:
        self.enabled = is_postgres(db)
        self.channels = channels
        self.retry_seconds = retry_seconds
        #: Who sent a notification: a process ignores its own.
        self.sender = uuid.uuid4().hex[:16]
        self._conninfo = (
            db.url.set(drivername="postgresql").render_as_string(hide_password=False)
            if self.enabled
            else ""
        )
        self._subscribers: dict[str, list[Callable[[str], None]]] = {c: [] for c in channels}
        self._outbox: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self._threads: list[threading.Thread] = []
        #: Notifications received from other processes (for tests and metrics).
        self.received = 0

    # --- use ------------------------------------------------------------------------

    def subscribe(self, channel: str, callback: Callable[[str], None]) -> None:
        """Call ``callback(payload)`` (in the listener thread) for ``channel``'s
        notifications from other processes; it must not block."""
        if channel not in self._subscribers:
            raise ValueError(f"unknown wake-up channel {channel!r}")
        self._subscribers[channel].append(callback)

    def publish(self, channel: str, payload: str = "") -> None:
        """Tell the other processes (never blocks; dropped when not running)."""
        if self.enabled and self._threads and not self._stopping.is_set():
            self._outbox.put((channel, payload))

    # --- life cycle -----------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Start listening and sending; waits (up to ``timeout``) until ``LISTEN`` holds,
        so a notification sent after this returns is not missed."""
        if not self.enabled or self._threads:
            return
        self._stopping.clear()
        for target, name in ((self._listen, "listener"), (self._send, "sender")):
            thread = threading.Thread(target=target, name=f"wowlab-wakeups-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if not self._listening.wait(timeout):
            log.warning("wake-ups: not listening after %.0f s; retrying in the background", timeout)

    def stop(self) -> None:
        """Stop both threads (the listener within ``retry_seconds``)."""
        if not self._threads:
            return
        self._stopping.set()
        self._outbox.put(_STOP)
        for thread in self._threads:
            thread.join(5.0)
        self._threads.clear()
        self._listening.clear()

    def __enter__(self) -> Wakeups:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the threads ----------------------------------------------------------------

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10)

    def _deliver(self, channel: str, payload: str) -> None:
        for callback in list(self._subscribers.get(channel, ())):
            try:
                callback(payload)
            except Exception:
                log.exception("a wake-up subscriber of %s failed", channel)

    def _listen(self) -> None:
        first = True
        while not self._stopping.is_set():
            try:
                with self._connect() as conn:
                    for channel in self.channels:
                        conn.execute(f"LISTEN {channel}")
                    self._listening.set()
                    if not first:
                        # Notifications sent while we were away are lost: wake everyone.
                        for channel in self.channels:
                            self._deliver(channel, "")
                    first = False
                    while not self._stopping.is_set():
                        for note in conn.notifies(timeout=self.retry_seconds):
                            sender, _, payload = note.payload.partition("|")
                            if sender != self.sender:
                                self.received += 1
                                self._deliver(note.channel, payload)
            except Exception as exc:
                if self._stopping.is_set():
                    break
                log.warning("wake-ups: listening failed (%s); retrying", exc)
                self._stopping.wait(self.retry_seconds)

    def _send(self) -> None:
        conn: Any = None
        try:
            while True:
                batch = {self._outbox.get()}
                while True:  # merge what queued up meanwhile
                    try:
                        batch.add(self._outbox.get_nowait())
                    except queue.Empty:
                        break
                if _STOP in batch:
                    return
                try:
                    if conn is None or conn.closed:
                        conn = self._connect()
                    for channel, payload in sorted(batch):
                        conn.execute(
                            "select pg_notify(%s, %s)", (channel, f"{self.sender}|{payload}")
                        )
                except Exception as exc:
                    log.warning("wake-ups: could not notify (%s)", exc)
                    conn = None
        finally:
            if conn is not None:
                conn.close()


__all__ = ["CHANNELS", "CLAIMED", "WORK", "Wakeups"]
