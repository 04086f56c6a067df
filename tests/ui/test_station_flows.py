"""A clerk's shift at the scan station, driven as a clerk drives it: a wedge scanner typing into
the application (through the app-wide scan filter), a serial scanner on a real pty, a scale
simulator, and keys. Each test is one whole flow, checked on screen and in the station database."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from sqlalchemy import select

from console.station import Station
from db.models import (
    AuditEvent, Decision, Inspection, ItemScan, ParcelReceipt, PrintJob, ReturnAuthorization, ReturnItem,
)
from devices.scale_simulator import ScaleSimulator
from devices.scanner_simulator import ScannerSimulator
from devices.serial_scanner import SerialScannerConfig
from devices.settings import DeviceSettings, ScaleSettings
from printing.settings import default_settings
from tests.tools.factories import LineSpec, World, add_order, add_rma
from tests.tools.window_fixtures import station, world  # noqa: F401 - fixtures
from ui.history_page import HistoryPage
from ui.main_window import MainWindow

WAIT_MS = 10_000
GTIN = "0012345678905"  # AP-1's
OTHER_GTIN = "4006381333931"  # on no order here


def scanner_types(code: str) -> None:
    """A keyboard-wedge scanner: the whole code and Enter within a few milliseconds, into
    whatever has the keyboard."""
    widget = QApplication.focusWidget()
    assert widget is not None
    for ch in code:
        QTest.keyClick(widget, ch)
    QTest.keyClick(widget, Qt.Key.Key_Return)


@pytest.fixture
def bench(qtbot, station: Station, tmp_path: Path) -> Iterator[Callable[..., MainWindow]]:
    """``bench(devices=None, sign_in=False)``: the station window, shown, keyboard in the scan
    field, printing into a folder."""
    windows: list[MainWindow] = []

    def open_(devices: DeviceSettings | None = None, sign_in: bool = False) -> MainWindow:
        win = MainWindow(station, devices, default_settings(tmp_path), sign_in=sign_in)
        windows.append(win)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitExposed(win)
        win.activateWindow()
        if not sign_in:
            qtbot.waitUntil(lambda: QApplication.focusWidget() is win.scan_field, timeout=WAIT_MS)
        return win

    yield open_
    for win in windows:
        win.close()
        assert not win.worker._thread.isRunning()  # noqa: SLF001 - the database thread really ended


def idle(qtbot, win: MainWindow) -> None:
    qtbot.waitUntil(lambda: not win.worker.busy, timeout=WAIT_MS)


def scan(qtbot, win: MainWindow, code: str) -> None:
    scanner_types(code)
    idle(qtbot, win)


def person_types(qtbot, widget, text: str) -> None:
    """A person at the keyboard: slower than the 50 ms that tells a scan from typing."""
    for ch in text:
        QTest.keyClick(widget, ch)
        qtbot.wait(70)


def press(qtbot, win: MainWindow, key: Qt.Key, mod: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    QTest.keyClick(QApplication.focusWidget(), key, mod)
    idle(qtbot, win)


def grade_all(qtbot, win: MainWindow, key: Qt.Key = Qt.Key.Key_F1) -> None:
    for row in range(win.item_model.rowCount()):
        win.table.select_row(row)  # noqa: SLF001 - what ↑/↓ in the scan field do
        press(qtbot, win, key)


def feedback(win: MainWindow) -> tuple[str, str]:
    return win.feedback.property("level"), win.feedback.text()


@pytest.fixture
def two_units(world: World) -> ReturnAuthorization:
    order = add_order(world, [LineSpec("AP-1", 4000, gtin=GTIN, weight_g=1000),
                              LineSpec("AP-2", 2000, weight_g=330)])
    return add_rma(world, order)


# -- a clean return --------------------------------------------------------------------------------

def test_a_clean_return_wedge_and_serial_scanner_keys_only(qtbot, bench, world: World,
                                                           two_units: ReturnAuthorization) -> None:
    sim = ScannerSimulator(terminator="CR").start()
    try:
        win = bench(DeviceSettings(scanner=SerialScannerConfig(port=sim.path, terminator="CR")))
        qtbot.waitUntil(lambda: f"scanner on {sim.path}" in win.device_label.text(), timeout=WAIT_MS)
        scan(qtbot, win, two_units.number)  # the RMA label, by the wedge scanner
        qtbot.waitUntil(lambda: win.parcel_open and win.item_model.rowCount() == 2, timeout=WAIT_MS)
        assert win.sounds.played[-1] == "good"
        sim.send(GTIN)  # the units, by the serial scanner
        qtbot.waitUntil(lambda: win.item_model.item(0).reception_status == "received", timeout=WAIT_MS)
        sim.send("AP-2")
        qtbot.waitUntil(lambda: win.item_model.item(1).reception_status == "received", timeout=WAIT_MS)
        idle(qtbot, win)
        first_unit = win.item_model.item(0).id
        win.table.select_row(0)  # noqa: SLF001
        press(qtbot, win, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)  # tags attached
        press(qtbot, win, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)  # original packaging
        grade_all(qtbot, win)
        qtbot.waitUntil(lambda: win.amount_label.text() == "USD 60.00", timeout=WAIT_MS)
        press(qtbot, win, Qt.Key.Key_F12)
        qtbot.waitUntil(lambda: not win.parcel_open, timeout=WAIT_MS)
        assert feedback(win) == ("success", feedback(win)[1]) and "Refund USD 60.00 approved" in feedback(win)[1]
        qtbot.waitUntil(lambda: "printed" in win.print_label.text() or "queued" in win.print_label.text(),
                        timeout=WAIT_MS)
    finally:
        sim.stop()
    with world.uow() as uow:
        graded = uow.session.scalars(select(Inspection).where(Inspection.return_item_id == first_unit)).all()
        assert [(i.grade, i.checklist) for i in graded] == [("A", {"tags_attached": True, "original_packaging": True})]
        assert uow.session.scalars(select(Decision.status)).all() == ["approved"]
        documents = sorted(uow.session.scalars(select(PrintJob.document)))
        assert documents == ["disposition-label", "disposition-label", "refund-receipt"]


# -- weight, swapped item, serial -----------------------------------------------------------------

def test_a_light_parcel_says_so_in_plain_words_at_once(qtbot, bench, two_units: ReturnAuthorization) -> None:
    sim = ScaleSimulator("mt-sics", 120).start()
    try:
        win = bench(DeviceSettings(scale=ScaleSettings(protocol="mt-sics", port=sim.path, timeout_s=2)))
        scan(qtbot, win, two_units.number)
        qtbot.waitUntil(lambda: "120 g" in win.weight_check_label.text(), timeout=WAIT_MS)
        idle(qtbot, win)
        level, text = feedback(win)
        assert level == "error"
        assert "120 g" in text and "1,480 g" in text and "check its contents" in text
        assert win.weight_check_label.property("mismatch") == "true"
        assert win.sounds.played[-1] == "bad"
    finally:
        sim.stop()


def test_a_swapped_item_is_flagged_on_the_spot_and_kept(qtbot, bench, world: World,
                                                       two_units: ReturnAuthorization) -> None:
    win = bench()
    scan(qtbot, win, two_units.number)
    scan(qtbot, win, OTHER_GTIN)
    level, text = feedback(win)
    assert level == "warning" and "is not on" in text and "put the unit aside" in text
    assert win.sounds.played[-1] == "bad"
    assert [win.item_model.item(r).reception_status for r in range(2)] == ["awaiting", "awaiting"]
    with world.uow() as uow:
        flagged = uow.session.scalars(select(ItemScan.result)).all()
    assert flagged == ["not_on_order"]


def test_a_serial_number_never_shipped_on_the_order_is_flagged(qtbot, bench, world: World) -> None:
    order = add_order(world, [LineSpec("EL-9", 19900, category="electronics", weight_g=300,
                                       serials=("SN1234567",))])
    rma = add_rma(world, order)
    win = bench()
    scan(qtbot, win, rma.number)
    scan(qtbot, win, "SN7654321")
    level, text = feedback(win)
    assert level == "warning" and "never shipped" in text
    scan(qtbot, win, "SN1234567")
    assert feedback(win)[0] == "success" and win.item_model.item(0).received_serial == "SN1234567"


# -- unexpected parcels ----------------------------------------------------------------------------

def test_a_parcel_for_an_order_without_rma_gets_one_with_f6(qtbot, bench, world: World) -> None:
    order = add_order(world, [LineSpec("HM-1", 2500, category="home", weight_g=700)])
    win = bench()
    scan(qtbot, win, order.number)
    level, text = feedback(win)
    assert level == "error" and "F6" in text and order.number in text and not win.parcel_open
    press(qtbot, win, Qt.Key.Key_F6)
    qtbot.waitUntil(lambda: win.parcel_open, timeout=WAIT_MS)
    assert win.item_model.rowCount() == 1 and win.item_model.item(0).sku == "HM-1"
    with world.uow() as uow:
        rma = uow.session.scalars(select(ReturnAuthorization).where(ReturnAuthorization.order_id == order.id)).one()
        assert rma.status == "received"


def test_a_parcel_nothing_matches_is_recorded_unidentified_with_weight_and_photos(
        qtbot, bench, world: World, station: Station) -> None:
    win = bench()
    camera = station.settings.photo_folder
    camera.mkdir(parents=True, exist_ok=True)
    photo = camera / "IMG_0001.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg, but a file the camera wrote")
    win.weight.setValue(2300)
    scan(qtbot, win, "ZZ-NOTHING-42")
    assert feedback(win)[0] == "error" and "F6" in feedback(win)[1] and "unidentified" in feedback(win)[1]
    press(qtbot, win, Qt.Key.Key_F6)
    level, text = feedback(win)
    assert level == "warning" and "quarantine" in text and "2,300 g" in text and "1 photo" in text
    with world.uow() as uow:
        receipt = uow.session.scalars(select(ParcelReceipt)).one()
        assert receipt.weight_g == 2300 and receipt.photos == [str(photo)]
        assert receipt.quarantined_at is not None


# -- review, exchange ------------------------------------------------------------------------------

def test_a_large_refund_goes_to_review_and_shows_as_waiting(qtbot, bench, world: World) -> None:
    order = add_order(world, [LineSpec("EL-1", 89900, category="electronics", weight_g=900)])
    rma = add_rma(world, order)
    win = bench()
    scan(qtbot, win, rma.number)
    scan(qtbot, win, "EL-1")
    grade_all(qtbot, win)
    qtbot.waitUntil(lambda: "supervisor review" in win.review_label.text(), timeout=WAIT_MS)
    press(qtbot, win, Qt.Key.Key_F12)
    qtbot.waitUntil(lambda: not win.parcel_open, timeout=WAIT_MS)
    level, text = feedback(win)
    assert level == "warning" and "waiting for supervisor review" in text
    with world.uow() as uow:
        assert uow.session.scalars(select(Decision.status)).all() == ["pending_review"]


def test_an_exchange_with_the_replacement_scanned_prints_the_slip(qtbot, bench, world: World) -> None:
    order = add_order(world, [LineSpec("SHOE-42", 8000, category="footwear", weight_g=900)])
    rma = add_rma(world, order)
    win = bench()
    scan(qtbot, win, rma.number)
    scan(qtbot, win, "SHOE-42")
    grade_all(qtbot, win)
    press(qtbot, win, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)  # to the kind: ↑/↓ change it
    assert QApplication.focusWidget() is win.kind_combo
    while win.kind_combo.currentData() != "exchange":
        press(qtbot, win, Qt.Key.Key_Down)
    # Exchange chosen: the keyboard goes where the replacement is wanted
    qtbot.waitUntil(lambda: QApplication.focusWidget() is win.replacement_field, timeout=WAIT_MS)
    scan(qtbot, win, "SHOE-43")  # the replacement, scanned from the shelf
    assert win.replacement_field.text() == "SHOE-43"
    assert QApplication.focusWidget() is win.scan_field
    press(qtbot, win, Qt.Key.Key_F12)
    qtbot.waitUntil(lambda: not win.parcel_open, timeout=WAIT_MS)
    assert feedback(win)[0] == "success" and "Exchange" in feedback(win)[1]
    with world.uow() as uow:
        decision = uow.session.scalars(select(Decision)).one()
        assert (decision.kind, decision.exchange_sku) == ("exchange", "SHOE-43")
    qtbot.waitUntil(lambda: _documents(world) == ["disposition-label", "exchange-slip"], timeout=WAIT_MS)


def _documents(world: World) -> list[str]:
    with world.uow() as uow:
        return sorted(uow.session.scalars(select(PrintJob.document)))


# -- undo, restart ---------------------------------------------------------------------------------

def test_ctrl_z_takes_back_the_last_scan_and_grade_before_deciding(qtbot, bench, world: World,
                                                                  two_units: ReturnAuthorization) -> None:
    win = bench()
    scan(qtbot, win, two_units.number)
    scan(qtbot, win, GTIN)
    win.table.select_row(0)  # noqa: SLF001
    press(qtbot, win, Qt.Key.Key_F2)
    assert win.item_model.item(0).grade == "B"
    press(qtbot, win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert win.item_model.item(0).grade is None and "grade B" in feedback(win)[1]
    press(qtbot, win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert win.item_model.item(0).reception_status == "awaiting" and "scan" in feedback(win)[1]
    press(qtbot, win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert feedback(win)[0] == "error"  # nothing left to take back: said, nothing broken
    scan(qtbot, win, GTIN)
    assert win.item_model.item(0).reception_status == "received"
    with world.uow() as uow:
        actions = uow.session.scalars(select(AuditEvent.action)).all()
    assert actions.count("scan_undone") == 1 and actions.count("grade_undone") == 1


def test_a_restart_in_the_middle_of_a_parcel_finds_it_as_it_was_left(qtbot, bench, world: World,
                                                                    two_units: ReturnAuthorization) -> None:
    win = bench()
    scan(qtbot, win, two_units.number)
    scan(qtbot, win, GTIN)
    win.table.select_row(0)  # noqa: SLF001
    press(qtbot, win, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)  # accessories complete
    press(qtbot, win, Qt.Key.Key_F3)
    win.close()  # the console stops (a crash leaves the same rows: each step was committed)

    again = bench()
    scan(qtbot, again, two_units.number)
    qtbot.waitUntil(lambda: again.parcel_open and again.item_model.rowCount() == 2, timeout=WAIT_MS)
    first = again.item_model.item(0)
    assert (first.reception_status, first.grade) == ("received", "C")
    again.table.select_row(0)  # noqa: SLF001
    assert again.inspect_panel.check_buttons["accessories_complete"].isChecked()
    assert again.item_model.item(1).reception_status == "awaiting"
    scan(qtbot, again, "AP-2")
    grade_all(qtbot, again)
    press(qtbot, again, Qt.Key.Key_F12)
    qtbot.waitUntil(lambda: not again.parcel_open, timeout=WAIT_MS)
    with world.uow() as uow:
        assert uow.session.scalars(select(Decision.status)).all() == ["approved"]
        assert {i.reception_status for i in uow.session.scalars(select(ReturnItem))} == {"received"}


# -- sign-in, history ------------------------------------------------------------------------------

def test_nothing_but_sign_in_until_a_pin_or_badge_is_right(qtbot, bench, world: World, station: Station) -> None:
    from console.signin import set_badge, set_pin

    with world.uow() as uow:
        set_pin(uow, 1, "4321")
        set_badge(uow, 2, "BADGE-MEI-7731")
    win = bench(sign_in=True)
    assert win.pages.currentWidget() is win.sign_in_page
    qtbot.waitUntil(lambda: QApplication.focusWidget() is win.sign_in_page.user_field, timeout=WAIT_MS)
    QTest.keyClick(win.sign_in_page.user_field, Qt.Key.Key_F7)  # shortcuts are off while signed out
    assert not win.findChildren(HistoryPage)
    person_types(qtbot, win.sign_in_page.user_field, "aiko")
    QTest.keyClick(win.sign_in_page.user_field, Qt.Key.Key_Return)
    assert QApplication.focusWidget() is win.sign_in_page.pin_field
    person_types(qtbot, win.sign_in_page.pin_field, "1111")
    QTest.keyClick(win.sign_in_page.pin_field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: win.sign_in_page.message.property("level") == "error", timeout=WAIT_MS)
    assert win.pages.currentWidget() is win.sign_in_page and win.sounds.played[-1] == "bad"
    assert "User name or PIN is wrong" in win.sign_in_page.message.text()
    person_types(qtbot, win.sign_in_page.pin_field, "4321")
    QTest.keyClick(win.sign_in_page.pin_field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.bench_page, timeout=WAIT_MS)
    assert "Aiko" in win.user_label.text() and station.actor.username == "aiko"

    press(qtbot, win, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)  # hand the bench over
    assert win.pages.currentWidget() is win.sign_in_page
    scanner_types("BADGE-MEI-7731")  # the next person scans a badge
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.bench_page, timeout=WAIT_MS)
    assert "Mei" in win.user_label.text() and station.actor.role == "supervisor"
    with world.uow() as uow:
        actions = uow.session.scalars(select(AuditEvent.action)).all()
    assert {"sign_in_failed", "signed_in", "signed_out"} <= set(actions)


def test_todays_parcels_are_listed_searchable_and_reprinted(qtbot, qtmodeltester, bench, world: World,
                                                           two_units: ReturnAuthorization) -> None:
    order = add_order(world, [LineSpec("HM-2", 1500, category="home", weight_g=200)])
    other = add_rma(world, order)
    win = bench()
    for rma, codes in ((two_units, (GTIN, "AP-2")), (other, ("HM-2",))):
        scan(qtbot, win, rma.number)
        for code in codes:
            scan(qtbot, win, code)
        grade_all(qtbot, win)
        press(qtbot, win, Qt.Key.Key_F12)
        qtbot.waitUntil(lambda: not win.parcel_open, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: len(_documents(world)) == 5, timeout=WAIT_MS)

    press(qtbot, win, Qt.Key.Key_F7)
    page = win.findChildren(HistoryPage)[0]
    qtbot.waitUntil(lambda: page.model.rowCount() == 2, timeout=WAIT_MS)
    assert page.model.row(0).rma_numbers == (other.number,)  # newest first
    assert "2 parcels today" in page.count_label.text()
    qtmodeltester.check(page.model)  # the model that pages with canFetchMore/fetchMore
    qtbot.keyClicks(page.search, two_units.number)
    qtbot.waitUntil(lambda: page.model.rowCount() == 1 and page.model.row(0).rma_numbers == (two_units.number,),
                    timeout=WAIT_MS)
    QTest.keyClick(page.search, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: "sent again" in page.status.text(), timeout=WAIT_MS)
    with world.uow() as uow:
        reprints = uow.session.scalars(select(PrintJob).where(PrintJob.reprint_of.is_not(None))).all()
    assert sorted(j.document for j in reprints) == ["disposition-label", "disposition-label", "refund-receipt"]
    QTest.keyClick(page.search, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not page.isVisible(), timeout=WAIT_MS)
