"""Printing from the window: a decision prints its labels and receipt through the queue; the
print queue page [F10] previews (QtPdf), reprints and shows why a job waits (pytest-qt)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QPushButton
from sqlalchemy import select

from console.station import Station
from db.models import PrintJob, ReturnAuthorization
from printing.fake_printer import FakeLabelPrinter
from printing.settings import DocumentRoute, PrinterSettings, default_settings
from tests.tools import pixels
from tests.tools.window_fixtures import station, world  # noqa: F401 - fixtures
from tests.tools.factories import LineSpec, World, add_order, add_rma
from ui.app import make_window
from ui.main_window import MainWindow
from ui.print_page import PreviewDialog, PrintQueuePage

WAIT_MS = 10_000
# The offscreen platform's note when a dialog is shown: noise of the test platform.
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


@pytest.fixture
def rma(world: World) -> ReturnAuthorization:
    order = add_order(world, [LineSpec("AP-1", 4000, gtin="0012345678905"), LineSpec("AP-2", 2000)])
    return add_rma(world, order)


def open_window(qtbot, station: Station, printers: PrinterSettings | None = None) -> MainWindow:
    win = make_window(station, None, printers)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is win.scan_field, timeout=WAIT_MS)
    return win


def wait_idle(qtbot, win: MainWindow) -> None:
    qtbot.waitUntil(lambda: not win.worker.busy, timeout=WAIT_MS)


def decide_refund(qtbot, win: MainWindow, rma: ReturnAuthorization) -> None:
    for code in (rma.number, "012345678905", "AP-2"):
        win.submit_scan(code)
        wait_idle(qtbot, win)
    for row in range(2):
        win.table.select_row(row)  # noqa: SLF001 - as ↑/↓ in the scan field would
        qtbot.keyClick(win.scan_field, Qt.Key.Key_F1)
        wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: win.decide_button.isEnabled(), timeout=WAIT_MS)
    qtbot.keyClick(win.scan_field, Qt.Key.Key_F12)
    qtbot.waitUntil(lambda: not win.parcel_open, timeout=WAIT_MS)


def test_a_decision_prints_to_the_folder_and_the_queue_page_previews_and_reprints(
        qtbot, qtmodeltester, station: Station, world: World, rma: ReturnAuthorization, tmp_path: Path) -> None:
    win = open_window(qtbot, station)
    qtbot.waitUntil(lambda: win.print_label.text() == "printing: all printed", timeout=WAIT_MS)
    decide_refund(qtbot, win, rma)
    printed = tmp_path / "printed"
    qtbot.waitUntil(lambda: printed.exists() and len(list(printed.iterdir())) == 3, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: win.print_label.text() == "printing: all printed", timeout=WAIT_MS)
    labels = sorted(p for p in printed.iterdir() if p.name.startswith("disposition-label"))
    lpns = {codes[0][0] for p in labels for codes in pixels.barcodes(p.read_bytes())}
    assert len(lpns) == 2 and all(lpn.startswith("LPN") for lpn in lpns)

    qtbot.keyClick(win.scan_field, Qt.Key.Key_F10)
    qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), PrintQueuePage), timeout=WAIT_MS)
    page = QApplication.activeModalWidget()
    assert isinstance(page, PrintQueuePage)
    qtbot.waitUntil(lambda: page.model.rowCount() == 3, timeout=WAIT_MS)
    assert {page.model.job(r).status for r in range(3)} == {"printed"}
    qtmodeltester.check(page.model)
    receipt_row = next(r for r in range(3) if page.model.job(r).document == "refund-receipt")
    page.table.selectRow(receipt_row)

    qtbot.keyClick(page.table, Qt.Key.Key_F3)  # preview
    qtbot.waitUntil(lambda: page.preview is not None and page.preview.isVisible(), timeout=WAIT_MS)
    assert isinstance(page.preview, PreviewDialog) and page.preview.page_count == 1
    page.preview.reject()

    # A window manager gives the keyboard back to the page when the preview closes; offscreen
    # has none, so the test does it.
    page.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is page, timeout=WAIT_MS)
    page.table.setFocus()
    qtbot.keyClick(page.table, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)  # reprint
    qtbot.waitUntil(lambda: page.model.rowCount() == 4, timeout=WAIT_MS)
    assert "Reprint of the refund-receipt" in page.message.text()
    qtbot.waitUntil(lambda: len(list(printed.iterdir())) == 4, timeout=WAIT_MS)
    with world.uow() as uow:
        jobs = list(uow.session.scalars(select(PrintJob)))
    reprint = next(j for j in jobs if j.reprint_of is not None)
    original = next(j for j in jobs if j.id == reprint.reprint_of)
    assert reprint.payload == original.payload and original.document == "refund-receipt"
    page.reject()
    win.close()


def test_a_dead_label_printer_shows_in_the_top_bar_and_the_job_waits_with_its_reason(
        qtbot, station: Station, world: World, rma: ReturnAuthorization, tmp_path: Path) -> None:
    with FakeLabelPrinter() as fake:
        fake.set_state("head_open")
        base = default_settings(tmp_path)
        printers = PrinterSettings({**base.printers, "zebra": {"name": "zebra", "backend": "tcp", "host": fake.host,
                                                             "port": fake.port, "timeout_s": 0.5}},
                                   {"disposition-label": DocumentRoute(printer="zebra", format="zpl")})
        win = open_window(qtbot, station, printers)
        decide_refund(qtbot, win, rma)
        qtbot.waitUntil(lambda: win.print_label.property("attention") == "true", timeout=WAIT_MS)
        assert "2 waiting" in win.print_label.text() and "head" in win.print_label.toolTip().lower()
        assert win.parcel_open is False and win.scan_field.isEnabled()  # the bench goes on
        fake.set_state("ok")
        with world.uow() as uow:  # as Retry [F5] on the queue page would, without waiting for the backoff
            for job in uow.session.scalars(select(PrintJob).where(PrintJob.status == "waiting")):
                job.next_attempt_at = datetime.now(timezone.utc)
            uow.commit()
        qtbot.waitUntil(lambda: win.print_label.text() == "printing: all printed", timeout=WAIT_MS)
        assert fake.wait_jobs(2) and all(job.startswith(b"^XA") for job in fake.jobs)
        win.close()


def test_the_printer_settings_page_test_prints_and_saves_the_route(
        qtbot, station: Station, world: World, rma: ReturnAuthorization, tmp_path: Path) -> None:
    from printing.samples import TEST_LPN
    from printing.settings import load_printer_settings, printers_file
    from tests.tools.zpl_reader import parse
    from ui.printers_page import PrintersPage

    with FakeLabelPrinter() as fake:
        base = default_settings(tmp_path)
        printers = PrinterSettings({**base.printers, "zebra": {"name": "zebra", "backend": "tcp", "host": fake.host,
                                                             "port": fake.port, "timeout_s": 0.5}})
        win = open_window(qtbot, station, printers)
        qtbot.keyClick(win.scan_field, Qt.Key.Key_F11)
        qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), PrintersPage), timeout=WAIT_MS)
        page = QApplication.activeModalWidget()
        assert isinstance(page, PrintersPage)
        printer, fmt, dpi, _size, _copies = page.rows["disposition-label"]
        assert (printer.currentText(), fmt.currentText(), dpi.currentText()) == ("folder", "pdf", "203")

        printer.setCurrentText("zebra")
        fmt.setCurrentText("zpl")
        dpi.setCurrentText("300")
        qtbot.mouseClick(page.findChild(QPushButton, "test-disposition-label"), Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(fake.jobs) == 1, timeout=WAIT_MS)
        assert page.message.text().startswith("Test disposition-label sent to zebra")
        label = parse(fake.jobs[-1].decode("utf-8"))
        assert [b.data for b in label.barcodes] == [TEST_LPN] and label.width == 1200  # 4 in at 300 dpi

        page.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Save).click()
        qtbot.waitUntil(lambda: QApplication.activeModalWidget() is None, timeout=WAIT_MS)
        saved = load_printer_settings(printers_file(station.settings.config_file), tmp_path)
        assert saved.route("disposition-label") == DocumentRoute(printer="zebra", format="zpl", dpi=300, size="4x6")
        assert win.printer_settings.route("disposition-label").printer == "zebra"
        assert win.feedback.text().startswith("Printer settings saved")

        jobs_before = len(fake.jobs)
        win.activateWindow()  # a window manager would give the keyboard back; offscreen has none
        qtbot.waitUntil(lambda: QApplication.focusWidget() is win.scan_field, timeout=WAIT_MS)
        decide_refund(qtbot, win, rma)  # the window now prints labels on the zebra
        qtbot.waitUntil(lambda: len(fake.jobs) == jobs_before + 2, timeout=WAIT_MS)
        win.close()
