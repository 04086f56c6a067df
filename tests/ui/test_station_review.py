"""Defects found in review of the scan-station work (sign-in, inspection panel, undo, unexpected
parcels, history, BEGIN IMMEDIATE units of work), each shown by a test that failed before its fix:
a note typed and a grade key pressed, a regrade racing a pending change, Ctrl+Z and the panel,
photos for the wrong unit or parcel, F6 after a hand-over, printouts lost to a lock race, the
camera folder read on the GUI thread, the lock's end in UTC, the history page closed early."""
from __future__ import annotations

import pathlib
import sqlite3
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog
from sqlalchemy import select

from console.deciding import DecideCommand
from console.signin import set_badge, set_pin
from console.station import Station
from db.models import Inspection, ParcelReceipt, PrintJob, ReturnAuthorization, User
from printing.settings import default_settings
from tests.tools.factories import LineSpec, World, add_order
from tests.ui.test_station_flows import (  # noqa: F401 - fixtures and the flows' helpers
    GTIN,
    WAIT_MS,
    bench,
    feedback,
    idle,
    person_types,
    press,
    scan,
    scanner_types,
    two_units,
)
from tests.tools.window_fixtures import station, world  # noqa: F401 - fixtures
from console.workbench import Weight, decide_job, grade_job, print_job, receive_job, scan_job
from ui.main_window import MainWindow

CTRL = Qt.KeyboardModifier.ControlModifier


def _latest_inspection(world: World, item_id: int) -> Inspection | None:
    with world.uow() as uow:
        rows = uow.session.scalars(select(Inspection).where(Inspection.return_item_id == item_id,
                                                            Inspection.undone_at.is_(None))).all()
        return max(rows, key=lambda i: i.inspected_at) if rows else None


# -- the inspection note: typed, then a grade key ---------------------------------------------------

def test_a_note_typed_then_a_grade_key_is_recorded_with_the_grade(qtbot, bench, world: World,
                                                                   two_units: ReturnAuthorization) -> None:
    win = bench()
    scan(qtbot, win, two_units.number)
    scan(qtbot, win, GTIN)
    win.table.select_row(0)  # noqa: SLF001 - what ↑/↓ in the scan field do
    item_id = win.item_model.item(0).id
    press(qtbot, win, Qt.Key.Key_N, CTRL)  # to the note
    assert QApplication.focusWidget() is win.inspect_panel.note_field
    person_types(qtbot, win.inspect_panel.note_field, "lid cracked")
    press(qtbot, win, Qt.Key.Key_F3)  # grade it C straight from the note, as the key bar says
    idle(qtbot, win)
    assert win.inspect_panel.inspection(item_id).notes == "lid cracked"  # the panel shows it...
    latest = _latest_inspection(world, item_id)
    assert latest is not None and latest.grade == "C"
    assert latest.notes == "lid cracked"  # ...but the database has no note: lost at the decision


def test_regrading_with_a_note_pending_keeps_the_new_grade(qtbot, bench, world: World,
                                                           two_units: ReturnAuthorization) -> None:
    win = bench()
    scan(qtbot, win, two_units.number)
    scan(qtbot, win, GTIN)
    win.table.select_row(0)  # noqa: SLF001
    item_id = win.item_model.item(0).id
    press(qtbot, win, Qt.Key.Key_F2)  # B, like new
    assert win.item_model.item(0).grade == "B"
    press(qtbot, win, Qt.Key.Key_N, CTRL)
    person_types(qtbot, win.inspect_panel.note_field, "deep scratch on the front")
    press(qtbot, win, Qt.Key.Key_F4)  # on second look: D, damaged
    idle(qtbot, win)
    assert "graded D" in feedback(win)[1]  # what the clerk is told
    latest = _latest_inspection(world, item_id)
    assert latest is not None
    # What was recorded last (and what the refund is computed from): B again, with the note.
    assert (latest.grade, win.item_model.item(0).grade) == ("D", "D")


# -- Ctrl+Z and the inspection panel ---------------------------------------------------------------

