"""RMAs created offline at two stations never share an id, and central refuses to merge two
different rows that do (stations configured with the same id block)."""
from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

import db.push
import db.push.apply
import db.push.rules
from console.authorization import ReturnLine, authorize_return
from console.codes import parse_rma
from console.config import load_settings
from console.context import STATION_IDS_FROM, station_id_range
from console.errors import EnvironmentProblem
from console.files import copy_sqlite
from db.engine import make_engine
from db.models import OrderLine, OutboxRow, ReturnAuthorization, ReturnItem, Station
from db.push import ensure_central_schema, push_once
from tests.tools.factories import Clock, LineSpec, World, add_order, make_world
from tests.sync.test_sync import count


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def central(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = str(tmp_path / "central.sqlite3") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    ensure_central_schema(engine)
    yield engine
    engine.dispose()


def test_each_station_has_its_own_block_of_ids() -> None:
    first, last = station_id_range("WH1-01", 3)
    assert (first, last) == (STATION_IDS_FROM + 3_000_000, STATION_IDS_FROM + 3_999_999)
    assert station_id_range("WH1-01") == station_id_range("WH1-01")  # derived, stable
    assert station_id_range("WH1-01", 999)[1] < 2**31  # fits PostgreSQL's integer
    with pytest.raises(ValueError):
        station_id_range("WH1-01", 1000)


def test_id_block_setting_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETURNS_CONSOLE_HOME", str(tmp_path))
    (tmp_path / "config.toml").write_text("[station]\nid_block = 12\n")
    assert load_settings().id_block == 12
    for bad in ("1000", "-1", '"12"', "true"):
        (tmp_path / "config.toml").write_text(f"[station]\nid_block = {bad}\n")
        with pytest.raises(EnvironmentProblem, match="id_block"):
            load_settings()


def two_benches(tmp_path: Path, line: LineSpec = LineSpec("AP-1", 4000, quantity=2)) -> tuple[World, World, str]:
    """Two stations holding the same order (as pulled from central), each its own database."""
    first = make_world(tmp_path / "a.sqlite3")
    order = add_order(first, [line])
    first.engine.dispose()
    copy_sqlite(tmp_path / "a.sqlite3", tmp_path / "b.sqlite3")
    second = World(make_engine(str(tmp_path / "b.sqlite3")), first.clock, first.policy, first.zone, station_id="WH1-02")
    with second.uow() as uow:
        uow.session.add(Station(id="WH1-02", name="Bench 2"))
        uow.commit()
    first = replace(first, engine=make_engine(str(tmp_path / "a.sqlite3")))
    return first, second, order.number


def create_rma(world: World, order_number: str, id_block: int | None) -> ReturnAuthorization:
    with world.uow() as uow:
        line = uow.session.scalar(select(OrderLine.id))
        assert line is not None
        rma = authorize_return(uow, replace(world.ctx(), id_block=id_block), order_number,
                               [ReturnLine(line, 1, "changed_mind")])
        uow.commit()
    return rma


def test_rmas_created_offline_at_two_stations_both_reach_central(tmp_path: Path, central: Engine) -> None:
    first, second, order = two_benches(tmp_path)
    try:
        a = create_rma(first, order, 1)
        b = create_rma(second, order, 2)
        assert a.id != b.id and a.number != b.number
        assert parse_rma(a.number) == a.number and parse_rma(b.number) == b.number  # they scan
        assert station_id_range("WH1-01", 1)[0] == a.id
        assert push_once(first.engine, central).failed == 0
        assert push_once(second.engine, central).failed == 0
        with central.connect() as conn:
            assert sorted(conn.execute(select(ReturnAuthorization.number)).scalars()) == sorted([a.number, b.number])
            assert sorted(conn.execute(select(ReturnItem.rma_id)).scalars()) == sorted([a.id, b.id])
    finally:
        first.engine.dispose()
        second.engine.dispose()


def test_two_stations_with_one_id_block_are_refused_not_merged(tmp_path: Path, central: Engine) -> None:
    first, second, order = two_benches(tmp_path)
    second = replace(second, clock=Clock(first.clock.now + timedelta(minutes=3)))
    try:
        a = create_rma(first, order, 7)
        b = create_rma(second, order, 7)  # misconfigured: the same block, so the same id and number
        assert (a.id, a.number) == (b.id, b.number)
        assert push_once(first.engine, central).failed == 0

        report = push_once(second.engine, central)

        assert report.failed == 1 and report.pending_after == 1
        assert f"return_authorizations id {a.id} is already another row at central" in report.errors[0]
        assert "id_block" in report.errors[0]
        with central.connect() as conn:
            assert conn.execute(select(ReturnAuthorization.created_at)).scalar_one() == first.clock.now
        assert count(central, ReturnItem) == 1
        assert count(second.engine, OutboxRow, OutboxRow.sent_at.is_(None)) == 1  # kept, not dropped
    finally:
        first.engine.dispose()
        second.engine.dispose()


def test_many_clashing_rmas_in_one_batch_are_all_refused(tmp_path: Path, central: Engine) -> None:
    """More rows than the row-by-row comparison takes: central finds the clash itself."""
    first, second, order = two_benches(tmp_path, LineSpec("AP-1", 4000, quantity=60))
    second = replace(second, clock=Clock(first.clock.now + timedelta(minutes=3)))
    try:
        mine = [create_rma(first, order, 7) for _ in range(25)]
        theirs = [create_rma(second, order, 7) for _ in range(25)]
        assert [r.id for r in mine] == [r.id for r in theirs]
        assert push_once(first.engine, central).failed == 0
        report = push_once(second.engine, central)
        assert report.failed == 25 and report.pending_after == 25
        assert all("is already another row at central" in error for error in report.errors)
        assert count(central, ReturnAuthorization) == 25
        # The look-up itself names the clash (not a failed statement sending the batch event by event).
        with second.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(ReturnAuthorization.__table__))]
        with central.begin() as conn:
            found = db.push.rules._identity_clash(conn, ReturnAuthorization.__table__, rows)
            assert found is not None and "is already another row at central" in found
            same = db.push.rules._identity_clash(conn, ReturnAuthorization.__table__, [
                dict(r._mapping) for r in conn.execute(select(ReturnAuthorization.__table__))])
            assert same is None
    finally:
        first.engine.dispose()
        second.engine.dispose()


