"""Central holds the money (migration 0012): what a station says a refund, a claim's verdict or a
user's disabling is worth counts only as central's own orders and its signers' keys allow.

Each attack runs through a station's own login (``central station add``) on the real PostgreSQL
server: an edited station file, an edited outbox, or SQL written straight over the login."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import Engine

from console.central_admin import confirm_keys, station_states
from console.claim_review import settle_claim
from console.context import Actor, StationContext
from console.errors import NotAllowed
from console.order_import import import_orders
from console.rmas import add_event
from console.signin import set_pin, sign_in
from console.users_admin import disable_user
from db.central import init_central
from db.engine import make_engine
from db.models import (
    Claim, Decision, DecisionLine, Order, OrderLine, OutboxRow, RefusedVerdict, ReturnAuthorization, ReturnItem, User,
)
from db.pull import pull_once
from db.push import pending_count, push_once
from db.uow import UnitOfWork
from tests.tools.factories import NOW, LineSpec, World, add_order, make_world
from tests.sync.test_central_door import login as login  # noqa: F401 - a station's own login at central
from tests.sync.test_central_door import Login, orders_at_central
from tests.sync.test_central_rules import station as station  # noqa: F401 - the station with its supervisors
from tests.sync.test_pull import settle
from tests.sync.test_sync import T0, decide

pytestmark = pytest.mark.postgres

AIKO = Actor(1, "aiko", "Aiko", "clerk")
PINS = {"mei": "2468", "kenji": "8642"}


@pytest.fixture
def central(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    init_central(engine)
    with UnitOfWork.for_engine(engine) as uow:  # central's own users, as the stations know them
        uow.session.add_all([User(id=1, username="aiko", display_name="Aiko", role="clerk", password_hash="x"),
                             User(id=2, username="mei", display_name="Mei", role="supervisor", password_hash="x"),
                             User(id=3, username="kenji", display_name="Kenji", role="admin", password_hash="x")])
        uow.commit()
    yield engine
    engine.dispose()


def _push(station: Engine, as_station: Engine) -> Any:
    return push_once(station, as_station, station_id="WH1-01")


def _decision_at_central(central: Engine, decision_id: uuid.UUID) -> str | None:
    with central.connect() as conn:
        return conn.execute(select(Decision.status).where(Decision.id == decision_id)).scalar()


def _edit_outbox(station: Engine, decision_id: uuid.UUID, **values: Any) -> None:
    """The unsent event's JSON edited by hand: the decision row says ``values``."""
    with UnitOfWork.for_engine(station) as uow:
        event = uow.session.scalars(select(OutboxRow).where(OutboxRow.aggregate_id == str(decision_id))).one()
        payload = dict(event.payload)
        payload["rows"] = [dict(r, values={**r["values"], **values}) if r["table"] == "decisions" else r
                           for r in payload["rows"]]
        event.payload = payload
        uow.commit()


# -- refunds within what was paid ----------------------------------------------------------------

def test_a_refund_above_what_central_says_the_line_cost_is_refused(central: Engine, login: Login,
                                                                   station: Engine) -> None:
    as_wh1 = login("WH1-01")
    orders_at_central(station, central)  # the order as the order system sent it
    honest = decide(station, 101)
    assert _push(station, as_wh1).failed == 0
    # The station's file edited: the USD 25.00 mug now "cost" USD 600.00, and USD 552.94 goes back.
    with station.begin() as conn:
        conn.execute(update(OrderLine).where(OrderLine.id == 2).values(unit_price_minor=60000))
    inflated = decide(station, 102, amount_minor=55294)
    report = _push(station, as_wh1)
    assert report.failed == 1 and pending_count(station) == 1
    assert "a unit of order line 2 cost at most 2500 (2500 for 1 unit(s)), but a decision says it was paid 60000" \
        in report.errors[0], report.errors
    assert _decision_at_central(central, inflated) is None
    assert _decision_at_central(central, honest) == "approved"
    with central.connect() as conn:  # central's order line is still the order system's
        assert conn.execute(select(OrderLine.unit_price_minor).where(OrderLine.id == 2)).scalar_one() == 2500


