"""The bar above every page: the app, the node's name, its state, pause/resume."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from wowlab_gui_qt.theme import Status


class HeaderBar(QWidget):
    """Brand, node name, a coloured state pill and the pause button."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("header")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        row = QHBoxLayout(self)
        row.setContentsMargins(20, 10, 20, 10)
        brand = QLabel("wowlab")
        brand.setObjectName("brand")
        self.node_name = QLabel(name)
        self.node_name.setObjectName("muted")
        self.node_name.setAccessibleName("Node name")
        self.state_pill = QLabel("Not connected")
        self.state_pill.setObjectName("statePill")
        self.state_pill.setAccessibleName("Node state")
        self.state_pill.setStyleSheet("background: #868e96;")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setAccessibleName("Pause or resume the node")
        row.addWidget(brand)
        row.addWidget(self.node_name)
        row.addStretch(1)
        row.addWidget(self.state_pill)
        row.addWidget(self.pause_button)

    def show_status(self, status: Status, *, paused: bool) -> None:
        """The node's state in the pill; the button says what it will do."""
        self.state_pill.setText(status.label)
        self.state_pill.setStyleSheet(f"background: {status.color};")
        self.state_pill.setToolTip(status.detail)
        self.pause_button.setText("Resume" if paused else "Pause")


__all__ = ["HeaderBar"]