def test_one_unit_returned_on_two_offline_rmas_is_refunded_once(tmp_path: Path, central: Engine) -> None:
    """Two benches, offline, each authorize, receive, grade and refund the one unit of a line: the
    items differ (two RMAs), but central counts the line's shipped units and keeps the second
    refund as a conflict for review."""
    first, second, order_number = two_benches(tmp_path, LineSpec("AP-1", 4000, quantity=1, gtin=GTIN))
    try:
        decided = [refund_the_one_unit(world, order_number, block) for world, block in ((first, 1), (second, 2))]
        assert push_once(first.engine, central, station_id="WH1-01").failed == 0
        assert push_once(second.engine, central, station_id="WH1-02").failed == 0
        assert_refunded_once(central, winner=decided[0], loser=decided[1])
    finally:
        first.engine.dispose()
        second.engine.dispose()


GTIN = "00012345678905"


def refund_the_one_unit(world: World, order_number: str, block: int) -> uuid.UUID:
    """A new RMA for the order's one unit, received, graded and refunded at this bench."""
    from console.deciding import DecideCommand, decide
    from console.inspection import inspect_item
    from console.receiving import receive_parcel, scan_item

    ctx = replace(world.ctx(), id_block=block)
    rma = create_rma(world, order_number, block)
    with world.uow() as uow:
        receipt = receive_parcel(uow, ctx, rma.number)
    with world.uow() as uow:
        scan_item(uow, ctx, receipt.receipt_id, GTIN)
    with world.uow() as uow:
        item = uow.session.scalar(select(ReturnItem.id).where(ReturnItem.rma_id == rma.id))
        assert item is not None
        inspect_item(uow, ctx, item, "A")
    with world.uow() as uow:
        result = decide(uow, ctx, DecideCommand(rma.id))
    assert result.status == "approved"
    return result.decision_id


