"""`returns-console central import-orders`: the order system's export into central, all or nothing.

Against the real PostgreSQL (COPY into staging tables) and a SQLite central (executemany).
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from console.card_numbers import card_spans
from console.errors import InvalidInput
from console.order_import import CSV_COLUMNS, MAX_SHOWN, BadRows, import_orders, read_orders
from db.central import init_central, open_central
from db.engine import make_engine
from db.migrate import head_revision
from db.models import Customer, Order, OrderLine, Shipment
from db.order_load import OrderBatch, load_orders

REPO = Path(__file__).resolve().parents[2]
UTC = timezone.utc

BACKENDS = [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"]


@pytest.fixture(params=BACKENDS)
def central_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else str(tmp_path / "central.sqlite3")
    engine = make_engine(url)
    try:
        init_central(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def central(central_url: str) -> Iterator[Engine]:
    engine = make_engine(central_url)
    yield engine
    engine.dispose()


# --- the export ---------------------------------------------------------------------------------------
LINE: dict[str, str] = {
    "order_number": "W-1", "placed_at": "2024-05-01T10:00:00+02:00", "currency": "EUR", "channel": "app",
    "customer_email": "ann@example.com", "customer_name": "Ann Smith", "customer_phone": "+49 30 1234567",
    "customer_country": "de", "customer_address": "Hauptstr. 1\n10115 Berlin",
    "order_discount_minor": "500", "shipping_minor": "495", "shipping_tax_minor": "94",
    "payment_brand": "Visa", "payment_last4": "0042",
    "line_no": "1", "sku": "PHONE-1", "gtin": "4006381333931", "title": "Phone X", "category": "electronics",
    "quantity": "2", "unit_price_minor": "69900", "line_discount_minor": "0", "tax_minor": "13281",
    "weight_g": "180", "serial_numbers": "SN-A1|SN-A2", "carrier": "DHL",
    "tracking_number": "00340434161094000001", "shipped_at": "2024-05-02T09:00:00Z",
    "delivered_at": "2024-05-04T12:30:00+02:00",
}
NO_SHIPMENT = {"carrier": "", "tracking_number": "", "shipped_at": "", "delivered_at": ""}


def line(**changes: str) -> dict[str, str]:
    return {**LINE, **changes}


def bob(**changes: str) -> dict[str, str]:
    """An order with only what is required (channel, country, payment, shipment left out)."""
    return line(**{
        "order_number": "W-2", "placed_at": "2024-05-03T15:30:00-04:00", "currency": "USD", "channel": "",
        "customer_email": "bob@example.com", "customer_name": "Bob Jones", "customer_phone": "",
        "customer_country": "", "customer_address": "", "order_discount_minor": "0", "shipping_minor": "0",
        "shipping_tax_minor": "", "payment_brand": "", "payment_last4": "", "sku": "SHIRT-M", "gtin": "",
        "title": "Shirt", "category": "apparel", "quantity": "3", "unit_price_minor": "2500", "tax_minor": "0",
        "weight_g": "", "serial_numbers": "", **NO_SHIPMENT, **changes})


# Lines 2-3 (the address has a line break), 4-5, 6, 7, 8.
GOOD_ROWS = [
    line(),
    # The same instant written another way agrees with line 2's placed_at.
    line(placed_at="2024-05-01T08:00:00Z", line_no="2", sku="CASE-1", gtin="", title="Case",
         category="accessories", quantity="1", unit_price_minor="1999", line_discount_minor="200",
         tax_minor="342", weight_g="40", serial_numbers="", delivered_at="2024-05-04T10:30:00Z"),
    bob(),
    line(order_number="W-3", placed_at="2024-06-01T00:00:00Z", customer_email="ANN@example.com",
         customer_address="", order_discount_minor="0", shipping_minor="0", shipping_tax_minor="0",
         payment_last4="4242", line_no="1", sku="TABLET", gtin="", title="Tablet", quantity="1",
         unit_price_minor="30000", tax_minor="0", weight_g="500", serial_numbers="TB-1", carrier="UPS",
         tracking_number="1Z999AA10123456784", shipped_at="2024-06-02T00:00:00Z", delivered_at=""),
    line(order_number="W-3", placed_at="2024-06-01T00:00:00Z", customer_email="ANN@example.com",
         customer_address="", order_discount_minor="0", shipping_minor="0", shipping_tax_minor="0",
         payment_last4="4242", line_no="2", sku="PEN", gtin="", title="Pen", category="accessories",
         quantity="4", unit_price_minor="150", tax_minor="0", weight_g="10", serial_numbers="",
         carrier="UPS", tracking_number="1Z999AA10123456795", shipped_at="2024-06-03T00:00:00Z",
         delivered_at="2024-06-05T00:00:00+09:00"),
]
GOOD_JSON: dict[str, Any] = {"orders": [
    {"order_number": "W-1", "placed_at": "2024-05-01T10:00:00+02:00", "currency": "EUR", "channel": "app",
     "customer": {"email": "ann@example.com", "name": "Ann Smith", "phone": "+49 30 1234567", "country": "de",
                  "address": "Hauptstr. 1\n10115 Berlin"},
     "order_discount_minor": 500, "shipping_minor": 495, "shipping_tax_minor": 94, "payment_brand": "Visa",
     "payment_last4": "0042",
     "lines": [
         {"line_no": 1, "sku": "PHONE-1", "gtin": "4006381333931", "title": "Phone X", "category": "electronics",
          "quantity": 2, "unit_price_minor": 69900, "line_discount_minor": 0, "tax_minor": 13281, "weight_g": 180,
          "serial_numbers": ["SN-A1", "SN-A2"]},
         {"line_no": 2, "sku": "CASE-1", "title": "Case", "category": "accessories", "quantity": 1,
          "unit_price_minor": 1999, "line_discount_minor": 200, "tax_minor": 342, "weight_g": 40}],
     "shipments": [{"carrier": "DHL", "tracking_number": "00340434161094000001",
                    "shipped_at": "2024-05-02T09:00:00Z", "delivered_at": "2024-05-04T12:30:00+02:00",
                    "weight_g": 400}]},
    {"order_number": "W-2", "placed_at": "2024-05-03T15:30:00-04:00", "currency": "USD",
     "customer": {"email": "bob@example.com", "name": "Bob Jones"},
     "order_discount_minor": 0, "shipping_minor": 0,
     "lines": [{"line_no": 1, "sku": "SHIRT-M", "title": "Shirt", "category": "apparel", "quantity": 3,
                "unit_price_minor": 2500, "line_discount_minor": 0, "tax_minor": 0}]},
    {"order_number": "W-3", "placed_at": "2024-06-01T00:00:00Z", "currency": "EUR", "channel": "app",
     "customer": {"email": "ANN@example.com", "name": "Ann Smith", "phone": "+49 30 1234567", "country": "DE"},
     "order_discount_minor": 0, "shipping_minor": 0, "shipping_tax_minor": 0, "payment_brand": "Visa",
     "payment_last4": "4242",
     "lines": [
         {"line_no": 1, "sku": "TABLET", "title": "Tablet", "category": "electronics", "quantity": 1,
          "unit_price_minor": 30000, "line_discount_minor": 0, "tax_minor": 0, "weight_g": 500,
          "serial_numbers": ["TB-1"]},
         {"line_no": 2, "sku": "PEN", "title": "Pen", "category": "accessories", "quantity": 4,
          "unit_price_minor": 150, "line_discount_minor": 0, "tax_minor": 0, "weight_g": 10}],
     "shipments": [
         {"carrier": "UPS", "tracking_number": "1Z999AA10123456784", "shipped_at": "2024-06-02T00:00:00Z",
          "weight_g": 500},
         {"carrier": "UPS", "tracking_number": "1Z999AA10123456795", "shipped_at": "2024-06-03T00:00:00Z",
          "delivered_at": "2024-06-05T00:00:00+09:00", "weight_g": 40}]},
]}


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    columns = columns or list(CSV_COLUMNS)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(c, "") for c in columns])
    return path


def write_json(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.__tablename__: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (Customer, Order, OrderLine, Shipment)}


def check_loaded(engine: Engine) -> None:
    """What GOOD_ROWS and GOOD_JSON both say, as central holds it."""
    with Session(engine) as s:
        orders = {o.number: o for o in s.scalars(select(Order))}
        assert set(orders) == {"W-1", "W-2", "W-3"}
        w1, w2, w3 = orders["W-1"], orders["W-2"], orders["W-3"]
        assert w1.placed_at == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
        assert w1.placed_at.utcoffset() == timedelta(0)
        assert w2.placed_at == datetime(2024, 5, 3, 19, 30, tzinfo=UTC)
        assert (w1.currency, w1.channel, w2.channel) == ("EUR", "app", "web")
        assert (w1.order_discount_minor, w1.shipping_minor, w1.shipping_tax_minor) == (500, 495, 94)
        assert all(type(v) is int for v in (w1.order_discount_minor, w1.shipping_minor, w1.shipping_tax_minor))
        assert (w1.payment_brand, w1.payment_last4) == ("Visa", "0042")
        assert (w2.payment_brand, w2.payment_last4, w2.shipping_tax_minor) == (None, None, 0)

        # One customer for Ann, whatever the case of her e-mail; the first spelling is kept.
        assert w1.customer_id == w3.customer_id != w2.customer_id
        ann, bob_ = w1.customer, w2.customer
        assert (ann.email, ann.name, ann.phone, ann.country) == ("ann@example.com", "Ann Smith", "+49 30 1234567", "DE")
        assert ann.address == "Hauptstr. 1\n10115 Berlin"
        assert (ann.orders_count, ann.returns_count, ann.loyalty_tier) == (2, 0, "standard")
        assert (bob_.country, bob_.phone, bob_.address) == ("US", None, None)

        lines = {(ln.order.number, ln.line_no): ln for ln in s.scalars(select(OrderLine))}
        assert set(lines) == {("W-1", 1), ("W-1", 2), ("W-2", 1), ("W-3", 1), ("W-3", 2)}
        phone = lines[("W-1", 1)]
        assert (phone.sku, phone.gtin, phone.title, phone.category) == ("PHONE-1", "4006381333931", "Phone X",
                                                                        "electronics")
        assert (phone.quantity, phone.unit_price_minor, phone.line_discount_minor, phone.tax_minor,
                phone.weight_g) == (2, 69900, 0, 13281, 180)
        assert type(phone.unit_price_minor) is int
        assert phone.serial_numbers == ["SN-A1", "SN-A2"]
        case = lines[("W-1", 2)]
        assert (case.gtin, case.line_discount_minor, case.serial_numbers) == (None, 200, [])
        assert lines[("W-2", 1)].weight_g == 0
        assert lines[("W-3", 1)].serial_numbers == ["TB-1"]

        ships = {sh.tracking_number: sh for sh in s.scalars(select(Shipment))}
        assert set(ships) == {"00340434161094000001", "1Z999AA10123456784", "1Z999AA10123456795"}
        dhl = ships["00340434161094000001"]
        assert (dhl.order_id, dhl.carrier, dhl.status) == (w1.id, "DHL", "delivered")
        assert dhl.shipped_at == datetime(2024, 5, 2, 9, 0, tzinfo=UTC)
        assert dhl.delivered_at == datetime(2024, 5, 4, 10, 30, tzinfo=UTC)
        assert dhl.delivered_at.utcoffset() == timedelta(0)
        assert dhl.weight_g == 2 * 180 + 40  # a CSV shipment weighs its lines; the JSON says 400
        in_transit = ships["1Z999AA10123456784"]
        assert (in_transit.order_id, in_transit.status, in_transit.delivered_at) == (w3.id, "in_transit", None)
        assert ships["1Z999AA10123456795"].delivered_at == datetime(2024, 6, 4, 15, 0, tzinfo=UTC)


# --- good files ---------------------------------------------------------------------------------------
def test_csv_loads_every_order_with_its_values(central: Engine, tmp_path: Path) -> None:
    report = import_orders(central, write_csv(tmp_path / "orders.csv", GOOD_ROWS))
    assert (report.orders, report.lines, report.customers_new, report.shipments, report.already_present) == \
        (3, 5, 2, 3, 0)
    assert report.seconds >= 0
    check_loaded(central)


def test_json_loads_every_order_with_its_values(central: Engine, tmp_path: Path) -> None:
    report = import_orders(central, write_json(tmp_path / "orders.json", GOOD_JSON))
    assert (report.orders, report.lines, report.customers_new, report.shipments, report.already_present) == \
        (3, 5, 2, 3, 0)
    check_loaded(central)
    # A bare list works as well as {"orders": [...]}; all three are already there now.
    again = import_orders(central, write_json(tmp_path / "list.json", GOOD_JSON["orders"]))
    assert (again.orders, again.already_present) == (0, 3)


def test_importing_again_skips_orders_already_in_central(central: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "orders.csv", GOOD_ROWS)
    import_orders(central, path)
    before = counts(central)
    again = import_orders(central, path)
    assert (again.orders, again.lines, again.customers_new, again.shipments, again.already_present) == \
        (0, 0, 0, 0, 3)
    assert counts(central) == before
    check_loaded(central)  # orders_count not counted twice

    # A later export: two orders central has, one it lacks; its customer is known.
    later = write_csv(tmp_path / "later.csv", GOOD_ROWS[:3] + [
        bob(order_number="W-4", customer_email="Bob@Example.com", customer_name="Robert Jones")])
    report = import_orders(central, later)
    assert (report.orders, report.lines, report.customers_new, report.shipments, report.already_present) == \
        (1, 1, 0, 0, 2)
    with Session(central) as s:
        w4 = s.scalars(select(Order).where(Order.number == "W-4")).one()
        assert (w4.customer.email, w4.customer.name, w4.customer.orders_count) == ("bob@example.com", "Bob Jones", 2)


def test_an_existing_customer_is_reused_by_email(central: Engine, tmp_path: Path) -> None:
    with Session(central) as s:
        known = Customer(name="Bob J.", email="Bob@Example.COM", loyalty_tier="gold", orders_count=4)
        s.add(known)
        s.commit()
        known_id = known.id
    report = import_orders(central, write_csv(tmp_path / "orders.csv", GOOD_ROWS))
    assert report.customers_new == 1  # only Ann
    with Session(central) as s:
        w2 = s.scalars(select(Order).where(Order.number == "W-2")).one()
        assert w2.customer_id == known_id
        assert (w2.customer.name, w2.customer.loyalty_tier, w2.customer.orders_count) == ("Bob J.", "gold", 5)
        assert s.scalar(select(func.count()).select_from(Customer)) == 2


# --- bad rows -----------------------------------------------------------------------------------------
def bad(number: str, **changes: str) -> dict[str, str]:
    return line(**{"order_number": number, "customer_address": "", **NO_SHIPMENT, **changes})


# Appended to GOOD_ROWS (lines 2-8), so they are lines 9, 10, ...
BAD_ROWS: list[tuple[dict[str, str], str, str]] = [
    (bad("W-10", placed_at="2024-05-01T10:00:00"), "line 9, placed_at", "no UTC offset"),
    (bad("W-11", unit_price_minor="12.50"), "line 10, unit_price_minor", "whole minor units"),
    (bad("W-12", gtin="4006381333932"), "line 11, gtin", "wrong check digit"),
    (bad("W-13", title="paid with 4111 1111 1111 1111"), "line 12, title", "full card number"),
    (bad("W-14", payment_last4="42"), "line 13, payment_last4", "exactly 4 digits"),
    # W-1's line 1 again, address and all: lines 14-15.
    (line(), "line 14, line_no", "order W-1 has a line 1 already, on line 2"),
    (bob(line_no="2", currency="EUR"), "line 16, currency", "'EUR' disagrees with 'USD' on line 6 (order W-2)"),
    (bad("W-15", serial_numbers="a|b|c"), "line 17, serial_numbers", "3 serial numbers but the quantity is 2"),
    (bad("W-16", quantity="0"), "line 18, quantity", "at least 1"),
    (bad("W-17", currency="eur"), "line 19, currency", "3 upper-case letters"),
    (bad("W-18", sku=" "), "line 20, sku", "is missing"),
    (bad("W-19", carrier="DHL", tracking_number="00340434161094000001", shipped_at="2024-05-02T09:00:00Z"),
     "line 21, tracking_number", "already ships order W-1 (line 2)"),
    (bad("W-20", payment_last4="4242", customer_email="not an address"), "line 22, customer_email",
     "is not an e-mail address"),
    (bad("W-21", weight_g="-1"), "line 23, weight_g", "must not be negative"),
]


def test_bad_csv_rows_are_all_reported_by_line_and_nothing_is_loaded(central: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "orders.csv", GOOD_ROWS + [row for row, _, _ in BAD_ROWS])
    with pytest.raises(BadRows) as caught:
        import_orders(central, path)
    exc = caught.value
    got = {p.location: p.message for p in exc.problems}
    assert set(got) == {where for _, where, _ in BAD_ROWS}, got
    for _, where, words in BAD_ROWS:
        assert words in got[where], (where, got[where])
    assert (exc.total, exc.bad_rows) == (len(BAD_ROWS), len(BAD_ROWS))
    assert f"{len(BAD_ROWS)} problems in {len(BAD_ROWS)} lines" in exc.message
    assert "4111" not in " ".join(str(p) for p in exc.problems)  # a card number is never repeated back
    assert counts(central) == {"customers": 0, "orders": 0, "order_lines": 0, "shipments": 0}


def test_bad_json_fields_are_reported_by_path(central: Engine, tmp_path: Path) -> None:
    doc = json.loads(json.dumps(GOOD_JSON))
    orders = doc["orders"]
    orders[0]["lines"][1]["quantity"] = 0
    orders[0]["lines"][0]["colour"] = "red"
    orders[1]["placed_at"] = "2024-05-03T15:30:00"
    del orders[1]["customer"]["email"]
    orders[2]["payment_last4"] = "4111111111111111"
    orders[2]["lines"][0]["unit_price_minor"] = 299.99
    orders[2]["shipments"][1]["tracking_number"] = "1Z999AA10123456784"
    orders.append(["not", "an", "order"])
    orders.append({**orders[1], "placed_at": "2024-05-03T15:30:00Z", "customer": {"email": "x@example.com",
                                                                                  "name": "X"}})
    with pytest.raises(BadRows) as caught:
        import_orders(central, write_json(tmp_path / "orders.json", doc))
    got = {p.location: p.message for p in caught.value.problems}
    assert set(got) == {
        "orders[0].lines[0].colour", "orders[0].lines[1].quantity", "orders[1].placed_at",
        "orders[1].customer.email", "orders[2].payment_last4", "orders[2].lines[0].unit_price_minor",
        "orders[2].shipments[1].tracking_number", "orders[3]", "orders[4].order_number"}, got
    assert "not a field of an order line" in got["orders[0].lines[0].colour"]
    assert "no UTC offset" in got["orders[1].placed_at"]
    assert got["orders[1].customer.email"] == "is missing"
    assert "full card number" in got["orders[2].payment_last4"]
    assert "whole minor units" in got["orders[2].lines[0].unit_price_minor"]
    assert "listed twice for order W-3" in got["orders[2].shipments[1].tracking_number"]
    assert "W-2 is also the number of orders[1]" in got["orders[4].order_number"]
    assert (caught.value.total, caught.value.bad_rows) == (9, 5)
    assert counts(central) == {"customers": 0, "orders": 0, "order_lines": 0, "shipments": 0}


def test_at_most_fifty_problems_are_kept_but_all_are_counted(tmp_path: Path) -> None:
    rows = [bad(f"W-{n}", quantity="-2") for n in range(100, 180)]
    with pytest.raises(BadRows) as caught:
        read_orders(write_csv(tmp_path / "orders.csv", rows))
    assert len(caught.value.problems) == MAX_SHOWN
    assert caught.value.total == caught.value.bad_rows == 80
    assert caught.value.problems[0].location == "line 2, quantity"
    assert caught.value.problems[-1].location == f"line {MAX_SHOWN + 1}, quantity"


def test_a_tracking_number_central_already_has_refuses_the_whole_import(central: Engine, tmp_path: Path) -> None:
    import_orders(central, write_csv(tmp_path / "first.csv", GOOD_ROWS[:2]))
    before = counts(central)
    rows = GOOD_ROWS[2:] + [bad("W-30", customer_email="new@example.com", carrier="DHL",
                                tracking_number="00340434161094000001", shipped_at="2024-05-09T00:00:00Z")]
    with pytest.raises(BadRows) as caught:
        import_orders(central, write_csv(tmp_path / "second.csv", rows))
    assert [str(p) for p in caught.value.problems] == [
        "line 5, tracking_number: 00340434161094000001 already ships order W-1 in central; a tracking number "
        "belongs to one order"]
    assert counts(central) == before  # Bob, W-2, W-3 and the new customer: none of them


def test_a_failure_while_loading_leaves_central_as_it_was(central: Engine, tmp_path: Path) -> None:
    """One transaction: the customers and orders written before the failing line go too."""
    with central.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN "
                              "IF NEW.sku = 'BOOM' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$ "
                              "LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER boom BEFORE INSERT ON order_lines FOR EACH ROW EXECUTE FUNCTION boom()"))
        else:
            conn.execute(text("CREATE TRIGGER boom BEFORE INSERT ON order_lines WHEN NEW.sku = 'BOOM' "
                              "BEGIN SELECT RAISE(ABORT, 'boom'); END"))
    rows = GOOD_ROWS + [bad("W-40", sku="BOOM")]
    with pytest.raises(Exception, match="boom"):
        import_orders(central, write_csv(tmp_path / "orders.csv", rows))
    assert counts(central) == {"customers": 0, "orders": 0, "order_lines": 0, "shipments": 0}


# --- files that cannot be read ------------------------------------------------------------------------
def _header(columns: list[str] | None = None) -> str:
    return ",".join(columns or CSV_COLUMNS) + "\n"


@pytest.mark.parametrize(("name", "content", "words"), [
    ("missing.csv", None, "does not exist"),
    ("latin1.csv", _header().encode() + "W-1,caf\xe9\n".encode("latin-1"), "is not UTF-8"),
    ("empty.csv", b"", "is empty"),
    ("blank.csv", b"\n\n", "is empty"),
    ("header.csv", _header().encode(), "no order lines"),
    ("columns.csv", _header([c for c in CSV_COLUMNS if c not in ("sku", "quantity")]).encode(),
     "lacks the required columns sku, quantity"),
    ("unknown.csv", _header([*CSV_COLUMNS, "colour"]).encode(), "unknown column 'colour'"),
    ("twice.csv", _header([*CSV_COLUMNS, "sku"]).encode(), "names column sku twice"),
    ("quotes.csv", _header().encode() + b'W-1,"2024"x,EUR\n', "the CSV is malformed"),
    ("broken.json", b'{"orders": [{"order_number": "W-1",', "is not valid JSON"),
    ("latin1.json", '[{"title": "caf\xe9"}]'.encode("latin-1"), "is not UTF-8"),
    ("wrong.json", b'{"order": []}', "must hold a list of orders"),
    ("none.json", b"[]", "holds no orders"),
    ("empty.json", b"  \n", "is empty"),
    ("orders.txt", b"whatever", "cannot tell the format"),
])
def test_a_file_that_cannot_be_read_gives_one_clear_line(tmp_path: Path, name: str, content: bytes | None,
                                                         words: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InvalidInput) as caught:
        read_orders(path)
    assert not isinstance(caught.value, BadRows)
    assert words in caught.value.message
    assert "\n" not in caught.value.message


def test_an_excel_csv_with_a_byte_order_mark_reads_like_any_other(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "orders.csv", GOOD_ROWS)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    batch = read_orders(path)
    assert [o[0] for o in batch.orders] == ["W-1", "W-2", "W-3"]
    assert len(batch.lines) == 5


def test_card_numbers_hidden_in_json_numbers_or_serials_are_refused(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(GOOD_JSON))
    doc["orders"][0]["lines"][0]["unit_price_minor"] = 4111111111111111
    doc["orders"][0]["lines"][0]["serial_numbers"] = ["SN-A1", "5555 5555 5555 4444"]
    with pytest.raises(BadRows) as caught:
        read_orders(write_json(tmp_path / "orders.json", doc))
    got = {p.location: p.message for p in caught.value.problems}
    assert set(got) == {"orders[0].lines[0].unit_price_minor", "orders[0].lines[0].serial_numbers"}
    assert all("full card number" in m for m in got.values())
    assert "4111" not in str(got) and "5555" not in str(got)


def test_a_central_newer_than_this_console_is_refused(tmp_path: Path) -> None:
    from console.errors import EnvironmentProblem

    url = str(tmp_path / "central.sqlite3")
    engine = make_engine(url)
    init_central(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    engine.dispose()
    with pytest.raises(EnvironmentProblem, match="at schema 0999, newer than this console knows"):
        open_central(url, prepared=True)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    engine.dispose()
    with pytest.raises(EnvironmentProblem, match=f"is at schema 0001, this console needs {head_revision()}; run "
                                                 "`returns-console central init"):
        open_central(url, prepared=True)


def test_card_numbers_are_found_in_any_field_but_not_imeis_phones_or_gtins() -> None:
    assert card_spans("paid with 4111 1111 1111 1111, thanks") == [(10, 29)]
    assert card_spans("4111-1111-1111-1111")
    assert card_spans("378282246310005")  # Amex, 15 digits
    assert card_spans("ref 1234 5555555555554444")  # Mastercard after another number
    assert not card_spans("4111111111111112")  # fails Luhn
    assert not card_spans("356938035643809")  # an IMEI (Luhn valid, but 35... and 15 digits)
    assert not card_spans("+49 151 2345 6789 0")
    assert not card_spans("SN4111111111111111")  # part of a longer code
    assert not card_spans("00340434161094000001")  # 20 digits: an SSCC, not a card


# --- concurrency and ids ------------------------------------------------------------------------------
def generated_rows(prefix: str, orders: int) -> list[dict[str, str]]:
    rows = []
    for n in range(1, orders + 1):
        email = "shared@example.com" if n % 10 == 0 else f"{prefix.lower()}{n % 97}@example.com"
        for line_no in (1, 2):
            rows.append(bad(f"{prefix}-{n}", customer_email=email, line_no=str(line_no), sku=f"{prefix}-{n}/{line_no}",
                            gtin="", serial_numbers="", carrier="UPS", tracking_number=f"{prefix}T{n:06d}",
                            shipped_at="2024-05-02T09:00:00Z"))
    # The same order in both files: exactly one of the imports loads it.
    rows.append(bad("BOTH-1", customer_email="shared@example.com", sku="BOTH-1/1", gtin="", serial_numbers=""))
    return rows


def test_concurrent_imports_both_land_without_colliding(central_url: str, tmp_path: Path) -> None:
    batches: list[OrderBatch] = [read_orders(write_csv(tmp_path / f"{p}.csv", generated_rows(p, 400)))
                                 for p in ("A", "B")]
    engines = [make_engine(central_url) for _ in batches]
    start = threading.Barrier(len(batches))
    reports: list[Any] = [None] * len(batches)

    def run(i: int) -> None:
        start.wait()
        try:
            reports[i] = load_orders(engines[i], batches[i])
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            reports[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for engine in engines:
        engine.dispose()
    assert not any(isinstance(r, Exception) for r in reports), reports
    assert sum(r.orders for r in reports) == 801
    assert sorted(r.already_present for r in reports) == [0, 1]
    assert sum(r.lines for r in reports) == 1601
    engine = make_engine(central_url)
    try:
        assert counts(engine) == {"customers": 1 + 2 * 97, "orders": 801, "order_lines": 1601, "shipments": 800}
        with Session(engine) as s:
            shared = s.scalars(select(Customer).where(Customer.email == "shared@example.com")).one()
            assert shared.orders_count == 2 * 40 + 1
            # Every line hangs on its own order: no id was handed out twice.
            pairs = s.execute(select(Order.number, OrderLine.sku).join(OrderLine, OrderLine.order_id == Order.id)).all()
            assert len(pairs) == 1601
            assert all(sku.split("/")[0] == number for number, sku in pairs)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_ids_written_past_the_sequence_do_not_collide(pg_url: str, tmp_path: Path) -> None:
    engine = make_engine(pg_url)
    try:
        init_central(engine)
        with engine.begin() as conn:  # rows with explicit ids, as a station's data pushed up may bring
            for cid in (1, 2, 3):
                conn.execute(text("INSERT INTO customers (id, name, email, loyalty_tier, country, orders_count, "
                                  "returns_count, created_at) VALUES (:id, 'x', :email, 'standard', 'US', 0, 0, "
                                  "now())"), {"id": cid, "email": f"old{cid}@example.com"})
        report = import_orders(engine, write_csv(tmp_path / "orders.csv", GOOD_ROWS))
        assert report.customers_new == 2
        with engine.connect() as conn:
            ids = conn.execute(text("SELECT id FROM customers ORDER BY id")).scalars().all()
        assert ids == [1, 2, 3, 4, 5]
    finally:
        engine.dispose()


# --- the command --------------------------------------------------------------------------------------
def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console.cli", *argv], capture_output=True, text=True,
                          timeout=180, cwd=REPO, env={**os.environ})


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.postgres
def test_cli_init_then_import_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    proc = cli("central", "init", "--url", pg_url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("central database at postgresql://postgres@127.0.0.1:5432/test")
    assert proc.stdout.strip().endswith(f"is ready (schema {head_revision()})")
    assert cli("central", "init", "--url", pg_url).returncode == 0  # again: nothing to do

    path = write_csv(tmp_path / "orders.csv", GOOD_ROWS)
    proc = cli("--central", pg_url, "central", "import-orders", str(path))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == {"orders", "lines", "customers_new", "shipments", "already_present", "seconds",
                           "station_copies_replaced"}
    assert (report["orders"], report["lines"], report["customers_new"], report["shipments"],
            report["already_present"]) == (3, 5, 2, 3, 0)
    engine = make_engine(pg_url)
    try:
        check_loaded(engine)
    finally:
        engine.dispose()

    proc = cli("--central", pg_url, "central", "import-orders", str(path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["already_present"] == 3


@pytest.mark.postgres
def test_cli_reports_bad_rows_and_loads_nothing(pg_url: str, tmp_path: Path) -> None:
    assert cli("central", "init", "--url", pg_url).returncode == 0
    path = write_csv(tmp_path / "orders.csv", GOOD_ROWS + [row for row, _, _ in BAD_ROWS])
    proc = cli("--central", pg_url, "central", "import-orders", str(path), "--format", "csv")
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("line 9, placed_at: ")
    assert len(lines) == len(BAD_ROWS) + 1
    assert lines[-1] == (f"returns-console: {path}: {len(BAD_ROWS)} problems in {len(BAD_ROWS)} lines; nothing "
                         "was imported — fix the export and import it again")
    engine = make_engine(pg_url)
    try:
        assert counts(engine) == {"customers": 0, "orders": 0, "order_lines": 0, "shipments": 0}
    finally:
        engine.dispose()


def test_cli_on_a_sqlite_central_with_json(tmp_path: Path) -> None:
    central = tmp_path / "central.sqlite3"
    proc = cli("central", "init", "--url", str(central))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"central database at sqlite:///{central} is ready (schema {head_revision()})"
    path = write_json(tmp_path / "export.JSON", GOOD_JSON)
    proc = cli("--central", str(central), "central", "import-orders", str(path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["orders"] == 3
    engine = make_engine(str(central))
    try:
        check_loaded(engine)
    finally:
        engine.dispose()


def test_cli_one_line_when_central_is_unreachable() -> None:
    url = "postgresql://postgres:hunter2@127.0.0.1:1/test?connect_timeout=2"
    for argv in (("central", "init", "--url", url), ("--central", url, "central", "init")):
        proc = cli(*argv)
        assert proc.returncode == 1
        err = one_line(proc.stderr)
        assert err.startswith("returns-console: central database at postgresql://postgres@127.0.0.1:1/test")
        assert "is unreachable" in err
        assert "hunter2" not in err


@pytest.mark.postgres
def test_cli_one_line_when_central_is_not_prepared_or_the_file_is_missing(pg_url: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "orders.csv", GOOD_ROWS)
    proc = cli("central", "import-orders", str(path), "--url", pg_url)
    assert proc.returncode == 1
    assert "has no schema; run `returns-console central init" in one_line(proc.stderr)

    proc = cli("central", "import-orders", str(tmp_path / "nope.csv"), "--url", pg_url)
    assert proc.returncode == 1
    assert one_line(proc.stderr) == f"returns-console: {tmp_path / 'nope.csv'} does not exist; give the path of " \
                                    "the order export"

    proc = cli("central", "import-orders", str(path), "--url", str(tmp_path / "no-central.sqlite3"))
    assert proc.returncode == 1
    assert "does not exist; prepare it with `returns-console central init" in one_line(proc.stderr)
    assert not (tmp_path / "no-central.sqlite3").exists()
