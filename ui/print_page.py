"""The print queue page [F10]: every job with its state and, when it waits, why; preview,
reprint, retry and cancel from the keyboard. The list is read on the database worker."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtPdf import QPdfDocument
from PySide6.QtPdfWidgets import QPdfView
from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QHBoxLayout, QHeaderView, QLabel, QPlainTextEdit, QPushButton, QTableView,
    QVBoxLayout, QWidget,
)

from console import print_queue
from console.print_queue import JobView
from console.station import Station
from db.models import PrintJob
from ui.table_model import Index as _Index
from ui.table_model import ListTableModel
from ui.worker import DatabaseWorker

COLUMNS = ("Created", "Document", "For", "Printer", "State", "Tries", "What happened")


class JobTableModel(ListTableModel[JobView]):
    COLUMNS = COLUMNS

    def __init__(self, station: Station, parent: Any = None) -> None:
        super().__init__(parent)
        self.station = station
        self._created: list[str] = []  # local times, formatted once per load rather than per paint

    def set_jobs(self, jobs: list[JobView]) -> None:
        ctx = self.station.ctx()
        self.beginResetModel()
        self._rows = jobs
        self._created = [ctx.local_time_text(j.created_at) for j in jobs]
        self.endResetModel()

    def job(self, row: int) -> JobView:
        return self.row(row)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        job = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return (self._created[index.row()], job.document + (" (reprint)" if job.reprint_of else ""), job.reference,
                    f"{job.printer} ({job.format})", job.status, str(job.attempts),
                    job.last_error or job.result or "")[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 6:
            return job.last_error or job.result
        if role == Qt.ItemDataRole.ForegroundRole and job.status in ("failed", "uncertain") or (
                role == Qt.ItemDataRole.ForegroundRole and job.status == "waiting" and job.last_error):
            from PySide6.QtGui import QColor

            return QColor("#b00020")
        return None


def load_payload(station: Station, job_id: uuid.UUID) -> tuple[str, bytes]:
    with station.uow() as uow:
        job = uow.session.get(PrintJob, job_id)
        if job is None:
            return "", b""
        return job.format, job.payload


class PreviewDialog(QDialog):
    """A PDF page by page (QtPdf), or the ZPL / ESC/POS bytes as text."""

    def __init__(self, title: str, fmt: str, data: bytes, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Preview — {title}")
        self.resize(640, 820)
        layout = QVBoxLayout(self)
        self.document: QPdfDocument | None = None
        if fmt == "pdf":
            self._bytes = QByteArray(data)
            self._buffer = QBuffer(self._bytes, self)
            self._buffer.open(QIODevice.OpenModeFlag.ReadOnly)
            self.document = QPdfDocument(self)
            self.document.load(self._buffer)
            view = QPdfView(self)
            view.setPageMode(QPdfView.PageMode.MultiPage)
            view.setZoomMode(QPdfView.ZoomMode.FitToWidth)
            view.setDocument(self.document)
            layout.addWidget(view)
            self.view: QWidget = view
        else:
            text = QPlainTextEdit(self)
            text.setReadOnly(True)
            text.setPlainText(data.decode("utf-8", errors="replace") if fmt == "zpl" else
                              data.decode("cp437", errors="replace"))
            layout.addWidget(QLabel(f"{fmt.upper()} as sent to the printer:"))
            layout.addWidget(text)
            self.view = text
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    @property
    def page_count(self) -> int:
        return self.document.pageCount() if self.document is not None else 0


class PrintQueuePage(QDialog):
    def __init__(self, station: Station, worker: DatabaseWorker, kick: Callable[[], None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Print queue")
        self.setObjectName("printQueuePage")
        self.resize(1100, 560)
        self.station = station
        self.worker = worker
        self.kick = kick
        self.model = JobTableModel(station, self)
        self.preview: PreviewDialog | None = None

        layout = QVBoxLayout(self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        for column in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        layout.addWidget(self.table)
        self.message = QLabel(objectName="message", wordWrap=True)
        layout.addWidget(self.message)
        row = QHBoxLayout()
        self.table.activated.connect(lambda _index: self.preview_selected())  # Enter or double-click
        for text, keys, slot in (("Preview [F3]", "F3", self.preview_selected),
                                 ("Reprint [Ctrl+P]", "Ctrl+P", self.reprint_selected),
                                 ("Retry now [F5]", "F5", self.retry_selected),
                                 ("Cancel job [Del]", "Delete", self.cancel_selected),
                                 ("Refresh [Ctrl+R]", "Ctrl+R", self.refresh)):
            button = QPushButton(text)
            button.setAutoDefault(False)  # Enter belongs to the table (preview), not to a button
            button.clicked.connect(slot)
            row.addWidget(button)
            QShortcut(QKeySequence(keys), self).activated.connect(slot)
        row.addStretch(1)
        close = QPushButton("Close [Esc]")
        close.setAutoDefault(False)
        close.clicked.connect(self.reject)
        row.addWidget(close)
        layout.addLayout(row)
        self.refresh()

    # -- reading -------------------------------------------------------------------------------
    def refresh(self) -> None:
        def load() -> list[JobView]:
            with self.station.uow() as uow:
                return print_queue.jobs(uow.session)

        self.worker.submit("reading the print queue", load, self._show, self.message.setText)

    def _show(self, jobs: list[JobView]) -> None:
        selected = self.selected()
        self.model.set_jobs(jobs)
        rows = [i for i, j in enumerate(jobs) if selected is not None and j.id == selected.id]
        self.table.selectRow(rows[0] if rows else 0)
        self.table.setFocus()

    def selected(self) -> JobView | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.model.job(rows[0].row()) if rows else None

    # -- acting --------------------------------------------------------------------------------
    def _act(self, what: str, fn: Callable[[JobView], Any], done_text: Callable[[JobView], str]) -> None:
        job = self.selected()
        if job is None:
            self.message.setText("No job selected.")
            return

        def done(_: object) -> None:
            self.message.setText(done_text(job))
            self.kick()
            self.refresh()

        self.worker.submit(what, lambda: fn(job), done, self.message.setText)

    def reprint_selected(self) -> None:
        def reprint(job: JobView) -> uuid.UUID:
            with self.station.uow() as uow:
                new = print_queue.reprint(uow, self.station.ctx(), job.id)
                uow.commit()
                return new

        self._act("reprinting", reprint, lambda j: f"Reprint of the {j.document} for {j.reference} queued.")

    def retry_selected(self) -> None:
        def retry(job: JobView) -> None:
            with self.station.uow() as uow:
                print_queue.retry_now(uow, self.station.ctx(), job.id)
                uow.commit()

        self._act("retrying", retry, lambda j: f"The {j.document} for {j.reference} goes out again now.")

    def cancel_selected(self) -> None:
        def cancel(job: JobView) -> None:
            with self.station.uow() as uow:
                print_queue.cancel(uow, self.station.ctx(), job.id)
                uow.commit()

        self._act("cancelling", cancel, lambda j: f"The {j.document} for {j.reference} is cancelled.")

    def preview_selected(self) -> None:
        job = self.selected()
        if job is None:
            self.message.setText("No job selected.")
            return

        def show(loaded: tuple[str, bytes]) -> None:
            fmt, data = loaded
            self.preview = PreviewDialog(f"{job.document} {job.reference}", fmt, data, self)
            self.preview.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            self.preview.open()

        self.worker.submit("loading the preview", lambda: load_payload(self.station, job.id), show,
                           self.message.setText)
