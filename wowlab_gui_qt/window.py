"""The main window: setup, claim and the node's tabs, the header with the node's state,
the status bar and the tray, wired to one :class:`~wowlab_gui_qt.runner.AgentRunner`."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QResizeEvent
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from wowlab_core.node_settings import NodeSettings
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import ClaimStatus
from wowlab_gui_qt import autostart
from wowlab_gui_qt.logbridge import LogBridge, install, log_dir, uninstall
from wowlab_gui_qt.mailbox import Mailbox
from wowlab_gui_qt.meters import CpuMeter, SpeedMeter
from wowlab_gui_qt.runner import AgentRunner, NodeSnapshot, RunnerOptions
from wowlab_gui_qt.settings import GuiSettings, claim_page_url, cpu_count, workers_for
from wowlab_gui_qt.theme import Status, app_icon, status_of
from wowlab_gui_qt.tray import Tray
from wowlab_gui_qt.views.claim import ClaimView
from wowlab_gui_qt.views.dashboard import DashboardView
from wowlab_gui_qt.views.header import HeaderBar
from wowlab_gui_qt.views.logs import LogsView
from wowlab_gui_qt.views.settings import SettingsChoice, SettingsView
from wowlab_gui_qt.views.setup import SetupChoice, SetupView
from wowlab_gui_qt.watchers import idle_seconds

log = logging.getLogger(__name__)

SETUP, CLAIM, MAIN = 0, 1, 2


def scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` in a scroll area (small windows scroll rather than squash)."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(widget)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area


class MainWindow(QMainWindow):
    """The app. ``settings_path`` None: nothing is saved (screenshots)."""

    quit_finished = Signal()

    def __init__(
        self,
        settings: NodeSettings,
        settings_path: Path | None,
        *,
        hooks: Hooks,
        profile: str = "default",
        runner_options: RunnerOptions | None = None,
        log_to_file: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.settings_path = settings_path
        self.hooks = hooks
        self.profile = profile
        self.runner_options = runner_options
        self.gui = GuiSettings.of(settings)
        self.runner: AgentRunner | None = None
        self.snapshot: NodeSnapshot | None = None
        self.speed = SpeedMeter()
        self.quit_requests = 0
        self._save_lock = threading.Lock()
        self._after_stop: list[Any] = []
        self._told_tray = False
        self._closed_for_good = False
        #: Offscreen views show a made-up running node (no agent runs).
        self.demo = False
        self.setWindowTitle("wowlab node")
        self.setWindowIcon(app_icon())
        self.setAccessibleName("wowlab node")
        self.resize(1100, 760)

        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        self.header = HeaderBar(settings.name)
        self.node_name = self.header.node_name
        self.state_pill = self.header.state_pill
        self.pause_button = self.header.pause_button
        self.pause_button.clicked.connect(self.toggle_pause)
        column.addWidget(self.header)
        self.stack = QStackedWidget()
        self.setup_view = SetupView(sorted(hooks.transports()))
        self.claim_view = ClaimView()
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Sections")
        self.tabs.setDocumentMode(True)
        self.dashboard = DashboardView()
        self.settings_view = SettingsView()
        self.logs_view = LogsView(log_dir())
        self.tabs.addTab(scrolled(self.dashboard), "Status")
        self.tabs.addTab(scrolled(self.settings_view), "Settings")
        self.tabs.addTab(self.logs_view, "Logs")
        for page in (scrolled(self.setup_view), scrolled(self.claim_view), self.tabs):
            self.stack.addWidget(page)
        column.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.statusBar().setAccessibleName("Status bar")

        self.tray = Tray(self)
        self.tray.show_asked.connect(self.bring_to_front)
        self.tray.pause_asked.connect(self.toggle_pause)
        self.tray.quit_asked.connect(self.request_quit)
        self.tray.show()

        #: Where worker threads post what the window must do (they never touch Qt).
        self.mailbox = Mailbox(self)
        self.bridge = LogBridge(self)
        self.bridge.record.connect(self.logs_view.add)
        self.bridge.uncaught.connect(self.show_error)
        self._log_handlers = install(
            self.bridge, self.mailbox, profile=profile, to_file=log_to_file
        )

        self.setup_view.submitted.connect(self.apply_setup)
        self.claim_view.change_server.connect(self.change_server)
        self.settings_view.saved.connect(self.apply_settings)
        self.settings_view.pause_toggled.connect(self.toggle_pause)
        self.settings_view.unlink_asked.connect(self.unlink)
        self.settings_view.warm_up_asked.connect(self.warm_up)
        self.settings_view.fill(
            name=settings.name, max_parallel=settings.max_parallel, gui=self.gui
        )
        self.settings_view.set_idle_available(idle_seconds() is not None)
        self.settings_view.set_paused(self.gui.paused)
        self.setup_view.fill(
            transport=settings.transport,
            url=settings.url,
            portal_url=self.gui.portal_url,
            name=settings.name,
            max_parallel=settings.max_parallel,
        )
        self.cpu = CpuMeter()
        self.cpu_timer = QTimer(self)
        self.cpu_timer.setInterval(1000)
        self.cpu_timer.timeout.connect(self.sample_cpu)
        self.stack.setCurrentIndex(SETUP)
        self.pause_button.hide()

    # --- the node -------------------------------------------------------------------

    def start(self) -> None:
        """Show the right page; start the node if it is set up."""
        if not self.settings.url:
            self.stack.setCurrentIndex(SETUP)
            return
        self.start_node()

    def start_node(self) -> None:
        """Run the agent for the current settings."""
        runner = AgentRunner(
            self.settings,
            hooks=self.hooks,
            save=self.save,
            options=self.runner_options,
            mailbox=self.mailbox,
        )
        runner.snapshot_ready.connect(self.on_snapshot)
        runner.claim_code_shown.connect(self.on_claim_code)
        runner.node_event.connect(self.on_event)
        runner.crashed.connect(self.show_error)
        runner.stopped.connect(self.on_stopped)
        self.runner = runner
        self.speed = SpeedMeter()
        if self.settings.credentials is None:
            self.claim_view.show_connecting()
            self.stack.setCurrentIndex(CLAIM)
        else:
            self.stack.setCurrentIndex(MAIN)
        runner.start()
        self.cpu_timer.start()
        log.info(
            "node %r via %s %s", self.settings.name, self.settings.transport, self.settings.url
        )

    def save(self) -> None:
        """Write the settings file (0600), the app's section included. Called from the GUI
        thread and, on registration, from the agent's (which sets the new identity first):
        one save at a time, so a GUI save begun before the identity was set cannot be
        written after the agent's and leave the file without the token."""
        with self._save_lock:
            self.gui.store(self.settings)
            if self.settings_path is not None:
                self.settings.save(self.settings_path)

    def on_snapshot(self, snapshot: NodeSnapshot) -> None:
        self.snapshot = snapshot
        self.pause_button.setVisible(snapshot.state != "waiting-for-claim")
        self.speed.add(snapshot.taken_at, snapshot.iterations_done)
        status = self.status()
        self.header.show_status(status, paused=self.gui.paused)
        self.settings_view.set_paused(self.gui.paused)
        self.tray.set_status(status, paused=self.gui.paused, name=self.settings.name)
        self.claim_view.show_problem(snapshot.connection_error)
        if snapshot.warmup is not None:
            name, done, total = snapshot.warmup
            self.settings_view.set_warm_up(f"{name}: compiling…", done, total, busy=True)
        self.dashboard.show_snapshot(
            snapshot,
            status,
            sims_per_second=self.speed.rate,
            chunks_today=self.gui.completed_today(),
            chunks_total=self.gui.chunks_total,
        )
        claimed = snapshot.owner is not None and snapshot.state != "waiting-for-claim"
        if claimed and self.stack.currentIndex() == CLAIM:
            self.stack.setCurrentIndex(MAIN)

    def status(self) -> Status:
        """The node's status as shown."""
        running = self.demo or (self.runner is not None and self.runner.running)
        return status_of(self.snapshot, running=running)

    def on_claim_code(self, status: ClaimStatus) -> None:
        code = status.claim_code or ""
        link = claim_page_url(
            transport=self.settings.transport,
            url=self.settings.url,
            portal_url=self.gui.portal_url,
            code=code,
        )
        self.claim_view.show_code(code, status.claim_expires_at, link)
        self.stack.setCurrentIndex(CLAIM)

    def on_event(self, event: str, data: dict[str, Any]) -> None:
        if event == "claimed":
            owner = data.get("owner") or "its owner"
            self.stack.setCurrentIndex(MAIN)
            self.tabs.setCurrentIndex(0)
            self.statusBar().showMessage(f"This computer was claimed by {owner}.", 15000)
            self.tray.notify("wowlab node claimed", f"This computer now works for {owner}.")
            log.info("claimed by %s", owner)
        elif event == "chunk-completed":
            self.gui.count_chunk()
            self.save()
        elif event == "chunk-failed":
            self.statusBar().showMessage(
                f"chunk {data.get('chunk_id')} failed: {data.get('error')}"
            )
        elif event == "engine-ready":
            self.settings_view.set_warm_up("ready", 1, 1, busy=False)

    def on_stopped(self) -> None:
        self.cpu_timer.stop()
        if self.snapshot is not None:
            self.on_snapshot(self.snapshot)
        self.runner = None
        actions, self._after_stop = self._after_stop, []
        for action in actions:
            action()

    def show_error(self, message: str) -> None:
        """A worker's or slot's error: in the status bar (the logs have the details)."""
        self.statusBar().showMessage(f"⚠ {message}", 30000)

    def sample_cpu(self) -> None:
        node, machine = self.cpu.read()
        self.dashboard.show_cpu(node, machine)
        self.dashboard.add_speed(self.speed.rate)

    # --- what the volunteer does ----------------------------------------------------

    def apply_setup(self, choice: SetupChoice) -> None:
        moved = (choice.transport, choice.url) != (self.settings.transport, self.settings.url)
        if moved and self.settings.credentials is not None:
            self.settings.node_id = self.settings.token = None  # a new pool: register anew
        self.settings.transport, self.settings.url = choice.transport, choice.url
        self.settings.name, self.settings.max_parallel = choice.name, choice.max_parallel
        self.gui.portal_url = choice.portal_url
        self.save()
        self.node_name.setText(choice.name)
        self.settings_view.fill(name=choice.name, max_parallel=choice.max_parallel, gui=self.gui)
        self.start_node()

    def apply_settings(self, choice: SettingsChoice) -> None:
        renamed = choice.name != self.settings.name
        self.settings.name, self.settings.max_parallel = choice.name, choice.max_parallel
        start_at_login_changed = choice.gui.start_at_login != self.gui.start_at_login
        choice.gui.paused = self.gui.paused
        choice.gui.chunks_total, choice.gui.chunks_today = (
            self.gui.chunks_total,
            self.gui.chunks_today,
        )
        choice.gui.today = self.gui.today
        self.gui = choice.gui
        self.save()
        self.node_name.setText(choice.name)
        if start_at_login_changed:
            self.set_start_at_login(choice.gui.start_at_login)
        if self.runner is not None:
            self.runner.set_worker_limit(self.worker_count())
            self.runner.set_watch_rules(self.gui)
        note = " (the portal keeps the name given at registration)" if renamed else ""
        self.statusBar().showMessage(f"Settings saved{note}.", 8000)

    def worker_count(self) -> int:
        """Workers under the CPU limit and the node's max parallel."""
        return workers_for(
            cores=cpu_count(),
            cpu_limit_percent=self.gui.cpu_limit_percent,
            max_parallel=self.settings.max_parallel,
        )

    def set_start_at_login(self, enabled: bool) -> None:
        entry = autostart.current_entry(self.profile)
        try:
            (autostart.enable if enabled else autostart.disable)(entry)
        except OSError as exc:
            self.show_error(f"could not change start at login: {exc}")
            return
        log.info("start at login %s (%s)", "on" if enabled else "off", entry.location)

    def toggle_pause(self) -> None:
        self.set_paused(not self.gui.paused)

    def set_paused(self, paused: bool) -> None:
        """Pause (running chunks go back to the pool) or resume; remembered across starts."""
        self.gui.paused = paused
        self.save()
        if self.runner is not None:
            self.runner.pause(paused)
        self.pause_button.setText("Resume" if paused else "Pause")
        self.settings_view.set_paused(paused)
        self.tray.pause_action.setText("Resume" if paused else "Pause")
        self.statusBar().showMessage("Paused." if paused else "Resumed.", 5000)

    def warm_up(self) -> None:
        if self.runner is not None:
            self.settings_view.set_warm_up("starting…", 0, 1, busy=True)
            self.runner.warm_up_again()

    def ask(self, title: str, text: str) -> bool:
        """A yes/no question (tests replace it)."""
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def unlink(self) -> None:
        """Forget this node's identity, after asking; a new one registers next."""
        if not self.ask(
            "Unlink this node?",
            "This computer stops working for its owner and forgets its node identity. "
            "Running chunks go back to the pool. You can claim it again with a new code.",
        ):
            return

        def forget() -> None:
            self.settings.node_id = self.settings.token = None
            self.save()
            log.info("node unlinked: its credentials are forgotten")
            self.statusBar().showMessage("This node was unlinked.", 10000)
            self.snapshot = None
            self.start_node()

        self._stop_then(forget)

    def change_server(self) -> None:
        def to_setup() -> None:
            self.snapshot = None
            self.stack.setCurrentIndex(SETUP)

        self._stop_then(to_setup)

    def _stop_then(self, action: Any) -> None:
        if self.runner is None:
            action()
            return
        self._after_stop.append(action)
        self.runner.stop(hand_back=True)

    def bring_to_front(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def request_quit(self) -> None:
        """Quit: finish running chunks; a second quit hands them back; a third one quits."""
        self.quit_requests += 1
        if self.runner is None or self.quit_requests >= 3:
            self.finish_quit()
            return
        if self.quit_requests == 1:
            self._after_stop.append(self.finish_quit)
            busy = self.snapshot.busy_workers if self.snapshot else 0
            self.statusBar().showMessage(
                f"Stopping: finishing {busy} running chunk(s). Quit again to hand them back."
                if busy
                else "Stopping…"
            )
            self.runner.stop()
        else:
            self.statusBar().showMessage("Handing running chunks back to the pool…")
            self.runner.stop(hand_back=True)

    def finish_quit(self) -> None:
        self._closed_for_good = True
        self.tray.icon.hide()
        uninstall(self._log_handlers)
        self._log_handlers = []
        self.quit_finished.emit()
        app = QApplication.instance()
        if app is not None:
            app.quit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        width = event.size().width()
        self.dashboard.relayout(width)
        self.claim_view.relayout(width)
        margin = 10 if width < 620 else 20
        for view in (self.settings_view, self.logs_view):
            view.outer.setContentsMargins(margin, 12, margin, 12)
        super().resizeEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._closed_for_good:
            event.accept()
            return
        if self.gui.close_to_tray and Tray.available() and self.quit_requests == 0:
            event.ignore()
            self.hide()
            if not self._told_tray:
                self._told_tray = True
                self.tray.notify("wowlab keeps running", "The node works on in the tray.")
            return
        if self.runner is not None or self.quit_requests == 0:
            event.ignore()
            self.request_quit()
            return
        event.accept()

    def shutdown_for_tests(self, timeout: float = 30) -> None:
        """Stop the node, hand chunks back and wait (tests)."""
        self._closed_for_good = True
        if self.runner is not None:
            self.runner.stop(hand_back=True)
            self.runner.wait(timeout)
        uninstall(self._log_handlers)
        self._log_handlers = []
        self.tray.icon.hide()


__all__ = ["CLAIM", "MAIN", "SETUP", "MainWindow"]
