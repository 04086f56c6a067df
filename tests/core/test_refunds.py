"""Refund arithmetic: what was paid per unit, fees, caps; properties hold for any order."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from console.policy import load_policy
from console.refunds import DeductionLine, ItemToRefund, LineCharge, paid_per_unit, proposed_kind, quote

POLICY = load_policy()
UTC = ZoneInfo("UTC")
NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)


def window(days: int):  # noqa: ANN201
    return POLICY.check_window(NOW - timedelta(days=days), NOW, "apparel", "standard", UTC)


def test_order_discount_is_prorated_by_net_and_tax_is_as_paid() -> None:
    lines = [LineCharge(1, 1, 7500, 0, 600), LineCharge(2, 2, 1250, 0, 200)]
    paid = paid_per_unit(lines, order_discount_minor=1000)
    # Nets 7500 and 2500 share the 1000 discount 750 / 250.
    assert paid == {1: [7500 - 750 + 600], 2: [1225, 1225]}
    assert sum(sum(v) for v in paid.values()) == 10000 - 1000 + 800


def _items(paid: list[int], grade: str = "A", reason: str = "changed_mind") -> list[ItemToRefund]:
    return [ItemToRefund(i + 1, 1, "apparel", reason, grade, p) for i, p in enumerate(paid)]


def test_fees_never_make_a_refund_negative() -> None:
    q = quote("partial_refund", _items([300], "D"), currency="USD", policy=POLICY, window=window(20),
              shipping_paid_minor=0, shipping_already_refunded=False, return_fee_already_charged=False,
              extra_deductions=[DeductionLine("damage", "Broken", 10_000, 1)])
    assert q.amount_minor == 0
    assert sum(d.amount_minor for d in q.deductions) == 300
    assert "return shipping fee not fully charged" in " ".join(q.notes)


def test_return_fee_once_and_waived_for_retailer_fault() -> None:
    common = dict(currency="USD", policy=POLICY, window=window(20), shipping_paid_minor=500,
                  shipping_already_refunded=False)
    q = quote("full_refund", _items([1000, 1000]), return_fee_already_charged=False, **common)
    assert [d.code for d in q.deductions] == ["return_shipping_fee"] and q.amount_minor == 2000 - 595
    assert quote("full_refund", _items([1000]), return_fee_already_charged=True, **common).amount_minor == 1000
    damaged = quote("full_refund", _items([1000], reason="damaged"), return_fee_already_charged=False, **common)
    assert damaged.deductions == [] and damaged.shipping_refund_minor == 500 and damaged.amount_minor == 1500


def test_store_credit_adds_bonus_and_waives_return_fee() -> None:
    q = quote("store_credit", _items([1000]), currency="USD", policy=POLICY, window=window(20),
              shipping_paid_minor=0, shipping_already_refunded=False, return_fee_already_charged=False)
    assert (q.amount_minor, q.store_credit_bonus_minor) == (1000, 100)


def test_proposal_follows_window_and_grade() -> None:
    assert proposed_kind(_items([1]), window(31), POLICY) == "deny"
    assert proposed_kind(_items([1], "C"), window(3), POLICY) == "partial_refund"
    assert proposed_kind(_items([1], "B"), window(3), POLICY) == "full_refund"
    assert proposed_kind(_items([1], "F"), window(3), POLICY) == "deny"


line_strategy = st.builds(
    lambda q, price, disc_pct, tax: (q, price, min(q * price, q * price * disc_pct // 100), tax),
    st.integers(1, 5), st.integers(0, 500_000), st.integers(0, 100), st.integers(0, 50_000))


@settings(max_examples=300, deadline=None)
@given(st.lists(line_strategy, min_size=1, max_size=6), st.integers(0, 100), st.sampled_from("ABCDF"),
       st.sampled_from(["full_refund", "partial_refund", "store_credit", "exchange", "deny"]),
       st.integers(0, 60), st.integers(0, 5000))
def test_refund_never_above_paid_never_negative_and_sums_exactly(lines, order_disc_pct, grade, kind, days, extra):  # noqa: ANN001
    charges = [LineCharge(i + 1, q, price, disc, tax) for i, (q, price, disc, tax) in enumerate(lines)]
    nets = sum(c.net_minor for c in charges)
    order_discount = nets * order_disc_pct // 100
    paid = paid_per_unit(charges, order_discount)
    assert sum(sum(units) for units in paid.values()) == nets - order_discount + sum(c.tax_minor for c in charges)
    items = [ItemToRefund(line_id * 10 + n, line_id, "apparel", "changed_mind", grade, amount)
             for line_id, units in paid.items() for n, amount in enumerate(units)]
    extras = [DeductionLine("damage", "x", extra, items[0].return_item_id)]
    q = quote(kind, items, currency="USD", policy=POLICY, window=window(days), shipping_paid_minor=0,
              shipping_already_refunded=False, return_fee_already_charged=False, extra_deductions=extras)
    for outcome in q.items:
        assert 0 <= outcome.refund_minor <= outcome.paid_minor
    if kind in ("exchange", "deny"):
        assert q.amount_minor == 0 and q.deductions == []
    else:
        assert q.amount_minor == sum(o.paid_minor for o in q.items) - q.deductions_minor
    assert all(d.amount_minor > 0 for d in q.deductions)
