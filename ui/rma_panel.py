"""The bench's return panel: which RMA is open, whose, and how its weight compares."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QGroupBox, QWidget

from console.receiving import WeightCheck
from console.views import RmaView
from ui.style import key_label, restyle, value_label


class RmaPanel(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Return", parent)
        grid = QGridLayout(self)
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(4)
        self.rma_label = value_label(name="rmaNumber", rich=True)
        self.customer_label = value_label()
        self.contact_label = value_label()
        self.order_label = value_label()
        self.delivered_label = value_label()
        self.weight_check_label = value_label(name="weightCheck")
        self.weight_check_label.setWordWrap(False)  # one line: the group box does not grow for a wrap
        placed = ((("RMA", self.rma_label), 0, 0, 1), (("Order", self.order_label), 0, 2, 1),
                  (("Customer", self.customer_label), 1, 0, 1), (("Contact", self.contact_label), 1, 2, 1),
                  (("Delivered", self.delivered_label), 2, 0, 3), (("Weight", self.weight_check_label), 3, 0, 3))
        for (caption, value), row, col, span in placed:
            grid.addWidget(key_label(caption), row, col, Qt.AlignmentFlag.AlignTop)
            grid.addWidget(value, row, col + 1, 1, span, Qt.AlignmentFlag.AlignTop)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)

    def clear(self) -> None:
        for label in (self.rma_label, self.customer_label, self.contact_label, self.order_label,
                      self.delivered_label, self.weight_check_label):
            label.setText("—")
        self.set_mismatch(False)

    def draw(self, view: RmaView, check: WeightCheck | None, local_date: Callable[[datetime], str]) -> None:
        self.rma_label.setText(f"<b>{view.number}</b>  ({view.status.replace('_', ' ')}, {view.channel})")
        self.order_label.setText(view.order_number)
        self.customer_label.setText(f"{view.customer_name} · {view.loyalty_tier} tier")
        self.contact_label.setText(" · ".join(filter(None, (view.customer_email, view.customer_phone))))
        delivered = local_date(view.delivered_at) if view.delivered_at else "not delivered"
        window = f" — {view.window.describe()}" if view.window else ""
        self.delivered_label.setText(delivered + window)
        self.draw_weight(view, check)

    def draw_weight(self, view: RmaView, check: WeightCheck | None) -> None:
        if check is None:
            self.weight_check_label.setText(f"expected {view.expected_weight_g:,} g")
            self.set_mismatch(False)
            return
        self.weight_check_label.setText(check.message)  # it names the expected weight
        self.weight_check_label.setToolTip(check.message)
        self.set_mismatch(check.mismatch)

    def set_mismatch(self, mismatch: bool) -> None:
        self.weight_check_label.setProperty("mismatch", "true" if mismatch else "false")
        restyle(self.weight_check_label)
