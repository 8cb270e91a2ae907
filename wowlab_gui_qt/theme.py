"""The app's look: palette, style sheet, status colours and the icon drawn for each."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPainterPath, QPalette, QPixmap
from PySide6.QtWidgets import QApplication, QStyleFactory

from wowlab_gui_qt.runner import NodeSnapshot

ACCENT = "#3355cc"
TEXT = "#1d2433"
MUTED = "#5f6b7d"
WINDOW = "#f3f5f9"
CARD = "#ffffff"
BORDER = "#dde2ea"


@dataclass(frozen=True)
class Status:
    """A node state as shown: a word, a colour, and what it means right now."""

    key: str
    label: str
    color: str
    detail: str = ""


STATUS_COLORS = {
    "running": "#2b8a3e",
    "idle": "#1971c2",
    "paused": "#e67700",
    "preparing": "#7048e8",
    "waiting": "#7048e8",
    "connecting": "#868e96",
    "reconnecting": "#d9480f",
    "stopping": "#868e96",
    "offline": "#c92a2a",
}


def status_of(snapshot: NodeSnapshot | None, *, running: bool = True) -> Status:
    """What to show for ``snapshot`` (None: nothing heard from the node yet)."""

    def make(key: str, label: str, detail: str = "") -> Status:
        return Status(key, label, STATUS_COLORS[key], detail)

    if snapshot is None:
        return make("connecting", "Connecting", "starting the node")
    if not running or snapshot.state == "stopped":
        reason = snapshot.last_error or "the node is not running"
        return make("offline", "Offline", reason)
    if snapshot.state == "stopping":
        count = snapshot.busy_workers
        return make("stopping", "Stopping", f"finishing {count} chunk(s)" if count else "")
    if snapshot.connection_error:
        return make("reconnecting", "Reconnecting", snapshot.connection_error)
    if snapshot.warmup is not None:
        return make("preparing", "Preparing", f"warming up the {snapshot.warmup[0]} engine")
    if snapshot.state == "waiting-for-claim":
        return make("waiting", "Waiting for claim", "enter the code in your wowlab portal")
    if snapshot.state == "starting":
        return make("connecting", "Connecting", "registering with the coordinator")
    if snapshot.pause_reasons:
        return make("paused", "Paused", "; ".join(snapshot.pause_reasons.values()))
    if snapshot.state == "working" or snapshot.busy_workers:
        return make("running", "Running", f"{snapshot.busy_workers} chunk(s) in progress")
    return make("idle", "Idle", "waiting for work")


def apply_theme(app: QApplication) -> None:
    """Fusion with a light palette and the app's style sheet (same on every desktop)."""
    style = QStyleFactory.create("Fusion")
    if style is not None:
        app.setStyle(style)
    palette = QPalette()
    palette.setColor(QPalette.ColorRole.Window, QColor(WINDOW))
    palette.setColor(QPalette.ColorRole.Base, QColor(CARD))
    palette.setColor(QPalette.ColorRole.AlternateBase, QColor("#f7f8fb"))
    palette.setColor(QPalette.ColorRole.Text, QColor(TEXT))
    palette.setColor(QPalette.ColorRole.WindowText, QColor(TEXT))
    palette.setColor(QPalette.ColorRole.ButtonText, QColor(TEXT))
    palette.setColor(QPalette.ColorRole.Button, QColor("#ffffff"))
    palette.setColor(QPalette.ColorRole.Highlight, QColor(ACCENT))
    palette.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    palette.setColor(QPalette.ColorRole.Link, QColor(ACCENT))
    palette.setColor(QPalette.ColorRole.PlaceholderText, QColor("#8a94a6"))
    palette.setColor(QPalette.ColorRole.ToolTipBase, QColor(CARD))
    palette.setColor(QPalette.ColorRole.ToolTipText, QColor(TEXT))
    app.setPalette(palette)
    font = QFont(app.font())
    font.setPointSizeF(max(font.pointSizeF(), 10.0))
    app.setFont(font)
    app.setStyleSheet(STYLE_SHEET)


