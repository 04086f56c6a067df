"""Steps shared by the services: load an RMA for a step, explain why a step cannot run, and
gather what an outbox event of a step is about (its format is ``db.outbox``'s)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import literal_column, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from console.context import StationContext
from console.errors import NotFound, StateConflict
from db.models import (
    Base,
    Customer,
    Decision,
    Order,
    OrderLine,
    ParcelReceipt,
    ReturnAuthorization,
    ReturnItem,
    Shipment,
    Station,
    User,
)
from db.uow import UnitOfWork

OPEN_STATUSES = ("authorized", "received")


def get_rma(session: Session, rma_id: int) -> ReturnAuthorization:
    rma = session.get(ReturnAuthorization, rma_id)
    if rma is None:
        raise NotFound(f"RMA #{rma_id} is not known at this station.")
    return rma


def ensure_open(session: Session, ctx: StationContext, rma: ReturnAuthorization) -> None:
    """Refuse with the reason a clerk can act on: who closed it and when."""
    if rma.status in OPEN_STATUSES:
        return
    if rma.status in ("closed", "pending_review"):
        last = session.scalars(select(Decision).where(Decision.rma_id == rma.id)
                               .order_by(Decision.decided_at.desc()).limit(1)).first()
        if rma.status == "pending_review":
            who = f" by {last.decided_by.display_name} at {ctx.local_time_text(last.decided_at)}" if last else ""
            raise StateConflict(f"RMA {rma.number} is waiting for supervisor review (decided{who}); "
                                "it cannot be changed until a supervisor has approved or rejected it.")
        if last is not None:
            raise StateConflict(f"RMA {rma.number} is already closed: decided by {last.decided_by.display_name} "
                                f"at {ctx.local_time_text(last.decided_at)}. Corrections go through a supervisor.")
        when = f" at {ctx.local_time_text(rma.closed_at)}" if rma.closed_at else ""
        raise StateConflict(f"RMA {rma.number} is already closed{when}.")
    if rma.status == "canceled":
        raise StateConflict(f"RMA {rma.number} was canceled; put the parcel aside for unexpected returns.")
    raise StateConflict(f"RMA {rma.number} has expired; the customer must request a new return.")


def recorded_order(session: Session, when: InstrumentedAttribute[Any]) -> list[Any]:
    """ORDER BY terms for rows in the order they were recorded: by time, then, on a station's
    SQLite file, by insertion (rowid) for rows within the same microsecond (a fixed clock).
    The latest grade and what Ctrl+Z takes back must agree on which step was last."""
    terms: list[Any] = [when]
    if session.get_bind().dialect.name == "sqlite":
        terms.append(literal_column(f"{when.class_.__tablename__}.rowid"))
    return terms


def add_event(uow: UnitOfWork, ctx: StationContext, kind: str, aggregate_id: object,
              rmas: list[ReturnAuthorization], rows: list[Base]) -> None:
    """Queue an outbox event in the current transaction. It carries the rows written, and names
    by key what they refer to that the transaction only read (station, users, customer, order,
    lines, shipments, RMA, items, receipt): the pusher sends a copy of those only if central
    lacks them, so central can apply the event even before it has them, without every event of a
    parcel repeating its order, RMA and items. Gathered here: what an event of a step is about;
    the format, and which rows the transaction wrote, are the unit of work's (``db.outbox``)."""
    session = uow.session
    session.flush()
    context: list[Base] = []
    station = session.get(Station, ctx.station_id)
    if station is not None:
        context.append(station)
    user_ids = {ctx.actor.user_id} | {r.closed_by_id for r in rmas if r.closed_by_id}
    user_ids |= {getattr(r, name, None) for r in rows  # type: ignore[arg-type]
                 for name in ("decided_by_id", "created_by_id", "settled_by_id")} - {None}
    order_ids = {r.order_id for r in rmas} | {getattr(r, "order_id", None) for r in rows} - {None}
    orders = list(session.scalars(select(Order).where(Order.id.in_(order_ids))))
    refs: dict[str, set[Any]] = {
        # Only keys the station holds: a key neither side holds would refuse the event.
        User.__tablename__: set(session.scalars(select(User.id).where(User.id.in_(user_ids)))),
        Order.__tablename__: {o.id for o in orders},
        Customer.__tablename__: {o.customer_id for o in orders} - {None},
        OrderLine.__tablename__: set(session.scalars(select(OrderLine.id).where(OrderLine.order_id.in_(order_ids)))),
        Shipment.__tablename__: set(session.scalars(select(Shipment.id).where(Shipment.order_id.in_(order_ids)))),
    }
    context.extend(rmas)
    items = list(session.scalars(select(ReturnItem).where(ReturnItem.rma_id.in_([r.id for r in rmas]))))
    context.extend(items)
    receipt_ids = {i.receipt_id for i in items if i.receipt_id}
    context.extend(session.scalars(select(ParcelReceipt).where(ParcelReceipt.id.in_(receipt_ids))))
    uow.add_event(kind, str(aggregate_id), ctx.station_id, rows, context, refs)
