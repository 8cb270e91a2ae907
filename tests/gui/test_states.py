"""States a volunteer sees: a claim code renewed as it expires, the claim announced by
name, a node removed by its owner going offline with the reason, closing to the tray,
and the idle rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import write_session
from wowlab_core.models import Node
from wowlab_gui_qt import runner as runner_module
from wowlab_gui_qt.tray import Tray
from wowlab_gui_qt.window import CLAIM

from .conftest import claim
from .helpers import make_user


def test_the_claim_code_is_renewed_as_it_expires_and_the_claim_is_announced(
    qtbot: Any, sqlite_db: Engine, coordinator: Coordinator, open_window: Any
) -> None:
    coordinator.settings = replace(coordinator.settings, claim_lifetime=timedelta(seconds=3))
    window = open_window()
    view = window.claim_view
    qtbot.waitUntil(lambda: "-" in view.code.text(), timeout=10_000)
    first = view.code.text()
    assert view.expiry.text() in ("Code expires in 0:02", "Code expires in 0:03")
    assert view.spinner.isVisible() and view.waiting.text() == "Waiting for claim…"
    qtbot.waitUntil(lambda: window.state_pill.text() == "Waiting for claim", timeout=2000)
    assert view.qr.matrix and view.link == ""  # the local transport has no portal page
    # A new code comes within a second or two of the old one's expiry, by itself.
    qtbot.waitUntil(lambda: view.code.text() != first, timeout=8_000)
    assert view.expiry.text().startswith("Code expires in 0:0")
    assert window.stack.currentIndex() == CLAIM
    claim(sqlite_db, make_user(sqlite_db, "ana"), window, qtbot)
    assert window.statusBar().currentMessage() == "This computer was claimed by ana."


def test_a_node_removed_by_its_owner_is_offline_with_the_reason(
    qtbot: Any, sqlite_db: Engine, open_window: Any
) -> None:
    window = open_window()
    claim(sqlite_db, make_user(sqlite_db, "ana"), window, qtbot)
    qtbot.waitUntil(lambda: window.state_pill.text() == "Idle", timeout=5000)
    with write_session(sqlite_db) as s:  # what the portal's "Remove" does
        s.delete(s.exec(select(Node)).one())
        s.commit()
    qtbot.waitUntil(lambda: window.runner is None, timeout=10_000)
    assert window.state_pill.text() == "Offline"
    assert window.dashboard.state_card.detail.text() == "node removed by its owner"
    assert "The node is offline: node removed by its owner." in window.dashboard.banner.text()


def test_closing_the_window_keeps_the_node_in_the_tray(
    qtbot: Any, sqlite_db: Engine, open_window: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Tray, "available", staticmethod(lambda: True))
    window = open_window()
    claim(sqlite_db, make_user(sqlite_db, "ana"), window, qtbot)
    window.close()
    assert not window.isVisible() and window.runner is not None and window.runner.running
    window.tray.show_action.trigger()
    assert window.isVisible()
    # Turned off: closing the window quits (gracefully).
    window.settings_view.close_to_tray.setChecked(False)
    window.settings_view.save_button.click()
    with qtbot.waitSignal(window.quit_finished, timeout=30_000):
        window.close()


def test_the_idle_rule_holds_work_back_until_the_machine_is_idle(
    qtbot: Any, sqlite_db: Engine, open_window: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The desktop's idle time is an operating system reading: here it is set by the test.
    idle = {"seconds": 30.0}
    monkeypatch.setattr(runner_module, "idle_seconds", lambda: idle["seconds"])
    window = open_window(idle_minutes=1)
    claim(sqlite_db, make_user(sqlite_db, "ana"), window, qtbot)
    qtbot.waitUntil(lambda: window.state_pill.text() == "Paused", timeout=5000)
    assert "waiting for 1 idle minutes" in window.state_pill.toolTip()
    assert window.runner is not None and window.runner.agent is not None
    assert window.runner.agent.paused
    idle["seconds"] = 61.0
    qtbot.waitUntil(lambda: window.state_pill.text() == "Idle", timeout=5000)
    assert not window.runner.agent.paused
