"""The station locks itself, and asks again before money goes out: driven with pytest-qt as a
clerk drives the bench (scanner keystrokes, keys), checked on screen and in the station database.
Also the users page [F3]: an admin adds a user and sets a PIN through the worker; a clerk
cannot open it."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from sqlalchemy import select

from console.approval_signing import new_signer
from console.context import Actor
from console.signin import set_badge, set_pin, sign_in
from console.station import Station
from db.models import AuditEvent, Decision, ItemScan, ReturnAuthorization, User
from db.types import utcnow
from printing.settings import default_settings
from tests.tools.factories import LineSpec, World, add_order, add_rma
from tests.ui.test_station_flows import person_types, scanner_types
from tests.tools.window_fixtures import show_ready, station, world  # noqa: F401 - fixtures
from ui.history_page import HistoryPage
from ui.idle_lock import ConfirmIdentityDialog, IdleLock
from ui.main_window import MainWindow
from ui.users_page import UsersPage

WAIT_MS = 10_000
GTIN = "0012345678905"
ADMIN = Actor(3, "kenji", "Kenji", "admin")


@pytest.fixture
def bench(qtbot, station: Station, tmp_path: Path) -> Iterator[Callable[..., MainWindow]]:
    """``bench(idle_minutes=10, actor=None)``: the station window, shown, signed in as ``actor``
    (the world's clerk by default), locking after ``idle_minutes`` without input."""
    windows: list[MainWindow] = []

    def open_(idle_minutes: float = 10, actor: Actor | None = None) -> MainWindow:
        settings = replace(station.settings, idle_lock_minutes=idle_minutes)
        here = Station(settings, station.engine, station.policy, actor or station.actor)
        win = MainWindow(here, None, default_settings(tmp_path))
        windows.append(win)
        return show_ready(qtbot, win, WAIT_MS)

    yield open_
    for win in windows:
        win.close()
        assert not win.worker._thread.isRunning()  # noqa: SLF001


@pytest.fixture
def two_units(world: World) -> ReturnAuthorization:
    with world.uow() as uow:
        set_pin(uow, 1, "4321")
        set_badge(uow, 1, "BADGE-AIKO-1001")
        set_badge(uow, 2, "BADGE-MEI-7731")
    order = add_order(world, [LineSpec("AP-1", 4000, gtin=GTIN, weight_g=1000), LineSpec("AP-2", 2000, weight_g=330)])
    return add_rma(world, order)


def idle(qtbot, win: MainWindow) -> None:
    qtbot.waitUntil(lambda: not win.worker.busy, timeout=WAIT_MS)


def scan(qtbot, win: MainWindow, code: str) -> None:
    scanner_types(code)
    idle(qtbot, win)


def locked(win: MainWindow) -> bool:
    return win.pages.currentWidget() is win.sign_in_page


def _actions(world: World) -> list[tuple[str, dict]]:
    with world.uow() as uow:
        return [(e.action, e.details) for e in uow.session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]


def test_the_idle_lock_filter_fires_once_after_the_time_and_input_restarts_it(qtbot) -> None:
    lock = IdleLock(200)
    fired: list[int] = []
    lock.idle.connect(lambda: fired.append(1))
    target = QApplication.instance()
    assert target is not None
    lock.start()
    try:
        assert lock.armed and lock.idle_ms == 200
        qtbot.waitUntil(lambda: fired == [1], timeout=WAIT_MS)
        assert not lock.armed, "it fires once, then waits to be started again"
        lock.start()
        lock.touch()
        qtbot.waitUntil(lambda: fired == [1, 1], timeout=WAIT_MS)
        lock.stop()
        lock.touch()  # a disarmed lock stays disarmed
        assert not lock.armed
    finally:
        lock.uninstall()
    with pytest.raises(ValueError):
        IdleLock(0)


def test_the_station_locks_when_idle_and_the_parcel_waits_for_the_same_clerk(
        qtbot, bench, world: World, two_units: ReturnAuthorization) -> None:
    win = bench(idle_minutes=0.02)  # 1.2 seconds
    win.idle_lock.stop()  # held while the parcel is opened: a slow machine must not lock mid-way
    scan(qtbot, win, two_units.number)
    qtbot.waitUntil(lambda: win.parcel_open, timeout=WAIT_MS)
    scan(qtbot, win, GTIN)
    win.idle_lock.start()
    qtbot.waitUntil(lambda: locked(win), timeout=WAIT_MS)  # nobody touches anything: it locks
    message = win.sign_in_page.message.text()
    assert "locked after 1 second without use" in message
    assert f"{two_units.number} stays open for Aiko" in message
    assert win.parcel_open and win.work.number == two_units.number

    # Locked: the bench's keys do nothing (history, decide, undo, put down, users page).
    field = win.sign_in_page.user_field
    qtbot.waitUntil(lambda: QApplication.focusWidget() is field, timeout=WAIT_MS)
    for key, mod in ((Qt.Key.Key_F7, Qt.KeyboardModifier.NoModifier), (Qt.Key.Key_F12, Qt.KeyboardModifier.NoModifier),
                     (Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier), (Qt.Key.Key_F3, Qt.KeyboardModifier.NoModifier),
                     (Qt.Key.Key_Escape, Qt.KeyboardModifier.NoModifier), (Qt.Key.Key_F1, Qt.KeyboardModifier.NoModifier)):
        QTest.keyClick(QApplication.focusWidget(), key, mod)
    idle(qtbot, win)
    assert locked(win) and win.parcel_open
    assert not win.findChildren(HistoryPage) and not win.findChildren(UsersPage)
    assert not win.bench_page.isVisible() and not win.scan_field.hasFocus()
    with world.uow() as uow:
        assert uow.session.scalars(select(Decision)).first() is None
        assert len(uow.session.scalars(select(ItemScan)).all()) == 1, "Ctrl+Z undid nothing"
        assert uow.session.scalars(select(AuditEvent.action).where(AuditEvent.action == "item_graded")).first() is None

    # Aiko signs in again: her parcel is where she left it.
    person_types(qtbot, field, "aiko")
    QTest.keyClick(field, Qt.Key.Key_Return)
    person_types(qtbot, win.sign_in_page.pin_field, "4321")
    QTest.keyClick(win.sign_in_page.pin_field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not locked(win), timeout=WAIT_MS)
    win.idle_lock.stop()  # the 1.2 s lock would otherwise start over under the checks below
    assert win.parcel_open and win.work.number == two_units.number
    assert win.item_model.item(0).reception_status == "received"
    assert "Welcome back, Aiko" in win.feedback.text()
    assert ("signed_out", {"reason": "idle"}) in _actions(world)


def test_another_person_signing_in_puts_the_parcel_down_and_nothing_is_lost(
        qtbot, bench, world: World, two_units: ReturnAuthorization) -> None:
    win = bench(idle_minutes=0.02)
    win.idle_lock.stop()
    scan(qtbot, win, two_units.number)
    scan(qtbot, win, GTIN)
    win.idle_lock.start()
    qtbot.waitUntil(lambda: locked(win), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is win.sign_in_page.user_field, timeout=WAIT_MS)
    scanner_types("BADGE-MEI-7731")  # Mei walks up and scans her badge
    qtbot.waitUntil(lambda: not locked(win), timeout=WAIT_MS)
    win.idle_lock.stop()
    assert win.station.actor.username == "mei" and not win.parcel_open
    assert f"{two_units.number} was put down; its scans and grades are kept" in win.feedback.text()
    with world.uow() as uow:
        assert [s.code for s in uow.session.scalars(select(ItemScan))] == [GTIN]


def test_a_refund_paid_at_once_asks_again_when_the_last_check_is_old(
        qtbot, bench, world: World, two_units: ReturnAuthorization) -> None:
    win = bench(idle_minutes=10)
    scan(qtbot, win, two_units.number)
    for code in (GTIN, "AP-2"):
        scan(qtbot, win, code)
    for row in range(2):
        win.table.select_row(row)  # noqa: SLF001 - what ↑/↓ do
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_F1)
        idle(qtbot, win)
    qtbot.waitUntil(lambda: win.amount_label.text() == "USD 60.00", timeout=WAIT_MS)
    # Eleven minutes of steady work since Aiko's badge was last checked (the bench never idled).
    # The actor carries the check's time to the services, which refuse a payout on a stale one too.
    win.station.actor = replace(win.station.actor, identity_checked_at=utcnow() - timedelta(minutes=11))
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_F12)
    qtbot.waitUntil(lambda: bool(win.findChildren(ConfirmIdentityDialog)), timeout=WAIT_MS)
    dialog = win.findChildren(ConfirmIdentityDialog)[0]
    assert "Full refund USD 60.00: confirm it is you, Aiko" in dialog.ask.text()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is dialog.pin_field, timeout=WAIT_MS)
    person_types(qtbot, dialog.pin_field, "0000")
    QTest.keyClick(dialog.pin_field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "User name or PIN is wrong" in dialog.message.text(), timeout=WAIT_MS)
    scanner_types("BADGE-MEI-7731")  # a colleague's badge does not do
    qtbot.waitUntil(lambda: "not your badge" in dialog.message.text(), timeout=WAIT_MS)
    with world.uow() as uow:
        assert uow.session.scalars(select(Decision)).first() is None, "nothing decided while asking"
    scanner_types("BADGE-AIKO-1001")
    qtbot.waitUntil(lambda: not win.parcel_open, timeout=WAIT_MS)
    idle(qtbot, win)
    assert "Refund USD 60.00 approved" in win.feedback.text()
    with world.uow() as uow:
        assert uow.session.scalars(select(Decision.status)).all() == ["approved"]
    actions = [a for a, _ in _actions(world)]
    assert "identity_check_failed" in actions and actions.count("identity_confirmed") == 1
    with world.uow() as uow:
        user = uow.session.get(User, 1)
        assert user is not None and user.failed_attempts == 0, "the right badge resets the count"