def test_a_decision_that_pays_more_than_its_units_refunds_is_refused(central: Engine, login: Login,
                                                                     station: Engine) -> None:
    as_wh1 = login("WH1-01")
    ten_times = decide(station, 101)
    _edit_outbox(station, ten_times, amount_minor=46990)  # the lines still refund USD 46.99
    other_money = decide(station, 102)
    _edit_outbox(station, other_money, currency="KWD")  # 2,200 fils are USD 7,000 or so
    shipping = decide(station, 103)
    _edit_outbox(station, shipping, shipping_refund_minor=5000, amount_minor=900 + 5000)  # shipping was free
    report = _push(station, as_wh1)
    assert report.failed == 3, report.errors
    errors = " | ".join(report.errors)
    assert "pays 46990, but its units' refunds and shipping come to 4699" in errors
    assert "pays in KWD, but its order SO-1000001 was paid in USD" in errors
    assert "refund 5000 of shipping, which cost 0" in errors
    assert [_decision_at_central(central, d) for d in (ten_times, other_money, shipping)] == [None, None, None]


def test_a_refund_against_an_order_only_the_station_had_waits_for_a_supervisor(central: Engine, login: Login,
                                                                             station: Engine) -> None:
    """What the caps check is only as good as the order: one central never had from the order
    system is the station's word (it could have made it up, prices and all)."""
    as_wh1 = login("WH1-01")
    made_up = decide(station, 101)
    report = _push(station, as_wh1)
    assert (report.pushed, report.failed) == (1, 0), report.errors
    with central.connect() as conn:
        status, reasons = conn.execute(select(Decision.status, Decision.review_reasons)
                                       .where(Decision.id == made_up)).one()
        assert conn.execute(select(Order.from_station).where(Order.id == 1)).scalar_one() == "WH1-01"
    assert status == "pending_review"
    assert reasons == ["held at central: order SO-1000001 is station WH1-01's copy, not one the order system sent "
                       "central: check it against the order before approving"]
    settle(as_wh1)
    pull_once(station, as_wh1)  # the station learns so, although the fast path wrote it
    with station.connect() as conn:
        assert conn.execute(select(Decision.status).where(Decision.id == made_up)).scalar_one() == "pending_review"


def test_a_line_a_station_added_to_a_real_order_holds_its_refund(central: Engine, login: Login,
                                                                 station: Engine) -> None:
    as_wh1 = login("WH1-01")
    orders_at_central(station, central)
    with UnitOfWork.for_engine(station) as uow:  # a fourth, expensive line the order never had
        uow.session.add(OrderLine(id=4, order_id=1, line_no=4, sku="SKU-104", title="Camera", category="photo",
                                  quantity=1, unit_price_minor=99900, serial_numbers=[]))
        uow.session.flush()
        uow.session.add(ReturnItem(id=104, rma_id=1, order_line_id=4, reason_code="changed_mind"))
        uow.commit()
    genuine, added = decide(station, 101), decide(station, 104)
    report = _push(station, as_wh1)
    assert (report.pushed, report.failed) == (2, 0), report.errors
    with central.connect() as conn:
        rows = {r.id: (r.status, r.review_reasons) for r in conn.execute(
            select(Decision.id, Decision.status, Decision.review_reasons))}
    held = ("pending_review", ["held at central: line 4 of order SO-1000001 is station WH1-01's copy, not one the "
                               "order system sent central: check it against the order before approving"])
    # The real line's refund too: a made-up line also shifts the real lines' share of a discount.
    assert rows[added] == held and rows[genuine] == held


def _order_system_export(station: Engine, path: Any, **prices: int) -> Any:
    """Order 1 as the order system exports it: the station's own rows, with the real unit price of
    the lines named ``line<N>=``."""
    from db.models import Customer, Shipment

    with station.connect() as conn:
        order = conn.execute(select(Order.__table__).where(Order.id == 1)).one()
        customer = conn.execute(select(Customer.__table__).where(Customer.id == order.customer_id)).one()
        lines = conn.execute(select(OrderLine.__table__).where(OrderLine.order_id == 1)
                             .order_by(OrderLine.line_no)).all()
        shipments = conn.execute(select(Shipment.__table__).where(Shipment.order_id == 1)).all()
    doc = {"order_number": order.number, "placed_at": order.placed_at.isoformat(), "currency": order.currency,
           "customer": {"email": customer.email, "name": customer.name},
           "order_discount_minor": order.order_discount_minor, "shipping_minor": order.shipping_minor,
           "lines": [{"line_no": ln.line_no, "sku": ln.sku, "title": ln.title, "category": ln.category,
                      "quantity": ln.quantity, "line_discount_minor": ln.line_discount_minor, "tax_minor": ln.tax_minor,
                      "unit_price_minor": prices.get(f"line{ln.line_no}", ln.unit_price_minor)}
                     for ln in lines if ln.line_no < 4],
           "shipments": [{"carrier": sh.carrier, "tracking_number": sh.tracking_number,
                          "shipped_at": sh.shipped_at.isoformat()} for sh in shipments if sh.shipped_at]}
    path.write_text(json.dumps({"orders": [doc]}), encoding="utf-8")
    return path


