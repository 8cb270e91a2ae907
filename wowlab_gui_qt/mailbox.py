"""Calls from worker threads, run in the GUI thread.

The node agent, the engines and the coordinator's threads never touch a Qt object: they
put a call in a :class:`Mailbox` (a plain thread-safe queue), and a timer of the GUI
thread runs what is there. So every Qt object is used by the GUI thread alone, as Qt asks,
signals are emitted where their receivers live, and a call posted after the window is gone
is simply never run.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer

log = logging.getLogger(__name__)


class Mailbox(QObject):
    """Runs posted calls in the thread that created it (the GUI thread), in order."""

    def __init__(self, parent: QObject | None = None, *, interval_ms: int = 50) -> None:
        super().__init__(parent)
        self._calls: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]]] = (
            queue.SimpleQueue()
        )
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.deliver)
        self._timer.start()

    def post(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` in the GUI thread soon. Safe from any thread: it touches
        no Qt object."""
        self._calls.put((function, args))

    def deliver(self) -> int:
        """Run the calls posted before this one started (the timer does; tests may too);
        calls posted meanwhile wait for the next tick, so threads that post faster than
        the app runs the calls cannot keep the GUI thread from Qt. Returns how many ran."""
        count = 0
        for _ in range(self._calls.qsize()):
            try:
                function, args = self._calls.get_nowait()
            except queue.Empty:
                break
            count += 1
            try:
                function(*args)
            except Exception:  # one bad call must not drop the calls after it
                log.exception("a call from a worker thread failed in the app")
        return count


__all__ = ["Mailbox"]
