"""The scan station window, driven by keyboard as a clerk drives it (pytest-qt, offscreen)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QThread, Qt
from PySide6.QtWidgets import QApplication
from sqlalchemy import select

from console.station import Station
from console.views import load_rma_view
from db.models import Decision, OutboxRow, ParcelReceipt, ReturnAuthorization
from tests.tools.window_fixtures import station, world  # noqa: F401 - fixtures
from tests.tools.factories import LineSpec, World, add_order, add_rma
from ui.app import make_window
from ui.item_model import COLUMNS, ItemTableModel
from ui.main_window import MainWindow

WAIT_MS = 10_000


@pytest.fixture
def rma(world: World) -> ReturnAuthorization:
    order = add_order(world, [LineSpec("AP-1", 4000, gtin="0012345678905", weight_g=400),
                              LineSpec("AP-2", 2000, weight_g=300)])
    return add_rma(world, order)


@pytest.fixture
def window(qtbot, station: Station) -> Iterator[MainWindow]:
    win = make_window(station)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is win.scan_field, timeout=WAIT_MS)
    yield win
    win.close()
    assert not win.worker._thread.isRunning()  # noqa: SLF001 - the thread really ended


def scan(qtbot, win: MainWindow, code: str) -> None:
    """Type ``code`` into whatever has the keyboard (it must be the scan field) and press Enter."""
    assert QApplication.focusWidget() is win.scan_field
    qtbot.keyClicks(win.scan_field, code)
    qtbot.keyClick(win.scan_field, Qt.Key.Key_Return)
    wait_idle(qtbot, win)


def press(qtbot, win: MainWindow, key: Qt.Key, modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(QApplication.focusWidget(), key, modifier)
    wait_idle(qtbot, win)


def wait_idle(qtbot, win: MainWindow) -> None:
    qtbot.waitUntil(lambda: not win.worker.busy, timeout=WAIT_MS)


def test_one_full_return_by_keyboard_alone(qtbot, window: MainWindow, world: World,
                                           rma: ReturnAuthorization) -> None:
    press(qtbot, window, Qt.Key.Key_Tab)  # to the weight field, typed from the scale's display
    assert QApplication.focusWidget() is window.weight
    qtbot.keyClicks(QApplication.focusWidget(), "860")
    press(qtbot, window, Qt.Key.Key_Tab)  # and back to the scan field
    assert window.weight.value() == 860
    scan(qtbot, window, rma.number)
    qtbot.waitUntil(lambda: window.item_model.rowCount() == 2, timeout=WAIT_MS)
    assert window.parcel_open and rma.number in window.rma_label.text()
    assert "860" in window.weight_check_label.text() and "MISMATCH" not in window.weight_check_label.text()
    assert window.feedback.property("level") == "success"

    scan(qtbot, window, "012345678905")  # UPC-A of the GTIN on AP-1
    assert "AP-1" in window.feedback.text() and window.feedback.property("level") == "success"
    assert window.table.selectionModel().selectedRows()[0].row() == 0
    scan(qtbot, window, "ap-2")  # SKU typed by hand
    assert window.table.selectionModel().selectedRows()[0].row() == 1  # the unit just scanned
    assert [window.item_model.item(r).reception_status for r in range(2)] == ["received", "received"]

    press(qtbot, window, Qt.Key.Key_Up)  # moves the table selection; the scan field keeps the keyboard
    assert QApplication.focusWidget() is window.scan_field
    press(qtbot, window, Qt.Key.Key_F1)
    press(qtbot, window, Qt.Key.Key_Down)
    press(qtbot, window, Qt.Key.Key_F1)
    assert [window.item_model.item(r).grade for r in range(2)] == ["A", "A"]
    qtbot.waitUntil(lambda: window.amount_label.text() == "USD 60.00", timeout=WAIT_MS)
    assert window.kind_combo.currentData() == "full_refund"
    assert window.decide_button.isEnabled()

    press(qtbot, window, Qt.Key.Key_F12)
    qtbot.waitUntil(lambda: not window.parcel_open, timeout=WAIT_MS)
    assert window.feedback.text().startswith(f"{rma.number}: Refund USD 60.00 approved")
    assert window.feedback.property("level") == "success"
    assert window.prompt.text().startswith("Scan a parcel")
    assert window.item_model.rowCount() == 0
    assert QApplication.focusWidget() is window.scan_field

    press(qtbot, window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # Decide again: nothing open
    assert window.feedback.property("level") == "error" and "Nothing to decide" in window.feedback.text()
    with world.uow() as uow:
        decisions = list(uow.session.scalars(select(Decision)))
        assert [(d.kind, d.status, d.amount_minor, d.currency) for d in decisions] == [
            ("full_refund", "approved", 6000, "USD")]
        outbox = list(uow.session.scalars(select(OutboxRow).where(OutboxRow.kind == "decision")))
        assert [row.aggregate_id for row in outbox] == [str(decisions[0].id)]
        assert uow.session.get(ReturnAuthorization, rma.id).status == "closed"
        receipt = uow.session.scalars(select(ParcelReceipt)).one()
        assert (receipt.weight_g, receipt.weight_source, receipt.weight_reason) == (860, "manual", "typed at bench")


def test_unknown_scan_shows_red_message_and_keeps_focus(qtbot, window: MainWindow, rma: ReturnAuthorization) -> None:
    scan(qtbot, window, "ZZ-NOT-A-CODE-42")
    assert window.feedback.property("level") == "error"
    assert "No RMA, tracking number or order matches" in window.feedback.text()
    assert not window.parcel_open and window.scan_field.text() == ""
    assert QApplication.focusWidget() is window.scan_field

    scan(qtbot, window, rma.number[:-1] + ("X" if rma.number[-1] != "X" else "Y"))  # wrong check character
    assert window.feedback.property("level") == "error" and "check character" in window.feedback.text()

    scan(qtbot, window, rma.number)  # the station still works, and an unknown item is flagged, not fatal
    qtbot.waitUntil(lambda: window.parcel_open, timeout=WAIT_MS)
    scan(qtbot, window, "NOT-ON-ORDER-1")
    assert window.feedback.property("level") == "warning" and "put the unit aside" in window.feedback.text()
    press(qtbot, window, Qt.Key.Key_F1)  # the selected unit was never scanned: refused in red
    assert window.feedback.property("level") == "error" and "has not been scanned" in window.feedback.text()
    assert window.parcel_open and QApplication.focusWidget() is window.scan_field

    press(qtbot, window, Qt.Key.Key_Escape)
    assert not window.parcel_open and window.prompt.text().startswith("Scan a parcel")


def test_item_model_passes_the_model_tester(qtmodeltester, world: World, rma: ReturnAuthorization) -> None:
    with world.uow() as uow:
        view = load_rma_view(uow.session, world.ctx(), rma.id)
    model = ItemTableModel()
    model.set_items(view.items)
    assert (model.rowCount(), model.columnCount()) == (2, len(COLUMNS))
    assert [model.index(0, c).data() for c in range(len(COLUMNS))][:5] == [
        "AP-1", "Item AP-1", view.items[0].reason, "USD 40.00", "awaiting"]
    qtmodeltester.check(model)
    model.set_items(view.items)  # same units: changed in place
    model.set_items(view.items[:1])
    qtmodeltester.check(model)


@pytest.mark.logs_errors
def test_worker_reports_refusals_and_bugs_on_the_gui_thread(qtbot) -> None:
    from console.errors import StateConflict
    from ui.worker import DatabaseWorker

    worker = DatabaseWorker()
    outcomes: list[tuple[str, object, bool]] = []
    gui = QApplication.instance().thread()

    def record(tag: str):
        return lambda value: outcomes.append((tag, value, QThread.currentThread() is gui))

    def refuse() -> None:
        raise StateConflict("RMA R-1 is already closed")

    def broken() -> None:
        raise KeyError("oops")

    try:
        with qtbot.waitSignal(worker.bug, timeout=WAIT_MS) as bug:
            worker.submit("adding", lambda: 1 + 1, record("done"), record("error"))
            worker.submit("refusing", refuse, record("done"), record("error"))
            worker.submit("breaking", broken, record("done"), record("error"))
        qtbot.waitUntil(lambda: not worker.busy, timeout=WAIT_MS)
    finally:
        worker.stop()
    assert outcomes[:2] == [("done", 2, True), ("error", "RMA R-1 is already closed", True)]
    assert outcomes[2][0] == "error" and outcomes[2][2] and "KeyError" in outcomes[2][1]
    assert "KeyError" in bug.args[0]
    assert not worker._thread.isRunning()  # noqa: SLF001
