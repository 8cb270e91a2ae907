"""Small widgets the views share: stat cards, sparklines, a spinner, a QR code."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import segno
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout, QWidget

from wowlab_gui_qt.theme import ACCENT, BORDER, MUTED


class Card(QFrame):
    """A white rounded panel."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(16, 12, 16, 14)
        self.body.setSpacing(4)


class StatCard(Card):
    """A figure with its title and a line of detail (``Workers 2 / 3``, ``of 4 cores``)."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(title.upper())
        self.title.setObjectName("cardTitle")
        self.value = QLabel("-")
        self.value.setObjectName("cardValue")
        self.value.setAccessibleName(f"{title} value")
        self.detail = QLabel("")
        self.detail.setObjectName("cardDetail")
        self.detail.setWordWrap(True)
        self.detail.setAccessibleName(f"{title} detail")
        for widget in (self.title, self.value, self.detail):
            self.body.addWidget(widget)
        self.setAccessibleName(title)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set(self, value: str, detail: str = "", color: str | None = None) -> None:
        """Show ``value`` (in ``color``) and ``detail``."""
        self.value.setText(value)
        self.value.setStyleSheet(f"color: {color};" if color else "")
        self.detail.setText(detail)


class Sparkline(QWidget):
    """The last ``seconds`` of one or more series as lines (60 s of sims/s, CPU ...)."""

    def __init__(
        self,
        *,
        colors: Sequence[str] = (ACCENT,),
        seconds: int = 60,
        maximum: float | None = None,
        unit: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.colors = list(colors)
        self.series: list[deque[float]] = [deque(maxlen=seconds) for _ in colors]
        self.seconds = seconds
        self.maximum = maximum
        self.unit = unit
        self.setMinimumHeight(70)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def add(self, *values: float) -> None:
        """One new point per series (once a second)."""
        for series, value in zip(self.series, values, strict=False):
            series.append(max(0.0, float(value)))
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(240, 90)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        area = QRectF(self.rect()).adjusted(1, 14, -1, -2)
        top = self.maximum or _nice(max([max(s, default=0.0) for s in self.series]) * 1.1)
        pen = QPen(QColor(BORDER))
        pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        for frac in (0.0, 0.5, 1.0):
            y = area.bottom() - frac * area.height()
            painter.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
        painter.setPen(QColor(MUTED))
        font = painter.font()
        font.setPointSizeF(max(7.5, font.pointSizeF() * 0.8))
        painter.setFont(font)
        painter.drawText(
            QRectF(area.left(), 0, area.width(), 14),
            int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop),
            f"{_short(top)}{self.unit}",
        )
        step = area.width() / max(1, self.seconds - 1)
        for series, color in zip(self.series, self.colors, strict=False):
            if len(series) < 2:
                continue
            path = QPainterPath()
            start = self.seconds - len(series)
            for i, value in enumerate(series):
                point = QPointF(
                    area.left() + (start + i) * step,
                    area.bottom() - min(value / top, 1.0) * area.height(),
                )
                if i == 0:
                    path.moveTo(point)
                else:
                    path.lineTo(point)
            fill = QPainterPath(path)
            fill.lineTo(QPointF(area.right(), area.bottom()))
            fill.lineTo(QPointF(area.left() + start * step, area.bottom()))
            fill.closeSubpath()
            shade = QColor(color)
            shade.setAlpha(38)
            painter.fillPath(fill, shade)
            painter.setPen(QPen(QColor(color), 2))
            painter.drawPath(path)
        painter.end()


def _nice(value: float) -> float:
    """The next round number at or above ``value`` (1, 2, 5 ... times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


def _short(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}".rstrip("0").rstrip(".") or "0"


class Spinner(QWidget):
    """A small turning arc, shown while waiting (for a claim, a connection)."""

    def __init__(self, parent: QWidget | None = None, size: int = 22) -> None:
        super().__init__(parent)
        self.setFixedSize(size, size)
        self._angle = 0
        self._timer = QTimer(self)
        self._timer.setInterval(40)
        self._timer.timeout.connect(self._turn)
        self._timer.start()

    def _turn(self) -> None:
        self._angle = (self._angle + 30) % 360
        self.update()

    def setVisible(self, visible: bool) -> None:
        super().setVisible(visible)
        if visible:
            self._timer.start()
        else:
            self._timer.stop()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(3, 3, -3, -3)
        painter.setPen(QPen(QColor(BORDER), 3))
        painter.drawEllipse(rect)
        pen = QPen(QColor(ACCENT), 3)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        painter.drawArc(rect, -self._angle * 16, 100 * 16)
        painter.end()


class QrCode(QWidget):
    """A QR code of a text (the claim link), drawn from segno's module matrix."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._matrix: list[list[bool]] = []
        self.text = ""
        self.setMinimumSize(150, 150)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def set_text(self, text: str) -> None:
        """Encode ``text`` (error correction M: readable from a phone off a screen)."""
        self.text = text
        if text:
            code = segno.make_qr(text, error="m", boost_error=False)
            self._matrix = [[bool(v) for v in row] for row in code.matrix_iter(border=2)]
        else:
            self._matrix = []
        self.update()

    @property
    def matrix(self) -> list[list[bool]]:
        """The code's modules (True: dark), quiet zone included."""
        return self._matrix

    def sizeHint(self) -> QSize:
        return QSize(180, 180)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        side = min(self.width(), self.height())
        painter.fillRect(QRectF(0, 0, side, side), QColor("#ffffff"))
        if self._matrix:
            count = len(self._matrix)
            module = side // count
            offset = (side - module * count) // 2
            for y, row in enumerate(self._matrix):
                for x, dark in enumerate(row):
                    if dark:
                        painter.fillRect(
                            offset + x * module,
                            offset + y * module,
                            module,
                            module,
                            Qt.GlobalColor.black,
                        )
        painter.end()


def field_label(text: str, buddy: QWidget) -> QLabel:
    """A form label tied to its field (screen readers announce the pair)."""
    label = QLabel(text)
    label.setBuddy(buddy)
    if not buddy.accessibleName():
        buddy.setAccessibleName(text.replace("&", "").rstrip(":"))
    return label


__all__ = ["Card", "QrCode", "Sparkline", "Spinner", "StatCard", "field_label"]
