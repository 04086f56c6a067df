"""The change feed: stations pull what changed at central (the real PostgreSQL), in pages,
resumable, without skipping rows committed out of order."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Engine

import db.pull
from db.engine import make_engine
from db.migrate import upgrade
from db.models import (
    Customer, Decision, DecisionLine, Order, OrderLine, ReturnAuthorization, Station, SyncConflict, SyncCursor, User,
)
from db.pull import FEED_TABLES, pull_once
from db.push import ensure_central_schema, push_once
from db.uow import UnitOfWork
from tests.sync.test_sync import count, decide, make_station

pytestmark = pytest.mark.postgres
T0 = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)


@pytest.fixture
def central(pg_central: Engine) -> Engine:
    return pg_central


@pytest.fixture
def empty_station(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(str(tmp_path / "new-bench.sqlite3"))
    upgrade(engine)
    yield engine
    engine.dispose()


def add_central_orders(central: Engine, first_id: int, n: int) -> None:
    """Orders the order system loaded into central (ids from central), each with one line."""
    with UnitOfWork.for_engine(central) as uow:
        s = uow.session
        if s.get(Customer, 500) is None:
            s.add(Customer(id=500, name="Grace Hopper", email="grace@example.com", created_at=T0))
            s.flush()
        for i in range(first_id, first_id + n):
            s.add(Order(id=i, number=f"SO-9{i:06d}", customer_id=500, currency="EUR", placed_at=T0))
        s.flush()
        s.add_all([OrderLine(id=i, order_id=i, line_no=1, sku=f"SKU-{i}", title="Mug", category="home",
                             quantity=1, unit_price_minor=1500) for i in range(first_id, first_id + n)])
        uow.commit()


def settle(central: Engine, timeout_s: float = 30) -> None:
    """Wait until every transaction that started before now has ended, anywhere on the server:
    the feed's horizon is server-wide, so another session's open transaction (another test run
    sharing the server) holds back what a pull may read — correctly, but not what a test wants."""
    with central.begin() as conn:
        mine = int(conn.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with central.connect() as conn:
            horizon = int(conn.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"))
                          .scalar_one())
        if horizon > mine:
            return
        time.sleep(0.02)
    raise AssertionError(f"a transaction older than {mine} is still open on the server")


def test_the_migration_stamps_exactly_the_tables_the_pull_reads() -> None:
    from importlib import import_module

    stamped = (import_module("db.migrations.versions.0006_change_feed").FEED_TABLES
               + import_module("db.migrations.versions.0008_risk_facts").FEED_TABLES
               + import_module("db.migrations.versions.0011_signed_approvals").FEED_TABLES)
    assert stamped == FEED_TABLES


def test_pull_brings_central_changes_in_pages_and_only_once(central: Engine, empty_station: Engine) -> None:
    add_central_orders(central, 1000, 25)
    settle(central)
    report = pull_once(empty_station, central, page_size=10)
    assert report.supported and report.by_table == {"customers": 1, "orders": 25, "order_lines": 25}
    assert report.pages == 1 + 3 + 3  # 10 + 10 + 5 per table
    assert count(empty_station, Order) == 25 and count(empty_station, OrderLine) == 25
    with empty_station.connect() as conn:
        assert conn.execute(select(Order.currency, Order.placed_at).where(Order.id == 1007)).one() == ("EUR", T0)
    again = pull_once(empty_station, central, page_size=10)
    assert again.pulled == 0
    # A change at central is pulled again, and only it.
    with central.begin() as conn:
        conn.execute(update(Order).where(Order.id == 1003).values(currency="USD"))
    settle(central)
    third = pull_once(empty_station, central)
    assert third.by_table == {"orders": 1}
    with empty_station.connect() as conn:
        assert conn.execute(select(Order.currency).where(Order.id == 1003)).scalar_one() == "USD"


def test_rows_committed_out_of_order_are_not_skipped(central: Engine, empty_station: Engine) -> None:
    add_central_orders(central, 1, 1)  # the customer
    settle(central)
    pull_once(empty_station, central)
    slow_started, fast_done, release = threading.Event(), threading.Event(), threading.Event()

    def slow() -> None:
        # Takes its transaction id first, writes, and commits last: the row an id poll misses.
        with central.begin() as conn:
            conn.execute(text("SELECT pg_current_xact_id()"))
            conn.execute(Order.__table__.insert().values(id=2, number="SO-SLOW", customer_id=500, currency="EUR",
                                                         placed_at=T0))
            slow_started.set()
            release.wait(30)

    thread = threading.Thread(target=slow)
    thread.start()
    try:
        assert slow_started.wait(30)
        add_central_orders(central, 3, 1)  # a later transaction that commits first
        fast_done.set()
        meanwhile = pull_once(empty_station, central)
        # The fast row is held back too: the slow transaction is below it and still running.
        assert meanwhile.pulled == 0
    finally:
        release.set()
        thread.join(30)
    settle(central)
    after = pull_once(empty_station, central)
    assert after.by_table == {"orders": 2, "order_lines": 1}
    with empty_station.connect() as conn:
        assert sorted(conn.execute(select(Order.number)).scalars()) == ["SO-9000001", "SO-9000003", "SO-SLOW"]


def test_a_pull_cut_off_half_way_resumes_where_it_stopped(central: Engine, empty_station: Engine,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    add_central_orders(central, 1, 30)
    real = db.pull._apply_page
    pages: list[int] = []

    def dies_on_the_third_page(*args: object, **kwargs: object) -> tuple[int, int]:
        if len(pages) == 2:
            raise KeyboardInterrupt  # stands in for the process dying mid-pull
        pages.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    settle(central)
    monkeypatch.setattr(db.pull, "_apply_page", dies_on_the_third_page)
    with pytest.raises(KeyboardInterrupt):
        pull_once(empty_station, central, page_size=10)
    assert count(empty_station, Order) == 10  # customers' page, then one page of orders
    with empty_station.connect() as conn:
        cursor = conn.execute(select(SyncCursor.key).where(SyncCursor.table_name == "orders")).scalar_one()
    assert cursor == "10"
    monkeypatch.setattr(db.pull, "_apply_page", real)
    rest = pull_once(empty_station, central, page_size=10)
    assert rest.by_table == {"orders": 20, "order_lines": 30}
    assert count(empty_station, Order) == 30


def test_unpushed_local_changes_and_local_credentials_are_kept(central: Engine, tmp_path: Path) -> None:
    bench = make_station(tmp_path / "bench.sqlite3")
    try:
        decide(bench, 101)
        push_once(bench, central, station_id="WH1-01")
        # Central changes the RMA; the bench changed it too and has not pushed yet.
        with central.begin() as conn:
            conn.execute(update(ReturnAuthorization).where(ReturnAuthorization.id == 1)
                         .values(customer_comment="from central"))
        with UnitOfWork.for_engine(bench) as uow:
            rma = uow.session.get(ReturnAuthorization, 1)
            assert rma is not None
            rma.customer_comment = "from the bench"
            uow.session.flush()
            from tests.sync.test_sync import payload
            uow.add_outbox("rma", rma.number, payload("WH1-01", [rma]))
            uow.commit()
        with bench.connect() as conn:
            hash_before = conn.execute(select(User.password_hash).where(User.id == 1)).scalar_one()
        settle(central)
        report = pull_once(bench, central)
        assert report.kept_local >= 1
        with bench.connect() as conn:
            assert conn.execute(select(ReturnAuthorization.customer_comment)).scalar_one() == "from the bench"
            # Central only holds the bench's copy of aiko (no credentials): the bench keeps its own.
            assert conn.execute(select(User.password_hash).where(User.id == 1)).scalar_one() == hash_before
        push_once(bench, central, station_id="WH1-01")
        settle(central)
        pull_once(bench, central)
        with central.connect() as conn:
            assert conn.execute(select(ReturnAuthorization.customer_comment)).scalar_one() == "from the bench"
    finally:
        bench.dispose()


def test_a_conflict_found_at_central_reaches_the_losing_station(central: Engine, tmp_path: Path) -> None:
    first, second = make_station(tmp_path / "a.sqlite3", "WH1-01"), make_station(tmp_path / "b.sqlite3", "WH1-02")
    try:
        winner = decide(first, 101)
        loser = decide(second, 101, station_id="WH1-02")
        push_once(first, central, station_id="WH1-01")
        push_once(second, central, station_id="WH1-02")
        settle(central)
        report = pull_once(second, central)
        assert report.by_table.get("sync_conflicts") == 1
        with second.connect() as conn:
            assert conn.execute(select(Decision.status).where(Decision.id == loser)).scalar_one() == "conflict"
            assert conn.execute(select(Decision.status).where(Decision.id == winner)).scalar_one() == "approved"
            flag = conn.execute(select(SyncConflict.kind, SyncConflict.other_decision_id)).one()
            assert tuple(flag) == ("item_already_decided", winner)
            # The lines came too: the item is settled by the winner here as well, so this bench
            # will not offer to refund it again; its own line is inactive, as central holds it.
            lines = {(r.decision_id, r.return_item_id): r.active for r in conn.execute(
                select(DecisionLine.decision_id, DecisionLine.return_item_id, DecisionLine.active))}
            assert lines[(winner, 101)] is True and lines[(loser, 101)] is False
            # The other station's row came along, so its decision could land here.
            assert conn.execute(select(func.count()).select_from(Station)).scalar_one() == 2
        with central.connect() as conn:
            synced = dict(conn.execute(select(Station.id, Station.last_synced_at)).all())
        assert synced["WH1-01"] is not None and synced["WH1-02"] is not None  # central heard from both
    finally:
        first.dispose()
        second.dispose()


def test_a_sqlite_central_serves_no_feed(empty_station: Engine, tmp_path: Path) -> None:
    central = make_engine(str(tmp_path / "c.sqlite3"))
    try:
        ensure_central_schema(central)
        assert not pull_once(empty_station, central).supported
    finally:
        central.dispose()



def test_central_changes_to_users_reach_a_station_with_events_waiting(central: Engine, tmp_path: Path) -> None:
    bench = make_station(tmp_path / "bench.sqlite3")
    try:
        decide(bench, 101)
        push_once(bench, central, station_id="WH1-01")
        with central.begin() as conn:  # an admin disables aiko; confirms the copy (clears the mark)
            conn.execute(update(User).where(User.id == 1).values(active=False, created_from_station=None))
        decide(bench, 102)  # an event naming aiko waits in the outbox during the pull
        with bench.connect() as conn:
            hash_before = conn.execute(select(User.password_hash).where(User.id == 1)).scalar_one()
        settle(central)
        pull_once(bench, central)
        with bench.connect() as conn:
            row = conn.execute(select(User.active, User.password_hash).where(User.id == 1)).one()
        assert not row.active  # central's users are never held back by the station's copy
        assert row.password_hash == hash_before != "!"  # central's "!" never replaces the station's PIN
    finally:
        bench.dispose()


def test_a_row_passed_over_for_an_unpushed_change_is_fetched_again(central: Engine, tmp_path: Path) -> None:
    from db.models import DecisionLine, OutboxRow, SyncRefetch
    from db.snapshot import snapshot
    from tests.sync.test_sync import payload

    first, second = make_station(tmp_path / "a.sqlite3", "WH1-01"), make_station(tmp_path / "b.sqlite3", "WH1-02")
    try:
        decide(first, 101)
        push_once(first, central, station_id="WH1-01")
        loser = decide(second, 101, station_id="WH1-02")
        push_once(second, central, station_id="WH1-02")  # a conflict at central
        with UnitOfWork.for_engine(second) as uow:  # an event central refuses, naming the decision
            decision = uow.session.get(Decision, loser)
            line = uow.session.get(DecisionLine, (loser, 101))
            assert decision is not None and line is not None
            bad = snapshot(line)
            bad["values"]["refund_minor"] = line.paid_minor + 1
            uow.add_outbox("decision", str(loser), {**payload("WH1-02", [decision]),
                                                    "rows": [snapshot(decision), bad]})
            uow.commit()
        assert push_once(second, central, station_id="WH1-02").failed == 1
        settle(central)
        report = pull_once(second, central)
        assert report.kept_local >= 1
        with second.connect() as conn:
            assert conn.execute(select(Decision.status).where(Decision.id == loser)).scalar_one() == "approved"
            assert conn.execute(select(SyncRefetch.key).where(SyncRefetch.table_name == "decisions")).scalar_one() == str(loser)
        with second.begin() as conn:  # the refused event is dealt with (a supervisor set it aside)
            conn.execute(update(OutboxRow).where(OutboxRow.sent_at.is_(None)).values(sent_at=T0))
        again = pull_once(second, central)
        assert again.by_table.get("decisions") == 1
        with second.connect() as conn:
            assert conn.execute(select(Decision.status).where(Decision.id == loser)).scalar_one() == "conflict"
            assert conn.execute(select(func.count()).select_from(SyncRefetch)).scalar_one() == 0
    finally:
        first.dispose()
        second.dispose()


def test_a_row_read_again_whose_parent_the_station_lacks_waits_instead_of_failing_the_pass(
        central: Engine, empty_station: Engine) -> None:
    from db.models import SyncRefetch

    add_central_orders(central, 700, 1)
    settle(central)
    with empty_station.begin() as conn:  # an order line to read again, its order not here yet
        conn.execute(insert(SyncRefetch).values(table_name="order_lines", key="700"))
        conn.execute(insert(SyncRefetch).values(table_name="order_lines", key="701"))
    with central.connect() as blocker:  # an open transaction holds the horizon below what follows
        blocker.execute(text("SELECT pg_current_xact_id()"))
        with UnitOfWork.for_engine(central) as uow:  # a line whose order is above the horizon
            uow.session.add(Order(id=701, number="SO-9000701", customer_id=500, currency="EUR", placed_at=T0))
            uow.session.flush()
            uow.session.add(OrderLine(id=701, order_id=701, line_no=1, sku="SKU-701", title="Mug", category="home",
                                      quantity=1, unit_price_minor=1500))
            uow.commit()
        report = pull_once(empty_station, central)
        blocker.rollback()
    # The feed brought order 700 first, so its line could be read again; 701's order is above
    # the horizon: its line waits for the next pass instead of failing this one.
    assert report.incomplete and count(empty_station, OrderLine) == 1
    with empty_station.connect() as conn:
        assert conn.execute(select(SyncRefetch.key)).scalars().all() == ["701"]
    settle(central)
    pull_once(empty_station, central)
    assert count(empty_station, OrderLine) == 2
    with empty_station.connect() as conn:
        assert conn.execute(select(func.count()).select_from(SyncRefetch)).scalar_one() == 0