def test_a_recent_check_or_a_refund_for_review_does_not_ask(qtbot, bench, world: World,
                                                            two_units: ReturnAuthorization) -> None:
    from console.reconfirm import must_reconfirm

    now = utcnow()
    ten = timedelta(minutes=10)
    assert must_reconfirm("full_refund", False, 6000, now - timedelta(minutes=10), now, ten)
    assert not must_reconfirm("full_refund", False, 6000, now - timedelta(minutes=9), now, ten)
    assert not must_reconfirm("partial_refund", True, 6000, now - timedelta(hours=2), now, ten)
    assert not must_reconfirm("exchange", False, 0, now - timedelta(hours=2), now, ten)
    assert not must_reconfirm("deny", False, 0, now - timedelta(hours=2), now, ten)
    assert must_reconfirm("store_credit", False, 500, now - timedelta(hours=2), now, ten)


# -- the users page ----------------------------------------------------------------------------------

@pytest.fixture
def admin(world: World) -> Actor:
    with world.uow() as uow:
        uow.session.add(User(id=3, username="kenji", display_name="Kenji", role="admin", password_hash="x"))
        uow.commit()
    # As if signed in with the PIN, which opens the admin's signing key: disabling someone is signed.
    return replace(ADMIN, signer=new_signer(ADMIN.user_id, "WH1-01"))