def test_the_order_systems_export_replaces_a_stations_copy_of_an_order(central: Engine, login: Login,
                                                                       station: Engine, tmp_path: Any) -> None:
    """A station's copy came first and made the mug cost USD 600; the order system's export then
    puts the real order in its place: the held case stays for the supervisor, the station pulls
    the real price, and the next refund is checked against it."""
    as_wh1 = login("WH1-01")
    with station.begin() as conn:
        conn.execute(update(OrderLine).where(OrderLine.id == 2).values(unit_price_minor=60000))
    held = decide(station, 102, amount_minor=55294)
    assert _push(station, as_wh1).failed == 0
    assert _decision_at_central(central, held) == "pending_review"

    report = import_orders(central, _order_system_export(station, tmp_path / "orders.json", line2=2500))
    assert (report.orders, report.already_present, report.station_copies_replaced) == (0, 0, 1)
    with central.connect() as conn:
        assert conn.execute(select(Order.from_station).where(Order.id == 1)).scalar_one() is None
        assert conn.execute(select(OrderLine.unit_price_minor, OrderLine.from_station)
                            .where(OrderLine.order_id == 1, OrderLine.line_no == 2)).one() == (2500, None)
    assert _decision_at_central(central, held) == "pending_review"  # a supervisor still looks at it
    settle(as_wh1)
    pull_once(station, as_wh1)
    with station.connect() as conn:  # the station has the order system's price now
        assert conn.execute(select(OrderLine.unit_price_minor).where(OrderLine.id == 2)).scalar_one() == 2500
    # Refunds of the order are now checked against what was really paid, and no longer held.
    honest = decide(station, 101)
    assert _push(station, as_wh1).failed == 0
    assert _decision_at_central(central, honest) == "approved"
    # The same export again changes nothing more.
    again = import_orders(central, tmp_path / "orders.json")
    assert (again.orders, again.already_present, again.station_copies_replaced) == (0, 1, 0)


def test_a_line_a_station_added_stays_its_word_after_the_export(central: Engine, login: Login,
                                                                station: Engine, tmp_path: Any) -> None:
    as_wh1 = login("WH1-01")
    orders_at_central(station, central)
    with UnitOfWork.for_engine(station) as uow:
        uow.session.add(OrderLine(id=4, order_id=1, line_no=4, sku="SKU-104", title="Camera", category="photo",
                                  quantity=1, unit_price_minor=99900, serial_numbers=[]))
        uow.session.flush()
        uow.session.add(ReturnItem(id=104, rma_id=1, order_line_id=4, reason_code="changed_mind"))
        uow.commit()
    decide(station, 104)
    assert _push(station, as_wh1).failed == 0
    report = import_orders(central, _order_system_export(station, tmp_path / "orders.json"))
    assert report.station_copies_replaced == 1
    with central.connect() as conn:
        assert conn.execute(select(OrderLine.from_station).where(OrderLine.order_id == 1, OrderLine.line_no == 4)
                            ).scalar_one() == "WH1-01"
    later = decide(station, 101)
    assert _push(station, as_wh1).failed == 0
    assert _decision_at_central(central, later) == "pending_review"  # the made-up line still holds the order


