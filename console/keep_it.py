"""Refund without a return ("keep it"): for units worth less than sending them back."""
from __future__ import annotations

import uuid

from console.authorization import ReturnLine, authorize_return
from console.card_numbers import free_text
from console.context import StationContext
from console.deciding import DecideCommand, DecisionResult, decide
from console.errors import PolicyViolation
from console.money import Money
from console.paid import paid_for_items
from console.permissions import DECIDE, require
from db.models import Order
from db.uow import UnitOfWork


def refund_without_return(uow: UnitOfWork, ctx: StationContext, order_number: str, order_line_id: int,
                          quantity: int, reason_code: str, *, decision_id: uuid.UUID | None = None,
                          note: str | None = None) -> DecisionResult:
    """Authorize a ``keep_it`` RMA and refund it at once, if every unit is under the policy limit."""
    require(ctx.actor, DECIDE)
    rma = authorize_return(uow, ctx, order_number, [ReturnLine(order_line_id, quantity, reason_code)],
                           channel="keep_it", status="received",
                           comment=free_text(note) or "Refund without return (keep it)")
    order = uow.session.get(Order, rma.order_id)
    assert order is not None
    limit = ctx.policy.keep_it_max_unit_paid.get(order.currency)
    paid = paid_for_items(uow.session, list(rma.items))
    worst = max(paid.values())
    if limit is None or worst > limit:
        uow.rollback()
        allowed = Money(limit, order.currency).format() if limit is not None else "not allowed"
        raise PolicyViolation(f"A unit paid {Money(worst, order.currency)} is above the keep-it limit ({allowed}) "
                              f"in policy {ctx.policy.version}: ask for the item back instead.")
    return decide(uow, ctx, DecideCommand(rma.id, "full_refund", tuple(i.id for i in rma.items),
                                          decision_id or uuid.uuid4(), note=note))