def test_an_admin_adds_a_user_and_sets_a_pin_on_the_users_page(qtbot, qtmodeltester, bench, world: World,
                                                               admin: Actor, tmp_path: Path) -> None:
    win = bench(actor=admin)
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_F3)
    qtbot.waitUntil(lambda: bool(win.findChildren(UsersPage)), timeout=WAIT_MS)
    page = win.findChildren(UsersPage)[0]
    qtbot.waitUntil(lambda: page.model.rowCount() == 3, timeout=WAIT_MS)
    qtbot.keyClicks(page.add_username, "ben")
    qtbot.keyClicks(page.add_name, "Ben Okafor")
    page.add_role.setCurrentText("associate")
    qtbot.keyClicks(page.add_pin, "12")  # too short: said on the page, nothing added
    QTest.keyClick(page.add_pin, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: page.status.property("level") == "error", timeout=WAIT_MS)
    assert "at least 4" in page.status.text() and page.model.rowCount() == 3
    qtbot.keyClicks(page.add_pin, "2468")
    QTest.keyClick(page.add_pin, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: page.model.rowCount() == 4, timeout=WAIT_MS)
    assert page.status.text() == "ben added as associate." and page.add_pin.text() == ""
    chosen = page.selected()
    assert chosen is not None and (chosen.username, chosen.role, chosen.active) == ("ben", "associate", True)
    qtmodeltester.check(page.model)

    qtbot.keyClicks(page.new_pin, "97531")
    assert page.reset_button.isEnabled()
    page.reset_button.click()
    qtbot.waitUntil(lambda: page.status.property("level") != "info", timeout=WAIT_MS)
    assert page.status.text().startswith("New PIN set for Ben Okafor"), page.status.text()
    with world.uow() as uow:
        assert sign_in(uow, "WH1-01", "ben", "97531", utcnow()).role == "associate"
    page.grab().save(str(tmp_path / "users_page.png"))
    assert (tmp_path / "users_page.png").stat().st_size > 0
    page.active_button.click()
    qtbot.waitUntil(lambda: page.selected() is not None and not page.selected().active, timeout=WAIT_MS)
    page.reject()


def test_a_clerk_cannot_open_the_users_page(qtbot, bench, world: World) -> None:
    win = bench()  # Aiko, a clerk
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_F3)
    idle(qtbot, win)
    assert not win.findChildren(UsersPage)
    assert win.feedback.property("level") == "error"
    assert "Aiko is signed in as clerk" in win.feedback.text() and "manage users" in win.feedback.text()


def test_the_idle_time_is_a_station_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from console.config import load_settings
    from console.errors import EnvironmentProblem

    monkeypatch.setenv("RETURNS_CONSOLE_HOME", str(tmp_path))
    assert load_settings().idle_lock_minutes == 10
    (tmp_path / "config.toml").write_text("[station]\nidle_lock_minutes = 2.5\n", encoding="utf-8")
    assert load_settings().idle_lock_minutes == 2.5
    for bad in ("0", "-1", "true", '"10"', "721"):
        (tmp_path / "config.toml").write_text(f"[station]\nidle_lock_minutes = {bad}\n", encoding="utf-8")
        with pytest.raises(EnvironmentProblem, match="idle_lock_minutes must be a number of minutes"):
            load_settings()
