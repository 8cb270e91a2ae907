"""Settings: the node's name and workers, the CPU limit, when to pause, start at login,
the tray, engine warm-up, and unlinking the node."""

from __future__ import annotations

from dataclasses import dataclass, replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from wowlab_gui_qt.settings import GuiSettings, cpu_count, workers_for
from wowlab_gui_qt.widgets import Card, field_label


@dataclass(frozen=True)
class SettingsChoice:
    """What the settings page holds."""

    name: str
    max_parallel: int
    gui: GuiSettings


class SettingsView(QWidget):
    """The settings form. ``saved`` carries a :class:`SettingsChoice`; the buttons emit
    ``pause_toggled``, ``warm_up_asked`` and ``unlink_asked``."""

    saved = Signal(object)
    pause_toggled = Signal()
    warm_up_asked = Signal()
    unlink_asked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._gui = GuiSettings()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 16, 20, 16)
        layout.setSpacing(14)
        self.outer = layout

        node = self._section(layout, "This node")
        form = self._form(node)
        self.name = QLineEdit()
        self.name.setMaxLength(100)
        self.name.setAccessibleName("Node name")
        self.name_note = QLabel("The portal shows the name given when the node registered.")
        self.name_note.setObjectName("muted")
        self.name_note.setWordWrap(True)
        self.max_parallel = QSpinBox()
        self.max_parallel.setRange(1, 256)
        self.max_parallel.setAccessibleName("Simulations at once")
        self.max_parallel.setMaximumWidth(110)
        self.cpu_limit = QSlider(Qt.Orientation.Horizontal)
        self.cpu_limit.setRange(5, 100)
        self.cpu_limit.setSingleStep(5)
        self.cpu_limit.setPageStep(10)
        self.cpu_limit.setAccessibleName("CPU limit, percent of cores")
        self.cpu_text = QLabel("")
        self.cpu_text.setAccessibleName("CPU limit in workers")
        self.cpu_text.setObjectName("muted")
        cpu_row = QVBoxLayout()
        cpu_row.setSpacing(2)
        cpu_row.addWidget(self.cpu_limit)
        cpu_row.addWidget(self.cpu_text)
        name_column = QVBoxLayout()
        name_column.setSpacing(2)
        name_column.addWidget(self.name)
        name_column.addWidget(self.name_note)
        form.addRow(field_label("&Name:", self.name), name_column)
        form.addRow(field_label("Simulations at &once:", self.max_parallel), self.max_parallel)
        form.addRow(field_label("&CPU limit:", self.cpu_limit), cpu_row)
        pause_row = QHBoxLayout()
        self.pause_button = QPushButton("Pause")
        self.pause_button.setAccessibleName("Pause or resume the node")
        self.pause_button.clicked.connect(self.pause_toggled.emit)
        pause_note = QLabel("Pausing hands running chunks back to the pool at once.")
        pause_note.setObjectName("muted")
        pause_note.setWordWrap(True)
        pause_row.addWidget(self.pause_button)
        pause_row.addWidget(pause_note, 1)
        node.body.addLayout(pause_row)

        rules = self._section(layout, "When to run")
        self.pause_on_programs = QCheckBox("Pause while these programs run:")
        self.pause_on_programs.setAccessibleName("Pause while these programs run")
        self.programs = QLineEdit()
        self.programs.setAccessibleName("Programs that pause the node")
        self.programs.setToolTip("Process names, separated by commas")
        rules.body.addWidget(self.pause_on_programs)
        rules.body.addWidget(self.programs)
        idle_row = QHBoxLayout()
        self.idle_minutes = QSpinBox()
        self.idle_minutes.setRange(0, 240)
        self.idle_minutes.setSpecialValueText("always")
        self.idle_minutes.setSuffix(" idle minutes")
        self.idle_minutes.setAccessibleName("Run only after idle minutes")
        self.idle_minutes.setMinimumWidth(150)
        idle_row.addWidget(field_label("Run only after:", self.idle_minutes))
        idle_row.addWidget(self.idle_minutes)
        idle_row.addStretch(1)
        rules.body.addLayout(idle_row)
        self.idle_note = QLabel("")
        self.idle_note.setObjectName("muted")
        self.idle_note.setWordWrap(True)
        self.idle_note.setAccessibleName("Idle time note")
        self.idle_note.hide()
        rules.body.addWidget(self.idle_note)

        desktop = self._section(layout, "Desktop")
        self.start_at_login = QCheckBox("Start at login (in the tray)")
        self.start_at_login.setAccessibleName("Start at login")
        self.close_to_tray = QCheckBox("Keep running in the tray when closed")
        self.close_to_tray.setAccessibleName("Close to tray")
        desktop.body.addWidget(self.start_at_login)
        desktop.body.addWidget(self.close_to_tray)
        warm_row = QHBoxLayout()
        self.warm_button = QPushButton("Warm up engines")
        self.warm_button.setAccessibleName("Warm up engines")
        self.warm_button.clicked.connect(self.warm_up_asked.emit)
        self.warm_progress = QProgressBar()
        self.warm_progress.setAccessibleName("Engine warm-up progress")
        self.warm_progress.setTextVisible(False)
        self.warm_progress.setFixedHeight(8)
        self.warm_text = QLabel("")
        self.warm_text.setWordWrap(True)
        self.warm_text.setObjectName("muted")
        self.warm_text.setAccessibleName("Engine warm-up status")
        warm_row.addWidget(self.warm_button)
        warm_row.addWidget(self.warm_progress, 1)
        warm_row.addWidget(self.warm_text)
        desktop.body.addLayout(warm_row)

        buttons = QHBoxLayout()
        self.unlink_button = QPushButton("Unlink this node…")
        self.unlink_button.setObjectName("danger")
        self.unlink_button.setAccessibleName("Unlink this node")
        self.unlink_button.clicked.connect(self.unlink_asked.emit)
        self.save_button = QPushButton("Save changes")
        self.save_button.setObjectName("primary")
        self.save_button.setAccessibleName("Save changes")
        self.save_button.clicked.connect(self.save)
        self.error = QLabel("")
        self.error.setObjectName("fieldError")
        self.error.setAccessibleName("Settings error")
        self.error.hide()
        buttons.addWidget(self.unlink_button)
        buttons.addStretch(1)
        buttons.addWidget(self.save_button)
        layout.addWidget(self.error)
        layout.addLayout(buttons)
        layout.addStretch(1)

        self.cpu_limit.valueChanged.connect(self._cpu_changed)
        self.max_parallel.valueChanged.connect(lambda _: self._cpu_changed())

    def _section(self, layout: QVBoxLayout, title: str) -> Card:
        card = Card()
        card.body.setSpacing(8)
        label = QLabel(title)
        label.setObjectName("sectionTitle")
        card.body.addWidget(label)
        layout.addWidget(card)
        return card

    def _form(self, card: Card) -> QFormLayout:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.setVerticalSpacing(10)
        card.body.addLayout(form)
        return form

    def _cpu_changed(self) -> None:
        workers = workers_for(
            cores=cpu_count(),
            cpu_limit_percent=self.cpu_limit.value(),
            max_parallel=self.max_parallel.value(),
        )
        self.cpu_text.setText(
            f"{self.cpu_limit.value()} % · {workers} worker{'s' if workers > 1 else ''}"
            f" of {cpu_count()} cores"
        )

    def fill(self, *, name: str, max_parallel: int, gui: GuiSettings) -> None:
        """Show saved settings."""
        self._gui = gui
        self.name.setText(name)
        self.max_parallel.setValue(max_parallel)
        self.cpu_limit.setValue(gui.cpu_limit_percent)
        self.pause_on_programs.setChecked(gui.pause_on_programs)
        self.programs.setText(", ".join(gui.pause_programs))
        self.programs.setCursorPosition(0)
        self.idle_minutes.setValue(gui.idle_minutes)
        self.start_at_login.setChecked(gui.start_at_login)
        self.close_to_tray.setChecked(gui.close_to_tray)
        self._cpu_changed()

    def set_paused(self, paused: bool) -> None:
        """Label the pause button for the node's state."""
        self.pause_button.setText("Resume" if paused else "Pause")

    def set_idle_available(self, available: bool) -> None:
        """Say so when this desktop cannot tell idle time."""
        self.idle_note.setText(
            "" if available else "This desktop does not report idle time; the rule is off."
        )
        self.idle_note.setVisible(not available)

    def set_warm_up(self, text: str, done: int, total: int, busy: bool) -> None:
        """Show the engine warm-up's progress."""
        self.warm_progress.setRange(0, 0 if busy else max(total, 1))
        if not busy:
            self.warm_progress.setValue(done)
        self.warm_text.setText(text)
        self.warm_button.setEnabled(not busy)

    def save(self) -> None:
        """Check the form; emit ``saved`` if it is valid, else say what is wrong."""
        name = self.name.text().strip()
        if not name:
            self.error.setText("the name cannot be empty")
            self.error.show()
            self.name.setFocus()
            return
        self.error.hide()
        programs = [p.strip() for p in self.programs.text().split(",") if p.strip()]
        gui = replace(
            self._gui,
            cpu_limit_percent=self.cpu_limit.value(),
            pause_on_programs=self.pause_on_programs.isChecked(),
            pause_programs=programs,
            idle_minutes=self.idle_minutes.value(),
            start_at_login=self.start_at_login.isChecked(),
            close_to_tray=self.close_to_tray.isChecked(),
        )
        self._gui = gui
        self.saved.emit(SettingsChoice(name=name, max_parallel=self.max_parallel.value(), gui=gui))


__all__ = ["SettingsChoice", "SettingsView"]
