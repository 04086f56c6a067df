"""Today's parcels at this station (the history screen), on real SQLite files and real services."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from console.context import Actor
from console.deciding import DecideCommand, decide
from console.errors import InvalidInput
from console.history import ParcelRow, count_todays_parcels, local_day_bounds, todays_parcels
from console.inspection import inspect_item
from console.money import Money
from console.receiving import add_rma_to_parcel, receive_parcel, scan_item
from console.undo import undo_last
from console.unexpected import match_unidentified, record_unidentified
from db.models import Customer, Order, ReturnAuthorization, ReturnItem, Station
from tests.tools.factories import NOW, LineSpec, World, add_order, add_rma, make_world

UTC = timezone.utc


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "station.sqlite3")
    yield w
    w.engine.dispose()


def _zoned_world(tmp_path: Path, zone: str) -> World:
    return make_world(tmp_path / f"station-{zone.replace('/', '-')}.sqlite3", zone=zone)


def _receive(world: World, code: str, at: datetime, **weight: object) -> uuid.UUID:
    world.clock.now = at
    with world.uow() as uow:
        return receive_parcel(uow, world.ctx(), code, **weight).receipt_id  # type: ignore[arg-type]


def _scan(world: World, receipt_id: uuid.UUID, code: str) -> str:
    with world.uow() as uow:
        return scan_item(uow, world.ctx(), receipt_id, code).result


def _items(world: World, rma_id: int) -> list[ReturnItem]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(ReturnItem).where(ReturnItem.rma_id == rma_id).order_by(ReturnItem.id)))


def _rows(world: World, at: datetime | None = None, **kwargs: object) -> list[ParcelRow]:
    if at is not None:
        world.clock.now = at
    with world.uow() as uow:
        return todays_parcels(uow.session, world.ctx(), **kwargs)  # type: ignore[arg-type]


def _count(world: World, search: str = "") -> int:
    with world.uow() as uow:
        return count_todays_parcels(uow.session, world.ctx(), search=search)


def _rename_customer(world: World, order: Order, name: str) -> None:
    with world.uow() as uow:
        customer = uow.session.get(Customer, order.customer_id)
        assert customer is not None
        customer.name = name
        uow.commit()


def _unidentified(world: World, at: datetime, code: str | None = None, weight_g: int | None = 640) -> uuid.UUID:
    """A parcel nothing identified, recorded as the bench does: in quarantine, with no RMA."""
    world.clock.now = at
    with world.uow() as uow:
        return record_unidentified(uow, world.ctx(), code, weight_g=weight_g,
                                   weight_source="scale" if weight_g is not None else None, weight_reason=None,
                                   photos=[], note="brown box, no slip")


# --- what "today" is ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("zone", "now", "yesterday", "today"), [
    # 01:00 on 21 Nov in Tokyo: today began at 15:00 UTC on the 20th, the same UTC date as yesterday's parcel.
    ("Asia/Tokyo", datetime(2026, 11, 20, 16, 0, tzinfo=UTC),
     datetime(2026, 11, 20, 14, 59, 59, tzinfo=UTC),
     [datetime(2026, 11, 20, 15, 0, tzinfo=UTC), datetime(2026, 11, 20, 15, 30, tzinfo=UTC)]),
    # 23:00 on 20 Nov in New York: the UTC date is already the 21st.
    ("America/New_York", datetime(2026, 11, 21, 4, 0, tzinfo=UTC),
     datetime(2026, 11, 20, 4, 59, 59, tzinfo=UTC),
     [datetime(2026, 11, 20, 5, 0, tzinfo=UTC), datetime(2026, 11, 21, 3, 59, tzinfo=UTC)]),
    # 1 Nov 2026 in New York has 25 hours (DST ends): 23:30 local is 04:30 UTC on the 2nd.
    ("America/New_York", datetime(2026, 11, 2, 4, 45, tzinfo=UTC),
     datetime(2026, 11, 1, 3, 59, tzinfo=UTC),
     [datetime(2026, 11, 1, 4, 0, tzinfo=UTC), datetime(2026, 11, 2, 4, 30, tzinfo=UTC)]),
])
def test_only_parcels_of_the_stations_local_day(tmp_path: Path, zone: str, now: datetime, yesterday: datetime,
                                                today: list[datetime]) -> None:
    world = _zoned_world(tmp_path, zone)
    try:
        world.clock.now = yesterday - timedelta(days=1)
        rmas = [add_rma(world, add_order(world, [LineSpec(f"AP-{n}", 1000)])) for n in range(4)]
        world.clock.now = now
        start, end = local_day_bounds(world.ctx())
        assert start.utcoffset() == timedelta(0) and end.utcoffset() == timedelta(0)
        assert yesterday < start <= today[0] and today[-1] < end
        before = _receive(world, rmas[0].number, yesterday)
        inside = [_receive(world, rmas[1].number, today[0]), _receive(world, rmas[2].number, today[1])]
        tomorrow = _receive(world, rmas[3].number, end)  # local midnight that ends today: not today
        rows = _rows(world, now)
        assert [r.receipt_id for r in rows] == inside[::-1], "today's only, newest first"
        assert [r.received_at for r in rows] == today[::-1]
        assert {before, tomorrow}.isdisjoint(r.receipt_id for r in rows)
        assert _count(world) == 2
    finally:
        world.engine.dispose()


def test_parcels_of_another_station_are_not_listed(world: World) -> None:
    with world.uow() as uow:
        uow.session.add(Station(id="WH1-02", name="Bench 2"))
        uow.commit()
    mine = add_rma(world, add_order(world, [LineSpec("AP-1", 1000)]))
    theirs = add_rma(world, add_order(world, [LineSpec("AP-2", 1000)]))
    here = _receive(world, mine.number, NOW)
    world.station_id = "WH1-02"
    _receive(world, theirs.number, NOW + timedelta(minutes=1))
    world.station_id = "WH1-01"
    assert [r.receipt_id for r in _rows(world)] == [here]
    assert _count(world) == 1


# --- what a row says --------------------------------------------------------------------------------
def test_states_and_columns_of_open_review_decided_and_unidentified_parcels(world: World) -> None:
    # open: one of two units scanned, one scan flagged, the parcel far too light
    open_order = add_order(world, [LineSpec("AP-1", 2500, weight_g=400), LineSpec("AP-2", 1500, weight_g=300)])
    open_rma = add_rma(world, open_order)
    open_id = _receive(world, open_rma.number, NOW, weight_g=200, weight_source="scale")
    assert _scan(world, open_id, "AP-1") == "matched"
    assert _scan(world, open_id, "ZZ-404") == "not_on_order"

    # decided: a clean full refund, received by Mei
    clean_order = add_order(world, [LineSpec("AP-7", 4000, weight_g=400)])
    clean_rma = add_rma(world, clean_order)
    world.actor = Actor(2, "mei", "Mei", "supervisor")
    clean_id = _receive(world, clean_rma.number, NOW + timedelta(minutes=1), weight_g=560, weight_source="scale")
    assert _scan(world, clean_id, "AP-7") == "matched"
    with world.uow() as uow:
        inspect_item(uow, world.ctx(), _items(world, clean_rma.id)[0].id, "A")
    with world.uow() as uow:
        clean = decide(uow, world.ctx(), DecideCommand(clean_rma.id))
    assert clean.status == "approved"
    world.actor = Actor(1, "aiko", "Aiko", "clerk")

    # review: an empty box for an expensive unit, refunded anyway
    risky_order = add_order(world, [LineSpec("EL-1", 30000, category="electronics", weight_g=1330,
                                             serials=("SNAAA111",))], currency="EUR")
    risky_rma = add_rma(world, risky_order)
    risky_id = _receive(world, risky_rma.number, NOW + timedelta(minutes=2), weight_g=120, weight_source="scale")
    assert _scan(world, risky_id, "SNBBB222") == "serial_not_shipped"
    with world.uow() as uow:
        risky = decide(uow, world.ctx(), DecideCommand(risky_rma.id, "full_refund",
                                                       tuple(i.id for i in _items(world, risky_rma.id))))
    assert risky.status == "pending_review"

    lost_id = _unidentified(world, NOW + timedelta(minutes=3))

    rows = {r.receipt_id: r for r in _rows(world, NOW + timedelta(minutes=5))}
    assert list(rows) == [lost_id, risky_id, clean_id, open_id]

    o = rows[open_id]
    assert (o.state, o.rma_numbers, o.order_numbers, o.customer_names, o.clerk) == (
        "open", (open_rma.number,), (open_order.number,), (_customer(world, open_order),), "Aiko")
    assert (o.weight_g, o.expected_weight_g, o.weight_mismatch) == (200, 400 + 300 + 150, True)
    assert (o.units_scanned, o.units_expected, o.flags) == (1, 2, 1)
    assert (o.decision_kind, o.amount_minor, o.currency, o.decision_status) == (None, None, None, "not decided")
    assert o.amount is None and o.scanned_code == open_rma.number
    assert (o.order_number, o.customer_name) == (open_order.number, _customer(world, open_order))

    d = rows[clean_id]
    assert (d.state, d.clerk, d.weight_mismatch, d.units_scanned, d.units_expected, d.flags) == (
        "decided", "Mei", False, 1, 1, 0)
    assert (d.decision_kind, d.amount_minor, d.currency, d.decision_status) == (
        clean.kind, clean.amount.minor, "USD", "decided")
    assert d.amount == clean.amount and clean.amount.minor > 0

    r = rows[risky_id]
    assert (r.state, r.weight_mismatch, r.units_scanned, r.units_expected, r.flags) == ("review", True, 0, 1, 1)
    assert (r.decision_kind, r.amount, r.decision_status) == (
        "full_refund", Money(risky.amount.minor, "EUR"), "waiting for review")

    u = rows[lost_id]
    assert (u.state, u.rma_numbers, u.order_number, u.customer_name) == ("unidentified", (), None, None)
    assert (u.weight_g, u.expected_weight_g, u.weight_mismatch, u.units_scanned, u.units_expected) == (
        640, None, False, 0, 0)
    assert u.decision_status == "not decided"


def _customer(world: World, order: Order) -> str:
    with world.uow() as uow:
        customer = uow.session.get(Customer, order.customer_id)
        assert customer is not None
        return customer.name


def test_a_parcel_with_two_rmas_of_two_orders(world: World) -> None:
    first = add_order(world, [LineSpec("AP-1", 1000, gtin="4901234567894")])
    second = add_order(world, [LineSpec("AP-2", 2000, gtin="0012345678905")])
    rma_a, rma_b = add_rma(world, first), add_rma(world, second)
    _rename_customer(world, first, "Hina Sato")
    _rename_customer(world, second, "Ren Ito")
    receipt_id = _receive(world, rma_a.number, NOW)
    with world.uow() as uow:
        add_rma_to_parcel(uow, world.ctx(), receipt_id, rma_b.number)
    assert _scan(world, receipt_id, "4901234567894") == "matched"
    with world.uow() as uow:
        inspect_item(uow, world.ctx(), _items(world, rma_a.id)[0].id, "A")
    with world.uow() as uow:
        decide(uow, world.ctx(), DecideCommand(rma_a.id))
    [row] = _rows(world)
    assert row.rma_numbers == tuple(sorted((rma_a.number, rma_b.number)))
    assert row.order_numbers == (first.number, second.number)
    assert row.customer_names == ("Hina Sato", "Ren Ito") and row.customer_name == "Hina Sato, Ren Ito"
    assert row.order_number == f"{first.number}, {second.number}"
    assert (row.units_scanned, row.units_expected) == (1, 2)
    assert row.state == "open", "the second RMA still waits for the clerk"
    assert row.decision_status == "decided" and row.decision_kind == "full_refund"


# --- search -------------------------------------------------------------------------------------------
@pytest.fixture
def searchable(world: World) -> dict[str, object]:
    shoes = add_order(world, [LineSpec("FW-5521", 9000, gtin="4006381333931", weight_g=800)])
    phone = add_order(world, [LineSpec("EL-7700", 30000, category="electronics", serials=("SNQX5501",)),
                              LineSpec("AP-3301", 1500)])
    shirt = add_order(world, [LineSpec("AP-1200", 2000)])
    _rename_customer(world, shoes, "Jürgen MÜLLER")
    _rename_customer(world, phone, "陈伟")
    _rename_customer(world, shirt, "Olivia Smith")
    shoes_rma = add_rma(world, shoes, tracking="1Z999AA10123456784")
    phone_rma, shirt_rma = add_rma(world, phone), add_rma(world, shirt)
    ids = {
        "shoes": _receive(world, "1z 999 aa1 0123 4567 84", NOW),  # the return label, typed with spaces
        "phone": _receive(world, phone_rma.number, NOW + timedelta(minutes=1)),
        "shirt": _receive(world, shirt_rma.number, NOW + timedelta(minutes=2)),
        "lost": _unidentified(world, NOW + timedelta(minutes=3), code="smudged-7781"),
    }
    assert _scan(world, ids["phone"], "SNQX5501") == "matched"
    assert _scan(world, ids["shirt"], "5901234123457") == "not_on_order"
    return {"ids": ids, "orders": (shoes, phone, shirt), "rmas": (shoes_rma, phone_rma, shirt_rma)}


@pytest.mark.parametrize(("search", "expected"), [
    ("", ["lost", "shirt", "phone", "shoes"]),
    ("müller", ["shoes"]),  # names: any case, beyond ASCII
    ("JÜRGEN", ["shoes"]),
    ("陈", ["phone"]),
    ("smith", ["shirt"]),
    ("1z999aa1", ["shoes"]),  # the parcel's scanned label
    ("1Z 999", ["shoes"]),
    ("snqx5501", ["phone"]),  # a unit's serial as scanned
    ("5901234123457", ["shirt"]),  # a flagged scan is searchable too
    ("ap-3301", ["phone"]),  # a SKU on the parcel's RMA that was never scanned
    ("fw-5521", ["shoes"]),
    ("smudged", ["lost"]),
    ("nothing-like-this", []),
])
def test_search_by_each_field(world: World, searchable: dict[str, object], search: str,
                              expected: list[str]) -> None:
    ids: dict[str, uuid.UUID] = searchable["ids"]  # type: ignore[assignment]
    names = {v: k for k, v in ids.items()}
    rows = _rows(world, NOW + timedelta(minutes=10), search=search)
    assert [names[r.receipt_id] for r in rows] == expected
    assert _count(world, search) == len(expected)


def test_search_by_rma_and_order_number(world: World, searchable: dict[str, object]) -> None:
    ids: dict[str, uuid.UUID] = searchable["ids"]  # type: ignore[assignment]
    orders: tuple[Order, ...] = searchable["orders"]  # type: ignore[assignment]
    rmas: tuple[ReturnAuthorization, ...] = searchable["rmas"]  # type: ignore[assignment]
    world.clock.now = NOW + timedelta(minutes=10)
    for key, order, rma in zip(("shoes", "phone", "shirt"), orders, rmas, strict=True):
        for search in (rma.number.lower(), order.number, order.number.lower().replace("so-", "")):
            assert [r.receipt_id for r in _rows(world, search=search)] == [ids[key]], search
    # A search finds today's parcels only, however well yesterday's matches.
    assert _rows(world, NOW + timedelta(days=1), search=rmas[0].number) == []


# --- counts and pages -------------------------------------------------------------------------------
def test_counts_pages_and_their_limits(world: World) -> None:
    rmas = [add_rma(world, add_order(world, [LineSpec(f"HM-{n}", 1000, category="home")])) for n in range(5)]
    ids = [_receive(world, rma.number, NOW + timedelta(minutes=n)) for n, rma in enumerate(rmas)]
    newest_first = ids[::-1]
    world.clock.now = NOW + timedelta(hours=1)
    assert _count(world) == 5
    assert [r.receipt_id for r in _rows(world)] == newest_first
    assert [r.receipt_id for r in _rows(world, limit=2)] == newest_first[:2]
    assert [r.receipt_id for r in _rows(world, limit=2, offset=2)] == newest_first[2:4]
    assert [r.receipt_id for r in _rows(world, limit=2, offset=4)] == newest_first[4:]
    assert _rows(world, limit=0) == []
    assert [r.receipt_id for r in _rows(world, search="hm-", limit=2, offset=1)] == newest_first[1:3]
    assert _count(world, "HM-") == 5 and _count(world, "hm-3") == 1
    for bad in ({"limit": -1}, {"offset": -1}, {"limit": 100_000}):
        with pytest.raises(InvalidInput):
            _rows(world, **bad)


def test_an_empty_day(world: World) -> None:
    assert _rows(world) == [] and _count(world) == 0 and _count(world, "anything") == 0


# --- later steps change what a row says ----------------------------------------------------------------
def test_a_scan_taken_back_no_longer_counts_or_matches(world: World) -> None:
    rma = add_rma(world, add_order(world, [LineSpec("AP-5", 1000), LineSpec("AP-6", 1000)]))
    receipt_id = _receive(world, rma.number, NOW)
    assert _scan(world, receipt_id, "AP-5") == "matched"
    assert _scan(world, receipt_id, "QQ-777") == "not_on_order"
    [row] = _rows(world)
    assert (row.units_scanned, row.flags, _count(world, "qq-777")) == (1, 1, 1)
    with world.uow() as uow:
        undo_last(uow, world.ctx(), receipt_id)  # the flagged scan
    [row] = _rows(world)
    assert (row.units_scanned, row.flags, _count(world, "qq-777")) == (1, 0, 0)
    with world.uow() as uow:
        undo_last(uow, world.ctx(), receipt_id)  # the matched one
    [row] = _rows(world)
    assert (row.units_scanned, row.units_expected, row.flags) == (0, 2, 0)


def test_an_unidentified_parcel_matched_later_is_open_on_its_rma(world: World) -> None:
    order = add_order(world, [LineSpec("BT-9", 1800, category="beauty")])
    rma = add_rma(world, order)
    receipt_id = _unidentified(world, NOW)
    [row] = _rows(world)
    assert row.state == "unidentified"
    world.clock.now = NOW + timedelta(minutes=20)
    with world.uow() as uow:
        match_unidentified(uow, world.ctx(), receipt_id, rma.number)
    [row] = _rows(world)
    assert (row.state, row.rma_numbers, row.order_number, row.units_expected) == (
        "open", (rma.number,), order.number, 1)
    assert row.received_at == NOW, "listed by when the parcel came in, not when it was matched"
