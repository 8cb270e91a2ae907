"""The app and the machine: start at login (the three platforms' entries, by content),
pausing while a listed program runs, and one process per node identity."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from wowlab_core.db import read_session
from wowlab_core.models import ChunkStatus, JobStatus, SimChunk, SimJob
from wowlab_core.node_lock import NodeLock
from wowlab_core.node_settings import NodeSettings
from wowlab_core.plugins import Hooks
from wowlab_core.testing.processes import node_process
from wowlab_gui_qt import app as app_module
from wowlab_gui_qt.autostart import (
    autostart_entry,
    current_entry,
    disable,
    enable,
    gui_command,
    is_enabled,
)
from wowlab_gui_qt.settings import WOW_PROCESS_NAMES
from wowlab_gui_qt.theme import STATUS_COLORS
from wowlab_gui_qt.watchers import programs_running

from .conftest import claim
from .helpers import make_job, make_user

COMMAND = ["/opt/wowlab env/bin/wowlab-gui", "--minimized", "--profile", "50% $HOME"]


def test_autostart_entries_of_the_three_platforms() -> None:
    home = Path("/home/ana")
    linux = autostart_entry("linux", COMMAND, home=home)
    assert linux.location == "/home/ana/.config/autostart/wowlab-node.desktop"
    assert linux.content == (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=wowlab node\n"
        "Comment=Run World of Warcraft simulations for your wowlab pool\n"
        'Exec="/opt/wowlab env/bin/wowlab-gui" --minimized --profile "50%% \\$HOME"\n'
        "Terminal=false\n"
        "Categories=Network;\n"
        "X-GNOME-Autostart-enabled=true\n"
    )
    xdg = autostart_entry("linux", COMMAND, home=home, config_home=Path("/cfg"))
    assert xdg.location == "/cfg/autostart/wowlab-node.desktop" and xdg.content == linux.content

    windows = autostart_entry(
        "win32", [r"C:\Program Files\wowlab\wowlab-gui.exe", "--minimized"], home=home
    )
    assert windows.platform == "windows" and windows.value_name == "wowlab-node"
    assert windows.location == r"Software\Microsoft\Windows\CurrentVersion\Run"
    assert windows.content == r'"C:\Program Files\wowlab\wowlab-gui.exe" --minimized'

    mac = autostart_entry("darwin", COMMAND, home=home)
    assert mac.location == "/home/ana/Library/LaunchAgents/org.wowlab.node.plist"
    plist = plistlib.loads(mac.content.encode())
    assert plist == {
        "Label": "org.wowlab.node",
        "ProgramArguments": COMMAND,
        "RunAtLoad": True,
        "ProcessType": "Interactive",
        "LimitLoadToSessionType": "Aqua",
    }


def test_start_at_login_writes_and_removes_the_xdg_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    entry = current_entry("raid")
    assert entry.location == str(tmp_path / "config" / "autostart" / "wowlab-node.desktop")
    assert not is_enabled(entry)
    enable(entry)
    assert is_enabled(entry)
    text = Path(entry.location).read_text()
    assert "--minimized --profile raid" in text
    # The command starts this installation's app: its launcher, or python -m wowlab_gui_qt.
    command = gui_command("raid")
    assert command[0] in (str(Path(sys.executable).parent / "wowlab-gui"), sys.executable)
    disable(entry)
    assert not Path(entry.location).exists() and not is_enabled(entry)
    disable(entry)  # already off: nothing to do


@pytest.fixture
def dummy_wow(tmp_path: Path) -> Any:
    """Start a process named like the World of Warcraft client (a copy of ``sleep``)."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        exe = tmp_path / "Wow.exe"
        shutil.copy(shutil.which("sleep") or "/bin/sleep", exe)
        exe.chmod(0o755)
        proc = subprocess.Popen([str(exe), "120"])
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait(10)