def assert_refunded_once(central: Engine, *, winner: uuid.UUID, loser: uuid.UUID) -> None:
    from db.models import Decision, DecisionLine, SyncConflict

    with central.connect() as conn:
        standing = conn.execute(select(Decision.id).join(DecisionLine, DecisionLine.decision_id == Decision.id)
                                .where(DecisionLine.active, Decision.status == "approved")).scalars().all()
        assert standing == [winner]
        assert conn.execute(select(Decision.status).where(Decision.id == loser)).scalar_one() == "conflict"
        flag = conn.execute(select(SyncConflict.decision_id, SyncConflict.other_decision_id)).one()
        assert tuple(flag) == (loser, winner)


@pytest.mark.postgres
@pytest.mark.parametrize("paused", ["before its lock and its writes", "holding its lock, before its count"])
def test_one_unit_refunded_at_two_benches_pushing_at_the_same_moment_is_refunded_once(
        tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, paused: str) -> None:
    """The first push is held at a point of its transaction while the second runs: whichever
    commits second counts the other's refund and keeps its own decision as the conflict."""
    from scripts.dev.benchmarks.sync import seed_central_from_station

    first, second, order_number = two_benches(tmp_path, LineSpec("AP-1", 4000, quantity=1, gtin=GTIN))
    central = make_engine(pg_url)
    try:
        ensure_central_schema(central)
        # Central holds the order and both stations, as the order system and set-up left them.
        seed_central_from_station(tmp_path / "b.sqlite3", pg_url,
                                  ("stations", "users", "customers", "orders", "order_lines", "shipments"))
        decided = [refund_the_one_unit(world, order_number, block) for world, block in ((first, 1), (second, 2))]
        at_pause, go_on = threading.Event(), threading.Event()
        name = "_lock_order_lines" if paused.startswith("before its lock") else "_over_quantity"
        real = getattr(db.push.apply, name)
        held: list[threading.Thread] = []

        def held_first(*args: object, **kwargs: object) -> object:
            if threading.current_thread() in held and not at_pause.is_set():
                at_pause.set()
                assert go_on.wait(30), "the test never let the first push go on"
            return real(*args, **kwargs)

        monkeypatch.setattr(db.push.apply, name, held_first)
        reports: dict[str, db.push.SyncReport] = {}
        pushes = {station: threading.Thread(target=lambda world=world, station=station: reports.__setitem__(
            station, push_once(world.engine, central, station_id=station)))
            for world, station in ((first, "WH1-01"), (second, "WH1-02"))}
        held.append(pushes["WH1-01"])
        pushes["WH1-01"].start()
        assert at_pause.wait(30)
        pushes["WH1-02"].start()
        try:
            watch_the_second(central, pushes["WH1-02"], waits_for_the_first=name == "_over_quantity")
        finally:
            go_on.set()
        for push in pushes.values():
            push.join(60)
        assert reports["WH1-01"].failed == 0 and reports["WH1-02"].failed == 0
        # The one that committed first keeps the refund.
        winner, loser = (decided[1], decided[0]) if name == "_lock_order_lines" else (decided[0], decided[1])
        assert_refunded_once(central, winner=winner, loser=loser)
    finally:
        central.dispose()
        first.engine.dispose()
        second.engine.dispose()


def watch_the_second(central: Engine, push: threading.Thread, *, waits_for_the_first: bool) -> None:
    from sqlalchemy import text

    if not waits_for_the_first:
        push.join(30)  # the first has not locked yet: nothing holds the second up
        assert not push.is_alive()
        return
    # The second waits for the first's lock on the line (seen in pg_locks), and only for that.
    with central.connect() as conn:
        for _ in range(300):
            if conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                                 "AND classid = :kind"), {"kind": db.push.rules._ORDER_LINE_LOCKS}).scalar_one():
                break
            threading.Event().wait(0.05)
        else:
            pytest.fail("the second push never waited for the first's lock")
    assert push.is_alive()
