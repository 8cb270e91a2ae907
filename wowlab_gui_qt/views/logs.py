"""The logs view: the agent's log records as they come, filtered by level."""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from wowlab_gui_qt.widgets import field_label

LEVELS = {"Debug": logging.DEBUG, "Info": logging.INFO, "Warning": logging.WARNING,
          "Error": logging.ERROR}  # fmt: skip
KEPT = 5000


def format_record(record: logging.LogRecord) -> str:
    """One line per record (plus its traceback, if any)."""
    stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
    source = record.name.removeprefix("wowlab_core.").removeprefix("wowlab_gui_qt.")
    line = f"{stamp}  {record.levelname:<7}  {source}: {record.getMessage()}"
    if record.exc_text:
        line += "\n" + record.exc_text
    return line


class LogsView(QWidget):
    """Live log records with a level filter, copy and open-folder buttons."""

    def __init__(self, folder: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder = folder
        self.records: deque[logging.LogRecord] = deque(maxlen=KEPT)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 16, 20, 16)
        layout.setSpacing(8)
        self.outer = layout
        bar = QHBoxLayout()
        self.level = QComboBox()
        self.level.addItems(list(LEVELS))
        self.level.setCurrentText("Info")
        self.level.setAccessibleName("Lowest level shown")
        self.copy_button = QPushButton("Copy")
        self.copy_button.setAccessibleName("Copy the log to the clipboard")
        self.folder_button = QPushButton("Open folder")
        self.folder_button.setAccessibleName("Open the log folder")
        self.count = QLabel("")
        self.count.setObjectName("muted")
        self.count.setAccessibleName("Lines shown")
        bar.addWidget(field_label("&Level:", self.level))
        bar.addWidget(self.level)
        bar.addStretch(1)
        bar.addWidget(self.copy_button)
        bar.addWidget(self.folder_button)
        layout.addLayout(bar)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(KEPT)
        self.text.setAccessibleName("Log records")
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlaceholderText("Nothing logged yet.")
        layout.addWidget(self.text, 1)
        layout.addWidget(self.count)
        self.level.currentTextChanged.connect(lambda _: self._refilter())
        self.copy_button.clicked.connect(self.copy)
        self.folder_button.clicked.connect(self.open_folder)
        self._shown = 0

    @property
    def threshold(self) -> int:
        """The lowest level shown."""
        return LEVELS[self.level.currentText()]

    def add(self, record: logging.LogRecord) -> None:
        """A new record (shown if its level passes the filter)."""
        self.records.append(record)
        if record.levelno >= self.threshold:
            self.text.appendPlainText(format_record(record))
            self._shown += 1
            self._count()

    def _refilter(self) -> None:
        lines = [format_record(r) for r in self.records if r.levelno >= self.threshold]
        self.text.setPlainText("\n".join(lines))
        self._shown = len(lines)
        self._count()
        self.text.verticalScrollBar().setValue(self.text.verticalScrollBar().maximum())

    def _count(self) -> None:
        self.count.setText(f"{self._shown:,} line{'s' if self._shown != 1 else ''}")

    def copy(self) -> None:
        """Put the lines shown on the clipboard."""
        QGuiApplication.clipboard().setText(self.text.toPlainText())

    def open_folder(self) -> bool:
        """Open the log folder in the file manager."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.folder)))


__all__ = ["LogsView", "format_record"]
