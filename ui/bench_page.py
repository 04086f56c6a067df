"""The bench's page: where each part of the warehouse bench sits. The window wires and draws it."""
from __future__ import annotations

import textwrap

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSpinBox, QVBoxLayout, QWidget

from console.config import Settings
from console.inspection import GRADE_LABELS
from ui.decision_panel import DecisionPanel
from ui.inspect_panel import InspectPanel
from ui.item_model import ItemTableModel, UnitTable
from ui.rma_panel import RmaPanel
from ui.scan_field import ScanField
from ui.top_bar import TopBar

GRADE_KEYS = (("A", "F1"), ("B", "F2"), ("C", "F3"), ("D", "F4"), ("F", "F5"))


class BenchPage(QWidget):
    """Top bar; the prompt, the scan field and the weight; the feedback line; the return, its
    units, the selected unit's inspection and the grade buttons on the left, the decision on the
    right."""

    graded = Signal(str)  # a grade button: its grade

    def __init__(self, settings: Settings, units: ItemTableModel, *, syncing: bool) -> None:
        super().__init__(objectName="central")
        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)
        self.top = TopBar(settings.station_name, settings.station_id, settings.time_zone, syncing)
        root.addWidget(self.top)
        body = QVBoxLayout()
        body.setContentsMargins(12, 8, 12, 4)
        body.setSpacing(8)
        root.addLayout(body, 1)

        self.prompt = QLabel(objectName="prompt")
        body.addWidget(self.prompt)
        scan_row = QHBoxLayout()
        self.scan_field = ScanField(objectName="scanField")
        self.scan_field.setPlaceholderText("scan or type, then Enter")
        scan_row.addWidget(self.scan_field, 1)
        weight_caption = QLabel("Weight [Tab]")
        self.weight = QSpinBox(objectName="weight")
        self.weight.setRange(0, 100_000)
        self.weight.setSuffix(" g")
        self.weight.setSpecialValueText("not weighed")
        self.weight.setSingleStep(10)
        self.weight.setToolTip("Grams, typed from the scale's display (0 = not weighed); Enter goes back to the scan field")
        weight_caption.setBuddy(self.weight)
        scan_row.addWidget(weight_caption)
        scan_row.addWidget(self.weight)
        body.addLayout(scan_row)
        self.feedback = QLabel(objectName="feedback")
        self.feedback.setTextFormat(Qt.TextFormat.PlainText)
        self.feedback.setWordWrap(True)
        self.feedback.setMinimumHeight(48)
        body.addWidget(self.feedback)

        main = QHBoxLayout()
        main.setSpacing(12)
        body.addLayout(main, 1)
        left = QVBoxLayout()
        main.addLayout(left, 1)
        self.decision = DecisionPanel()
        main.addWidget(self.decision)
        self.rma = RmaPanel()
        left.addWidget(self.rma)
        self.table = UnitTable(units)
        left.addWidget(self.table, 1)
        self.inspect_panel = InspectPanel()
        left.addWidget(self.inspect_panel)
        grades = QHBoxLayout()
        self.grade_buttons: dict[str, QPushButton] = {}
        for grade, key in GRADE_KEYS:
            button = QPushButton(f"{grade}  [{key}]\n" + textwrap.fill(GRADE_LABELS[grade], 14))
            button.setProperty("class", "grade")
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setToolTip(f"Grade the selected unit {grade}: {GRADE_LABELS[grade]} ({key})")
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            button.clicked.connect(lambda _=False, g=grade: self.graded.emit(g))
            grades.addWidget(button)
            self.grade_buttons[grade] = button
        left.addLayout(grades)
        self.setTabOrder(self.scan_field, self.weight)
        self.setTabOrder(self.weight, self.scan_field)
