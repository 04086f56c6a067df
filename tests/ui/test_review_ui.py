"""The review page [F5], driven from the keyboard as a supervisor does, on a real station file."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit
from sqlalchemy import select

from console.approval_signing import may_sign, new_signer
from console.context import Actor
from console.station import Station
from db.models import Approval, Decision, PrintJob
from printing.settings import default_settings
from tests.core.test_review import AIKO, MEI, pending_case
from tests.ui.test_station_flows import WAIT_MS, feedback, idle, person_types
from tests.tools.window_fixtures import show_ready, station, world  # noqa: F401 - fixtures
from tests.tools.factories import World
from ui.main_window import MainWindow
from ui.review_page import ReviewPage

CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def window(qtbot, station: Station, tmp_path: Path) -> Iterator[Callable[[Station], MainWindow]]:
    windows: list[MainWindow] = []

    def open_(as_station: Station) -> MainWindow:
        win = MainWindow(as_station, None, default_settings(tmp_path))
        windows.append(win)
        return show_ready(qtbot, win, WAIT_MS)

    yield open_
    for win in windows:
        win.close()


def as_user(station: Station, actor) -> Station:  # type: ignore[no-untyped-def]
    if may_sign(actor.role) and actor.signer is None:  # as if they had signed in with their PIN
        actor = Actor(actor.user_id, actor.username, actor.display_name, actor.role,
                      new_signer(actor.user_id, station.settings.station_id))
    return Station(station.settings, station.engine, station.policy, actor)


def open_page(qtbot, win: MainWindow) -> ReviewPage:
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: bool(win.findChildren(ReviewPage)), timeout=WAIT_MS)
    page = win.findChildren(ReviewPage)[0]
    idle(qtbot, win)
    return page


def test_f5_tells_a_clerk_who_may_review(qtbot, window, station: Station) -> None:
    win = window(as_user(station, AIKO))
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_F5)
    idle(qtbot, win)
    assert win.findChildren(ReviewPage) == []
    level, text = feedback(win)
    assert level == "error" and "only a supervisor or admin may review" in text


def test_a_supervisor_approves_with_a_changed_amount_from_the_keyboard(qtbot, qtmodeltester, window, world: World,
                                                                        station: Station) -> None:
    case = pending_case(world)
    win = window(as_user(station, MEI))
    page = open_page(qtbot, win)
    qtmodeltester.check(page.model)
    qtbot.waitUntil(lambda: page.case is not None and page.case.decision_id == case, timeout=WAIT_MS)
    qtmodeltester.check(page.units)
    assert page.model.rowCount() == 1 and page.approve_button.isEnabled()
    assert "weighs 300 g" in page.risk_view.toPlainText() and "Aiko" in page.parcel_view.toPlainText()

    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_M, CTRL)  # to the amounts
    editor = QApplication.focusWidget()
    assert isinstance(editor, QLineEdit) and page.units_table.isAncestorOf(editor)
    editor.selectAll()
    person_types(qtbot, editor, "800")
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
    # Enter after typing is held a moment by the scan filter (it may end a scan), then delivered.
    qtbot.waitUntil(lambda: bool(page.units.changed()), timeout=WAIT_MS)
    assert page.units.total().minor == 80000 and "USD 800.00 instead of USD 899.00" in page.status.text()
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_N, CTRL)
    assert QApplication.focusWidget() is page.note
    QTest.keyClick(page.note, Qt.Key.Key_Return, CTRL)  # no note yet: refused, nothing written
    idle(qtbot, win)
    assert page.status.property("level") == "error" and "Write a note" in page.status.text()
    person_types(qtbot, page.note, "scratch on the back")
    QTest.keyClick(page.note, Qt.Key.Key_Return)  # Enter alone never approves
    idle(qtbot, win)
    with world.uow() as uow:
        assert uow.session.scalar(select(Decision.status).where(Decision.id == case)) == "pending_review"
    page.grab().save(str(Path("/tmp/review.png")))
    QTest.keyClick(page.note, Qt.Key.Key_Return, CTRL)
    qtbot.waitUntil(lambda: page.status.property("level") == "success", timeout=WAIT_MS)
    idle(qtbot, win)
    assert "Approved with a changed amount" in page.status.text() and "USD 800.00" in page.status.text()
    with world.uow() as uow:
        decision = uow.session.get(Decision, case)
        assert decision is not None and (decision.status, decision.amount_minor) == ("approved", 80000)
        assert uow.session.scalars(select(Approval.verdict)).all() == ["partial"]
        # This bench received the parcel: the receipt and the unit's new label are queued here.
        assert sorted(uow.session.scalars(select(PrintJob.document).where(PrintJob.requested_by_id == 2))) == \
            ["disposition-label", "refund-receipt"]
    assert page.model.rowCount() == 0
    QTest.keyClick(page.search, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not page.isVisible(), timeout=WAIT_MS)


def test_a_supervisors_own_case_shows_why_and_cannot_be_settled(qtbot, window, world: World,
                                                                 station: Station) -> None:
    case = pending_case(world, by=MEI)
    win = window(as_user(station, MEI))
    page = open_page(qtbot, win)
    qtbot.waitUntil(lambda: page.case is not None and page.case.decision_id == case, timeout=WAIT_MS)
    assert not page.approve_button.isEnabled() and not page.reject_button.isEnabled()
    assert page.status.property("level") == "warning" and "four eyes" in page.status.text()
    person_types(qtbot, page.note, "mine anyway")
    QTest.keyClick(page.note, Qt.Key.Key_R, CTRL)  # the keys still reach the service, which refuses
    qtbot.waitUntil(lambda: page.status.property("level") == "error", timeout=WAIT_MS)
    assert "four eyes" in page.status.text()
    with world.uow() as uow:
        assert uow.session.scalars(select(Approval)).all() == []


def test_a_supervisor_rejects_a_claim_from_the_queue(qtbot, window, world: World, station: Station) -> None:
    from db.models import Claim
    from tests.core.test_review import open_claim

    claim_id = open_claim(world)
    win = window(as_user(station, MEI))
    page = open_page(qtbot, win)
    qtbot.waitUntil(lambda: page.model.rowCount() == 1 and page.approve_button.isEnabled(), timeout=WAIT_MS)
    assert page.case is None and "approve the claimed amount or reject it" in page.case_title.text()
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_N, CTRL)
    person_types(qtbot, page.note, "parcel was signed for")
    QTest.keyClick(page.note, Qt.Key.Key_R, CTRL)
    qtbot.waitUntil(lambda: page.status.property("level") == "success", timeout=WAIT_MS)
    assert "Claim rejected" in page.status.text()
    with world.uow() as uow:
        claim = uow.session.get(Claim, claim_id)
        assert (claim.status, claim.settled_by_id, claim.review_note) == ("rejected", 2, "parcel was signed for")
    qtbot.waitUntil(lambda: page.model.rowCount() == 0, timeout=WAIT_MS)
