"""What was paid for the very units being returned, read from the orders they came from."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.refunds import LineCharge, paid_per_unit
from db.models import Order, OrderLine, ReturnAuthorization, ReturnItem

# RMAs whose units no longer count as returned (quantity left to return goes back up).
VOID_RMA_STATUSES = ("canceled", "expired")


def unit_paid_by_line(session: Session, order_id: int) -> dict[int, list[int]]:
    order = session.get(Order, order_id)
    assert order is not None
    lines = session.scalars(select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.line_no))
    charges = [LineCharge(ln.id, ln.quantity, ln.unit_price_minor, ln.line_discount_minor, ln.tax_minor) for ln in lines]
    return paid_per_unit(charges, order.order_discount_minor)


def returned_units(session: Session, order_line_ids: Iterable[int]) -> dict[int, list[int]]:
    """Per order line, the ids of its return items that count as returned, oldest first."""
    ids = list(order_line_ids)
    out: dict[int, list[int]] = defaultdict(list)
    if not ids:
        return out
    rows = session.execute(
        select(ReturnItem.order_line_id, ReturnItem.id)
        .join(ReturnAuthorization, ReturnAuthorization.id == ReturnItem.rma_id)
        .where(ReturnItem.order_line_id.in_(ids), ReturnAuthorization.status.not_in(VOID_RMA_STATUSES))
        .order_by(ReturnItem.id)
    )
    for line_id, item_id in rows:
        out[line_id].append(item_id)
    return out


def paid_for_items(session: Session, items: list[ReturnItem]) -> dict[int, int]:
    """Each return item's paid amount: the n-th returned unit of a line gets the line's n-th share,
    so refunds over several RMAs of one line add up to what the line cost, never more."""
    result: dict[int, int] = {}
    by_order: dict[int, list[ReturnItem]] = defaultdict(list)
    for item in items:
        by_order[item.order_line.order_id].append(item)
    for order_id, order_items in by_order.items():
        shares = unit_paid_by_line(session, order_id)
        sequence = returned_units(session, {i.order_line_id for i in order_items})
        for item in order_items:
            units = shares[item.order_line_id]
            ordered = sequence.get(item.order_line_id, [])
            position = ordered.index(item.id) if item.id in ordered else len(ordered)
            result[item.id] = units[position] if position < len(units) else 0
    return result
