"""Printer settings [F11]: for each document, which printer, format, resolution, size and
copies, with a test print through the real queue; Save writes ``printers.toml``.

The printers themselves (addresses, queues, ports) are named in ``printers.toml`` by whoever
installs the station; this page assigns them, which is what changes day to day.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QGridLayout, QGroupBox, QLabel, QPushButton, QSpinBox, QVBoxLayout,
    QWidget,
)

from console.errors import EnvironmentProblem
from console.print_jobs import Queued, submit
from console.station import Station
from printing.content import DOCUMENTS
from printing.samples import sample
from printing.settings import DPIS, FORMATS, SIZES, DocumentRoute, PrinterSettings, printers_file, save_printer_settings
from ui.worker import DatabaseWorker


class PrintersPage(QDialog):
    def __init__(self, station: Station, settings: PrinterSettings, worker: DatabaseWorker,
                 kick: Callable[[], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Printer settings")
        self.setObjectName("printersPage")
        self.station = station
        self.settings = settings
        self.worker = worker
        self.kick = kick
        self.saved: PrinterSettings | None = None
        self.rows: dict[str, tuple[QComboBox, QComboBox, QComboBox, QComboBox, QSpinBox]] = {}

        layout = QVBoxLayout(self)
        box = QGroupBox("Which printer prints what")
        grid = QGridLayout(box)
        for col, title in enumerate(("Document", "Printer", "Format", "Resolution", "Size", "Copies", "")):
            grid.addWidget(QLabel(f"<b>{title}</b>"), 0, col)
        for row, document in enumerate(DOCUMENTS, 1):
            route = settings.route(document)
            printer = self._combo(sorted(settings.printers), route.printer)
            fmt = self._combo(FORMATS[document], route.format)
            dpi = self._combo([str(d) for d in DPIS], str(route.dpi))
            size = self._combo(SIZES[document], route.size)
            copies = QSpinBox(minimum=1, maximum=99, value=route.copies)
            test = QPushButton("Test print")
            test.setObjectName(f"test-{document}")
            test.clicked.connect(lambda _checked=False, d=document: self.test_print(d))
            for col, widget in enumerate((QLabel(document.replace("-", " ")), printer, fmt, dpi, size, copies, test)):
                grid.addWidget(widget, row, col)
            self.rows[document] = (printer, fmt, dpi, size, copies)
        layout.addWidget(box)

        where = QLabel(
            "Printers: " + "; ".join(f"{name} ({table.get('backend')}: "
                                     f"{table.get('host') or table.get('queue') or table.get('port') or table.get('path')})"
                                     for name, table in sorted(settings.printers.items()))
            + f".\nAdd or change printers in {printers_file(station.settings.config_file)}.", wordWrap=True)
        layout.addWidget(where)
        self.message = QLabel(objectName="message", wordWrap=True)
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    @staticmethod
    def _combo(items: tuple[str, ...] | list[str], current: str) -> QComboBox:
        box = QComboBox()
        box.addItems(list(items))
        box.setCurrentText(current)
        return box

    def settings_from_form(self) -> PrinterSettings:
        documents: dict[str, DocumentRoute] = {}
        for document, (printer, fmt, dpi, size, copies) in self.rows.items():
            route = DocumentRoute(printer=printer.currentText(), format=fmt.currentText(), dpi=int(dpi.currentText()),
                                  size=size.currentText(), copies=copies.value())
            try:
                documents[document] = route.checked(document, self.settings.printers)
            except ValueError as exc:
                raise EnvironmentProblem(f"{document}: {exc}") from None
        return replace(self.settings, documents=documents)

    def test_print(self, document: str) -> None:
        try:
            settings = self.settings_from_form()
        except EnvironmentProblem as exc:
            self.message.setText(exc.message)
            return
        doc = sample(document, self.station.settings.station_name)

        def queue() -> Queued:
            with self.station.uow() as uow:
                queued = submit(uow, self.station.ctx(), settings, doc)
                uow.commit()
                return queued

        def done(queued: Queued) -> None:
            self.kick()
            self.message.setText(f"Test {document} sent to {queued.printer}; the top bar and the print queue [F10] "
                                 "say how it went.")

        self.worker.submit("test print", queue, done, self.message.setText)

    def save(self) -> None:
        path: Path = printers_file(self.station.settings.config_file)
        try:
            settings = self.settings_from_form()
            save_printer_settings(path, settings)
        except EnvironmentProblem as exc:
            self.message.setText(f"Not saved: {exc.message}")
            return
        except OSError as exc:
            self.message.setText(f"Not saved: {exc.strerror or exc} ({path}).")
            return
        self.saved = settings
        self.accept()
