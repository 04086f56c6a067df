"""Gathering what the risk signals look at, from the station database, in indexed queries only.

An assessment runs on every proposal at the bench, against a database of a million orders or
more, so nothing here may read a table end to end: each count goes through an index on the
customer, the order, the address, the phone, the payment token or the clerk. The one figure over
all customers (their return rate) is computed at most once a day and kept in ``risk_baselines``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Lock

from sqlalchemy import Integer, bindparam, func, select, text
from sqlalchemy.orm import Session

from console.context import StationContext
from console.inspection import latest_inspections
from console.policy import WindowCheck
from console.refunds import KINDS_THAT_PAY
from db.types import UTCDateTime
from console.risk import CLERK_DAYS, HISTORY_DAYS, RiskFacts, UnitFacts
from db.models import Customer, Order, ReturnAuthorization, RiskBaseline

BASELINE = "return_rate_12m"
BASELINE_MAX_AGE = timedelta(days=1)
_baselines: dict[str, tuple[datetime, int, int]] = {}  # per database: when, returns, orders
_baseline_lock = Lock()


@dataclass(frozen=True)
class Refund:
    """What the decision being assessed would do."""

    kind: str
    amount_minor: int
    refund_method: str | None
    item_ids: list[int]
    missing_refunded: int


# The customer's history, linked identities and the order's value in one round trip: each
# sub-select starts from an index (tests/core/test_risk.py checks the plans), and one statement
# instead of ten keeps the ORM's per-statement cost out of a path that runs on every proposal.
_HISTORY = text("""
SELECT
  (SELECT count(*) FROM orders WHERE customer_id = :cid AND placed_at >= :since) AS customer_orders,
  (SELECT count(*) FROM return_authorizations r JOIN orders o ON o.id = r.order_id
    WHERE o.customer_id = :cid AND r.created_at >= :since AND r.status != 'canceled') AS customer_returns,
  (SELECT count(*) FROM claims c JOIN orders o ON o.id = c.order_id
    WHERE o.customer_id = :cid AND c.created_at >= :since) AS customer_claims,
  (SELECT count(*) FROM customers cu JOIN orders o ON o.customer_id = cu.id JOIN claims c ON c.order_id = o.id
    WHERE lower(cu.address) = lower(:address) AND c.created_at >= :since) AS address_claims,
  (SELECT count(*) FROM customers WHERE lower(address) = lower(:address) AND id != :cid) AS linked_by_address,
  (SELECT count(*) FROM customers WHERE phone = :phone AND id != :cid) AS linked_by_phone,
  (SELECT count(DISTINCT customer_id) FROM orders WHERE payment_token IN
     (SELECT payment_token FROM orders WHERE customer_id = :cid AND payment_token IS NOT NULL)
    AND customer_id != :cid) AS linked_by_payment,
  (SELECT min(delivered_at) FROM shipments WHERE order_id = :oid) AS delivered_at,
  (SELECT sum(quantity * unit_price_minor - line_discount_minor + tax_minor) FROM order_lines
    WHERE order_id = :oid) AS order_value
""").bindparams(bindparam("since", type_=UTCDateTime())).columns(
    customer_orders=Integer, customer_returns=Integer, customer_claims=Integer, address_claims=Integer,
    linked_by_address=Integer, linked_by_phone=Integer, linked_by_payment=Integer, delivered_at=UTCDateTime(),
    order_value=Integer)

# The clerk's own record: one pass over their decisions of the last CLERK_DAYS days
# (ix_decisions_decided_by_at), joined to each decision's RMA by its key.
_CLERK = text("""
SELECT count(*),
  coalesce(sum(CASE WHEN d.policy_kind IS NOT NULL AND d.kind != d.policy_kind THEN 1 ELSE 0 END), 0),
  coalesce(sum(CASE WHEN d.kind IN ('full_refund', 'partial_refund', 'store_credit')
                     AND r.channel = 'in_store' THEN 1 ELSE 0 END), 0),
  coalesce(sum(CASE WHEN d.kind IN ('full_refund', 'partial_refund', 'store_credit')
                     AND r.channel = 'in_store' AND r.order_found_by = 'search' THEN 1 ELSE 0 END), 0)
