"""The system tray icon: its colour is the node's status; its menu shows the window,
pauses or resumes the node, and quits."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from wowlab_gui_qt.theme import Status, app_icon


class Tray(QObject):
    """The tray icon and its menu; the actions emit signals the window acts on."""

    show_asked = Signal()
    pause_asked = Signal()
    quit_asked = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.menu = QMenu()
        self.menu.setAccessibleName("wowlab tray menu")
        self.show_action = QAction("Show wowlab", self.menu)
        self.pause_action = QAction("Pause", self.menu)
        self.quit_action = QAction("Quit", self.menu)
        self.status_action = QAction("Starting…", self.menu)
        self.status_action.setEnabled(False)
        self.menu.addAction(self.status_action)
        self.menu.addSeparator()
        self.menu.addAction(self.show_action)
        self.menu.addAction(self.pause_action)
        self.menu.addSeparator()
        self.menu.addAction(self.quit_action)
        self.show_action.triggered.connect(self.show_asked.emit)
        self.pause_action.triggered.connect(self.pause_asked.emit)
        self.quit_action.triggered.connect(self.quit_asked.emit)
        self.icon = QSystemTrayIcon(app_icon(), self)
        self.icon.setContextMenu(self.menu)
        self.icon.setToolTip("wowlab node")
        self.icon.activated.connect(self._activated)
        self.color = ""

    @staticmethod
    def available() -> bool:
        """Whether this desktop has a system tray."""
        return QSystemTrayIcon.isSystemTrayAvailable()

    def show(self) -> None:
        """Put the icon in the tray (where there is one)."""
        if self.available():
            self.icon.show()

    def set_status(self, status: Status, *, paused: bool, name: str) -> None:
        """Colour, tooltip and menu for the node's status."""
        if status.color != self.color:
            self.color = status.color
            self.icon.setIcon(app_icon(status.color))
        detail = f": {status.detail}" if status.detail else ""
        self.icon.setToolTip(f"wowlab node {name} — {status.label}{detail}")
        self.status_action.setText(f"{status.label}{detail}"[:80])
        self.pause_action.setText("Resume" if paused else "Pause")

    def notify(self, title: str, message: str) -> None:
        """A desktop notification (a balloon where the tray supports it)."""
        if self.available() and self.icon.supportsMessages():
            self.icon.showMessage(title, message, app_icon(self.color or "#3355cc"), 8000)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.show_asked.emit()


__all__ = ["Tray"]
