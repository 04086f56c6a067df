"""The demo builder: deterministic, valid codes, consistent returns, and never a half-written file."""
from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from argon2 import PasswordHasher

import console.demo.data as demo
from console.checkdigits import is_valid_fedex12, is_valid_gtin, is_valid_mod7_12, is_valid_ups, is_valid_usps22
from console.codes import parse_rma, rma_number
from console.errors import EnvironmentProblem
from console.money import percent_of
from console.policy import load_policy
from console.signin import badge_hash
from db.engine import make_engine
from db.migrate import current_revision, head_revision, upgrade
from db.models import RMA_STATUSES

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)
ORDERS = 600
SEED = 7

VALID_TRACKING = {"UPS": is_valid_ups, "FedEx": is_valid_fedex12, "USPS": is_valid_usps22,
                  "Yamato": is_valid_mod7_12, "Sagawa": is_valid_mod7_12}
CURRENCY = {"US": "USD", "JP": "JPY", "CN": "CNY", "DE": "EUR", "GB": "GBP"}
TAX_BP = {"US": 800, "JP": 1000, "CN": 1300, "DE": 1900, "GB": 2000}
ITEM_STATES = {"authorized": ("awaiting", "pending"), "received": ("received", "pending"),
               "pending_review": ("received", "manual_review"), "closed": ("received", "accepted"),
               "canceled": ("awaiting", "pending"), "expired": ("awaiting", "pending")}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, demo.DemoSummary]:
    path = tmp_path_factory.mktemp("demo") / "station.sqlite3"
    summary = demo.generate_demo(path, orders=ORDERS, seed=SEED, now=NOW)
    return path, summary


@pytest.fixture
def db(built: tuple[Path, demo.DemoSummary]) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(built[0])
    try:
        yield conn
    finally:
        conn.close()


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in tables}
    finally:
        conn.close()


