"""Only the GUI thread touches Qt objects.

The agent's thread, the engines' threads and the coordinator's threads post to the
window's mailbox, and every signal of the runner and the log bridge is emitted in the GUI
thread, as Qt asks. A receiver connected with ``DirectConnection`` runs in the emitting
thread, so these tests record where each one ran. (The process crashes CI once saw were
PySide6 6.12's reference-count fault, which tests/gui/test_binding.py guards against;
emitting from many threads only made it come sooner.)
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from sqlalchemy.engine import Engine

from wowlab_core.node_settings import NodeSettings
from wowlab_core.plugins import Hooks
from wowlab_gui_qt.window import MainWindow

from .conftest import claim
from .helpers import make_job, make_user

GUI_THREAD = threading.get_ident()
QUICK = {"name": "quick toy", "base_dps": 1500, "spread": 400, "iteration_ms": 1}


class Where:
    """A receiver that records the thread it runs in."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def __call__(self, *args: Any) -> None:
        self.threads.append(threading.get_ident())


def test_the_runner_signals_in_the_gui_thread(
    qtbot: Any, sqlite_db: Engine, wowlab_hooks: Hooks, open_window: Any
) -> None:
    window = open_window()
    runner = window.runner
    seen = {name: Where() for name in ("snapshot_ready", "claim_code_shown", "node_event")}
    for name, where in seen.items():
        getattr(runner, name).connect(where, Qt.ConnectionType.DirectConnection)
    stopped = Where()
    runner.stopped.connect(stopped, Qt.ConnectionType.DirectConnection)
    owner = make_user(sqlite_db, "ana")
    claim(sqlite_db, owner, window, qtbot)
    make_job(sqlite_db, owner, wowlab_hooks, iterations=40, chunks=2, config=QUICK)
    qtbot.waitUntil(lambda: window.gui.chunks_total >= 1, timeout=20_000)
    window.request_quit()
    window.request_quit()
    qtbot.waitUntil(lambda: stopped.threads != [], timeout=20_000)

    counts = {name: len(where.threads) for name, where in seen.items()}
    assert all(counts.values()), counts
    for name, where in [*seen.items(), ("stopped", stopped)]:
        assert set(where.threads) == {GUI_THREAD}, name


def test_log_records_of_other_threads_reach_the_view_in_the_gui_thread(
    qtbot: Any, open_window: Any
) -> None:
    window = open_window(start=False)
    where = Where()
    window.bridge.record.connect(where, Qt.ConnectionType.DirectConnection)
    thread = threading.Thread(
        target=lambda: logging.getLogger("wowlab_core.test").warning("from a worker thread")
    )
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: "from a worker thread" in window.logs_view.text.toPlainText())
    assert where.threads == [GUI_THREAD]


def test_threads_logging_while_windows_open_and_close_do_not_crash(
    qtbot: Any, coordinator: Any, wowlab_hooks: Hooks
) -> None:
    """Three threads log as fast as they can while twelve windows are built, shown and
    deleted: nothing crashes, and the windows' log views fill in the GUI thread."""
    stop = threading.Event()
    logged = [0, 0, 0]

    def chatter(index: int) -> None:
        logger = logging.getLogger("wowlab_core.test.chatter")
        while not stop.is_set():
            logger.info("line %d", logged[index])
            logged[index] += 1

    threads = [threading.Thread(target=chatter, args=(i,), daemon=True) for i in range(3)]
    for thread in threads:
        thread.start()
    try:
        for index in range(12):
            settings = NodeSettings(name=f"desk-{index}", transport="test-local", url="test://")
            window = MainWindow(settings, None, hooks=wowlab_hooks, log_to_file=False)
            window.show()
            qtbot.waitUntil(lambda w=window: w.logs_view.records != [], timeout=5000)
            window.shutdown_for_tests()
            window.close()
            window.deleteLater()
            qtbot.wait(10)  # deleted here, while the threads go on logging
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
    assert min(logged) > 100  # the threads really ran alongside


def test_a_tick_runs_only_the_calls_posted_before_it(qtbot: Any) -> None:
    """Threads that post faster than the app runs the calls cannot keep the GUI thread
    from Qt: calls posted during a tick wait for the next one."""
    from wowlab_gui_qt.mailbox import Mailbox

    mailbox = Mailbox(interval_ms=60_000)  # ticks only when the test says
    ran: list[int] = []

    def again(n: int) -> None:
        ran.append(n)
        mailbox.post(again, n + 1)  # a call that always posts another

    mailbox.post(again, 0)
    mailbox.post(ran.append, 100)
    assert mailbox.deliver() == 2 and ran == [0, 100]
    assert mailbox.deliver() == 1 and ran == [0, 100, 1]


def test_a_slow_save_cannot_overwrite_the_identity_saved_after_it(
    open_window: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent's thread saves the new identity while a save of the GUI thread, begun
    before it was set, is still writing: the file ends with the identity."""
    import wowlab_core.node_settings as node_settings

    window = open_window(start=False)
    path = window.settings_path
    write = node_settings.write_private_text
    writing = threading.Event()

    def slow_first_write(target: Path, text: str) -> None:
        if '"token": null' in text and not writing.is_set():
            writing.set()
            time.sleep(0.3)  # the GUI's save, still on its way to the disk
        write(target, text)

    monkeypatch.setattr(node_settings, "write_private_text", slow_first_write)
    gui_save = threading.Thread(target=window.save)
    gui_save.start()
    assert writing.wait(5)
    window.settings.node_id, window.settings.token = 7, "the-new-token"  # as the runner does
    window.save()
    gui_save.join(5)
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["node_id"] == 7 and saved["token"] == "the-new-token"
