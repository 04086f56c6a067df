"""A scan the station does not know asks central (the real PostgreSQL): the order behind it is
copied in and the parcel opens; offline, the clerk is told and nothing hangs."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication
from sqlalchemy import select
from sqlalchemy.engine import Engine

from console.config import Settings
from console.errors import EnvironmentProblem
from console.station import Station
from db.engine import make_engine
from console.fetch import fetch_code
from db.migrate import upgrade
from db.models import Decision, DecisionLine, Order, OrderLine, ReturnAuthorization, ReturnItem, Shipment, User
from db.push import push_once
from printing.settings import default_settings
from tests.tools.factories import LineSpec, add_order, add_rma, make_world
from tests.ui.test_station_flows import scan
from tests.sync.test_sync import count, decide, make_station
from tests.tools.window_fixtures import world  # noqa: F401 - fixture
from ui.main_window import MainWindow

pytestmark = pytest.mark.postgres
DEAD_CENTRAL = "postgresql://postgres@127.0.0.1:1/test"


@pytest.fixture
def central(pg_central: Engine) -> Engine:
    return pg_central


def test_fetch_copies_the_order_behind_a_code(central: Engine, tmp_path: Path) -> None:
    other = make_station(tmp_path / "other.sqlite3", "WH2-01")
    bench = make_engine(str(tmp_path / "bench.sqlite3"))
    try:
        decide(other, 101, station_id="WH2-01")  # the order, RMA and a receipt-less decision reach central
        push_once(other, central, station_id="WH2-01")
        upgrade(bench)
        assert fetch_code(bench, central, "1Z999")  # the outbound tracking number
        assert count(bench, Order) == 1 and count(bench, OrderLine) == 3 and count(bench, Shipment) == 1
        assert count(bench, ReturnAuthorization) == 1 and count(bench, ReturnItem) == 3
        assert count(bench, Decision) == 1 and count(bench, DecisionLine, DecisionLine.active) == 1
        assert not fetch_code(bench, central, "SO-7777777")
        with bench.connect() as conn:  # credentials never come along
            assert set(conn.execute(select(User.password_hash)).scalars()) <= {"!"}
    finally:
        other.dispose()
        bench.dispose()


def test_fetch_fails_fast_when_central_is_unreachable(tmp_path: Path) -> None:
    bench = make_engine(str(tmp_path / "bench.sqlite3"))
    dead = make_engine(DEAD_CENTRAL + "?connect_timeout=2")
    try:
        upgrade(bench)
        started = time.monotonic()
        with pytest.raises(EnvironmentProblem, match="unreachable"):
            fetch_code(bench, dead, "SO-1000001")
        assert time.monotonic() - started < 5
    finally:
        bench.dispose()
        dead.dispose()


def _window(qtbot, world, tmp_path: Path, central_url: str) -> MainWindow:
    settings = Settings(data_dir=tmp_path, config_file=tmp_path / "config.toml", station_db=tmp_path / "station.sqlite3",
                        central_url=central_url, sounds=False)
    win = MainWindow(Station(settings, world.engine, world.policy, world.actor), None, default_settings(tmp_path))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is win.scan_field, timeout=10_000)
    return win


def test_a_parcel_only_central_knows_opens_at_the_bench(qtbot, world, central: Engine, tmp_path: Path,
                                                       pg_url: str) -> None:
    elsewhere = make_world(tmp_path / "elsewhere.sqlite3")
    order = add_order(elsewhere, [LineSpec("AP-1", 4000, weight_g=1000)])
    rma = add_rma(elsewhere, order)  # authorized at central's end, never pulled to this bench
    from console.rmas import add_event
    with elsewhere.uow() as uow:
        add_event(uow, elsewhere.ctx(), "rma", rma.number, [uow.session.get(ReturnAuthorization, rma.id)], [])
        uow.commit()
    push_once(elsewhere.engine, central)
    elsewhere.engine.dispose()
    win = _window(qtbot, world, tmp_path, pg_url)
    try:
        scan(qtbot, win, rma.number)
        qtbot.waitUntil(lambda: win.parcel_open, timeout=10_000)
        assert win.item_model.rowCount() == 1
    finally:
        win.close()
        win.station.close()  # its connection to central too


def test_offline_the_clerk_is_told_and_can_go_on(qtbot, world, tmp_path: Path) -> None:
    win = _window(qtbot, world, tmp_path, DEAD_CENTRAL)
    try:
        scan(qtbot, win, "SO-7654321")
        qtbot.waitUntil(lambda: "Central could not be asked (offline)" in win.feedback.text(), timeout=10_000)
        assert not win.parcel_open
    finally:
        win.close()
        win.station.close()