def test_a_unit_refunded_in_full_after_an_order_discount_lands(central: Engine, login: Login,
                                                               station: Engine) -> None:
    """Central's cap never falls below what the station's own allocation of the discount gives."""
    from console.refunds import LineCharge, paid_per_unit

    as_wh1 = login("WH1-01")
    with station.begin() as conn:  # USD 1.00 off the whole order, before anything reaches central
        conn.execute(update(Order).where(Order.id == 1).values(order_discount_minor=100))
        lines = conn.execute(select(OrderLine).order_by(OrderLine.id)).all()
    orders_at_central(station, central)
    paid = paid_per_unit([LineCharge(ln.id, ln.quantity, ln.unit_price_minor, ln.line_discount_minor, ln.tax_minor)
                          for ln in lines], 100)
    assert sorted(paid[ln.id][0] for ln in lines) != sorted(ln.unit_price_minor for ln in lines)
    decided = [decide(station, item, paid_minor=paid[item - 100][0], amount_minor=paid[item - 100][0])
               for item in (101, 102, 103)]
    report = _push(station, as_wh1)
    assert (report.pushed, report.failed) == (3, 0), report.errors
    assert [_decision_at_central(central, d) for d in decided] == ["approved"] * 3


def test_an_exchange_that_pays_or_a_bonus_on_a_refund_is_refused(central: Engine, login: Login,
                                                                 station: Engine) -> None:
    as_wh1 = login("WH1-01")
    exchange = decide(station, 101)
    _edit_outbox(station, exchange, kind="exchange")
    bonus = decide(station, 102)
    _edit_outbox(station, bonus, store_credit_bonus_minor=100000)
    report = _push(station, as_wh1)
    errors = " | ".join(report.errors)
    assert report.failed == 2 and "(exchange) pays nothing, but says 4699" in errors, errors
    assert "(partial_refund) adds a store-credit bonus of 100000 to 2200" in errors
    assert [_decision_at_central(central, d) for d in (exchange, bonus)] == [None, None]


def test_a_second_refund_of_a_shipped_unit_written_straight_is_refused(central: Engine, login: Login,
                                                                       station: Engine) -> None:
    as_wh1 = login("WH1-01")
    decide(station, 101)  # order line 1 (one unit) refunded
    assert _push(station, as_wh1).failed == 0
    # Over the station's login, past the station's own checks: a second RMA for the same unit.
    decision_id = uuid.uuid4()
    with pytest.raises(Exception, match="rc_order_line_units|order line 1 shipped 1 unit"):
        with as_wh1.begin() as conn:
            conn.execute(ReturnAuthorization.__table__.insert().values(
                id=2, number="R-00000002", order_id=1, channel="mail", reason_code="changed_mind",
                created_at=T0))
            conn.execute(ReturnItem.__table__.insert().values(
                id=201, rma_id=2, order_line_id=1, reason_code="changed_mind", reception_status="received",
                acceptance_status="accepted"))
            conn.execute(Decision.__table__.insert().values(
                id=decision_id, rma_id=2, order_id=1, kind="full_refund", status="approved", amount_minor=4999,
                store_credit_bonus_minor=0, shipping_refund_minor=0, currency="USD", refund_method="original_payment",
                policy_version="2026.1", review_reasons=[], decided_by_id=1, station_id="WH1-01", decided_at=T0))
            conn.execute(DecisionLine.__table__.insert().values(
                decision_id=decision_id, return_item_id=201, paid_minor=4999, refund_minor=4999, grade="A",
                active=True))
    assert _decision_at_central(central, decision_id) is None


# -- claims' verdicts and disablings, signed -------------------------------------------------------

@pytest.fixture
def world(tmp_path: Any) -> Iterator[World]:
    w = make_world(tmp_path / "station.sqlite3")
    with w.uow() as uow:
        uow.session.add(User(id=3, username="kenji", display_name="Kenji", role="admin", password_hash="x"))
        uow.commit()
    for user_id, name in ((2, "mei"), (3, "kenji")):
        with w.uow() as uow:
            set_pin(uow, user_id, PINS[name])
    yield w
    w.engine.dispose()


def _sync(world: World, as_station: Engine) -> None:
    report = push_once(world.engine, as_station, station_id=world.station_id)
    assert report.failed == 0, report.errors
    settle(as_station)
    pull_once(world.engine, as_station)


def _signed_in(world: World, central: Engine, as_station: Engine, name: str) -> Actor:
    """``name`` signs in at the station (enrolling a key), which central's admin confirms."""
    with world.uow() as uow:
        actor = sign_in(uow, world.station_id, name, PINS[name], NOW)
    assert actor.signer is not None
    _sync(world, as_station)
    confirm_keys(central, name, actor.signer.fingerprint, confirmed_by="test")
    _sync(world, as_station)
    return actor


