"""The dashboard: the node's state, workers, chunks, speed, CPU, and what it runs now."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wowlab_core.agent import ChunkProgress
from wowlab_gui_qt.runner import NodeSnapshot
from wowlab_gui_qt.theme import ACCENT, Status
from wowlab_gui_qt.widgets import Card, Sparkline, StatCard

MACHINE_COLOR = "#adb5bd"


def _rate(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


class DashboardView(QWidget):
    """Figures of the running node; fed a :class:`NodeSnapshot` and CPU samples."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 16, 20, 16)
        layout.setSpacing(14)
        self.outer = layout

        self.node_line = QLabel("")
        self.node_line.setObjectName("muted")
        self.node_line.setWordWrap(True)
        self.node_line.setAccessibleName("Owner and sharing")
        self.node_line.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.node_line)
        self.banner = QLabel("")
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setAccessibleName("Node notice")
        self.banner.hide()
        layout.addWidget(self.banner)
        self.warmup = QProgressBar()
        self.warmup.setAccessibleName("Engine warm-up progress")
        self.warmup.setTextVisible(False)
        self.warmup.setFixedHeight(8)
        self.warmup.hide()
        layout.addWidget(self.warmup)

        self.state_card = StatCard("State")
        self.workers_card = StatCard("Workers")
        self.chunks_card = StatCard("Chunks")
        self.speed_card = StatCard("Sims per second")
        self.cpu_card = StatCard("CPU")
        self.cards = [
            self.state_card,
            self.workers_card,
            self.chunks_card,
            self.speed_card,
            self.cpu_card,
        ]
        self.grid = QGridLayout()
        self.grid.setSpacing(12)
        layout.addLayout(self.grid)

        charts = QHBoxLayout()
        charts.setSpacing(12)
        self.speed_chart = Sparkline(colors=(ACCENT,))
        self.speed_chart.setAccessibleName("Sims per second, last 60 seconds")
        self.cpu_chart = Sparkline(colors=(ACCENT, MACHINE_COLOR), maximum=100.0, unit=" %")
        self.cpu_chart.setAccessibleName("CPU use, last 60 seconds")
        self.chart_cards = [
            self._chart_card("Sims per second · 60 s", self.speed_chart, ""),
            self._chart_card(
                "CPU · 60 s",
                self.cpu_chart,
                f'<span style="color:{ACCENT}">■</span> this node &nbsp; '
                f'<span style="color:{MACHINE_COLOR}">■</span> whole machine',
            ),
        ]
        self.charts = charts
        layout.addLayout(charts)

        work = Card()
        heading = QLabel("Current work")
        heading.setObjectName("sectionTitle")
        work.body.addWidget(heading)
        self.table = QTableWidget(0, 4)
        self.table.setAccessibleName("Chunks running now")
        self.table.setHorizontalHeaderLabels(["Job", "Config", "Chunk", "Progress"])
        self.table.verticalHeader().setDefaultSectionSize(34)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.setShowGrid(False)
        header = self.table.horizontalHeader()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(70)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.empty = QLabel("No chunk running right now.")
        self.empty.setObjectName("muted")
        self.empty.setAccessibleName("No work")
        work.body.addWidget(self.table)
        work.body.addWidget(self.empty)
        layout.addWidget(work)
        layout.addStretch(1)
        self._columns = 0
        self.relayout(1280)

    def _chart_card(self, title: str, chart: Sparkline, legend: str) -> Card:
        card = Card()
        label = QLabel(title.upper())
        label.setObjectName("cardTitle")
        card.body.addWidget(label)
        card.body.addWidget(chart, 1)
        if legend:
            note = QLabel(legend)
            note.setObjectName("muted")
            note.setAccessibleName(f"{title} legend")
            card.body.addWidget(note)
        card.setMinimumHeight(150)
        return card

    def relayout(self, width: int) -> None:
        """Fit a window ``width`` pixels wide: 5, 3 or 2 cards a row; charts side by side
        or stacked."""
        columns = 5 if width >= 1000 else 2 if width < 620 else 3
        if columns == self._columns:
            return
        self._columns = columns
        margin = 10 if columns == 2 else 20
        self.outer.setContentsMargins(margin, 12, margin, 12)
        self.grid.setSpacing(8 if columns == 2 else 12)
        for card in self.cards:
            self.grid.removeWidget(card)
        for i, card in enumerate(self.cards):
            self.grid.addWidget(card, i // columns, i % columns)
        for chart in self.chart_cards:
            self.charts.removeWidget(chart)
        self.charts.setDirection(
            QHBoxLayout.Direction.TopToBottom if columns == 2 else QHBoxLayout.Direction.LeftToRight
        )
        for chart in self.chart_cards:
            self.charts.addWidget(chart)

    # --- updates --------------------------------------------------------------------

    def show_snapshot(
        self,
        snapshot: NodeSnapshot,
        status: Status,
        *,
        sims_per_second: float,
        chunks_today: int,
        chunks_total: int,
    ) -> None:
        """Refresh every figure from ``snapshot``."""
        self.state_card.set(status.label, status.detail, status.color)
        self.workers_card.set(
            f"{snapshot.busy_workers} / {snapshot.max_workers}",
            f"busy of max · {snapshot.cores} cores",
        )
        failed = f" · {snapshot.chunks_failed:,} failed" if snapshot.chunks_failed else ""
        self.chunks_card.set(f"{chunks_today:,}", f"today · {chunks_total:,} in total{failed}")
        self.speed_card.set(_rate(sims_per_second), "iterations per second")
        notice = ""
        if status.key == "reconnecting":
            notice = f"Cannot reach the pool: {snapshot.connection_error}. Retrying…"
        elif status.key == "paused":
            notice = f"Paused: {status.detail}. Leases were handed back to the pool."
        elif status.key == "offline":
            notice = f"The node is offline: {status.detail}."
        elif status.key == "preparing" and snapshot.warmup is not None:
            name, done, total = snapshot.warmup
            notice = (
                f"Preparing the {name} engine (it compiles once, so your first chunk "
                f"is not late)… {done} of {total} ready"
            )
        self.banner.setText(notice)
        self.banner.setVisible(bool(notice))
        self.warmup.setVisible(snapshot.warmup is not None)
        if snapshot.warmup is not None:
            self.warmup.setRange(0, 0)  # busy: a compiler gives no progress
        self.show_chunks(snapshot.chunks)
        owner = snapshot.owner or "nobody yet"
        sharing = snapshot.sharing or "not reported by this transport"
        node = f"node #{snapshot.node_id}" if snapshot.node_id else "not registered"
        self.node_line.setText(
            f"Owner <b>{escape(owner)}</b> &nbsp;·&nbsp; shared with <b>{escape(sharing)}</b>"
            f" &nbsp;·&nbsp; {escape(node)}"
        )

    def show_cpu(self, node_percent: float, machine_percent: float) -> None:
        """A CPU sample (percent of the whole machine)."""
        self.cpu_card.set(f"{node_percent:.0f} %", f"this node · machine {machine_percent:.0f} %")
        self.cpu_chart.add(node_percent, machine_percent)

    def add_speed(self, sims_per_second: float) -> None:
        """A sims/s sample."""
        self.speed_chart.add(sims_per_second)

    def show_chunks(self, chunks: tuple[ChunkProgress, ...]) -> None:
        """The running chunks, one row each."""
        self.table.setRowCount(len(chunks))
        for row, chunk in enumerate(chunks):
            cells = [
                f"#{chunk.job_id}",
                chunk.config_name or "…",
                f"#{chunk.chunk_id}",
            ]
            for column, text in enumerate(cells):
                item = self.table.item(row, column)
                if item is None:
                    item = QTableWidgetItem()
                    self.table.setItem(row, column, item)
                item.setText(text)
            cell = self.table.cellWidget(row, 3)
            if not isinstance(cell, ChunkBar):
                cell = ChunkBar()
                self.table.setCellWidget(row, 3, cell)
            cell.show_chunk(chunk)
        header_height = self.table.horizontalHeader().sizeHint().height()
        self.table.setFixedHeight(header_height + 34 * len(chunks) + 4)
        self.table.setVisible(bool(chunks))
        self.empty.setVisible(not chunks)


class ChunkBar(QWidget):
    """A chunk's progress: a bar and the share done."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 0, 6, 0)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(8)
        self.text = QLabel("")
        self.text.setObjectName("muted")
        self.text.setFixedWidth(150)
        self.text.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        row.addWidget(self.bar, 1)
        row.addWidget(self.text)

    def show_chunk(self, chunk: ChunkProgress) -> None:
        self.bar.setAccessibleName(f"Progress of chunk {chunk.chunk_id}")
        self.text.setAccessibleName(f"Iterations done of chunk {chunk.chunk_id}")
        self.bar.setValue(int(chunk.fraction * 1000))
        self.text.setText(
            f"{chunk.iterations_done:,} / {chunk.iterations:,} · {chunk.fraction:.0%}"
        )


__all__ = ["DashboardView"]
