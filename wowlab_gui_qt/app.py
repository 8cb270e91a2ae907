"""Starting the app: the Qt application, the identity lock, the window; and rendering one
view offscreen with a realistic state (``--screenshot``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from wowlab_core.node_lock import NodeIdentityInUse, NodeLock
from wowlab_core.node_settings import NodeSettings, default_settings_path
from wowlab_core.plugins import get_hooks


def _application() -> object:
    from PySide6.QtWidgets import QApplication

    from wowlab_gui_qt.theme import app_icon, apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("wowlab")
    app.setApplicationDisplayName("wowlab node")
    app.setDesktopFileName("wowlab-node")
    app.setQuitOnLastWindowClosed(False)  # closing the window keeps the node in the tray
    apply_theme(app)
    app.setWindowIcon(app_icon())
    return app


def qt_binding_problem() -> str | None:
    """Why the installed PySide6 cannot run the app for long, or None.

    PySide6 6.12.0 on Python 3.11 drops a reference to ``None`` at every call of a Qt
    method that returns nothing (and to ``True`` at every signal emit); once ``None``'s
    count runs out the interpreter aborts ("Fatal Python error: none_dealloc"), after a
    few minutes of the app. On Python 3.12+ ``None`` is immortal and nothing is lost.
    """
    import PySide6
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(200):
        probe.setObjectName("probe")
    lost = before - sys.getrefcount(None)
    if lost < 100:
        return None
    python = ".".join(map(str, sys.version_info[:3]))
    return (
        f"PySide6 {PySide6.__version__} on Python {python} loses a reference at every Qt "
        "call and the app would crash within minutes; install a sound version with "
        "pip install 'PySide6-Essentials>=6.7,<6.12' (or use Python 3.12 or newer)"
    )


def run_app(*, profile: str, settings_file: Path | None, minimized: bool) -> int:
    """Run the desktop app until it quits; the exit code."""
    path = settings_file or default_settings_path(profile)
    lock = NodeLock(path, program="wowlab gui")
    problem = qt_binding_problem()
    app = _application()
    if problem is not None:
        from PySide6.QtWidgets import QMessageBox

        print(f"error: {problem}", file=sys.stderr)
        QMessageBox.critical(None, "wowlab node", problem[:1].upper() + problem[1:])
        return 2
    try:
        lock.acquire()
    except NodeIdentityInUse as exc:
        from PySide6.QtWidgets import QMessageBox

        print(f"error: {exc.message}", file=sys.stderr)
        QMessageBox.critical(None, "wowlab node", exc.message[:1].upper() + exc.message[1:])
        return 2
    try:
        from wowlab_gui_qt.window import MainWindow

        settings = NodeSettings.load(path) or NodeSettings(transport="http")
        window = MainWindow(settings, path, hooks=get_hooks(), profile=profile)
        if not minimized or not window.tray.available():
            window.show()
        window.start()
        return int(app.exec())  # type: ignore[attr-defined]
    finally:
        lock.release()


def parse_size(text: str) -> tuple[int, int]:
    """``1280x800`` → (1280, 800); ValueError with a one-line reason otherwise."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must look like 1280x800, not {text!r}") from None
    if not (320 <= width <= 7680 and 240 <= height <= 4320):
        raise ValueError("size must be between 320x240 and 7680x4320")
    return width, height


def render_screenshot(path: Path, view: str, size: tuple[int, int]) -> None:
    """Render ``view`` at ``size`` with a realistic state into the PNG ``path``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    from wowlab_gui_qt import demo
    from wowlab_gui_qt.window import CLAIM, MAIN, SETUP, MainWindow

    app = _application()
    assert isinstance(app, QApplication)
    settings = demo.demo_settings()
    window = MainWindow(settings, None, hooks=get_hooks(), log_to_file=False)
    window.demo = True
    try:
        window.resize(*size)
        if view == "setup":
            window.setup_view.fill(
                transport="http", url="", portal_url="", name="raid-pc", max_parallel=3
            )
            window.stack.setCurrentIndex(SETUP)
        elif view == "claim":
            window.on_snapshot(demo.demo_waiting())
            window.on_claim_code(demo.demo_claim())
            window.stack.setCurrentIndex(CLAIM)
        else:
            speed, cpu = demo.demo_history()
            for value in speed:
                window.dashboard.add_speed(value)
            for node, machine in cpu:
                window.dashboard.cpu_card.set(
                    f"{node:.0f} %", f"this node · machine {machine:.0f} %"
                )
                window.dashboard.cpu_chart.add(node, machine)
            snapshot = demo.demo_snapshot()
            window.speed.add(snapshot.taken_at - 5, snapshot.iterations_done - 4_410)
            window.settings_view.set_warm_up("numba ready", 1, 1, busy=False)
            window.on_snapshot(snapshot)
            window.stack.setCurrentIndex(MAIN)
            window.tabs.setCurrentIndex({"dashboard": 0, "settings": 1, "logs": 2}[view])
            for record in demo.demo_logs():
                window.logs_view.add(record)
        window.show()
        for _ in range(5):
            QCoreApplication.processEvents()
        image = window.grab()
        path.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(path), "PNG"):
            raise OSError(f"could not write {path}")
    finally:
        window.shutdown_for_tests()
        window.close()
        window.deleteLater()


__all__ = ["parse_size", "qt_binding_problem", "render_screenshot", "run_app"]