FROM decisions d LEFT JOIN return_authorizations r ON r.id = d.rma_id
WHERE d.decided_by_id = :uid AND d.decided_at >= :since AND d.status NOT IN ('superseded', 'conflict')
""").bindparams(bindparam("since", type_=UTCDateTime()))

_RECEIPT = text("""
SELECT p.id, p.weight_g, p.expected_weight_g, p.scale_division_g FROM parcel_receipts p
JOIN receipt_rmas rr ON rr.receipt_id = p.id WHERE rr.rma_id = :rma ORDER BY p.received_at DESC LIMIT 1
""")
_FLAGGED = text("""
SELECT result, coalesce(message, code) FROM item_scans
WHERE receipt_id = :receipt AND result != 'matched' AND undone_at IS NULL ORDER BY scanned_at
""")


def gather(session: Session, ctx: StationContext, rma: ReturnAuthorization, refund: Refund,
           window: WindowCheck | None) -> RiskFacts:
    order = session.get(Order, rma.order_id)
    assert order is not None
    customer = session.get(Customer, order.customer_id)
    assert customer is not None
    now = ctx.now()
    pays = refund.kind in KINDS_THAT_PAY
    conn = session.connection()

    receipt = conn.execute(_RECEIPT, {"rma": rma.id}).first()
    flagged: list[tuple[str, str]] = []
    if receipt is not None:
        flagged = [(r, m) for r, m in conn.execute(_FLAGGED, {"receipt": receipt.id})]
    expected = receipt.expected_weight_g if receipt else None
    items = [i for i in rma.items if i.reception_status != "lost_in_transit"]
    chosen = set(refund.item_ids)
    units = []
    if receipt is not None:  # nothing is graded before the parcel arrives
        inspections = latest_inspections(session, [i.id for i in items if i.id in chosen])
        for item in items:
            if item.id not in chosen:
                continue
            found = inspections.get(item.id)
            checklist = found.checklist if found else {}
            units.append(UnitFacts(item.order_line.sku, item.order_line.category, found.grade if found else None,
                                   _flag(checklist.get("tags_attached")), _flag(checklist.get("signs_of_use"))))
    else:
        units = [UnitFacts(i.order_line.sku, i.order_line.category, None, None, None) for i in items if i.id in chosen]
    history = conn.execute(_HISTORY, {"cid": customer.id, "oid": order.id, "since": now - timedelta(days=HISTORY_DAYS),
                                      "address": customer.address, "phone": customer.phone}).one()
    # int(): PostgreSQL's sum() of integers is numeric (a Decimal), and the facts are stored as JSON.
    clerk = [int(v) for v in conn.execute(_CLERK, {"uid": ctx.actor.user_id,
                                                   "since": now - timedelta(days=CLERK_DAYS)}).one()]
    all_returns, all_orders = all_customers(session, now)
    delivered_at = history.delivered_at
    return RiskFacts(
        currency=order.currency, pays=pays, refund_minor=refund.amount_minor if pays else 0,
        refund_method=refund.refund_method if pays else None,
        weight_g=receipt.weight_g if receipt else None, expected_weight_g=expected,
        weight_tolerance_g=ctx.policy.weight_tolerance_g(expected or 0, receipt.scale_division_g if receipt else None),
        flagged_scans=flagged, parcel_received=receipt is not None,
        units_declared=len([i for i in items if i.reception_status != "not_required"]),
        units_scanned=len([i for i in items if i.reception_status == "received"]),
        missing_units_refunded=refund.missing_refunded if pays else 0, units=units,
        channel=rma.channel, order_found_by=rma.order_found_by,
        order_value_minor=max(0, int(history.order_value or 0) - order.order_discount_minor),
        within_window=window.within if window else True,
        days_since_delivery=window.days_since_delivery if window else None,
        window_days=window.window_days if window else None,
        return_started_at=rma.created_at.isoformat() if rma.created_at else None,
        delivered_at=delivered_at.isoformat() if delivered_at else None,
        account_age_days=max(0, (order.placed_at - customer.created_at).days) if customer.created_at else None,
        customer_orders=int(history.customer_orders), customer_returns=int(history.customer_returns),
        all_orders=int(all_orders), all_returns=int(all_returns),
        customer_claims=int(history.customer_claims), address_claims=int(history.address_claims),
        linked_by_address=int(history.linked_by_address), linked_by_phone=int(history.linked_by_phone),
        linked_by_payment=int(history.linked_by_payment),
        clerk_name=ctx.actor.display_name, clerk_decisions=clerk[0], clerk_overrides=clerk[1],
        clerk_in_store_refunds=clerk[2], clerk_no_receipt_refunds=clerk[3],
    )


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def all_customers(session: Session, now: datetime) -> tuple[int, int]:
    """(returns, orders) of the last twelve months over all customers, at most a day old.

    Counting reads every order, so the figure is kept: in ``risk_baselines`` for the next start
    (merged into the caller's transaction, so the next decision commits it — a proposal only
    reads), and in this process meanwhile.
    """
    row = session.get(RiskBaseline, BASELINE)
    if row is not None and now - row.computed_at < BASELINE_MAX_AGE:
        return row.numerator, row.denominator
    key = str(session.get_bind().engine.url)  # the same for a session bound to one of its connections
    with _baseline_lock:
        cached = _baselines.get(key)
    if cached and now - cached[0] < BASELINE_MAX_AGE:
        figures = cached
    else:
        since = now - timedelta(days=HISTORY_DAYS)
        orders = session.scalar(select(func.count()).select_from(Order).where(Order.placed_at >= since)) or 0
        returns = session.scalar(select(func.count()).select_from(ReturnAuthorization).where(
            ReturnAuthorization.created_at >= since, ReturnAuthorization.status != "canceled")) or 0
        figures = (now, int(returns), int(orders))
        with _baseline_lock:
            _baselines[key] = figures
    session.merge(RiskBaseline(name=BASELINE, numerator=figures[1], denominator=figures[2], computed_at=figures[0]))
    return figures[1], figures[2]


def forget_baselines() -> None:
    """Tests and the back-test start from what the database holds."""
    with _baseline_lock:
        _baselines.clear()