def _open_claim(world: World, as_station: Engine, amount: int = 4500) -> uuid.UUID:
    """A delivery claim made by aiko at the station and handed in to central, waiting."""
    order = add_order(world, [LineSpec("AP-1", amount)])
    claim_id = uuid.uuid4()
    with world.uow() as uow:
        claim = Claim(id=claim_id, order_id=order.id, kind="not_received", status="pending_review",
                      amount_minor=amount, currency="USD", created_by_id=1, created_at=world.clock.now, evidence={})
        uow.session.add(claim)
        uow.session.flush()
        add_event(uow, world.ctx(AIKO), "claim_opened", claim_id, [], [claim])
        uow.commit()
    _sync(world, as_station)
    return claim_id


def _claim(engine: Engine, claim_id: uuid.UUID) -> tuple[str, int, int | None]:
    with engine.connect() as conn:
        row = conn.execute(select(Claim.status, Claim.amount_minor, Claim.settled_by_id)
                           .where(Claim.id == claim_id)).one()
    return row.status, row.amount_minor, row.settled_by_id


def _refusals(central: Engine) -> list[tuple[str, str]]:
    with central.connect() as conn:
        return [(r.subject, r.reason) for r in conn.execute(
            select(RefusedVerdict.subject, RefusedVerdict.reason).order_by(RefusedVerdict.detected_at))]


def test_a_claims_verdict_counts_at_central_only_signed_by_its_supervisor(world: World, central: Engine,
                                                                         login: Login) -> None:
    as_wh1 = login("WH1-01")
    mei = _signed_in(world, central, as_wh1, "mei")
    claim_id = _open_claim(world, as_wh1)
    assert _claim(central, claim_id) == ("pending_review", 4500, None)

    # Written straight over the station's login: settled by mei, no proof. Central keeps it waiting.
    with as_wh1.begin() as conn:
        conn.execute(update(Claim).where(Claim.id == claim_id).values(
            status="approved", outcome="refund", settled_by_id=2, settled_at=NOW, review_note="ok"))
    assert _claim(central, claim_id) == ("pending_review", 4500, None)
    assert _refusals(central)[-1] == ("claim", "claim verdict refused: it carries no signature of mei, which only "
                                               "their PIN or badge can make")

    # Signed at the station for USD 40.00, then the outbox edited to pay what was claimed.
    with world.uow() as uow:
        settle_claim(uow, world.ctx(mei), claim_id, "carrier confirms the loss", amount_minor=4000)
    with world.uow() as uow:
        event = uow.session.scalars(select(OutboxRow).where(OutboxRow.kind == "claim_settled")).one()
        payload = dict(event.payload)
        payload["rows"] = [dict(r, values={**r["values"], "amount_minor": 4500}) if r["table"] == "claims" else r
                           for r in payload["rows"]]
        event.payload = payload
        uow.commit()
    _sync(world, as_wh1)
    assert _claim(central, claim_id) == ("pending_review", 4500, None)
    assert _refusals(central)[-1] == ("claim", "claim verdict refused: what it says is not what mei signed")
    assert _claim(world.engine, claim_id)[0] == "pending_review"  # the station shows it waiting again

    # The genuine verdict counts; once settled, a station changes nothing of it.
    with world.uow() as uow:
        settle_claim(uow, world.ctx(mei), claim_id, "carrier confirms the loss", amount_minor=4000)
    _sync(world, as_wh1)
    assert _claim(central, claim_id) == ("approved", 4000, 2)
    with as_wh1.begin() as conn:
        conn.execute(update(Claim).where(Claim.id == claim_id).values(amount_minor=450000, status="approved"))
    assert _claim(central, claim_id) == ("approved", 4000, 2)
    # An admin sees the two refusals beside the station's last sync.
    [wh1] = [s for s in station_states(central) if s.station_id == "WH1-01"]
    assert wh1.refused_verdicts == 2 and wh1.to_dict()["refused_verdicts"] == 2


