"""The risk engine: every signal on crafted facts, at and just past its boundary; the facts as
gathered from a real station database; the policy's [risk] table; the indexes the counts use."""
from __future__ import annotations

import sqlite3
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from console.deciding import DecideCommand, decide, propose
from console.errors import EnvironmentProblem, InvalidInput
from console.inspection import inspect_item
from console.policy import load_policy, parse_policy
from console.receiving import receive_parcel, scan_item
from console.risk import DEFAULT_RULES, RiskFacts, RiskRules, UnitFacts, assess, parse_rules
from console.risk_facts import forget_baselines
from db.models import Claim, Customer, Decision, Order, ReturnAuthorization, RiskAssessment, User
from tests.tools.factories import LineSpec, World, add_order, add_rma, make_world

BASE = RiskFacts(currency="USD", pays=True, refund_minor=5000, refund_method="original_payment")


def codes(facts: RiskFacts, rules: RiskRules | None = None) -> set[str]:
    return {s.code for s in assess(facts, rules).signals}


# -- each signal at its boundary -------------------------------------------------------------

BOUNDARIES = [
    # (signal, facts that just fire it, facts that just do not)
    ("weight_mismatch", dict(weight_g=925, expected_weight_g=1000, weight_tolerance_g=74),
     dict(weight_g=926, expected_weight_g=1000, weight_tolerance_g=74)),
    ("grade_f", dict(units=[UnitFacts("AP-1", "apparel", "F", None, None)]),
     dict(units=[UnitFacts("AP-1", "apparel", "D", None, None)])),
    ("outside_window", dict(within_window=False, days_since_delivery=31, window_days=30),
     dict(within_window=True, days_since_delivery=30, window_days=30)),
    ("refund_for_missing_items", dict(missing_units_refunded=1), dict(missing_units_refunded=0)),
    ("overstated_quantity", dict(parcel_received=True, units_declared=3, units_scanned=2),
     dict(parcel_received=True, units_declared=3, units_scanned=3)),
    ("return_rate", dict(customer_returns=4, customer_orders=10, all_returns=2, all_orders=10),
     dict(customer_returns=4, customer_orders=10, all_returns=21, all_orders=100)),
    ("customer_claims", dict(customer_claims=2), dict(customer_claims=1)),
    ("address_claims", dict(address_claims=3), dict(address_claims=2)),
    ("linked_accounts", dict(linked_by_address=1, linked_by_payment=1), dict(linked_by_phone=1)),
    ("before_delivery", dict(return_started_at="2026-11-03T09:59:59+00:00", delivered_at="2026-11-03T10:00:00+00:00"),
     dict(return_started_at="2026-11-03T10:00:00+00:00", delivered_at="2026-11-03T10:00:00+00:00")),
    ("high_order_value", dict(order_value_minor=100000), dict(order_value_minor=99999)),
    ("wardrobing", dict(units=[UnitFacts("AP-1", "apparel", "C", False, True)]),
     dict(units=[UnitFacts("AP-1", "apparel", "C", True, True)])),
    ("new_account", dict(account_age_days=14), dict(account_age_days=15)),
    ("in_store_without_order", dict(channel="in_store", order_found_by="search"),
     dict(channel="in_store", order_found_by="code")),
    ("other_refund_method", dict(refund_method="cash"), dict(refund_method="store_credit")),
    ("clerk_overrides", dict(clerk_decisions=20, clerk_overrides=5), dict(clerk_decisions=20, clerk_overrides=4)),
    ("clerk_no_receipt_refunds", dict(clerk_in_store_refunds=10, clerk_no_receipt_refunds=3),
     dict(clerk_in_store_refunds=10, clerk_no_receipt_refunds=2)),
]


