"""The claim view: the code to enter on the portal, as text, link and QR code, until the
node is claimed. The agent fetches a new code when one expires; this view counts down."""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QBoxLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from wowlab_core.claim_codes import format_claim_code
from wowlab_gui_qt.widgets import Card, QrCode, Spinner


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


class ClaimView(QWidget):
    """Shows a claim code; ``change_server`` asks to go back to the setup page."""

    change_server = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.expires_at: datetime | None = None
        self.link = ""
        self._narrow: bool | None = None
        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 24, 24, 24)
        self.outer = outer
        outer.addStretch(1)
        card = Card()
        card.setMaximumWidth(860)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(card, 10)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)

        self.columns = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self.columns.setSpacing(28)
        card.body.addLayout(self.columns)
        text = QVBoxLayout()
        text.setSpacing(10)
        self.columns.addLayout(text, 3)

        title = QLabel("Claim this computer")
        title.setObjectName("pageTitle")
        self.intro = QLabel(
            "In your wowlab portal, open <b>My nodes → Claim a node</b> and enter this code, "
            "or scan the QR code with your phone."
        )
        self.intro.setWordWrap(True)
        self.intro.setAccessibleName("How to claim")
        self.code = QLabel("······")
        self.code.setObjectName("claimCode")
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setPointSize(40)
        mono.setBold(True)
        self.code.setFont(mono)
        self.code.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.code.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.code.setAccessibleName("Claim code")
        self.expiry = QLabel("")
        self.expiry.setObjectName("muted")
        self.expiry.setAccessibleName("Code expiry")
        self.url_label = QLabel("")
        self.url_label.setOpenExternalLinks(True)
        self.url_label.setWordWrap(True)
        self.url_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.url_label.setAccessibleName("Claim link")

        waiting = QHBoxLayout()
        self.spinner = Spinner()
        self.spinner.setAccessibleName("Waiting")
        self.waiting = QLabel("Waiting for claim…")
        self.waiting.setAccessibleName("Claim status")
        self.waiting.setWordWrap(True)
        waiting.addWidget(self.spinner)
        waiting.addWidget(self.waiting, 1)

        self.problem = QLabel("")
        self.problem.setObjectName("banner")
        self.problem.setWordWrap(True)
        self.problem.setAccessibleName("Connection problem")
        self.problem.hide()

        buttons = QHBoxLayout()
        self.copy_button = QPushButton("Copy code")
        self.copy_button.setAccessibleName("Copy claim code")
        self.copy_button.clicked.connect(self._copy)
        self.change_button = QPushButton("Change server…")
        self.change_button.setAccessibleName("Change server")
        self.change_button.clicked.connect(self.change_server.emit)
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.change_button)
        buttons.addStretch(1)

        for widget in (title, self.intro, self.code, self.expiry, self.url_label):
            text.addWidget(widget)
        text.addLayout(waiting)
        text.addWidget(self.problem)
        text.addLayout(buttons)
        text.addStretch(1)

        qr_column = QVBoxLayout()
        self.qr = QrCode()
        self.qr.setFixedSize(200, 200)
        self.qr.setAccessibleName("QR code of the claim link")
        qr_caption = QLabel("Scan to claim")
        qr_caption.setObjectName("muted")
        qr_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        qr_column.addWidget(self.qr, 0, Qt.AlignmentFlag.AlignHCenter)
        qr_column.addWidget(qr_caption)
        qr_column.addStretch(1)
        self.qr_caption = qr_caption
        self.columns.addLayout(qr_column, 2)

        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def show_code(self, code: str, expires_at: datetime | None, link: str | None) -> None:
        """Show a (new) claim code; ``link`` is the portal's claim page with the code."""
        self.code.setText(format_claim_code(code))
        self.expires_at = _aware(expires_at)
        self.link = link or ""
        if link:
            self.url_label.setText(f'<a href="{link}">{link}</a>')
            self.qr.set_text(link)
        else:
            self.url_label.setText("Enter the code on your wowlab portal's claim page.")
            self.qr.set_text(format_claim_code(code))
        self.waiting.setText("Waiting for claim…")
        self._tick()

    def show_problem(self, message: str | None) -> None:
        """An inline note that the coordinator cannot be reached (None: clear it)."""
        self.problem.setText(f"{message} — retrying…" if message else "")
        self.problem.setVisible(bool(message))

    def show_connecting(self) -> None:
        """Before the first code: the node is registering."""
        self.code.setText("······")
        self.expiry.setText("")
        self.url_label.setText("")
        self.qr.set_text("")
        self.waiting.setText("Connecting to the pool…")

    def seconds_left(self, now: datetime | None = None) -> float | None:
        """Seconds until the code expires (None: unknown)."""
        if self.expires_at is None:
            return None
        return (self.expires_at - (now or datetime.now(UTC))).total_seconds()

    def _tick(self) -> None:
        left = self.seconds_left()
        if left is None:
            self.expiry.setText("")
        elif left > 0:
            minutes, seconds = divmod(int(left), 60)
            self.expiry.setText(f"Code expires in {minutes}:{seconds:02d}")
        else:
            self.expiry.setText("This code has expired; getting a new one…")

    def _copy(self) -> None:
        QGuiApplication.clipboard().setText(self.code.text())

    def relayout(self, width: int) -> None:
        """Fit a window ``width`` pixels wide: side by side, or stacked on a small one."""
        narrow = width < 760
        if narrow == self._narrow:
            return
        self._narrow = narrow
        self.columns.setDirection(
            QBoxLayout.Direction.TopToBottom if narrow else QBoxLayout.Direction.LeftToRight
        )
        self.qr.setFixedSize(*((150, 150) if narrow else (200, 200)))
        font = self.code.font()
        font.setPointSize(26 if narrow else 40)
        self.code.setFont(font)
        self.code.setStyleSheet("padding: 6px 8px; letter-spacing: 2px;" if narrow else "")
        margin = 10 if narrow else 24
        self.outer.setContentsMargins(margin, margin, margin, margin)


__all__ = ["ClaimView"]
