"""First run: where the pool is (transport and address), the node's name and workers."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from wowlab_core.node_settings import default_node_name
from wowlab_gui_qt.settings import check_url, cpu_count
from wowlab_gui_qt.widgets import Card, field_label

TRANSPORT_HINTS = {
    "http": "https://wowlab.example.org",
    "mqtt": "mqtts://broker.example.org:8883",
    "supabase": "https://project.supabase.co",
    "local": "sqlite:////path/to/wowlab.db",
}


@dataclass(frozen=True)
class SetupChoice:
    """What the volunteer chose on the setup page."""

    transport: str
    url: str
    portal_url: str
    name: str
    max_parallel: int


class SetupView(QWidget):
    """The first-run form; ``submitted`` carries a valid :class:`SetupChoice`."""

    submitted = Signal(object)

    def __init__(self, transports: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 24, 24, 24)
        outer.addStretch(1)
        card = Card()
        card.setMaximumWidth(640)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(card, 10)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)

        title = QLabel("Join a wowlab pool")
        title.setObjectName("pageTitle")
        intro = QLabel(
            "This computer will run World of Warcraft simulations for you and the people "
            "you share it with, while you do not need it. You can pause it at any time."
        )
        intro.setWordWrap(True)
        intro.setObjectName("muted")
        card.body.setSpacing(10)
        card.body.addWidget(title)
        card.body.addWidget(intro)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        form.setVerticalSpacing(8)
        self.transport = QComboBox()
        self.transport.setAccessibleName("Transport")
        names = sorted(transports, key=lambda n: (n != "http", n))
        self.transport.addItems(names)
        self.url = QLineEdit()
        self.url.setAccessibleName("Portal or broker address")
        self.url_error = QLabel("")
        self.url_error.setObjectName("fieldError")
        self.url_error.setAccessibleName("Address error")
        self.url_error.setWordWrap(True)
        self.url_error.hide()
        self.portal_url = QLineEdit()
        self.portal_url.setAccessibleName("Portal address for the claim link")
        self.portal_url.setPlaceholderText("https://wowlab.example.org (optional)")
        self.portal_label = field_label("Portal (for the claim link):", self.portal_url)
        self.name = QLineEdit(default_node_name())
        self.name.setAccessibleName("Node name")
        self.name.setMaxLength(100)
        self.name_error = QLabel("")
        self.name_error.setObjectName("fieldError")
        self.name_error.setAccessibleName("Name error")
        self.name_error.hide()
        self.max_parallel = QSpinBox()
        self.max_parallel.setAccessibleName("Simulations at once")
        self.max_parallel.setRange(1, 256)
        self.max_parallel.setValue(max(1, cpu_count() - 1))
        self.max_parallel.setMaximumWidth(110)
        cores = QLabel(f"this computer has {cpu_count()} cores")
        cores.setObjectName("muted")
        workers = QHBoxLayout()
        workers.addWidget(self.max_parallel)
        workers.addWidget(cores, 1)
        form.addRow(field_label("&Transport:", self.transport), self.transport)
        form.addRow(field_label("&Address:", self.url), self.url)
        form.addRow("", self.url_error)
        form.addRow(self.portal_label, self.portal_url)
        form.addRow(field_label("&Name:", self.name), self.name)
        form.addRow("", self.name_error)
        form.addRow(field_label("&Simulations at once:", self.max_parallel), workers)
        card.body.addLayout(form)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.connect_button = QPushButton("Connect")
        self.connect_button.setObjectName("primary")
        self.connect_button.setAccessibleName("Connect")
        self.connect_button.setDefault(True)
        self.connect_button.clicked.connect(self.submit)
        buttons.addWidget(self.connect_button)
        card.body.addLayout(buttons)

        self.transport.currentTextChanged.connect(self._transport_changed)
        self.url.returnPressed.connect(self.submit)
        self._transport_changed(self.transport.currentText())

    def fill(
        self, *, transport: str, url: str, portal_url: str, name: str, max_parallel: int
    ) -> None:
        """Show saved settings."""
        index = self.transport.findText(transport)
        if index >= 0:
            self.transport.setCurrentIndex(index)
        self.url.setText(url)
        self.portal_url.setText(portal_url)
        self.name.setText(name)
        self.max_parallel.setValue(max_parallel)

    def _transport_changed(self, transport: str) -> None:
        self.url.setPlaceholderText(TRANSPORT_HINTS.get(transport, "address"))
        # The HTTP transport's address is the portal; other transports need it for the link.
        visible = transport != "http"
        self.portal_url.setVisible(visible)
        self.portal_label.setVisible(visible)

    def _show_error(self, field: QLineEdit, label: QLabel, message: str | None) -> None:
        field.setProperty("invalid", bool(message))
        field.style().unpolish(field)
        field.style().polish(field)
        label.setText(message or "")
        label.setVisible(bool(message))

    def submit(self) -> None:
        """Check the fields; emit ``submitted`` if they are valid, else show the errors."""
        transport = self.transport.currentText()
        url = self.url.text().strip()
        url_problem = check_url(transport, url)
        self._show_error(self.url, self.url_error, url_problem)
        portal = self.portal_url.text().strip()
        if not url_problem and portal and transport != "http":
            portal_problem = check_url("http", portal)
            if portal_problem:
                url_problem = f"portal address: {portal_problem}"
                self._show_error(self.portal_url, self.url_error, url_problem)
        name = self.name.text().strip()
        name_problem = None if name else "give this computer a name its owner will recognise"
        self._show_error(self.name, self.name_error, name_problem)
        if url_problem:
            self.url.setFocus()
            return
        if name_problem:
            self.name.setFocus()
            return
        self.submitted.emit(
            SetupChoice(
                transport=transport,
                url=url,
                portal_url=portal if transport != "http" else "",
                name=name,
                max_parallel=self.max_parallel.value(),
            )
        )


__all__ = ["SetupChoice", "SetupView"]