@pytest.mark.parametrize(("code", "fires", "quiet"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
def test_each_signal_fires_at_its_threshold_and_not_below(code: str, fires: dict, quiet: dict) -> None:
    assert code in codes(replace(BASE, **fires))
    assert code not in codes(replace(BASE, **quiet))


def test_every_signal_of_the_policy_has_a_boundary_case() -> None:
    scan_codes = {"not_on_order", "serial_not_shipped", "over_quantity", "duplicate_serial"}
    assert {b[0] for b in BOUNDARIES} | scan_codes == set(DEFAULT_RULES)


@pytest.mark.parametrize("result", ["not_on_order", "serial_not_shipped", "over_quantity", "duplicate_serial"])
def test_flagged_scans_are_signals_with_the_scans_own_sentence(result: str) -> None:
    message = f"scanned SN-9 was flagged: {result}"
    signal = next(s for s in assess(replace(BASE, flagged_scans=[(result, message)])).signals)
    assert (signal.code, signal.message, signal.weight) == (result, message, DEFAULT_RULES[result]["weight"])


def test_the_sentences_carry_the_numbers() -> None:
    facts = replace(BASE, weight_g=120, expected_weight_g=1480, weight_tolerance_g=74, customer_returns=6,
                    customer_orders=8, all_returns=12, all_orders=100, linked_by_address=2, linked_by_payment=1,
                    clerk_name="Aiko", clerk_decisions=40, clerk_overrides=12, order_value_minor=125000)
    messages = {s.code: s.message for s in assess(facts).signals}
    assert messages["weight_mismatch"].startswith("parcel weighs 120 g, expected 1,480 g ± 74 g: 1,360 g light")
    assert messages["return_rate"] == ("customer returned 6 of 8 orders in the last 12 months (75 %); "
                                       "all customers 12 %")
    assert messages["linked_accounts"] == ("2 other account(s) share the delivery address; "
                                           "1 other account(s) share the payment card (token)")
    assert "Aiko overrode the policy's proposal in 12 of 40 decisions" in messages["clerk_overrides"]
    assert messages["high_order_value"] == "order value USD 1,250.00 is at or above USD 1,000.00"


def test_signals_that_need_money_to_move_stay_quiet_for_an_exchange_or_denial() -> None:
    facts = replace(BASE, pays=False, refund_method=None, within_window=False, days_since_delivery=40, window_days=30,
                    units=[UnitFacts("AP-1", "apparel", "F", False, True)])
    assert codes(facts) == set()


def test_score_is_the_sum_capped_at_100_and_the_outcome_follows_the_thresholds() -> None:
    quiet = assess(BASE)
    assert (quiet.score, quiet.outcome) == (0, "auto")
    review = assess(replace(BASE, weight_g=100, expected_weight_g=1000, weight_tolerance_g=50))
    assert (review.score, review.outcome) == (45, "review")
    deny = assess(replace(BASE, weight_g=100, expected_weight_g=1000, weight_tolerance_g=50,
                          flagged_scans=[("serial_not_shipped", "x"), ("not_on_order", "y")]))
    assert (deny.score, deny.outcome) == (100, "suggest_deny")
    just_below = parse_rules({"review_at_or_above": 46})
    assert assess(replace(BASE, weight_g=100, expected_weight_g=1000, weight_tolerance_g=50),
                  just_below).outcome == "auto"


def test_a_policy_sets_weights_and_thresholds_and_can_switch_a_signal_off() -> None:
    rules = parse_rules({"signals": {"new_account": {"weight": 0}, "customer_claims": {"at_least": 5, "weight": 33}}})
    facts = replace(BASE, account_age_days=1, customer_claims=5)
    signals = {s.code: s.weight for s in assess(facts, rules).signals}
    assert signals == {"customer_claims": 33}
    assert "customer_claims" not in codes(replace(facts, customer_claims=4), rules)


@pytest.mark.parametrize(("risk", "problem"), [
    ({"signals": {"moon_phase": {"weight": 5}}}, "unknown risk signal"),
    ({"signals": {"new_account": {"weight": -1}}}, "whole, non-negative"),
    ({"signals": {"new_account": {"months": 2}}}, "has no setting months"),
    ({"signals": {"wardrobing": {"categories": "apparel"}}}, "list of names"),
    ({"review_at_or_above": 50, "suggest_deny_at_or_above": 40}, "suggest_deny_at_or_above"),
    ({"review_at_or_above": 50, "auto_approve_below": 40}, "one threshold"),
])
def test_a_bad_risk_table_is_refused_with_the_key_named(risk: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_rules(risk)


def test_a_policy_file_with_a_bad_signal_says_which_file_and_what(tmp_path: Path) -> None:
    text = load_policy().source.replace("new_account = { weight = 10, days = 14 }",
                                        "new_account = { weight = 10, days = \"two\" }")
    with pytest.raises(EnvironmentProblem, match="risk.signals.new_account.days"):
        parse_policy(text, "edited.toml")


def test_stored_facts_round_trip_and_tolerate_other_versions() -> None:
    facts = replace(BASE, flagged_scans=[("not_on_order", "x")], units=[UnitFacts("A", "apparel", "C", False, True)])
    raw = facts.to_dict() | {"a_fact_from_a_later_version": 1}
    assert RiskFacts.from_dict(raw) == facts
    assert RiskFacts.from_dict({"currency": "EUR"}) == RiskFacts(currency="EUR")


# -- facts gathered from a station database -------------------------------------------------------

@pytest.fixture
def world(tmp_path: Path) -> World:
    forget_baselines()
    world = make_world(tmp_path / "station.sqlite3")
    yield world
    world.engine.dispose()


def _customer_of(world: World, order: Order) -> int:
    return order.customer_id


def test_history_linked_identities_and_claims_come_from_the_database(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 5000, category="apparel", weight_g=400)])
    address = "12 Elm Street\nSpringfield"
    with world.uow() as uow:
        s = uow.session
        me = s.get(Customer, order.customer_id)
        me.address = address
        s.get(Order, order.id).payment_token = "tok_visa_abc"
        # Two other accounts at the same address (written in another case) and one paying with my token.
        for n in range(2):
            s.add(Customer(name=f"Alias {n}", email=f"alias{n}@example.com", address=address.upper(),
                           created_at=world.clock.now - timedelta(days=500)))
        s.flush()
        other = Customer(name="Card sharer", email="cs@example.com", created_at=world.clock.now - timedelta(days=500))
        s.add(other)
        s.flush()
        s.add(Order(number="SO-TOKEN", customer_id=other.id, currency="USD", placed_at=world.clock.now,
                    payment_token="tok_visa_abc"))
        # Three claims on my orders in the last year, one older than a year.
        for days in (10, 100, 300, 400):
            s.add(Claim(order_id=order.id, kind="not_received", currency="USD", created_by_id=1,
                        created_at=world.clock.now - timedelta(days=days)))
        uow.commit()
    rma = add_rma(world, order)
    with world.uow() as uow:
        receive_parcel(uow, world.ctx(), rma.number, weight_g=550, weight_source="scale")
        uow.commit()
    item_id = rma_items(world, rma.id)[0]
    with world.uow() as uow:
        scan_item(uow, world.ctx(), _receipt_id(world, rma.id), "AP-1")
    with world.uow() as uow:
        inspect_item(uow, world.ctx(), item_id, "C", checklist={"tags_attached": False, "signs_of_use": True})
    with world.uow() as uow:
        proposal = propose(uow, world.ctx(), rma.id, "full_refund")
    f = proposal.risk_facts
    assert f is not None
    assert (f.linked_by_address, f.linked_by_phone, f.linked_by_payment) == (2, 0, 1)
    assert (f.customer_claims, f.address_claims) == (3, 3)
    assert (f.customer_orders, f.customer_returns) == (1, 1)
    assert f.units == [UnitFacts("AP-1", "apparel", "C", False, True)]
    fired = {s.code for s in proposal.signals}
    assert {"linked_accounts", "customer_claims", "address_claims", "wardrobing"} <= fired
    assert proposal.risk_outcome == "suggest_deny" and proposal.needs_review


def rma_items(world: World, rma_id: int) -> list[int]:
    with world.uow() as uow:
        return [i.id for i in uow.session.get(ReturnAuthorization, rma_id).items]


def _receipt_id(world: World, rma_id: int) -> uuid.UUID:
    from db.models import ReceiptRma

    with world.uow() as uow:
        return uow.session.query(ReceiptRma.receipt_id).filter_by(rma_id=rma_id).scalar()


def test_a_return_started_before_delivery_and_a_new_account(world: World) -> None:
    order = add_order(world, [LineSpec("HM-1", 3000, category="home")], delivered_days_ago=2)
    with world.uow() as uow:
        customer = uow.session.get(Customer, order.customer_id)
        customer.created_at = uow.session.get(Order, order.id).placed_at - timedelta(days=3)
        uow.commit()
    rma = add_rma(world, order)
    with world.uow() as uow:  # the factory's RMA is a day old; move it before the delivery
        uow.session.get(ReturnAuthorization, rma.id).created_at = world.clock.now - timedelta(days=4)
        uow.commit()
    with world.uow() as uow:
        proposal = propose(uow, world.ctx(), rma.id, "deny")
    assert {"before_delivery", "new_account"} <= {s.code for s in proposal.signals}
    sentence = next(s.message for s in proposal.signals if s.code == "before_delivery")
    assert sentence == "return started on 16 Nov 2026, before the parcel was delivered (18 Nov 2026)"


def graded_return(world: World) -> ReturnAuthorization:
    """One apparel unit in a parcel of the right weight, scanned and graded A: ready to decide."""
    order = add_order(world, [LineSpec("AP-1", 4000, weight_g=400)])
    rma = add_rma(world, order)
    with world.uow() as uow:
        receipt = receive_parcel(uow, world.ctx(), rma.number, weight_g=550, weight_source="scale")
    with world.uow() as uow:
        scan_item(uow, world.ctx(), receipt.receipt_id, "AP-1")
    with world.uow() as uow:
        inspect_item(uow, world.ctx(), rma_items(world, rma.id)[0], "A")
    return rma


def test_the_decision_stores_facts_outcome_policy_kind_and_an_override_event(world: World) -> None:
    from console.audit_verify import verify_chain
    from db.models import AuditEvent

    rma = graded_return(world)
    with world.uow() as uow:
        result = decide(uow, world.ctx(), DecideCommand(rma.id, "store_credit"))
    with world.uow() as uow:
        decision = uow.session.get(Decision, result.decision_id)
        risk = uow.session.query(RiskAssessment).filter_by(decision_id=decision.id).one()
        assert (decision.kind, decision.policy_kind, decision.refund_method) == ("store_credit", "full_refund",
                                                                                "store_credit")
        assert risk.outcome == "auto" and risk.policy_version == world.policy.version
        assert RiskFacts.from_dict(risk.facts).units == [UnitFacts("AP-1", "apparel", "A", None, None)]
        actions = [e.action for e in uow.session.query(AuditEvent).order_by(AuditEvent.seq)]
        assert actions[-2:] == ["decision_made", "decision_override"]
        assert verify_chain(uow.session, world.station_id) is None


def test_a_refund_to_another_method_is_a_signal_and_a_bad_method_is_refused(world: World) -> None:
    rma = graded_return(world)
    with world.uow() as uow:
        assert "other_refund_method" in {s.code for s in propose(uow, world.ctx(), rma.id, "full_refund",
                                                                 refund_method="cash").signals}
        with pytest.raises(InvalidInput, match="not a way to refund"):
            propose(uow, world.ctx(), rma.id, "full_refund", refund_method="bitcoin")


def test_the_clerks_override_rate_counts_their_own_decisions_only(world: World) -> None:
    order = add_order(world, [LineSpec("AP-1", 4000)])
    rma = add_rma(world, order)
    with world.uow() as uow:
        s = uow.session
        s.add(User(id=3, username="ken", display_name="Ken", role="clerk", password_hash="x"))
        for n in range(20):
            s.add(Decision(id=uuid.uuid4(), rma_id=rma.id, order_id=order.id, kind="full_refund",
                           policy_kind="full_refund" if n >= 5 else "deny", status="approved", amount_minor=1,
                           currency="USD", policy_version="p", decided_by_id=1 if n < 19 else 3,
                           station_id=world.station_id, decided_at=world.clock.now - timedelta(days=n)))
        uow.commit()
    with world.uow() as uow:
        facts = propose(uow, world.ctx(), rma.id, "deny").risk_facts
    assert (facts.clerk_decisions, facts.clerk_overrides) == (19, 5)


def test_history_counts_use_indexes_not_scans(world: World) -> None:
    """The plans SQLite picks for the counts: each starts from an index (SEARCH), none reads a
    whole table (SCAN) — what keeps an assessment fast on a million orders (see the benchmark)."""
    add_order(world, [LineSpec("AP-1", 4000)])
    path = world.engine.url.database
    con = sqlite3.connect(path)
    try:
        plans = {
            "address": "SELECT count(*) FROM customers WHERE lower(address) = lower(?) AND id != ?",
            "phone": "SELECT count(*) FROM customers WHERE phone = ? AND id != ?",
            "token": "SELECT count(DISTINCT customer_id) FROM orders WHERE payment_token IN "
                     "(SELECT DISTINCT payment_token FROM orders WHERE customer_id = ? AND payment_token IS NOT NULL)"
                     " AND customer_id != ?",
            "clerk": "SELECT count(*) FROM decisions WHERE decided_by_id = ? AND decided_at >= ?",
            "orders": "SELECT count(*) FROM orders WHERE customer_id = ? AND placed_at >= ?",
        }
        for name, sql in plans.items():
            steps = [row[3] for row in con.execute("EXPLAIN QUERY PLAN " + sql, ("x", 1))]
            assert steps and not any(step.startswith("SCAN") for step in steps), (name, steps)
    finally:
        con.close()


def test_an_in_store_return_found_by_searching_is_a_signal(world: World) -> None:
    from console.authorization import ReturnLine, authorize_return
    from db.models import OrderLine

    order = add_order(world, [LineSpec("AP-1", 4000)])
    with world.uow() as uow:
        line = uow.session.query(OrderLine).filter_by(order_id=order.id).one()
        with pytest.raises(InvalidInput, match="order_found_by must be one of"):
            authorize_return(uow, world.ctx(), order.number, [ReturnLine(line.id, 1, "changed_mind")],
                             channel="in_store", order_found_by="hunch")
        searched = authorize_return(uow, world.ctx(), order.number, [ReturnLine(line.id, 1, "changed_mind")],
                                    channel="in_store", order_found_by="search")
        uow.commit()
    with world.uow() as uow:
        proposal = propose(uow, world.ctx(), searched.id, "deny")
    signal = next(s for s in proposal.signals if s.code == "in_store_without_order")
    assert signal.inputs == {"order_found_by": "search"}


def test_the_all_customers_figure_is_kept_by_the_next_decision(world: World) -> None:
    from db.models import RiskBaseline

    order = add_order(world, [LineSpec("AP-1", 4000, weight_g=400)])
    rma = add_rma(world, order)
    with world.uow() as uow:  # a proposal only reads: it computes the figure, writes nothing
        propose(uow, world.ctx(), rma.id, "deny")
    with world.uow() as uow:
        assert uow.session.get(RiskBaseline, "return_rate_12m") is None
    with world.uow() as uow:
        decide(uow, world.ctx(), DecideCommand(rma.id, "deny"))
    forget_baselines()  # a restart: the figure comes from the table, not from counting again
    with world.uow() as uow:
        kept = uow.session.get(RiskBaseline, "return_rate_12m")
        assert (kept.numerator, kept.denominator) == (1, 1)