def test_a_claim_sent_settled_with_a_key_the_station_made_up_arrives_waiting(world: World, central: Engine,
                                                                           login: Login) -> None:
    as_wh1 = login("WH1-01")
    _signed_in(world, central, as_wh1, "mei")
    order = add_order(world, [LineSpec("AP-1", 4500)])
    claim_id = uuid.uuid4()
    with world.uow() as uow:  # made and settled offline; the verdict signed by a key minted for mei
        claim = Claim(id=claim_id, order_id=order.id, kind="damaged_in_transit", status="pending_review", amount_minor=4500,
                      currency="USD", created_by_id=1, created_at=world.clock.now, evidence={})
        uow.session.add(claim)
        uow.commit()
    with world.uow() as uow:
        settle_claim(uow, world.ctx(Actor(2, "mei", "Mei", "supervisor")), claim_id, "fine")  # the world's own key
    _sync(world, as_wh1)
    assert _claim(central, claim_id) == ("pending_review", 4500, None)
    assert _refusals(central)[-1] == ("claim", "claim verdict refused: it is signed with a key central does not "
                                               "hold for mei")


def test_a_station_admin_disables_a_user_at_central_only_with_their_signature(world: World, central: Engine,
                                                                              login: Login) -> None:
    as_wh1 = login("WH1-01")
    kenji = _signed_in(world, central, as_wh1, "kenji")
    # The station's word alone: an admin's id, no proof (as a station could always send).
    with as_wh1.connect() as conn:
        done = conn.execute(text("SELECT rc_disable_user(2, 3, NULL)")).scalar_one()
        conn.commit()
    assert done is False
    assert _refusals(central)[-1] == ("user_disabled", "disabling refused: it carries no signature of kenji, which "
                                                       "only their PIN or badge can make")
    with central.connect() as conn:
        assert conn.execute(select(User.active).where(User.id == 2)).scalar_one() is True
    # Without kenji's open key the station says so before anything is written.
    unsigned = StationContext(world.station_id, world.zone, world.policy, Actor(3, "kenji", "Kenji", "admin"),
                              world.clock)
    with world.uow() as uow, pytest.raises(NotAllowed, match="Kenji's own signature"):
        disable_user(uow, unsigned, 2)
    # Signed at the station: central stops mei everywhere.
    with world.uow() as uow:
        disable_user(uow, world.ctx(kenji), 2)
    _sync(world, as_wh1)
    with central.connect() as conn:
        assert conn.execute(select(User.active).where(User.id == 2)).scalar_one() is False


def test_a_signed_disabling_sent_again_after_central_enabled_the_user_stops_nobody(world: World, central: Engine,
                                                                                   login: Login) -> None:
    """The signature proves the admin disabled mei once; kept and replayed over the station's login
    after central enabled mei again, it must not stop her a second time (migration 0014)."""
    as_wh1 = login("WH1-01")
    kenji = _signed_in(world, central, as_wh1, "kenji")
    with world.uow() as uow:
        disable_user(uow, world.ctx(kenji), 2)
    _sync(world, as_wh1)
    with central.begin() as conn:
        assert conn.execute(select(User.active).where(User.id == 2)).scalar_one() is False
        signed = conn.execute(text("SELECT details -> 'signature' FROM audit_events "
                                   "WHERE action = 'user_disabled' AND entity_id = '2'")).scalar_one()
        conn.execute(update(User).where(User.id == 2).values(active=True))  # central enables mei again
    with as_wh1.connect() as conn:
        done = conn.execute(text("SELECT rc_disable_user(2, 3, CAST(:sig AS json))"),
                            {"sig": json.dumps(signed)}).scalar_one()
        conn.commit()
    assert done is False
    subject, reason = _refusals(central)[-1]
    assert subject == "user_disabled"
    assert reason.startswith("disabling refused: kenji's signature of it was used at ") and \
        reason.endswith("already; an admin who wants the user stopped again signs a new disabling"), reason
    with central.connect() as conn:
        assert conn.execute(select(User.active).where(User.id == 2)).scalar_one() is True
    # A new disabling, newly signed, stops mei again.
    _sync(world, as_wh1)  # the station learns mei is enabled again
    with world.uow() as uow:
        disable_user(uow, world.ctx(kenji), 2)
    _sync(world, as_wh1)
    with central.connect() as conn:
        assert conn.execute(select(User.active).where(User.id == 2)).scalar_one() is False