# --- the build --------------------------------------------------------------------------------
def test_same_seed_and_now_give_identical_rows_and_another_seed_differs(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3", tmp_path / "c.sqlite3"
    demo.generate_demo(a, orders=250, seed=3, now=NOW)
    demo.generate_demo(b, orders=250, seed=3, now=NOW)
    demo.generate_demo(c, orders=250, seed=4, now=NOW)
    first, second, other = dump(a), dump(b), dump(c)
    assert first["orders"] and first["return_items"], "the dump covers real rows"
    assert first == second
    for table in ("customers", "orders", "order_lines", "shipments", "return_authorizations", "users"):
        assert first[table] != other[table], table


def test_summary_counts_match_the_file(built: tuple[Path, demo.DemoSummary], db: sqlite3.Connection) -> None:
    _, summary = built
    data = summary.to_dict()
    for table in ("stations", "users", "policy_versions", "customers", "orders", "order_lines", "shipments",
                  "carrier_events", "return_authorizations", "return_items"):
        assert data[table] == db.execute(f"SELECT count(*) FROM {table}").fetchone()[0], table
    assert summary.orders == ORDERS and summary.customers == ORDERS // 3 + 1
    assert sum(summary.rma_statuses.values()) == summary.return_authorizations
    assert json.loads(json.dumps(data))["seconds"] >= 0


def test_file_is_at_the_alembic_head_in_wal_mode_and_nothing_is_left_beside_it(
        built: tuple[Path, demo.DemoSummary], db: sqlite3.Connection) -> None:
    path, _ = built
    engine = make_engine(str(path), must_exist=True)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert not path.with_suffix(".building").exists()


def test_an_interrupted_build_leaves_no_file_and_no_building_file(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk pulled mid-build")

    monkeypatch.setattr(demo._Build, "customers", explode)
    path = tmp_path / "station.sqlite3"
    with pytest.raises(RuntimeError, match="disk pulled"):
        demo.generate_demo(path, orders=300, seed=1, now=NOW)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_interrupted_rebuild_keeps_the_previous_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "station.sqlite3"
    demo.generate_demo(path, orders=120, seed=1, now=NOW)
    before = dump(path)
    # A stale half-built file from an earlier crash is cleared, not trusted.
    path.with_suffix(".building").write_bytes(b"half a database")
    def full_disk(*_args: object, **_kwargs: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(demo._Build, "orders", full_disk)
    with pytest.raises(OSError, match="no space"):
        demo.generate_demo(path, orders=500, seed=2, now=NOW)
    assert dump(path) == before
    assert not path.with_suffix(".building").exists()


def test_database_has_orders(tmp_path: Path, built: tuple[Path, demo.DemoSummary]) -> None:
    assert demo.database_has_orders(tmp_path / "missing.sqlite3") is False
    empty = tmp_path / "empty.sqlite3"
    engine = make_engine(str(empty))
    upgrade(engine)
    engine.dispose()
    assert demo.database_has_orders(empty) is False
    assert demo.database_has_orders(built[0]) is True


def test_naive_now_and_absurd_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="naive"):
        demo.generate_demo(tmp_path / "x.sqlite3", orders=10, seed=1, now=datetime(2026, 1, 1))
    with pytest.raises(EnvironmentProblem):
        demo.generate_demo(tmp_path / "x.sqlite3", orders=0, seed=1, now=NOW)
    assert list(tmp_path.iterdir()) == []


# --- reference data ------------------------------------------------------------------------------
def test_demo_users_station_and_policy(db: sqlite3.Connection) -> None:
    users = db.execute("SELECT id, username, display_name, role, password_hash, badge_hash "
                       "FROM users ORDER BY id").fetchall()
    assert [(u[1], u[2], u[3]) for u in users] == [tuple(u) for u in demo.DEMO_USERS]
    assert [u[0] for u in users] == [1, 2, 3, 4, 5]
    hasher = PasswordHasher()
    assert set(demo.DEMO_BADGES) == {u.username for u in demo.DEMO_USERS}
    for user in users:
        assert user[4].startswith("$argon2id$") and user[5].startswith("$argon2id$")
        assert hasher.verify(user[4], demo.DEMO_PIN)
        assert user[5] == badge_hash(demo.DEMO_BADGES[user[1]])
        assert demo.DEMO_BADGES[user[1]] not in user[5], "the badge code itself is never stored"
    assert len({u[5] for u in users}) == len(users)
    assert db.execute("SELECT id, name, site, time_zone FROM stations").fetchall() == [
        ("WH1-01", "Warehouse 1, bench 1", "WH1", "UTC")]
    policy = load_policy()
    assert db.execute("SELECT version, body FROM policy_versions").fetchall() == [(policy.version, policy.source)]


def test_customers_span_tiers_countries_and_scripts(db: sqlite3.Connection) -> None:
    rows = db.execute("SELECT name, email, loyalty_tier, country FROM customers").fetchall()
    tiers = Counter(r[2] for r in rows)
    assert set(tiers) == {"standard", "silver", "gold", "platinum"}
    assert tiers["standard"] > tiers["silver"] > tiers["gold"] > tiers["platinum"]
    assert {r[3] for r in rows} == set(CURRENCY)
    cjk = re.compile(r"[\u4e00-\u9fff]")
    japanese = [r[0] for r in rows if r[3] == "JP" and cjk.search(r[0])]
    chinese = [r[0] for r in rows if r[3] == "CN" and cjk.search(r[0])]
    assert japanese and all(" " in n for n in japanese), "Japanese names: family name, space, given name"
    assert chinese and all(re.fullmatch(r"[\u4e00-\u9fff]{2,3}", n) for n in chinese)
    assert any(re.fullmatch(r"[A-Za-zÀ-ÿ' ]+", r[0]) for r in rows), "Latin names too"
    assert all(re.fullmatch(r"[a-z0-9._]+@example\.[a-z.]+", r[1]) for r in rows)
    assert len({r[1] for r in rows}) == len(rows)


def test_every_customer_has_a_delivery_address_written_as_their_country_writes_it(db: sqlite3.Connection) -> None:
    rows = db.execute("SELECT country, address FROM customers").fetchall()
    assert all(address and 2 <= len(address.splitlines()) <= 3 for _, address in rows)
    by_country: dict[str, list[list[str]]] = {}
    for country, address in rows:
        by_country.setdefault(country, []).append(address.splitlines())
    assert all(re.fullmatch(r"〒\d{3}-\d{4}", lines[0]) and re.search(r"[都道府県]", lines[1])
               for lines in by_country["JP"])
    assert all(re.search(r"[\u4e00-\u9fff]+\d+号$", lines[0]) and re.fullmatch(r"邮编 \d{6}", lines[-1])
               for lines in by_country["CN"])
    assert all(re.fullmatch(r"[A-Za-z .]+, [A-Z]{2} \d{5}", lines[-1]) for lines in by_country["US"])
    assert all(re.fullmatch(r"\d{5} [A-Za-zäöüß ]+", lines[-1]) for lines in by_country["DE"])
    assert all(re.fullmatch(r"[A-Z]{1,2}\d{1,2}[A-Z]? \d[A-Z]{2}", lines[-1]) for lines in by_country["GB"])
    assert len({address for _, address in rows}) > len(rows) * 0.9  # not one address for everybody


def test_customer_counters_match_orders_and_returns(db: sqlite3.Connection) -> None:
    wrong = db.execute("""
        SELECT c.id FROM customers c
        WHERE c.orders_count != (SELECT count(*) FROM orders o WHERE o.customer_id = c.id)
           OR c.returns_count != (SELECT count(*) FROM return_authorizations r JOIN orders o ON o.id = r.order_id
                                  WHERE o.customer_id = c.id)""").fetchall()
    assert wrong == []
    assert db.execute("SELECT sum(returns_count) FROM customers").fetchone()[0] > 0


# --- orders ---------------------------------------------------------------------------------------
def test_every_gtin_is_valid_and_the_catalog_is_coherent(db: sqlite3.Connection) -> None:
    gtins = [r[0] for r in db.execute("SELECT gtin FROM order_lines")]
    assert gtins and all(g is not None and is_valid_gtin(g) for g in gtins)
    assert {len(g) for g in gtins} <= {12, 13}
    assert any(g.startswith(("45", "49")) and len(g) == 13 for g in gtins)
    products = demo.catalog()
    assert 250 <= len(products) <= 350
    assert len({p.gtin for p in products}) == len(products) == len({p.sku for p in products})
    assert all(re.fullmatch(r"(EL|AP|FW|HM|BT)-\d{5}", p.sku) for p in products)
    by_sku = {p.sku: p for p in products}
    for sku, gtin, category, weight in db.execute("SELECT DISTINCT sku, gtin, category, weight_g FROM order_lines"):
        assert (by_sku[sku].gtin, by_sku[sku].category, by_sku[sku].weight_g) == (gtin, category, weight)


def test_amounts_currency_tax_and_discounts_add_up(db: sqlite3.Connection) -> None:
    orders = db.execute("""
        SELECT o.id, o.currency, c.country, o.order_discount_minor, o.shipping_minor, o.shipping_tax_minor
        FROM orders o JOIN customers c ON c.id = o.customer_id""").fetchall()
    lines: dict[int, list[tuple[int, int, int, int]]] = {}
    for order_id, qty, unit, disc, tax in db.execute(
            "SELECT order_id, quantity, unit_price_minor, line_discount_minor, tax_minor FROM order_lines"):
        lines.setdefault(order_id, []).append((qty, unit, disc, tax))
    discounted = 0
    for order_id, currency, country, order_discount, shipping, shipping_tax in orders:
        assert currency == CURRENCY[country]
        assert 1 <= len(lines[order_id]) <= 4
        nets = 0
        for qty, unit, disc, tax in lines[order_id]:
            assert 1 <= qty <= 3 and unit > 0 and 0 <= disc < qty * unit
            net = qty * unit - disc
            assert tax == percent_of(net, TAX_BP[country])
            nets += net
        assert 0 <= order_discount <= nets
        discounted += order_discount > 0
        assert shipping_tax == percent_of(shipping, TAX_BP[country])
    assert 0.1 < discounted / len(orders) < 0.3, "about a fifth of the orders carry an order discount"
    yen = [r[0] for r in db.execute("SELECT unit_price_minor FROM order_lines "
                                    "WHERE order_id IN (SELECT id FROM orders WHERE currency = 'JPY')")]
    assert yen and all(p % 100 == 80 and 100 <= p <= 100_000 for p in yen), "whole yen, like ¥2,980"
    cents = [r[0] for r in db.execute("SELECT unit_price_minor FROM order_lines "
                                      "WHERE order_id IN (SELECT id FROM orders WHERE currency = 'USD')")]
    assert cents and all(p % 100 == 99 for p in cents), "USD minor units are cents, like $79.99"


def test_serial_numbers_are_per_electronics_unit_and_unique(db: sqlite3.Connection) -> None:
    serials: list[str] = []
    for category, qty, raw in db.execute("SELECT category, quantity, serial_numbers FROM order_lines"):
        line_serials = json.loads(raw)
        assert len(line_serials) == (qty if category == "electronics" else 0)
        serials += line_serials
    assert serials and all(re.fullmatch(r"SN[0-9A-Z]{10}", s) for s in serials)
    assert len(set(serials)) == len(serials)


def test_every_tracking_number_is_valid_for_its_carrier_and_unique(db: sqlite3.Connection) -> None:
    outbound = db.execute("SELECT s.carrier, s.tracking_number, c.country FROM shipments s "
                          "JOIN orders o ON o.id = s.order_id JOIN customers c ON c.id = o.customer_id").fetchall()
    returns = db.execute("SELECT return_carrier, return_tracking_number, channel FROM return_authorizations").fetchall()
    for carrier, number, *_ in outbound + [r for r in returns if r[1] is not None]:
        assert VALID_TRACKING[carrier](number), (carrier, number)
    carriers = Counter(r[0] for r in outbound)
    assert set(carriers) == set(VALID_TRACKING)
    assert all(r[0] in {"Yamato", "Sagawa"} for r in outbound if r[2] == "JP")
    assert all(r[0] == "UPS" for r in outbound if r[2] in ("CN", "DE", "GB"))
    numbers = [r[1] for r in outbound] + [r[1] for r in returns if r[1]]
    assert len(set(numbers)) == len(numbers)
    for carrier, number, channel in returns:
        assert (number is not None) == (channel == "mail") and (carrier is not None) == (channel == "mail")
        assert carrier in (None, "UPS", "USPS")


def test_shipments_follow_their_orders(db: sqlite3.Connection) -> None:
    rows = db.execute("""
        SELECT o.placed_at, s.shipped_at, s.delivered_at, s.status, s.weight_g,
               (SELECT sum(l.weight_g * l.quantity) FROM order_lines l WHERE l.order_id = o.id)
        FROM shipments s JOIN orders o ON o.id = s.order_id""").fetchall()
    assert len(rows) == ORDERS
    placed_min = datetime(2026, 6, 23, 15, 0).isoformat(" ")
    for placed, shipped, delivered, status, weight, units in rows:
        assert placed_min <= placed <= "2026-11-17 15:00:00" and shipped > placed
        assert (delivered is None) == (status != "delivered")
        if delivered is not None:
            assert shipped < delivered <= "2026-11-20 15:00:00"
            days = (datetime.fromisoformat(delivered) - datetime.fromisoformat(shipped)).total_seconds() / 86400
            assert 1 <= days <= 5
        assert units + 100 <= weight <= units + 300
    assert Counter(r[3] for r in rows)["delivered"] > 0.9 * len(rows)


# --- returns --------------------------------------------------------------------------------------
def test_rmas_cover_every_status_and_are_mostly_authorized(db: sqlite3.Connection) -> None:
    statuses = Counter(r[0] for r in db.execute("SELECT status FROM return_authorizations"))
    assert set(statuses) == set(RMA_STATUSES)
    assert statuses.most_common(1)[0][0] == "authorized"
    share = sum(statuses.values()) / ORDERS
    assert 0.08 < share < 0.18
    channels = Counter(r[0] for r in db.execute("SELECT channel FROM return_authorizations"))
    assert channels.most_common(1)[0][0] == "mail" and set(channels) == {"mail", "drop_off", "in_store"}


def test_rma_numbers_dates_and_reasons(db: sqlite3.Connection) -> None:
    reasons = set(load_policy().reasons)
    authorized_ages = []
    for rid, number, status, reason, created, closed, delivered in db.execute("""
            SELECT r.id, r.number, r.status, r.reason_code, r.created_at, r.closed_at, s.delivered_at
            FROM return_authorizations r JOIN shipments s ON s.order_id = r.order_id"""):
        assert number == rma_number(rid) and parse_rma(number) == number
        assert reason in reasons
        assert delivered is not None and delivered < created <= "2026-11-20 15:00:00"
        assert (closed is not None) == (status in ("closed", "canceled", "expired"))
        if status == "authorized":
            authorized_ages.append((NOW.replace(tzinfo=None) - datetime.fromisoformat(delivered)).days)
    within = sum(age <= 30 for age in authorized_ages)
    assert within > 0.8 * len(authorized_ages), "simulated returns are mostly inside the window"


def test_return_items_are_units_of_the_rmas_own_order_and_never_exceed_what_shipped(db: sqlite3.Connection) -> None:
    foreign = db.execute("""SELECT count(*) FROM return_items i JOIN return_authorizations r ON r.id = i.rma_id
                            JOIN order_lines l ON l.id = i.order_line_id WHERE l.order_id != r.order_id""").fetchone()
    assert foreign == (0,)
    over = db.execute("""SELECT i.order_line_id, count(*), l.quantity FROM return_items i
                         JOIN order_lines l ON l.id = i.order_line_id
                         GROUP BY i.order_line_id HAVING count(*) > l.quantity""").fetchall()
    assert over == []
    assert db.execute("SELECT count(*) FROM return_authorizations r WHERE NOT EXISTS "
                      "(SELECT 1 FROM return_items i WHERE i.rma_id = r.id)").fetchone() == (0,)
    multi = db.execute("SELECT count(*) FROM (SELECT order_line_id FROM return_items GROUP BY order_line_id "
                       "HAVING count(*) > 1)").fetchone()[0]
    assert multi > 0, "a line of several units comes back as several return items"
    reasons = set(load_policy().reasons)
    assert all(r[0] in reasons for r in db.execute("SELECT reason_code FROM return_items"))


def test_return_item_states_follow_the_rma_status(db: sqlite3.Connection) -> None:
    rows = db.execute("""SELECT r.status, i.reception_status, i.acceptance_status, i.received_serial, l.serial_numbers
                         FROM return_items i JOIN return_authorizations r ON r.id = i.rma_id
                         JOIN order_lines l ON l.id = i.order_line_id""").fetchall()
    for status, reception, acceptance, received_serial, serials in rows:
        assert (reception, acceptance) == ITEM_STATES[status]
        if received_serial is not None:
            assert reception == "received" and received_serial in json.loads(serials)
    assert {r[0] for r in rows} == set(RMA_STATUSES)


def test_carrier_events_only_for_shipments_of_returned_orders(db: sqlite3.Connection) -> None:
    events = db.execute("""SELECT e.shipment_id, e.code, e.occurred_at, s.shipped_at, s.delivered_at
                           FROM carrier_events e JOIN shipments s ON s.id = e.shipment_id
                           ORDER BY e.shipment_id, e.occurred_at""").fetchall()
    by_shipment: dict[int, list[tuple[str, str, str, str]]] = {}
    for shipment_id, *rest in events:
        by_shipment.setdefault(shipment_id, []).append(tuple(rest))  # type: ignore[arg-type]
    returned = {r[0] for r in db.execute("SELECT s.id FROM shipments s JOIN return_authorizations r "
                                         "ON r.order_id = s.order_id")}
    assert set(by_shipment) == returned
    for seq in by_shipment.values():
        assert [e[0] for e in seq] == ["picked_up", "in_transit", "delivered"]
        assert seq[0][1] == seq[0][2] and seq[-1][1] == seq[-1][3]


# --- parcels --------------------------------------------------------------------------------------
def test_parcel_contents_is_pure_and_mixes_every_scenario() -> None:
    numbers = [rma_number(i) for i in range(1, 2001)]
    plans = [demo.parcel_contents(n, 11) for n in numbers]
    assert plans == [demo.parcel_contents(n, 11) for n in numbers]
    assert plans != [demo.parcel_contents(n, 12) for n in numbers]
    mix = Counter(p.scenario for p in plans)
    assert set(mix) == set(demo.SCENARIOS)
    assert 0.84 < mix["clean"] / len(plans) < 0.92
    assert all(mix[s] >= 20 for s in demo.SCENARIOS)
    assert all(-30 <= p.weight_delta_g <= 30 for p in plans)


def _plan(scenario: str) -> demo.ParcelPlan:
    return next(p for p in (demo.parcel_contents(rma_number(i), 5) for i in range(1, 5000)) if p.scenario == scenario)


def _expected() -> list[tuple[str | None, str | None, int]]:
    products = demo.catalog()
    phone = next(p for p in products if p.category == "electronics")
    shirt = next(p for p in products if p.category == "apparel")
    return [(phone.gtin, "SNA000000001", phone.weight_g), (shirt.gtin, None, shirt.weight_g),
            (shirt.gtin, None, shirt.weight_g)]


def test_a_clean_parcel_scans_serials_or_gtins_and_weighs_what_it_should() -> None:
    expected = _expected()
    plan = _plan("clean")
    weight, codes = demo.plan_scans(plan, expected, 150)
    assert codes == [expected[0][1], expected[1][0], expected[2][0]]
    assert weight == sum(e[2] for e in expected) + 150 + plan.weight_delta_g


def test_an_empty_box_weighs_about_the_packaging_and_has_nothing_to_scan() -> None:
    weight, codes = demo.plan_scans(_plan("empty_box"), _expected(), 150)
    assert codes == [] and 120 <= weight <= 180


def test_a_swapped_item_is_another_product_of_the_same_category() -> None:
    expected = _expected()
    plan = _plan("swapped_item")
    weight, codes = demo.plan_scans(plan, expected, 150)
    clean = [serial or gtin for gtin, serial, _ in expected]
    changed = [i for i, (got, want) in enumerate(zip(codes, clean, strict=True)) if got != want]
    assert changed == [plan.pick % len(expected)]
    by_gtin = {p.gtin: p for p in demo.catalog()}
    i = changed[0]
    stranger, original = by_gtin[codes[i]], by_gtin[expected[i][0] or ""]
    assert stranger.gtin not in {e[0] for e in expected} and stranger.category == original.category
    assert weight == sum(e[2] for e in expected) - original.weight_g + stranger.weight_g + 150 + plan.weight_delta_g


def test_a_wrong_serial_was_never_shipped_and_falls_back_to_a_swap_without_serials() -> None:
    expected = _expected()
    plan = _plan("wrong_serial")
    _, codes = demo.plan_scans(plan, expected, 150)
    assert expected[0][1] not in codes and plan.fake_serial in codes
    assert re.fullmatch(r"SN[YZ][0-9A-Z]{9}", plan.fake_serial or "")
    no_serials = [e for e in expected if e[1] is None]
    _, codes = demo.plan_scans(plan, no_serials, 150)
    assert len(codes) == 2 and set(codes) != {no_serials[0][0]}


def test_an_extra_item_adds_one_unit_not_on_the_rma() -> None:
    expected = _expected()
    plan = _plan("extra_item")
    weight, codes = demo.plan_scans(plan, expected, 150)
    assert len(codes) == 4 and codes[-1] not in {e[0] for e in expected} and is_valid_gtin(codes[-1])
    extra = {p.gtin: p for p in demo.catalog()}[codes[-1]]
    assert weight == sum(e[2] for e in expected) + extra.weight_g + 150 + plan.weight_delta_g


def test_demo_parcels_replay_against_a_built_database(db: sqlite3.Connection) -> None:
    """What the simulator does: expected units from the RMA, the parcel from the number and seed."""
    rmas = db.execute("SELECT id, number FROM return_authorizations WHERE status = 'authorized' ORDER BY id").fetchall()
    assert rmas
    for rma_id, number in rmas:
        used: Counter[int] = Counter()
        expected = []
        for line_id, gtin, raw, weight in db.execute(
                "SELECT l.id, l.gtin, l.serial_numbers, l.weight_g FROM return_items i "
                "JOIN order_lines l ON l.id = i.order_line_id WHERE i.rma_id = ? ORDER BY i.id", (rma_id,)):
            serials = json.loads(raw)
            expected.append((gtin, serials[used[line_id]] if serials else None, weight))
            used[line_id] += 1
        plan = demo.parcel_contents(number, 1)
        weight, codes = demo.plan_scans(plan, expected, 150)
        assert (weight, codes) == demo.plan_scans(demo.parcel_contents(number, 1), expected, 150)
        if plan.scenario == "clean":
            assert codes == [s or g for g, s, _ in expected]
            assert abs(weight - sum(e[2] for e in expected) - 150) <= 30
