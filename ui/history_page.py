"""Today's parcels at this station [F7]: searchable, read in pages as the list scrolls, with reprint.

The rows come from ``console.history`` on the database worker; the table model only holds what
has been read so far and asks for the next page when the view reaches the end (Qt's
canFetchMore/fetchMore), so a busy day's hundreds of parcels never load at once.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QModelIndex, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QDialog, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QTableView, QVBoxLayout, QWidget

from console.history import ParcelRow, count_todays_parcels, todays_parcels
from console.money import Money
from console.print_jobs import reprint_rma
from console.station import Station
from ui.table_model import Index as _Index
from ui.table_model import ListTableModel
from ui.worker import DatabaseWorker

PAGE = 100
COLUMNS = ("Time", "RMA", "Order", "Customer", "Units", "Weight", "Flags", "State", "Decision", "Clerk")
STATE_WORDS = {"open": "open", "decided": "decided", "review": "waiting for review", "unidentified": "unidentified"}


def _decision_text(row: ParcelRow) -> str:
    if not row.decision_kind:
        return "—"
    kind = row.decision_kind.replace("_", " ")  # whether it waits for review is the State column's
    if row.amount_minor is None or row.currency is None or row.decision_kind in ("exchange", "deny"):
        return kind
    return f"{kind} {Money(row.amount_minor, row.currency).format()}"


def _weight_text(row: ParcelRow) -> str:
    if row.weight_g is None:
        return "not weighed"
    text = f"{row.weight_g:,} g"
    return f"{text} ≠ {row.expected_weight_g:,} g" if row.weight_mismatch and row.expected_weight_g else text


class ParcelTableModel(ListTableModel[ParcelRow]):
    COLUMNS = COLUMNS

    def __init__(self, station: Station, worker: DatabaseWorker, parent: Any = None) -> None:
        super().__init__(parent)
        self.station = station
        self.worker = worker
        self._times: list[str] = []
        self._search = ""
        self._exhausted = True
        self._fetching = False
        self._generation = 0

    def load(self, search: str) -> None:
        """Start over with ``search``: the first page replaces what is shown."""
        self._generation += 1
        self._search = search
        self.beginResetModel()
        self._rows, self._times = [], []
        self._exhausted, self._fetching = False, False
        self.endResetModel()
        self.fetchMore(QModelIndex())

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008 - Qt's signature
        return not parent.isValid() and not self._exhausted and not self._fetching

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: B008
        if not self.canFetchMore(parent):
            return
        self._fetching = True
        station, search, offset, generation = self.station, self._search, len(self._rows), self._generation

        def read() -> list[ParcelRow]:
            with station.sessions() as session:
                return todays_parcels(session, station.ctx(), search=search, limit=PAGE, offset=offset)

        def done(rows: list[ParcelRow]) -> None:
            if not shiboken6.isValid(self) or generation != self._generation:
                return  # the page was closed before its rows arrived
            self._fetching = False
            self._exhausted = len(rows) < PAGE
            if rows:
                ctx = self.station.ctx()
                first = len(self._rows)
                self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
                self._rows.extend(rows)
                self._times.extend(ctx.local_time_text(r.received_at)[-5:] for r in rows)
                self.endInsertRows()

        def failed(message: str) -> None:
            if shiboken6.isValid(self):
                self._fetching = False
                self._exhausted = True

        self.worker.submit("reading today's parcels", read, done, failed)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                self._times[index.row()], ", ".join(row.rma_numbers) or "—", ", ".join(row.order_numbers) or "—",
                ", ".join(row.customer_names) or "—", f"{row.units_scanned}/{row.units_expected}",
                _weight_text(row), str(row.flags) if row.flags else "", STATE_WORDS.get(row.state, row.state),
                _decision_text(row), row.clerk,
            )[column]
        if role == Qt.ItemDataRole.ToolTipRole and column == 5 and row.weight_mismatch:
            return "The parcel's weight did not match what its RMA should weigh."
        if role == Qt.ItemDataRole.ForegroundRole and ((column == 5 and row.weight_mismatch) or
                                                       (column == 6 and row.flags)):
            return Qt.GlobalColor.darkRed
        return None


class HistoryPage(QDialog):
    """Type to search (RMA, order, customer, code, SKU); ↑/↓ choose; Ctrl+P reprints; Esc closes."""

    def __init__(self, station: Station, worker: DatabaseWorker, kick_printing: Callable[[], None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.station = station
        self.worker = worker
        self.kick_printing = kick_printing
        self.setWindowTitle(f"Today's parcels — {station.settings.station_name}")
        self.resize(1240, 640)
        col = QVBoxLayout(self)
        row = QHBoxLayout()
        caption = QLabel("Search")
        self.search = QLineEdit(objectName="historySearch")
        self.search.setPlaceholderText("RMA, order, customer, scanned code or SKU — ↑/↓ choose, Ctrl+P reprint, Esc close")
        caption.setBuddy(self.search)
        row.addWidget(caption)
        row.addWidget(self.search, 1)
        self.count_label = QLabel()
        row.addWidget(self.count_label)
        col.addLayout(row)
        self.model = ParcelTableModel(station, worker, self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        col.addWidget(self.table, 1)
        self.status = QLabel("↑/↓ choose · Ctrl+P reprint what was printed for the parcel · Esc close")
        self.status.setWordWrap(True)
        col.addWidget(self.status)

        self._debounce = QTimer(self, singleShot=True, interval=250)
        self._debounce.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        for keys, slot in (("Ctrl+P", self.reprint), ("Up", lambda: self._move(-1)), ("Down", lambda: self._move(1))):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.activated.connect(slot)
        self.model.rowsInserted.connect(lambda *_: self._rows_arrived())
        self.refresh()

    def refresh(self) -> None:
        search = self.search.text().strip()
        self.model.load(search)
        station = self.station

        def count() -> int:
            with station.sessions() as session:
                return count_todays_parcels(session, station.ctx(), search=search)

        def counted(n: int) -> None:
            if shiboken6.isValid(self):
                self.count_label.setText(f"{n} parcel{'s' if n != 1 else ''} today")

        self.worker.submit("counting today's parcels", count, counted, None)

    def selected(self) -> ParcelRow | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.row(rows[0].row()) if rows else None

    def _rows_arrived(self) -> None:
        # Sized to what arrived (the sections were sized while the list was empty).
        self.table.resizeColumnsToContents()
        self._select_first()

    def _select_first(self) -> None:
        if not self.table.selectionModel().hasSelection() and self.model.rowCount():
            self.table.selectRow(0)

    def _move(self, delta: int) -> None:
        count = self.model.rowCount()
        if not count:
            return
        current = self.selected()
        row = 0 if current is None else self.table.selectionModel().selectedRows()[0].row() + delta
        row = max(0, min(count - 1, row))
        self.table.selectRow(row)
        if row == count - 1 and self.model.canFetchMore(QModelIndex()):
            self.model.fetchMore(QModelIndex())

    def reprint(self) -> None:
        row = self.selected()
        if row is None or not row.rma_numbers:
            self.status.setText("Choose a parcel with an RMA first (↑/↓); unidentified parcels print nothing.")
            return
        station, numbers = self.station, list(row.rma_numbers)

        def job() -> int:
            count = 0
            for number in numbers:
                with station.uow() as uow:
                    count += len(reprint_rma(uow, station.ctx(), number))
                    uow.commit()
            return count

        def done(count: int) -> None:
            self.kick_printing()
            if not shiboken6.isValid(self):
                return
            self.status.setText(f"{count} document{'s' if count != 1 else ''} sent again for {', '.join(numbers)}.")

        def failed(message: str) -> None:
            if shiboken6.isValid(self):
                self.status.setText(message)

        self.worker.submit("reprinting", job, done, failed)