def test_ctrl_z_of_a_checklist_change_is_not_recorded_again_by_the_next_grade(
        qtbot, bench, world: World, two_units: ReturnAuthorization) -> None:
    win = bench()
    scan(qtbot, win, two_units.number)
    scan(qtbot, win, GTIN)
    win.table.select_row(0)  # noqa: SLF001
    item_id = win.item_model.item(0).id
    press(qtbot, win, Qt.Key.Key_F2)
    press(qtbot, win, Qt.Key.Key_5, CTRL)  # "damage" ticked by mistake: recorded at once (the unit has a grade)
    assert _latest_inspection(world, item_id).checklist.get("damage") is True  # type: ignore[union-attr]
    press(qtbot, win, Qt.Key.Key_Z, CTRL)  # taken back
    assert "Took back" in feedback(win)[1]
    press(qtbot, win, Qt.Key.Key_F3)  # the next grade
    latest = _latest_inspection(world, item_id)
    assert latest is not None and latest.grade == "C"
    assert not latest.checklist.get("damage"), "the damage tick that was taken back is recorded again"


def test_ctrl_i_on_the_second_unit_does_not_attach_the_first_units_photo(qtbot, bench, station: Station,
                                                                          two_units: ReturnAuthorization) -> None:
    camera = station.settings.photo_folder
    camera.mkdir(parents=True, exist_ok=True)
    win = bench()
    scan(qtbot, win, two_units.number)
    scan(qtbot, win, GTIN)
    scan(qtbot, win, "AP-2")
    win.table.select_row(0)  # noqa: SLF001
    first_unit, second_unit = win.item_model.item(0).id, win.item_model.item(1).id
    dent = camera / "IMG_0001.jpg"
    dent.write_bytes(b"\xff\xd8 the dent on AP-1")
    press(qtbot, win, Qt.Key.Key_I, CTRL)
    assert win.inspect_panel.inspection(first_unit).photos == (str(dent),)
    win.table.select_row(1)  # noqa: SLF001 - ↓
    time.sleep(0.01)
    tag = camera / "IMG_0002.jpg"
    tag.write_bytes(b"\xff\xd8 the tag on AP-2")
    press(qtbot, win, Qt.Key.Key_I, CTRL)
    assert win.inspect_panel.inspection(second_unit).photos == (str(tag),), feedback(win)[1]


# -- unexpected parcels ------------------------------------------------------------------------------

def test_f6_after_a_handover_does_not_act_on_the_previous_users_scan(qtbot, bench, world: World) -> None:
    order = add_order(world, [LineSpec("HM-1", 2500, category="home", weight_g=700)])
    with world.uow() as uow:
        set_badge(uow, 2, "BADGE-MEI-7731")
    win = bench()
    scan(qtbot, win, order.number)  # aiko: an order with no RMA; she sets the parcel aside
    assert "F6" in feedback(win)[1]
    press(qtbot, win, Qt.Key.Key_L, CTRL)  # and hands the bench over
    scanner_types("BADGE-MEI-7731")
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.bench_page, timeout=WAIT_MS)
    idle(qtbot, win)
    # Mei has a parcel with no label at all: F6 with nothing scanned records it as unidentified.
    press(qtbot, win, Qt.Key.Key_F6)
    idle(qtbot, win)
    with world.uow() as uow:
        rmas = uow.session.scalars(select(ReturnAuthorization).where(ReturnAuthorization.order_id == order.id)).all()
    assert rmas == [], f"an RMA was created and received for {order.number}, whose parcel is not on the bench"


def test_a_second_unidentified_parcel_does_not_get_the_first_ones_photos(qtbot, bench, world: World,
                                                                       station: Station) -> None:
    camera = station.settings.photo_folder
    camera.mkdir(parents=True, exist_ok=True)
    win = bench()
    first = camera / "IMG_0001.jpg"
    first.write_bytes(b"\xff\xd8 first parcel")
    press(qtbot, win, Qt.Key.Key_F6)  # no label at all: unidentified
    assert "1 photo" in feedback(win)[1]
    time.sleep(0.01)
    second = camera / "IMG_0002.jpg"
    second.write_bytes(b"\xff\xd8 second parcel")
    press(qtbot, win, Qt.Key.Key_F6)
    with world.uow() as uow:
        photos = [r.photos for r in uow.session.scalars(select(ParcelReceipt).order_by(ParcelReceipt.received_at))]
    assert photos == [[str(first)], [str(second)]]


# -- BEGIN IMMEDIATE only for the first transaction of a unit of work --------------------------------

