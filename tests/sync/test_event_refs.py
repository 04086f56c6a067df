"""What travels between a station and central, and what need not: events name by key what their
transaction only read (``refs``) and the push sends a copy of such a row only where central lacks
it (on a SQLite central file and on the real PostgreSQL server); the pull after a push leaves
alone the rows that push wrote exactly as the station holds them (PostgreSQL).

Events in the older form, which carry every row they refer to, still apply: tests/sync/test_sync.py
writes its events that way.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from console.inspection import inspect_item
from console.receiving import receive_parcel, scan_item
from console.rmas import add_event
from console.files import copy_sqlite
from db.engine import make_engine
from db.pull import pull_once
from db.models import (
    Customer,
    DecisionLine,
    Inspection,
    ItemScan,
    Order,
    OrderLine,
    OutboxRow,
    ParcelReceipt,
    ReturnAuthorization,
    ReturnItem,
    Shipment,
    Station,
    User,
)
from db.outbox import BY_REFERENCE
from db.snapshot import json_value
from db.push import BATCH_SIZE, ensure_central_schema, pending_count, push_once
from tests.tools.factories import LineSpec, World, add_order, add_rma, make_world
from tests.sync.test_pull import settle


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "station.sqlite3")
    yield w
    w.engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def central(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = str(tmp_path / "central.sqlite3") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    ensure_central_schema(engine)
    yield engine
    engine.dispose()


def _events(world: World) -> list[dict[str, Any]]:
    with world.engine.connect() as conn:
        return [p if isinstance(p, dict) else json.loads(p)
                for p in conn.execute(select(OutboxRow.payload).order_by(OutboxRow.id)).scalars()]


def _bench_steps(world: World, tracking: str = "9400100000000000000018") -> ReturnAuthorization:
    """A parcel received, one unit scanned and graded: three events, as the services write them."""
    order = add_order(world, [LineSpec("AP-1", 4000, gtin="0012345678905", weight_g=400)])
    rma = add_rma(world, order, tracking=tracking)
    ctx = world.ctx()
    with world.uow() as uow:
        receipt = receive_parcel(uow, ctx, tracking, weight_g=420, weight_source="scale")
    with world.uow() as uow:
        scan_item(uow, ctx, receipt.receipt_id, "0012345678905")
    with world.uow() as uow:
        item_id = uow.session.scalars(select(ReturnItem.id).where(ReturnItem.rma_id == rma.id)).one()
    with world.uow() as uow:
        inspect_item(uow, ctx, item_id, "A")
    return rma


def test_an_event_carries_what_it_wrote_and_names_what_it_only_read(world: World) -> None:
    rma = _bench_steps(world)
    events = _events(world)
    assert len(events) >= 3
    for payload in events:
        carried = {(r["table"], r["values"].get("id")) for r in payload["rows"]}
        named = {(name, key) for name, keys in payload.get("refs", {}).items() for key in keys}
        assert set(payload.get("refs", {})) <= BY_REFERENCE
        assert not carried & named, "a row is either carried or named, never both"
    receipt_event, scan_event = events[0], events[1]
    # Receiving writes the receipt and moves the RMA on: both travel in full; the order only read.
    assert {"parcel_receipts", "return_authorizations"} <= {r["table"] for r in receipt_event["rows"]}
    assert receipt_event["refs"]["orders"] == [rma.order_id]
    # The scan writes a scan row; the order system's rows and the station go by key.
    scan_tables = {r["table"] for r in scan_event["rows"]}
    assert "item_scans" in scan_tables
    assert not scan_tables & {"orders", "customers", "order_lines", "shipments", "users", "stations"}
    assert {"orders", "customers", "order_lines", "shipments", "users", "stations"} <= set(scan_event["refs"])
    # Every key named is a row the station holds.
    models = {"orders": Order, "customers": Customer, "order_lines": OrderLine, "shipments": Shipment,
              "users": User, "stations": Station, "return_authorizations": ReturnAuthorization,
              "return_items": ReturnItem, "parcel_receipts": ParcelReceipt}
    with world.uow() as uow:
        held = {name: {json_value(key) for key in uow.session.scalars(select(model.id))} for name, model in models.items()}
    for payload in events:
        for name, keys in payload.get("refs", {}).items():
            assert set(keys) <= held[name], (name, keys)


def test_a_central_that_lacks_the_rows_named_gets_the_stations_copy(world: World, central: Engine) -> None:
    rma = _bench_steps(world)
    report = push_once(world.engine, central, station_id=world.station_id)
    assert (report.failed, report.pending_after) == (0, 0), report.errors
    with central.connect() as conn:
        assert conn.execute(select(Order.number).where(Order.id == rma.order_id)).scalar_one().startswith("SO-")
        assert conn.execute(select(ReturnAuthorization.status).where(ReturnAuthorization.id == rma.id)
                            ).scalar_one() == "received"
        assert conn.execute(select(Station.name).where(Station.id == world.station_id)).scalar_one() == "Bench 1"
        # A user central only knows from the station's copy never carries credentials.
        assert conn.execute(select(User.password_hash).where(User.id == world.actor.user_id)).scalar_one() == "!"
        assert conn.execute(select(ReturnItem.acceptance_status).where(ReturnItem.rma_id == rma.id)).all()


def test_a_row_neither_side_holds_refuses_only_the_event_that_names_it(world: World, central: Engine) -> None:
    _bench_steps(world)
    with world.uow() as uow:
        uow.add_outbox("note", "ghost", {"station_id": world.station_id, "rows": [], "refs": {"orders": [424242]}})
        uow.commit()
    report = push_once(world.engine, central, station_id=world.station_id)
    assert report.failed == 1 and report.pending_after == 1
    assert "orders 424242" in report.errors[0] and "neither central nor this station" in report.errors[0]
    assert report.pushed >= 3  # the parcel's own events landed
    with world.engine.connect() as conn:
        error = conn.execute(select(OutboxRow.last_error).where(OutboxRow.aggregate_id == "ghost")).scalar_one()
    assert "orders 424242" in error


def test_an_earlier_event_of_the_batch_wins_over_the_stations_later_copy(world: World, central: Engine) -> None:
    order = add_order(world, [LineSpec("AP-9", 1500)])
    rma = add_rma(world, order)
    ctx = world.ctx()
    with world.uow() as uow:
        row = uow.session.get(ReturnAuthorization, rma.id)
        assert row is not None
        row.return_tracking_number = "1ZEARLIER"
        add_event(uow, ctx, "rma_changed", rma.id, [row], [])  # written here: carried in full
        uow.commit()
    # The station's copy moves on without an event (as a pull of central's copy would).
    with world.engine.begin() as conn:
        conn.execute(update(ReturnAuthorization).where(ReturnAuthorization.id == rma.id)
                     .values(return_tracking_number="1ZLATER"))
    with world.uow() as uow:
        row = uow.session.get(ReturnAuthorization, rma.id)
        add_event(uow, ctx, "looked_at", rma.id, [row], [])  # only read: named by key
        uow.commit()
    events = _events(world)
    assert events[-1]["refs"]["return_authorizations"] == [rma.id]
    report = push_once(world.engine, central, station_id=world.station_id)
    assert (report.failed, report.pending_after) == (0, 0), report.errors
    with central.connect() as conn:
        tracking = conn.execute(select(ReturnAuthorization.return_tracking_number)
                                .where(ReturnAuthorization.id == rma.id)).scalar_one()
    assert tracking == "1ZEARLIER"  # what the events said, not a copy taken at push time
    assert pending_count(world.engine) == 0


def _table(engine: Engine, model: type) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(select(model.__table__)))


@pytest.mark.postgres
def test_the_pull_after_a_push_leaves_alone_what_that_push_wrote(world: World, pg_url: str, tmp_path: Path) -> None:
    central = make_engine(pg_url)
    try:
        ensure_central_schema(central)
        _bench_steps(world)
        report = push_once(world.engine, central, station_id=world.station_id)
        assert report.failed == 0 and report.echo_xids
        settle(central)
        # The same station state pulled twice: once told which transactions were its own push,
        # once not (as after a restart between push and pull).
        twin = make_engine(str(copy_sqlite(Path(world.engine.url.database), tmp_path / "twin.sqlite3")))
        try:
            told = pull_once(world.engine, central, echo_xids=report.echo_xids)
            untold = pull_once(twin, central)
            for name in ("item_scans", "inspections", "parcel_receipts", "return_authorizations"):
                assert name in untold.by_table and name not in told.by_table, name
            assert told.pulled < untold.pulled
            # Passed over, not lost: both stations hold the same rows, and the cursors moved on.
            for model in (ItemScan, Inspection, ParcelReceipt, ReturnAuthorization, ReturnItem, DecisionLine):
                assert _table(world.engine, model) == _table(twin, model), model
            assert pull_once(world.engine, central).pulled == 0
        finally:
            twin.dispose()
    finally:
        central.dispose()


def test_keys_of_the_wrong_kind_are_refused_with_their_event(world: World, central: Engine) -> None:
    _bench_steps(world)
    with world.uow() as uow:
        for n, refs in enumerate([{"orders": ["not-a-number"]}, {"parcel_receipts": ["not-a-uuid"]},
                                  {"orders": [2**70]}, {"stations": [17]}, {"nowhere": [1]}, ["orders"]]):
            uow.add_outbox("note", f"odd-{n}", {"station_id": world.station_id, "rows": [], "refs": refs})
        uow.commit()
    report = push_once(world.engine, central, station_id=world.station_id)
    assert report.failed == 6 and report.pending_after == 6, report.errors
    assert all("neither central nor this station" in error or "malformed refs" in error for error in report.errors)
    assert report.pushed >= 3  # the parcel's own events landed


def test_a_later_event_lands_even_when_the_event_carrying_its_row_is_refused(world: World, central: Engine) -> None:
    order = add_order(world, [LineSpec("AP-7", 900)])
    rma = add_rma(world, order)
    ctx = world.ctx()
    with world.uow() as uow:
        row = uow.session.get(ReturnAuthorization, rma.id)
        assert row is not None
        row.return_tracking_number = "1ZCARRIED"
        add_event(uow, ctx, "rma_changed", rma.id, [row], [])
        uow.commit()
    # The event that carries the RMA in full is broken (a table central does not know) ...
    with world.engine.begin() as conn:
        first = conn.execute(select(OutboxRow.id, OutboxRow.payload).order_by(OutboxRow.id.desc())).first()
        assert first is not None
        broken = dict(first.payload)
        broken["rows"] = [*broken["rows"], {"table": "nowhere", "values": {"id": 1}}]
        conn.execute(update(OutboxRow).where(OutboxRow.id == first.id).values(payload=broken))
    with world.uow() as uow:  # ... and a later one only names the RMA.
        add_event(uow, ctx, "looked_at", rma.id, [uow.session.get(ReturnAuthorization, rma.id)], [])
        uow.commit()
    report = push_once(world.engine, central, station_id=world.station_id, batch_size=10)
    assert report.failed == 1 and "nowhere" in report.errors[0]
    assert report.pushed == 1 and report.pending_after == 1
    with central.connect() as conn:  # the later event brought the station's copy with it
        assert conn.execute(select(ReturnAuthorization.return_tracking_number)
                            .where(ReturnAuthorization.id == rma.id)).scalar_one() == "1ZCARRIED"


def test_small_batches_read_ahead_still_land_every_event_once(world: World, central: Engine) -> None:
    _bench_steps(world)
    _bench_steps(world, tracking="9400100000000000000025")
    events = len(_events(world))
    report = push_once(world.engine, central, station_id=world.station_id, batch_size=2)
    assert (report.pushed, report.failed, report.pending_after) == (events, 0, 0), report.errors
    assert push_once(world.engine, central, station_id=world.station_id, batch_size=2).pushed == 0


@pytest.mark.postgres
def test_a_row_the_station_changed_again_after_its_push_is_fetched_again(world: World, pg_url: str) -> None:
    from db.models import SyncRefetch

    central = make_engine(pg_url)
    try:
        ensure_central_schema(central)
        rma = _bench_steps(world)
        report = push_once(world.engine, central, station_id=world.station_id)
        assert report.echo_xids
        with world.uow() as uow:  # the bench moves on before the pull: a change not pushed yet
            row = uow.session.get(ReturnAuthorization, rma.id)
            assert row is not None
            row.return_tracking_number = "1ZMOVEDON"
            add_event(uow, world.ctx(), "rma_changed", rma.id, [row], [])
            uow.commit()
        settle(central)
        pulled = pull_once(world.engine, central, echo_xids=report.echo_xids)
        assert pulled.kept_local >= 1
        with world.engine.connect() as conn:
            waiting = set(conn.execute(select(SyncRefetch.table_name, SyncRefetch.key)).all())
            tracking = conn.execute(select(ReturnAuthorization.return_tracking_number)
                                    .where(ReturnAuthorization.id == rma.id)).scalar_one()
        assert ("return_authorizations", str(rma.id)) in waiting  # central may yet refuse the change
        assert tracking == "1ZMOVEDON"
    finally:
        central.dispose()


def test_a_copy_sent_to_fill_a_gap_brings_the_rows_it_now_refers_to(world: World, central: Engine) -> None:
    """A station's copy is as it is now: the items an early event names point at a receipt a later
    event writes. Applied event by event (the careful path, forced here by a broken third event),
    the early event still lands."""
    order = add_order(world, [LineSpec("AP-5", 2500, quantity=2)])
    rma = add_rma(world, order, tracking="9400100000000000000049")
    ctx = world.ctx()
    with world.uow() as uow:
        first = receive_parcel(uow, ctx, "9400100000000000000049")
    with world.uow() as uow:  # the parcel received again (a restarted bench): the units now point there
        s = uow.session
        old = s.get(ParcelReceipt, first.receipt_id)
        assert old is not None
        again = ParcelReceipt(station_id=old.station_id, user_id=old.user_id, scanned_code=old.scanned_code,
                              received_at=old.received_at)
        s.add(again)
        s.flush()
        items = list(s.scalars(select(ReturnItem).where(ReturnItem.rma_id == rma.id)))
        for item in items:
            item.receipt_id = again.id
        add_event(uow, ctx, "receipt", rma.id, [s.get(ReturnAuthorization, rma.id)], [again, *items])
        uow.commit()
    with world.uow() as uow:
        uow.add_outbox("note", "broken", {"station_id": world.station_id, "rows": [{"table": "nowhere", "values": {}}]})
        uow.commit()
    assert "return_items" in _events(world)[0]["refs"]
    report = push_once(world.engine, central, station_id=world.station_id)
    assert report.failed == 1 and "nowhere" in report.errors[0], report.errors
    assert report.pending_after == 1
    with central.connect() as conn:
        receipts = set(conn.execute(select(ReturnItem.receipt_id).where(ReturnItem.rma_id == rma.id)).scalars())
        assert receipts == {again.id}
        assert conn.execute(select(ParcelReceipt.id).where(ParcelReceipt.id == first.receipt_id)).scalar_one()


def _received(world: World, tracking: str) -> Any:
    order = add_order(world, [LineSpec("AP-3", 1200)])
    add_rma(world, order, tracking=tracking)
    with world.uow() as uow:
        receipt = receive_parcel(uow, world.ctx(), tracking)
    with world.uow() as uow:  # an event that only names the receipt its batch's first event wrote
        uow.add_outbox("note", "names-receipt", {"station_id": world.station_id, "rows": [],
                                                 "refs": {"parcel_receipts": [str(receipt.receipt_id)]}})
        uow.commit()
    return receipt


# One batch: the carrier and the event naming its row together. Batches of one: the carrier is
# in the batch central takes while the next is read ahead and resolved.
@pytest.mark.parametrize("batch_size", [BATCH_SIZE, 1])
def test_a_row_an_earlier_event_of_the_batch_carries_is_not_sent_again(
        world: World, central: Engine, monkeypatch: pytest.MonkeyPatch, batch_size: int) -> None:
    import db.push.apply
    import db.push.pipeline

    receipt = _received(world, "9400100000000000000056")
    applied: list[list[tuple[str, bool]]] = []
    fast = db.push.apply._apply_fast

    def watching(conn: Any, batch: list[Any], station_id: str | None, prepared: Any = None) -> Any:
        applied.extend([(r["table"], r.get("fill") is True) for r in e.payload["rows"]] for e in batch)
        return fast(conn, batch, station_id, prepared)

    monkeypatch.setattr(db.push.apply, "_apply_fast", watching)
    report = push_once(world.engine, central, station_id=world.station_id, batch_size=batch_size)
    assert (report.failed, report.pending_after) == (0, 0), report.errors
    assert applied[0].count(("parcel_receipts", False)) == 1  # the receiving event carries it
    assert ("parcel_receipts", True) not in applied[-1]  # the note that names it gets no copy
    with central.connect() as conn:
        assert conn.execute(select(ParcelReceipt.id).where(ParcelReceipt.id == receipt.receipt_id)).scalar_one()


@pytest.mark.parametrize("batch_size", [BATCH_SIZE, 1])
def test_a_row_set_aside_as_carried_is_sent_when_its_carrier_is_refused(
        world: World, central: Engine, batch_size: int) -> None:
    receipt = _received(world, "9400100000000000000063")
    with world.engine.begin() as conn:  # the receiving event is broken: central refuses it
        first = conn.execute(select(OutboxRow.id, OutboxRow.payload).where(OutboxRow.kind != "note")
                             .order_by(OutboxRow.id)).first()
        assert first is not None
        broken = dict(first.payload)
        broken["rows"] = [*broken["rows"], {"table": "nowhere", "values": {"id": 1}}]
        conn.execute(update(OutboxRow).where(OutboxRow.id == first.id).values(payload=broken))
    report = push_once(world.engine, central, station_id=world.station_id, batch_size=batch_size)
    assert report.failed == 1 and "nowhere" in report.errors[0], report.errors
    with world.engine.connect() as conn:
        waiting = set(conn.execute(select(OutboxRow.aggregate_id).where(OutboxRow.sent_at.is_(None))).scalars())
    assert "names-receipt" not in waiting  # the note landed, with the station's copy of the receipt
    with central.connect() as conn:
        assert conn.execute(select(ParcelReceipt.id).where(ParcelReceipt.id == receipt.receipt_id)).scalar_one()


# --- central gains a row between the push's look-up and its write (PostgreSQL: a second
# connection commits while the push's transaction is open) --------------------------------------

def _seed(world: World, pg_url: str, tables: tuple[str, ...]) -> None:
    from scripts.dev.benchmarks.sync import seed_central_from_station

    seed_central_from_station(Path(str(world.engine.url.database)), pg_url, tables)


def _on_first_call(monkeypatch: pytest.MonkeyPatch, name: str, before: Any = None, after: Any = None) -> None:
    """Run ``before``/``after`` around the first call of ``db.push.apply.<name>``."""
    import db.push.apply
    import db.push.pipeline

    real = getattr(db.push.apply, name)
    calls: list[int] = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        first = not calls
        calls.append(1)
        if first and before is not None:
            before()
        result = real(*args, **kwargs)
        if first and after is not None:
            after()
        return result

    monkeypatch.setattr(db.push.apply, name, wrapped)


@pytest.mark.postgres
def test_a_copy_that_fills_a_gap_never_overrides_the_row_central_gained_meanwhile(
        world: World, pg_central: Engine, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    receipt = _received(world, "9400100000000000000077")
    with world.engine.begin() as conn:  # only the note goes: central lacks the receipt it names
        conn.execute(update(OutboxRow).where(OutboxRow.kind != "note").values(sent_at=OutboxRow.created_at))
    _seed(world, pg_url, ("stations", "users"))
    with world.engine.connect() as conn:
        theirs = dict(conn.execute(select(ParcelReceipt.__table__).where(
            ParcelReceipt.id == receipt.receipt_id)).mappings().one())
    theirs["weight_reason"] = "weighed again at central"

    def central_gains_it() -> None:  # after the push looked (no receipt), before it writes
        with pg_central.begin() as conn:
            conn.execute(ParcelReceipt.__table__.insert().values(**theirs))

    _on_first_call(monkeypatch, "_identity_clash", before=central_gains_it)
    report = push_once(world.engine, pg_central, station_id=world.station_id)
    assert (report.failed, report.pending_after) == (0, 0), report.errors
    with pg_central.connect() as conn:
        assert conn.execute(select(ParcelReceipt.weight_reason).where(
            ParcelReceipt.id == receipt.receipt_id)).scalar_one() == "weighed again at central"


@pytest.mark.postgres
@pytest.mark.parametrize("when", ["before the push", "between the look-up and the COPY"])
def test_an_rma_id_central_gave_another_rma_is_refused_in_a_big_batch(
        world: World, pg_central: Engine, pg_url: str, monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    # 25 receptions: their RMAs are enough rows for the fast path's COPY straight into the table.
    rmas = []
    for n in range(25):
        order = add_order(world, [LineSpec("AP-9", 1500)])
        rmas.append(add_rma(world, order, tracking=f"94001000000000000{n + 100:05d}"))
        with world.uow() as uow:
            receive_parcel(uow, world.ctx(), f"94001000000000000{n + 100:05d}")
    _seed(world, pg_url, ("stations", "users", "customers", "orders", "order_lines", "shipments"))
    victim = rmas[7]
    with world.engine.connect() as conn:
        other = dict(conn.execute(select(ReturnAuthorization.__table__).where(
            ReturnAuthorization.id == victim.id)).mappings().one())
    other.update(number="RMA-CENTRAL-OWN", return_tracking_number=None, status="authorized",
                 created_at=other["created_at"] - timedelta(days=3))

    def central_gives_the_id_away() -> None:
        with pg_central.begin() as conn:
            conn.execute(ReturnAuthorization.__table__.insert().values(**other))

    if when == "before the push":
        central_gives_the_id_away()
    else:
        _on_first_call(monkeypatch, "_fresh_tables", after=central_gives_the_id_away)
    report = push_once(world.engine, pg_central, station_id=world.station_id)
    assert report.failed == 1 and "already another row at central" in report.errors[0], report.errors
    assert report.pushed == 24
    with pg_central.connect() as conn:
        numbers = dict(conn.execute(select(ReturnAuthorization.id, ReturnAuthorization.number)).all())
    assert numbers[victim.id] == "RMA-CENTRAL-OWN"  # nothing merged into central's RMA
    assert {numbers[r.id] for r in rmas if r.id != victim.id} == {r.number for r in rmas if r.id != victim.id}


@pytest.mark.postgres
def test_central_lost_while_the_next_batch_is_resolved_ends_the_pass_with_the_batch_before_kept(
        world: World, pg_central: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import db.push.apply
    import db.push.pipeline
    from console.errors import EnvironmentProblem

    _bench_steps(world)
    total = pending_count(world.engine)
    assert total >= 3
    real = db.push.pipeline._resolve_refs
    calls: list[str] = []

    def failing_on_the_second_read(conn: Any, central: Engine, *args: Any, **kwargs: Any) -> Any:
        calls.append(threading.current_thread().name)
        if len(calls) == 2:  # the first batch is resolved by the pushing thread, the second ahead
            assert calls[1].startswith("outbox-read"), calls
            raise db.push.pipeline.unreachable(central, OSError("connection reset by peer"), lost=True)
        return real(conn, central, *args, **kwargs)

    monkeypatch.setattr(db.push.pipeline, "_resolve_refs", failing_on_the_second_read)
    with pytest.raises(EnvironmentProblem):
        push_once(world.engine, pg_central, station_id=world.station_id, batch_size=1)
    assert pending_count(world.engine) == total - 1  # the batch central took is acknowledged
    assert pg_central.pool.checkedout() == 0  # both connections, the read-ahead's too, given back
    monkeypatch.undo()
    report = push_once(world.engine, pg_central, station_id=world.station_id, batch_size=1)
    assert (report.pushed, report.failed, report.pending_after) == (total - 1, 0, 0), report.errors
