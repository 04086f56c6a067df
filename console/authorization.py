"""Authorizing a return: which units of which order lines may come back, and why."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from console import audit
from console.codes import rma_number
from console.context import StationContext
from console.errors import InvalidInput, NotFound, PolicyViolation
from console.paid import returned_units
from console.rmas import add_event
from console.permissions import DECIDE, require
from db.models import CHANNELS, Order, OrderLine, ReturnAuthorization, ReturnItem
from db.uow import UnitOfWork


ORDER_FOUND_BY = ("code", "number", "search")


@dataclass(frozen=True)
class ReturnLine:
    order_line_id: int
    quantity: int
    reason_code: str


def check_reason(ctx: StationContext, reason_code: str | None, what: str) -> str:
    if not reason_code:
        raise InvalidInput(f"{what}: a reason is required. Choose one of: {', '.join(ctx.policy.reasons)}.")
    if reason_code not in ctx.policy.reasons:
        raise InvalidInput(f"{what}: '{reason_code}' is not a reason code in policy {ctx.policy.version}. "
                           f"Choose one of: {', '.join(ctx.policy.reasons)}.")
    return reason_code


def quantity_left(uow: UnitOfWork, line: OrderLine) -> int:
    """Shipped quantity less what other (non-void) RMAs already cover."""
    return line.quantity - len(returned_units(uow.session, [line.id]).get(line.id, []))


def _next_id(session: Any, column: Any, first: int, last: int) -> int:
    """The next free id in this station's own block (see ``station_id_range``)."""
    highest = session.scalar(select(func.max(column)).where(column.between(first, last)))
    if highest is not None and highest >= last:
        raise PolicyViolation("This station has used up its block of ids for new RMAs: ask an admin "
                              "to give it a new [station] id_block.")
    return first if highest is None else highest + 1


def authorize_return(uow: UnitOfWork, ctx: StationContext, order_number: str, lines: list[ReturnLine], *,
                     channel: str = "mail", status: str = "authorized", comment: str | None = None,
                     return_carrier: str | None = None, return_tracking_number: str | None = None,
                     order_found_by: str | None = None) -> ReturnAuthorization:
    """Create an RMA with one return item per unit. Does not commit.

    ``order_found_by`` (returns at a counter): how the order was found — "code" (the receipt's or
    confirmation's code scanned), "number" (typed) or "search" (by the customer's details, no
    receipt), which the risk engine weighs."""
    require(ctx.actor, DECIDE)
    session = uow.session
    order = session.scalar(select(Order).where(Order.number == order_number))
    if order is None:
        raise NotFound(f"Order {order_number} is not known at this station.")
    if channel not in CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}")
    if not lines:
        raise InvalidInput("Choose at least one line to return.")
    if order_found_by not in (None, *ORDER_FOUND_BY):
        raise InvalidInput(f"order_found_by must be one of {', '.join(ORDER_FOUND_BY)}")
    by_line: dict[int, int] = {}
    for req in lines:
        line = session.get(OrderLine, req.order_line_id)
        if line is None or line.order_id != order.id:
            raise InvalidInput(f"Line #{req.order_line_id} is not on order {order.number}.")
        check_reason(ctx, req.reason_code, f"{line.sku}")
        if req.quantity < 1:
            raise InvalidInput(f"{line.sku}: quantity to return must be at least 1.")
        wanted = by_line.get(line.id, 0) + req.quantity
        left = quantity_left(uow, line)
        if wanted > left:
            raise PolicyViolation(f"{line.sku}: {wanted} to return, but only {left} of {line.quantity} shipped "
                                  f"{'is' if left == 1 else 'are'} left to return.")
        by_line[line.id] = wanted
    first, last = ctx.id_range()
    next_id = _next_id(session, ReturnAuthorization.id, first, last)
    rma = ReturnAuthorization(id=next_id, number=rma_number(next_id), order_id=order.id, channel=channel,
                              status=status, reason_code=lines[0].reason_code, customer_comment=comment,
                              return_carrier=return_carrier, return_tracking_number=return_tracking_number,
                              order_found_by=order_found_by, created_at=ctx.now())
    session.add(rma)
    session.flush()
    reception = "not_required" if channel == "keep_it" else "awaiting"
    item_id = _next_id(session, ReturnItem.id, first, last)
    if item_id + sum(req.quantity for req in lines) - 1 > last:
        raise PolicyViolation("This station has used up its block of ids for returned units: ask an admin "
                              "to give it a new [station] id_block.")
    for req in lines:
        for _ in range(req.quantity):
            session.add(ReturnItem(id=item_id, rma_id=rma.id, order_line_id=req.order_line_id,
                                   reason_code=req.reason_code, reception_status=reception))
            item_id += 1
    session.flush()
    audit.record(session, ctx, "rma_authorized", "rma", rma.number,
                 {"order": order.number, "channel": channel, "units": sum(by_line.values())})
    add_event(uow, ctx, "rma", rma.number, [rma], [])
    return rma