def test_printouts_after_a_decision_survive_a_print_worker_commit(world: World, station: Station, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  two_units: ReturnAuthorization) -> None:
    import console.print_jobs as print_jobs

    outcome = receive_job(station, station.ctx(), two_units.number, Weight(None, None, False), uuid.uuid4())
    assert not hasattr(outcome, "order_number")
    receipt, bench_ = outcome  # type: ignore[misc]
    for code in (GTIN, "AP-2"):
        scan_job(station, station.ctx(), receipt.receipt_id, code, two_units.id, None)
    for item in bench_.view.items:
        grade_job(station, station.ctx(), item.id, "A", two_units.id, None)
    result = decide_job(station, station.ctx(), DecideCommand(two_units.id, decision_id=uuid.uuid4()))
    assert result.status == "approved"

    db_file = str(tmp_path / "station.sqlite3")
    real_render = print_jobs.render

    def render_while_the_print_worker_commits(*args, **kwargs):  # type: ignore[no-untyped-def]
        # The print worker (its own connection) finishes a job while the bench renders a label.
        other = sqlite3.connect(db_file, timeout=0.2)
        try:
            other.execute("UPDATE users SET display_name = display_name || '.' WHERE id = 2")
            other.commit()
        except sqlite3.OperationalError:
            pass  # the bench holds the write lock: the print worker waits its turn (what should happen)
        finally:
            other.close()
        return real_render(*args, **kwargs)

    monkeypatch.setattr(print_jobs, "render", render_while_the_print_worker_commits)
    queued = print_job(station, station.ctx(), default_settings(tmp_path), result.decision_id)  # raises "database is locked"
    assert sorted(q.document for q in queued) == ["disposition-label", "disposition-label", "refund-receipt"]
    with world.uow() as uow:
        assert len(uow.session.scalars(select(PrintJob)).all()) == 3


# -- the GUI thread ------------------------------------------------------------------------------------

def test_ctrl_i_does_not_list_the_camera_folder_on_the_gui_thread(qtbot, bench, station: Station,
                                                                  two_units: ReturnAuthorization,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    camera = station.settings.photo_folder
    camera.mkdir(parents=True, exist_ok=True)
    win = bench()
    scan(qtbot, win, two_units.number)
    scan(qtbot, win, GTIN)
    win.table.select_row(0)  # noqa: SLF001
    (camera / "IMG_0001.jpg").write_bytes(b"\xff\xd8 a picture")
    real_iterdir = pathlib.Path.iterdir

    def stalled_share(self: pathlib.Path):  # type: ignore[no-untyped-def]
        if self == camera:
            time.sleep(2.0)  # a camera folder on a network share that answers slowly
        return real_iterdir(self)

    monkeypatch.setattr(pathlib.Path, "iterdir", stalled_share)
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: ([], "")))
    started = time.monotonic()
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_I, CTRL)
    blocked_s = time.monotonic() - started
    qtbot.waitUntil(lambda: "attached" in feedback(win)[1], timeout=WAIT_MS)
    assert blocked_s < 1.0, f"the GUI thread was blocked {blocked_s:.1f} s listing {camera}"


# -- sign-in -------------------------------------------------------------------------------------------

def test_a_locked_account_is_told_the_end_of_the_lock_in_the_stations_time(qtbot, world: World, station: Station,
                                                                           tmp_path: Path) -> None:
    berlin = Station(replace(station.settings, time_zone="Europe/Berlin"), world.engine, world.policy, world.actor)
    until = datetime.now(timezone.utc).replace(second=0, microsecond=0) + timedelta(minutes=20)
    with world.uow() as uow:
        set_pin(uow, 1, "4321")
        user = uow.session.get(User, 1)
        assert user is not None
        user.failed_attempts, user.locked_until = 10, until
        uow.commit()
    win = MainWindow(berlin, None, default_settings(tmp_path), sign_in=True)
    qtbot.addWidget(win)
    try:
        win.show()
        qtbot.waitExposed(win)
        page = win.sign_in_page
        page.user_field.setText("aiko")
        page.pin_field.setText("4321")
        page._submit()  # noqa: SLF001 - Enter in the PIN field
        qtbot.waitUntil(lambda: page.message.property("level") == "error", timeout=WAIT_MS)
        local = until.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M")
        assert local in page.message.text(), page.message.text()
    finally:
        win.close()


# -- history -------------------------------------------------------------------------------------------

def test_closing_todays_parcels_before_they_arrive_raises_nothing(qtbot, bench,
                                                                  two_units: ReturnAuthorization) -> None:
    import threading

    from ui.history_page import HistoryPage

    win = bench()
    scan(qtbot, win, two_units.number)
    gate = threading.Event()
    win.worker.submit("a slow step (a print worker holding the lock, say)", lambda: gate.wait(5))
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_F7)
    page = win.findChildren(HistoryPage)[0]
    QTest.keyClick(page.search, Qt.Key.Key_Escape)  # F7 by mistake: straight back out
    qtbot.wait(100)  # the page is deleted
    gate.set()
    idle(qtbot, win)  # its reads come back to a page that is gone
