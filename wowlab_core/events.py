"""Event listeners run off the request path: one queue and one worker thread per plugin manager.

``wowlab_chunk_completed`` and ``wowlab_job_finished`` are announced after the coordinator has
committed; a listener that takes seconds (a webhook) must not hold up the node whose request
finished the job. The coordinator only puts the event in a queue; a worker thread calls the
listeners, one event after the other, so the events of a job arrive in the order they happened.
A listener that raises is logged and the next one runs.

A process that exits soon after its work (``wowlab sim``) calls :meth:`EventQueue.flush` first;
an ``atexit`` handler flushes too, with a bounded wait.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: How long the ``atexit`` handler waits for listeners still running.
EXIT_FLUSH_SECONDS = 10.0
#: Events waiting beyond this many get a warning (listeners slower than the work).
BACKLOG_WARNING = 10_000

Delivery = Callable[[], None]


class EventQueue:
    """A FIFO of deliveries and the daemon thread that runs them."""

    def __init__(self, name: str = "wowlab-events") -> None:
        self.name = name
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._warned = False
        _all_queues.add(self)

    @property
    def pending(self) -> int:
        """Deliveries queued or running."""
        with self._lock:
            return self._pending

    def put(self, delivery: Delivery) -> None:
        """Queue ``delivery``; returns at once."""
        with self._lock:
            self._pending += 1
            backlog = self._pending
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()
        if backlog > BACKLOG_WARNING and not self._warned:
            self._warned = True
            log.warning("%d plugin events are waiting: an event listener is slow", backlog)
        self._queue.put(delivery)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued delivery has run. False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def _work(self) -> None:
        while True:
            delivery = self._queue.get()
            if delivery is None:
                return
            try:
                delivery()
            except Exception:  # a delivery logs its listeners' errors; this is a last guard
                log.exception("a plugin event could not be delivered")
            finally:
                with self._idle:
                    self._pending -= 1
                    if not self._pending:
                        self._idle.notify_all()


_all_queues: weakref.WeakSet[EventQueue] = weakref.WeakSet()


def flush_all(timeout: float = EXIT_FLUSH_SECONDS) -> bool:
    """Flush every event queue of this process, within ``timeout`` seconds in total."""
    deadline = time.monotonic() + timeout
    done = True
    for events in list(_all_queues):
        done = events.flush(max(deadline - time.monotonic(), 0.0)) and done
    return done


def _flush_at_exit() -> None:
    if not flush_all():
        log.warning("plugin event listeners still running at exit were abandoned")


atexit.register(_flush_at_exit)


def describe(value: Any) -> str:
    """A short form of a hook argument for traces (``SimJob(id=3)``)."""
    ident = getattr(value, "id", None)
    if ident is not None:
        return f"{type(value).__name__}(id={ident})"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = ["EXIT_FLUSH_SECONDS", "EventQueue", "describe", "flush_all"]
