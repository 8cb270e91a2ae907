"""The app on a real node agent and coordinator: claim to dashboard, the tray menu, the
CPU limit, pausing, unlinking, field errors, worker errors, and accessible names."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QHeaderView,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QScrollBar,
    QSlider,
    QTabBar,
    QTabWidget,
    QWidget,
)
from sqlalchemy.engine import Engine
from sqlmodel import select

from wowlab_core.db import read_session
from wowlab_core.models import ChunkStatus, JobStatus, Node, SimChunk, SimJob
from wowlab_core.node_settings import NodeSettings
from wowlab_core.plugins import Hooks
from wowlab_gui_qt.settings import cpu_count, workers_for
from wowlab_gui_qt.theme import STATUS_COLORS
from wowlab_gui_qt.window import CLAIM, MAIN, SETUP

from .conftest import claim
from .helpers import make_job, make_user

SLOW = {"name": "slow toy", "base_dps": 1500, "spread": 400, "iteration_ms": 20}


def leased(db: Engine) -> list[SimChunk]:
    with read_session(db) as s:
        return list(
            s.exec(select(SimChunk).where(SimChunk.status == ChunkStatus.LEASED.value)).all()
        )


def job_done(db: Engine, job_id: int) -> bool:
    with read_session(db) as s:
        job = s.get(SimJob, job_id)
        return job is not None and job.status == JobStatus.COMPLETED.value


def test_claimed_node_shows_the_dashboard_and_runs_chunks(
    qtbot: Any, sqlite_db: Engine, wowlab_hooks: Hooks, open_window: Any
) -> None:
    owner = make_user(sqlite_db, "ana")
    window = open_window()
    assert window.stack.currentIndex() == CLAIM
    claim(sqlite_db, owner, window, qtbot)
    qtbot.waitUntil(lambda: "Owner <b>ana</b>" in window.dashboard.node_line.text(), timeout=5000)
    assert "shared with <b>owner only</b>" in window.dashboard.node_line.text()
    job_id = make_job(sqlite_db, owner, wowlab_hooks, iterations=400, chunks=4, config=SLOW)
    qtbot.waitUntil(lambda: window.dashboard.table.rowCount() > 0, timeout=10_000)
    assert window.dashboard.table.item(0, 0).text() == f"#{job_id}"
    qtbot.waitUntil(lambda: window.dashboard.table.item(0, 1).text() == "slow toy", timeout=5000)
    assert window.state_pill.text() == "Running"
    qtbot.waitUntil(lambda: job_done(sqlite_db, job_id), timeout=60_000)
    qtbot.waitUntil(lambda: window.gui.chunks_total == 4, timeout=5000)
    qtbot.waitUntil(lambda: window.dashboard.chunks_card.value.text() == "4", timeout=5000)
    assert window.dashboard.workers_card.value.text() == f"0 / {window.worker_count()}"
    # The counts are kept in the node's settings file, beside its identity.
    saved = NodeSettings.load(window.settings_path)
    assert saved is not None and saved.gui["chunks_total"] == 4 and saved.node_id is not None


def test_tray_menu_pauses_resumes_and_quits(
    qtbot: Any, sqlite_db: Engine, wowlab_hooks: Hooks, open_window: Any
) -> None:
    owner = make_user(sqlite_db, "ana")
    window = open_window()
    claim(sqlite_db, owner, window, qtbot)
    tray = window.tray
    texts = [a.text() for a in tray.menu.actions() if not a.isSeparator()]
    assert texts[1:] == ["Show wowlab", "Pause", "Quit"]
    qtbot.waitUntil(lambda: tray.color == STATUS_COLORS["idle"], timeout=5000)
    assert "Idle" in tray.icon.toolTip()

    job_id = make_job(sqlite_db, owner, wowlab_hooks, iterations=600, chunks=6, config=SLOW)
    qtbot.waitUntil(lambda: tray.color == STATUS_COLORS["running"], timeout=10_000)
    tray.pause_action.trigger()
    assert tray.pause_action.text() == "Resume" and window.gui.paused
    qtbot.waitUntil(lambda: tray.color == STATUS_COLORS["paused"], timeout=5000)
    qtbot.waitUntil(lambda: not leased(sqlite_db), timeout=5000)  # handed back at once
    assert window.dashboard.banner.isVisible() and "paused by you" in window.dashboard.banner.text()
    tray.pause_action.trigger()
    assert tray.pause_action.text() == "Pause" and not window.gui.paused
    qtbot.waitUntil(lambda: tray.color == STATUS_COLORS["running"], timeout=10_000)

    window.hide()
    tray.show_action.trigger()
    assert window.isVisible()
    with qtbot.waitSignal(window.quit_finished, timeout=30_000):
        tray.quit_action.trigger()  # graceful: the running chunks finish first
    assert window.runner is None
    with read_session(sqlite_db) as s:
        chunks = s.exec(select(SimChunk).where(SimChunk.job_id == job_id)).all()
        assert not [c for c in chunks if c.status == ChunkStatus.LEASED.value]
        assert all(c.failures == 0 for c in chunks)
        assert s.exec(select(Node)).one().status == "offline"  # said goodbye


def test_second_quit_hands_running_chunks_back(
    qtbot: Any, sqlite_db: Engine, wowlab_hooks: Hooks, open_window: Any
) -> None:
    owner = make_user(sqlite_db, "ana")
    window = open_window()
    claim(sqlite_db, owner, window, qtbot)
    # One chunk of 2,000 iterations of 20 ms: 40 s unless it is handed back.
    job_id = make_job(sqlite_db, owner, wowlab_hooks, iterations=2000, chunks=1, config=SLOW)
    qtbot.waitUntil(lambda: window.dashboard.table.rowCount() == 1, timeout=10_000)
    window.request_quit()
    assert "Quit again to hand them back" in window.statusBar().currentMessage()
    with qtbot.waitSignal(window.quit_finished, timeout=10_000):
        window.request_quit()
    [chunk] = [c for c in leased(sqlite_db) if c.job_id == job_id] or [None]
    assert chunk is None
    with read_session(sqlite_db) as s:
        [back] = s.exec(select(SimChunk).where(SimChunk.job_id == job_id)).all()
        assert back.status == ChunkStatus.PENDING.value and back.failures == 0


def test_cpu_limit_gives_the_agent_its_worker_count(
    qtbot: Any, sqlite_db: Engine, open_window: Any
) -> None:
    owner = make_user(sqlite_db, "ana")
    window = open_window(settings=NodeSettings(name="desk", transport="test-local",
                                               url="test://", max_parallel=8))  # fmt: skip
    claim(sqlite_db, owner, window, qtbot)
    agent = window.runner.agent
    cores = cpu_count()
    qtbot.waitUntil(lambda: agent.capacity == min(8, cores), timeout=5000)
    view = window.settings_view
    for percent in (50, 25, 100):
        view.cpu_limit.setValue(percent)
        expected = workers_for(cores=cores, cpu_limit_percent=percent, max_parallel=8)
        assert f"{expected} worker" in view.cpu_text.text()
        view.save_button.click()
        qtbot.waitUntil(lambda e=expected: agent.capacity == e, timeout=5000)  # type: ignore[misc]
        assert agent.worker_limit == expected
        qtbot.waitUntil(
            lambda e=expected: window.dashboard.workers_card.value.text() == f"0 / {e}",  # type: ignore[misc]
            timeout=5000,
        )
    assert NodeSettings.load(window.settings_path).gui["cpu_limit_percent"] == 100  # type: ignore[union-attr]
    # The arithmetic itself: a share of the cores, at least one, at most max parallel.
    assert workers_for(cores=8, cpu_limit_percent=50, max_parallel=8) == 4
    assert workers_for(cores=8, cpu_limit_percent=5, max_parallel=8) == 1
    assert workers_for(cores=16, cpu_limit_percent=100, max_parallel=3) == 3
    assert workers_for(cores=6, cpu_limit_percent=75, max_parallel=16) == 4


def test_unlink_asks_then_forgets_the_identity_and_registers_anew(
    qtbot: Any, sqlite_db: Engine, open_window: Any, monkeypatch: Any
) -> None:
    owner = make_user(sqlite_db, "ana")
    window = open_window()
    claim(sqlite_db, owner, window, qtbot)
    first = NodeSettings.load(window.settings_path)
    assert first is not None and first.node_id is not None and first.token

    questions: list[str] = []
    monkeypatch.setattr(window, "ask", lambda title, text: questions.append(title) or False)
    window.settings_view.unlink_button.click()
    assert questions == ["Unlink this node?"]
    qtbot.wait(300)
    assert window.stack.currentIndex() == MAIN  # "no": nothing happened
    assert NodeSettings.load(window.settings_path).node_id == first.node_id  # type: ignore[union-attr]

    monkeypatch.setattr(window, "ask", lambda title, text: True)
    window.settings_view.unlink_button.click()
    qtbot.waitUntil(lambda: window.stack.currentIndex() == CLAIM, timeout=15_000)
    qtbot.waitUntil(lambda: "-" in window.claim_view.code.text(), timeout=10_000)
    again = NodeSettings.load(window.settings_path)
    assert again is not None and again.node_id not in (None, first.node_id)
    assert again.token != first.token and again.name == "desk"
    with read_session(sqlite_db) as s:
        nodes = {n.id: n for n in s.exec(select(Node)).all()}
    assert nodes[first.node_id].status == "offline" and nodes[again.node_id].user_id is None


def test_an_invalid_address_is_an_error_on_its_field(
    qtbot: Any, open_window: Any, wowlab_hooks: Hooks
) -> None:
    window = open_window(settings=NodeSettings(name="desk", transport="http", url=""), start=False)
    window.start()
    assert window.stack.currentIndex() == SETUP
    setup = window.setup_view
    submitted: list[Any] = []
    setup.submitted.connect(submitted.append)
    for bad, message in [
        ("", "enter the address"),
        ("ftp://portal.example", "needs an address starting with http://, https://"),
        ("http://", "no host name"),
        ("http://portal.example:99999", "port must be a number"),
    ]:
        setup.url.setText(bad)
        setup.connect_button.click()
        assert setup.url_error.isVisible() and message in setup.url_error.text(), bad
        assert setup.url.property("invalid") is True
    setup.url.setText("http://127.0.0.1:9")
    setup.name.setText("  ")
    setup.connect_button.click()
    assert not setup.url_error.isVisible() and setup.name_error.isVisible()
    assert not submitted


def test_an_unreachable_portal_is_an_inline_message_and_retried(
    qtbot: Any, open_window: Any, wowlab_hooks: Hooks
) -> None:
    # Port 9 (discard) on this machine: connection refused, at once.
    window = open_window(settings=NodeSettings(name="desk", transport="http", url=""), start=False)
    window.start()
    window.setup_view.url.setText("http://127.0.0.1:9")
    window.setup_view.connect_button.click()
    assert window.stack.currentIndex() == CLAIM
    problem = window.claim_view.problem
    qtbot.waitUntil(lambda: problem.isVisible(), timeout=15_000)
    assert "cannot reach" in problem.text() and problem.text().endswith("retrying…")
    assert window.state_pill.text() == "Reconnecting"
    assert window.runner is not None and window.runner.running  # no crash, it keeps trying
    saved = json.loads(Path(window.settings_path).read_text())
    assert saved["url"] == "http://127.0.0.1:9" and saved["transport"] == "http"


def test_a_worker_exception_shows_in_logs_and_status_bar_and_the_app_goes_on(
    qtbot: Any, sqlite_db: Engine, open_window: Any
) -> None:
    window = open_window()

    def broken() -> None:
        raise RuntimeError("the sky fell in a worker")

    thread = threading.Thread(target=broken, name="sim-worker")
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: "the sky fell" in window.statusBar().currentMessage(), timeout=5000)
    assert "sim-worker" in window.statusBar().currentMessage()
    text = window.logs_view.text.toPlainText()
    assert "uncaught error in sim-worker" in text and "RuntimeError: the sky fell" in text
    # Still alive: the node keeps going and the window answers.
    owner = make_user(sqlite_db, "ana")
    claim(sqlite_db, owner, window, qtbot)


def test_logs_view_filters_by_level_and_copies(qtbot: Any, open_window: Any) -> None:
    import logging

    window = open_window(start=False)
    logs = window.logs_view
    log = logging.getLogger("wowlab_core.agent")
    log.info("an ordinary line")
    log.warning("a warning line")
    qtbot.waitUntil(lambda: "a warning line" in logs.text.toPlainText(), timeout=2000)
    assert "an ordinary line" in logs.text.toPlainText()
    logs.level.setCurrentText("Warning")
    assert "an ordinary line" not in logs.text.toPlainText()
    assert "a warning line" in logs.text.toPlainText() and logs.count.text() == "1 line"
    logs.copy_button.click()
    from PySide6.QtGui import QGuiApplication

    assert "a warning line" in QGuiApplication.clipboard().text()
    logs.level.setCurrentText("Debug")
    assert "an ordinary line" in logs.text.toPlainText()


CONTROLS = (
    QAbstractButton,
    QLineEdit,
    QAbstractSpinBox,
    QComboBox,
    QSlider,
    QPlainTextEdit,
    QAbstractItemView,
    QProgressBar,
    QTabWidget,
)


def unnamed_controls(root: QWidget) -> list[str]:
    """Controls without an accessible name (Qt's own parts of a composite excepted)."""
    missing = []
    for widget in root.findChildren(QWidget):
        if not isinstance(widget, CONTROLS):
            continue
        parent = widget.parentWidget()
        internal = False
        while parent is not None:
            if isinstance(parent, (QComboBox, QAbstractSpinBox, QTabBar)):
                internal = True  # a spin box's editor, a combo's list, a tab bar's arrows
            parent = parent.parentWidget()
        # Qt's own parts: scroll bars, a table's headers and its corner button.
        if internal or isinstance(widget, (QScrollBar, QHeaderView)):
            continue
        if widget.objectName().startswith("qt_"):
            continue
        if not widget.accessibleName().strip():
            missing.append(f"{type(widget).__name__} {widget.objectName()!r}")
    return missing


def test_every_control_has_an_accessible_name(
    qtbot: Any, sqlite_db: Engine, wowlab_hooks: Hooks, open_window: Any
) -> None:
    owner = make_user(sqlite_db, "ana")
    window = open_window()
    claim(sqlite_db, owner, window, qtbot)
    make_job(sqlite_db, owner, wowlab_hooks, iterations=400, chunks=2, config=SLOW)
    qtbot.waitUntil(lambda: window.dashboard.table.rowCount() > 0, timeout=10_000)
    checked = [w for w in window.findChildren(QWidget) if isinstance(w, CONTROLS)]
    assert len(checked) > 30  # the walk reached every page
    assert unnamed_controls(window) == []
    assert all(a.text() for a in window.tray.menu.actions() if not a.isSeparator())
    for label, _ in [("Status", 0), ("Settings", 1), ("Logs", 2)]:
        assert label in [window.tabs.tabText(i) for i in range(window.tabs.count())]
