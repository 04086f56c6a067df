"""The return items of the open RMA as a Qt table model (one row per unit)."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QItemSelectionModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from console.inspection import GRADE_LABELS
from console.views import ItemView

_Index = QModelIndex | QPersistentModelIndex

COLUMNS = ("SKU", "Title", "Reason", "Paid", "Status", "Grade", "Serial")
PAID, STATUS, GRADE = 3, 4, 5
_AWAITING = QColor("#6b6b6b")


class ItemTableModel(QAbstractTableModel):
    """Read-only rows of ``ItemView``; refreshed as a whole from a reloaded RMA view."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._items: list[ItemView] = []

    # -- feeding ----------------------------------------------------------------------------

    def set_items(self, items: list[ItemView]) -> None:
        """Replace the rows. The same units in the same order only change in place, so the
        view keeps its selection and scroll position while units are scanned and graded."""
        items = list(items)
        if [i.id for i in items] == [i.id for i in self._items] and items:
            self._items = items
            self.dataChanged.emit(self.index(0, 0), self.index(len(items) - 1, len(COLUMNS) - 1))
            return
        self.beginResetModel()
        self._items = items
        self.endResetModel()

    def clear(self) -> None:
        self.set_items([])

    def items(self) -> list[ItemView]:
        return list(self._items)

    def item(self, row: int) -> ItemView:
        return self._items[row]

    def row_of(self, return_item_id: int) -> int | None:
        return next((n for n, i in enumerate(self._items) if i.id == return_item_id), None)

    # -- QAbstractTableModel ----------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._items)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            if orientation == Qt.Orientation.Horizontal and 0 <= section < len(COLUMNS):
                return COLUMNS[section]
            if orientation == Qt.Orientation.Vertical and 0 <= section < len(self._items):
                return str(section + 1)
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._items) or index.column() >= len(COLUMNS):
            return None
        item = self._items[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(item, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == GRADE and item.grade:
                return f"{item.grade}: {GRADE_LABELS.get(item.grade, '')}"
            if column == 1:
                return item.title
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if column == PAID:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if column == GRADE:
                return int(Qt.AlignmentFlag.AlignCenter)
            return None
        if role == Qt.ItemDataRole.ForegroundRole and item.reception_status == "awaiting":
            return QBrush(_AWAITING)
        return None

    @staticmethod
    def _text(item: ItemView, column: int) -> str:
        if column == 0:
            return item.sku
        if column == 1:
            return item.title
        if column == 2:
            return item.reason
        if column == PAID:
            return item.paid.format()
        if column == STATUS:
            return item.reception_status.replace("_", " ")
        if column == GRADE:
            return item.grade or ""
        return item.received_serial or ""


class UnitTable(QTableView):
    """The open RMA's units. It never takes the keyboard (the scan field keeps it); ↑/↓ in the
    scan field move its selection, which chooses the unit a grade key grades."""

    def __init__(self, model: ItemTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.units = model
        self.setModel(model)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(34)
        header = self.horizontalHeader()
        # An RMA has a handful of units, so sizing the short columns to their contents is cheap;
        # the title takes what is left.
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(60)
        self.setMinimumHeight(150)

    def selected_row(self) -> int | None:
        rows = self.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def selected_item_id(self) -> int | None:
        row = self.selected_row()
        return self.units.item(row).id if row is not None else None

    def select_row(self, row: int) -> None:
        index = self.units.index(row, 0)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.selectionModel().setCurrentIndex(index, flags)
        self.scrollTo(index)

    def move_selection(self, delta: int) -> None:
        rows = self.units.rowCount()
        if rows:
            current = self.selected_row()
            self.select_row(0 if current is None else max(0, min(rows - 1, current + delta)))
