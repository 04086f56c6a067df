"""The review queue and a case's units as Qt table models (the rows come from console.review)."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt

from console.context import StationContext
from console.review import QueueEntry, UnitView, parse_amount
from console.errors import InvalidInput
from console.money import Money
from ui.table_model import Index, ListTableModel

KIND_WORDS = {"decision": "review", "conflict": "conflict", "claim": "claim"}


class ReviewQueueModel(ListTableModel[QueueEntry]):
    COLUMNS = ("Waiting since", "Kind", "RMA", "Customer", "Amount", "Risk", "Station", "Decided by", "Why")

    def __init__(self, ctx: StationContext, parent: Any = None) -> None:
        super().__init__(parent)
        self.ctx = ctx

    def set_rows(self, rows: list[QueueEntry]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def row_of(self, entry_id: Any) -> int | None:
        return next((n for n, e in enumerate(self._rows) if e.id == entry_id), None)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        e = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (self.ctx.local_time_text(e.waiting_since), KIND_WORDS.get(e.kind, e.kind), e.rma_number,
                    e.customer_name, e.amount.format(), "—" if e.score is None else str(e.score), e.station_id,
                    e.decided_by, e.summary)[column]
        if role == Qt.ItemDataRole.ToolTipRole and column == 8:
            return "\n".join(e.reasons)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (4, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and (e.kind != "decision" or (column == 5 and (e.score or 0) >= 40)):
            return Qt.GlobalColor.darkRed
        return None


class UnitAmountModel(ListTableModel[UnitView]):
    """The case's units with the refund the supervisor approves for each; only that column edits."""

    COLUMNS = ("Unit", "SKU", "Grade", "Paid", "Refund")
    REFUND = 4

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._refunds: list[int] = []
        self.currency = "USD"
        self.problem = ""

    def set_units(self, units: tuple[UnitView, ...], currency: str) -> None:
        self.beginResetModel()
        self._rows = list(units)
        self._refunds = [u.refund.minor for u in units]
        self.currency = currency
        self.problem = ""
        self.endResetModel()

    def changed(self) -> dict[int, int]:
        """return item id → refund, for the units whose refund differs from the decision's."""
        return {u.return_item_id: r for u, r in zip(self._rows, self._refunds) if r != u.refund.minor}

    def total(self) -> Money:
        return Money(sum(self._refunds), self.currency)

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsEditable if index.isValid() and index.column() == self.REFUND else base

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        u = self._rows[index.row()]
        refund = Money(self._refunds[index.row()], self.currency)
        if role == Qt.ItemDataRole.DisplayRole:
            return (str(u.return_item_id), u.sku, u.grade or "—", u.paid.format(), refund.format())[index.column()]
        if role == Qt.ItemDataRole.EditRole:
            return refund.format().split(" ", 1)[1]
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == self.REFUND and refund != u.refund:
            return Qt.GlobalColor.darkBlue
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() >= 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid() or index.column() != self.REFUND:
            return False
        try:
            minor = parse_amount(str(value), self.currency)
        except InvalidInput as exc:
            self.problem = exc.message
            return False
        paid = self._rows[index.row()].paid
        if minor > paid.minor:
            self.problem = f"No unit is refunded above what was paid for it ({paid.format()})."
            return False
        self.problem = ""
        self._refunds[index.row()] = minor
        self.dataChanged.emit(index, index)
        return True

    def reset_amounts(self) -> None:
        if self._rows:
            self._refunds = [u.refund.minor for u in self._rows]
            self.dataChanged.emit(self.index(0, self.REFUND), self.index(len(self._rows) - 1, self.REFUND))

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return super().rowCount(parent)
