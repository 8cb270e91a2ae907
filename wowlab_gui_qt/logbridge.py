"""Log records from any thread into the logs view, and into a file in the data directory.

Records of any thread are posted to the window's :class:`~wowlab_gui_qt.mailbox.Mailbox`
and emitted by the bridge in the GUI thread (no thread but the GUI's touches a Qt object);
uncaught exceptions of worker threads and of Qt slots are logged the same way, so they show
in the logs view and the status bar, and the app keeps running.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from PySide6.QtCore import QObject, Signal

from wowlab_core.db import data_dir
from wowlab_gui_qt.mailbox import Mailbox

log = logging.getLogger(__name__)

#: The loggers shown in the logs view (the agent, its transports, the app).
LOGGERS = ("wowlab_core", "wowlab_gui_qt", "wowlab_transport_mqtt", "wowlab_transport_supabase")


def log_dir() -> Path:
    """Where the app writes its log files."""
    return data_dir() / "logs"


class LogBridge(QObject):
    """A logging handler's other end: ``record`` is emitted for every log record."""

    record = Signal(object)  # logging.LogRecord
    #: An exception nobody caught (worker thread or Qt slot): its one-line reason.
    uncaught = Signal(str)


class QtLogHandler(logging.Handler):
    """Hands records of any thread to a :class:`LogBridge`, through ``mailbox``."""

    def __init__(self, bridge: LogBridge, mailbox: Mailbox, level: int = logging.DEBUG) -> None:
        super().__init__(level)
        self.bridge = bridge
        self.mailbox = mailbox

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        self.mailbox.post(_emit, self.bridge, "record", record)


def install(
    bridge: LogBridge, mailbox: Mailbox, *, profile: str, to_file: bool = True
) -> list[logging.Handler]:
    """Route wowlab's log records to ``bridge`` (and a rotating file); catch uncaught
    exceptions of threads and slots. Returns the handlers added (to remove them)."""
    handlers: list[logging.Handler] = [QtLogHandler(bridge, mailbox)]
    if to_file:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            folder / f"gui-{profile}.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8"
        )
        file_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        file_handler.setLevel(logging.INFO)
        handlers.append(file_handler)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
        for handler in handlers:
            logger.addHandler(handler)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        name = args.thread.name if args.thread else "a worker thread"
        log.error(
            "uncaught error in %s",
            name,
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )
        mailbox.post(_emit, bridge, "uncaught", f"error in {name}: {_one_line(args.exc_value)}")

    def slot_hook(
        exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        log.error("uncaught error in the app", exc_info=(exc_type, exc, tb))
        mailbox.post(_emit, bridge, "uncaught", f"error: {_one_line(exc)}")

    threading.excepthook = thread_hook
    sys.excepthook = slot_hook
    return handlers


def uninstall(handlers: list[logging.Handler]) -> None:
    """Undo :func:`install` (tests)."""
    for name in LOGGERS:
        for handler in handlers:
            logging.getLogger(name).removeHandler(handler)
    for handler in handlers:
        handler.close()
    threading.excepthook = threading.__excepthook__
    sys.excepthook = sys.__excepthook__


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _emit(bridge: LogBridge, signal: str, value: Any) -> None:
    """In the GUI thread: emit the bridge's ``signal`` (unless the window is gone)."""
    with contextlib.suppress(RuntimeError):  # the bridge was deleted with its window
        getattr(bridge, signal).emit(value)


__all__ = ["LOGGERS", "LogBridge", "QtLogHandler", "install", "log_dir", "uninstall"]