def test_programs_running_finds_a_listed_process(dummy_wow: Any) -> None:
    assert "Wow.exe" in WOW_PROCESS_NAMES
    assert programs_running(["Wow.exe", "NotRunning.exe"]) == []
    proc = dummy_wow()
    time.sleep(0.2)
    assert programs_running(["wow.EXE", "NotRunning.exe"]) == ["wow.EXE"]  # as listed
    assert programs_running(["Wow"]) == ["Wow"]  # ".exe" optional
    proc.kill()
    proc.wait(10)
    assert programs_running(["Wow.exe"]) == []


def _leased(db: Engine, job_id: int) -> list[SimChunk]:
    with read_session(db) as s:
        return list(
            s.exec(
                select(SimChunk).where(
                    SimChunk.job_id == job_id, SimChunk.status == ChunkStatus.LEASED.value
                )
            ).all()
        )


def test_the_node_pauses_while_a_listed_program_runs(
    qtbot: Any, sqlite_db: Engine, wowlab_hooks: Hooks, open_window: Any, dummy_wow: Any
) -> None:
    owner = make_user(sqlite_db, "ana")
    window = open_window()  # the default list: World of Warcraft's process names
    claim(sqlite_db, owner, window, qtbot)
    config = {"name": "slow toy", "base_dps": 1500, "spread": 400, "iteration_ms": 20}
    job_id = make_job(sqlite_db, owner, wowlab_hooks, iterations=400, chunks=4, config=config)
    qtbot.waitUntil(lambda: bool(_leased(sqlite_db, job_id)), timeout=10_000)

    game = dummy_wow()
    qtbot.waitUntil(lambda: window.tray.color == STATUS_COLORS["paused"], timeout=5000)
    assert "Wow.exe running" in window.dashboard.banner.text()
    assert not window.gui.paused  # paused by the rule, not by the volunteer
    qtbot.waitUntil(lambda: not _leased(sqlite_db, job_id), timeout=5000)
    for _ in range(8):  # nothing is leased while the game runs
        qtbot.wait(150)
        assert not _leased(sqlite_db, job_id)

    game.kill()
    game.wait(10)
    qtbot.waitUntil(lambda: window.tray.color == STATUS_COLORS["running"], timeout=10_000)

    def done() -> bool:
        with read_session(sqlite_db) as s:
            job = s.get(SimJob, job_id)
            return job is not None and job.status == JobStatus.COMPLETED.value

    qtbot.waitUntil(done, timeout=60_000)


def test_one_identity_is_run_by_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tmp_path / "node.json"
    NodeSettings(name="desk", transport="http", url="http://127.0.0.1:9").save(settings)
    # The CLI runs the node: the app refuses, with the CLI named, and shows it in a dialog.
    cli = node_process("http", "http://127.0.0.1:9", settings, "desk")
    try:
        cli.wait_for("wowlab node 'desk' via http")  # printed once it holds the lock
        shown: list[str] = []
        monkeypatch.setattr(
            "PySide6.QtWidgets.QMessageBox.critical",
            lambda parent, title, text: shown.append(text),
        )
        # Were the app to start anyway, it must not block the test in its event loop.
        monkeypatch.setattr("PySide6.QtWidgets.QApplication.exec", lambda self: 0)
        code = app_module.run_app(profile="default", settings_file=settings, minimized=True)
        assert code == 2
        assert shown[0].startswith(
            f"This node is already running in wowlab node run (pid {cli.proc.pid}); stop it"
        )
    finally:
        cli.kill()
    # The app runs the node: the CLI refuses in one line, naming the app.
    with NodeLock(settings, program="wowlab gui"):
        done = subprocess.run(
            [sys.executable, "-m", "wowlab_core", "node", "run", "--settings-file",
             str(settings)],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
    assert done.returncode == 1  # it ran, and another process holds the identity
    assert done.stderr.startswith(
        f"error: this node is already running in wowlab gui (pid {os.getpid()})"
    )
