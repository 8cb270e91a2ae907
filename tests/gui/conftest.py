"""The desktop app under test: offscreen Qt (pytest-qt), real node agents on a real
coordinator (a SQLite file behind the local transport, or a served portal)."""

from __future__ import annotations

import os
import threading
import time

# Before anything imports Qt: no display is needed, here or in CI.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from wowlab_core.agent import AgentOptions
from wowlab_core.coordinator import Coordinator
from wowlab_core.hookspecs import hookimpl
from wowlab_core.models import User
from wowlab_core.node_settings import NodeSettings
from wowlab_core.nodes import claim_and_announce
from wowlab_core.plugins import Hooks
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_core.testing.toy_engine import ToyEngine
from wowlab_core.transport_local import LocalTransport
from wowlab_gui_qt.runner import RunnerOptions
from wowlab_gui_qt.settings import GuiSettings
from wowlab_gui_qt.window import MainWindow


class LabelledToy(ToyEngine):
    """The toy engine under its own name, taking a ``name`` label as real configs do
    (the dashboard shows it)."""

    name = "labelled"

    def prepare(self, config: Any) -> dict[str, int]:
        if isinstance(config, dict):
            config = {k: v for k, v in config.items() if k != "name"}
        return super().prepare(config)


#: Leases long enough for a loaded 2-core machine; heartbeats quick.
GUI_COORDINATOR = replace(TEST_SETTINGS, lease_seconds=10.0, heartbeat_seconds=0.3)


def fast_runner(**changes: Any) -> RunnerOptions:
    """Runner timings for tests: quick snapshots, watches, polls and retries."""
    agent = AgentOptions(
        heartbeat_seconds=0.3,
        idle_wait_seconds=0.1,
        claim_wait_seconds=0.3,
        retry_seconds=0.2,
        max_retry_seconds=1.0,
        drain_seconds=20.0,
    )
    return RunnerOptions(
        **{"snapshot_seconds": 0.1, "watch_seconds": 0.2, "warm_up": False, "agent": agent}
        | changes
    )


@pytest.fixture(autouse=True)
def _private_data_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Log files and settings of these tests stay out of $HOME."""
    monkeypatch.setenv("WOWLAB_DATA_DIR", str(tmp_path_factory.mktemp("data")))


@pytest.fixture
def coordinator(sqlite_db: Engine, wowlab_hooks: Hooks, register_plugin: Any) -> Coordinator:
    """A coordinator on a SQLite file, reachable as the transport ``test-local``."""
    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks, settings=GUI_COORDINATOR)

    class TestLocal:
        @staticmethod
        @hookimpl
        def wowlab_register_transports(register: Any) -> None:
            register("test-local", lambda url, **options: LocalTransport(coordinator))

        @staticmethod
        @hookimpl
        def wowlab_register_engines(register: Any) -> None:
            register(LabelledToy())

    register_plugin(TestLocal)
    return coordinator


@pytest.fixture
def open_window(
    qtbot: Any, coordinator: Coordinator, wowlab_hooks: Hooks, tmp_path: Path
) -> Iterator[Callable[..., MainWindow]]:
    """Open the app on a node of ``coordinator`` (``settings``: a NodeSettings to start
    from; ``gui``: GuiSettings fields); the node starts right away."""
    windows: list[MainWindow] = []

    def open_(
        *,
        settings: NodeSettings | None = None,
        runner: RunnerOptions | None = None,
        start: bool = True,
        hooks: Hooks | None = None,
        **gui: Any,
    ) -> MainWindow:
        settings = settings or NodeSettings(
            name="desk", transport="test-local", url="test://", max_parallel=2
        )
        GuiSettings(**gui).store(settings)
        path = tmp_path / f"node-{len(windows)}.json"
        settings.save(path)
        window = MainWindow(
            settings, path, hooks=hooks or wowlab_hooks, runner_options=runner or fast_runner(),
            log_to_file=False,
        )  # fmt: skip
        windows.append(window)
        window.show()
        if start:
            window.start()
        return window

    yield open_
    for window in windows:
        window.shutdown_for_tests()
        window.close()
        window.deleteLater()


def claim(db: Engine, owner: User, window: MainWindow, qtbot: Any) -> None:
    """Claim the window's node with the code its claim view shows."""
    qtbot.waitUntil(lambda: window.claim_view.code.text().count("-") == 1, timeout=10_000)
    claim_and_announce(db, user_id=owner.id or 0, code=window.claim_view.code.text())
    qtbot.waitUntil(lambda: window.stack.currentIndex() == 2, timeout=10_000)


def in_background(check: Callable[[], bool], interval: float = 0.1) -> threading.Event:
    """An event set once ``check()`` is true, polled in a thread of its own: waiting on a
    database or the portal from the Qt thread would block the very loop tests measure."""
    done = threading.Event()

    def poll() -> None:
        deadline = time.monotonic() + 300
        while not done.is_set() and time.monotonic() < deadline:
            if check():
                done.set()
                return
            time.sleep(interval)

    threading.Thread(target=poll, name="test-poll", daemon=True).start()
    return done