STYLE_SHEET = f"""
QMainWindow, QDialog {{ background: {WINDOW}; }}
QFrame#card {{ background: {CARD}; border: 1px solid {BORDER}; border-radius: 10px; }}
QLabel#cardTitle {{ color: {MUTED}; font-size: 9pt; font-weight: 600;
                    letter-spacing: 0.5px; }}
QLabel#cardValue {{ font-size: 19pt; font-weight: 600; }}
QLabel#cardDetail {{ color: {MUTED}; }}
QLabel#muted {{ color: {MUTED}; }}
QLabel#pageTitle {{ font-size: 17pt; font-weight: 600; }}
QLabel#sectionTitle {{ font-size: 11pt; font-weight: 600; }}
QLabel#fieldError {{ color: #c92a2a; }}
QLabel#banner {{ background: #fff4e6; border: 1px solid #ffd8a8; border-radius: 8px;
                 padding: 8px 12px; color: #862e00; }}
QLabel#claimCode {{ font-size: 40pt; font-weight: 700; letter-spacing: 6px; color: {TEXT};
                    background: {CARD}; border: 2px dashed {ACCENT}; border-radius: 12px;
                    padding: 10px 24px; }}
QWidget#header {{ background: {CARD}; border-bottom: 1px solid {BORDER}; }}
QLabel#brand {{ font-size: 13pt; font-weight: 700; color: {ACCENT}; }}
QLabel#statePill {{ border-radius: 11px; padding: 3px 12px; color: white; font-weight: 600; }}
QPushButton {{ border: 1px solid #c5ccd8; border-radius: 6px; padding: 6px 14px;
               background: #ffffff; }}
QPushButton:hover {{ background: #eef1f7; }}
QPushButton:disabled {{ color: #a0a8b6; }}
QPushButton#primary {{ background: {ACCENT}; color: white; border: 1px solid {ACCENT}; }}
QPushButton#primary:hover {{ background: #2a47ad; }}
QPushButton#danger {{ color: #c92a2a; border-color: #f1aeb5; }}
QTabWidget::pane {{ border: none; }}
QTabBar::tab {{ padding: 8px 18px; margin-right: 2px; border: none; color: {MUTED};
                font-weight: 600; background: transparent; }}
QTabBar::tab:selected {{ color: {ACCENT}; border-bottom: 2px solid {ACCENT}; }}
QLineEdit, QPlainTextEdit {{ border: 1px solid #c5ccd8; border-radius: 6px;
    padding: 5px 8px; background: {CARD}; }}
QLineEdit:focus, QPlainTextEdit:focus {{ border: 1px solid {ACCENT}; }}
QSpinBox, QComboBox {{ min-height: 26px; padding: 1px 6px; }}
QLineEdit[invalid="true"] {{ border: 1px solid #c92a2a; }}
QProgressBar {{ border: none; border-radius: 4px; background: #e9ecf2; height: 8px;
                text-align: center; }}
QProgressBar::chunk {{ border-radius: 4px; background: {ACCENT}; }}
QTableWidget {{ border: none; gridline-color: transparent; }}
QTableWidget::item {{ padding: 0 14px 0 6px; }}
QHeaderView::section {{ background: transparent; border: none; color: {MUTED};
                        font-weight: 600; padding: 4px 6px; }}
QStatusBar {{ background: {CARD}; border-top: 1px solid {BORDER}; color: {MUTED}; }}
QScrollArea {{ border: none; background: transparent; }}
"""


def app_icon(color: str = ACCENT, size: int = 64) -> QIcon:
    """The app's icon in ``color``: a rounded square with a white bar chart (a pool of
    PCs adding up), so the tray shows the status at a glance."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    path = QPainterPath()
    path.addRoundedRect(QRectF(2, 2, size - 4, size - 4), size * 0.22, size * 0.22)
    painter.fillPath(path, QColor(color))
    bar = size * 0.13
    gap = size * 0.07
    left = (size - 3 * bar - 2 * gap) / 2
    bottom = size * 0.76
    for i, height in enumerate((0.28, 0.48, 0.36)):
        top = bottom - size * height
        rect = QRectF(left + i * (bar + gap), top, bar, bottom - top)
        painter.fillRect(rect, QColor("#ffffff"))
    painter.end()
    return QIcon(pixmap)


__all__ = ["STATUS_COLORS", "Status", "app_icon", "apply_theme", "status_of"]
