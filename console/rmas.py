"""Steps shared by the services: load an RMA for a step, explain why a step cannot run, and
gather the rows an outbox event carries to central."""
from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect, literal_column, select
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
from db.snapshot import BY_REFERENCE, json_value, outbound_snapshot
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


_TABLE_ORDER = {t.name: i for i, t in enumerate(Base.metadata.sorted_tables)}


def add_event(uow: UnitOfWork, ctx: StationContext, kind: str, aggregate_id: object,
              rmas: list[ReturnAuthorization], rows: list[Base]) -> None:
    """Queue an outbox event in the current transaction. It carries the rows written, in
    foreign-key order, and names by key (``refs``) what they refer to that the transaction only
    read (station, users, customer, order, lines, shipments, RMA, items, receipt): the pusher
    sends a copy of those only if central lacks them, so central can apply the event even before
    it has them, without every event of a parcel repeating its order, RMA and items. What counts
    as written is what the session flushed in this transaction (``_note_written``): change these
    rows through the ORM, not with Core UPDATE statements, or the change would go only by key."""
    session = uow.session
    session.flush()
    written: set[tuple[str, Any]] = session.info.get(_WRITTEN, set())
    objs: list[Base] = list(rows)
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
    for obj in context:
        key = _row_key(obj)
        if key in written:
            objs.append(obj)  # changed in this transaction: carried in full
        else:
            refs.setdefault(key[0], set()).add(json_value(key[1]))
    seen: set[tuple[str, str]] = set()
    snaps: list[dict[str, Any]] = []
    for snap in sorted((outbound_snapshot(o) for o in objs), key=lambda s: _TABLE_ORDER[s["table"]]):
        table = Base.metadata.tables[snap["table"]]
        keys = [snap["values"][c.name] for c in table.primary_key.columns]
        key = (snap["table"], repr(keys))
        if key not in seen:
            seen.add(key)
            snaps.append(snap)
            if snap["table"] in refs:
                refs[snap["table"]].discard(keys[0])  # carried in full
    assert set(refs) <= BY_REFERENCE
    uow.add_outbox(kind, str(aggregate_id), {"station_id": ctx.station_id, "rows": snaps,
                                             "refs": {name: sorted(keys) for name, keys in refs.items() if keys}})


# The rows a transaction has written so far (table, primary key), noted at every flush: what an
# event carries in full rather than by key. Over-noting (a dirty object left unchanged, a rolled
# back savepoint) only makes an event carry a row it could have named.
_WRITTEN = "rmas.written"


def _row_key(obj: Base) -> tuple[str, Any]:
    state = inspect(obj)
    (key,) = state.mapper.primary_key_from_instance(obj)
    return type(obj).__table__.name, key  # the mapper's local table, as a Table (see db.models.Base)


@event.listens_for(Session, "after_flush")
def _note_written(session: Session, _context: Any) -> None:
    written = session.info.setdefault(_WRITTEN, set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = inspect(obj).mapper.local_table
        if table.name in BY_REFERENCE:
            written.add(_row_key(obj))


@event.listens_for(Session, "after_transaction_end")
def _forget_written(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_WRITTEN, None)
