"""Ask central for a parcel the station does not know: a scan that finds nothing locally fetches
the order behind the code — customer, order, lines, shipments, its RMAs, their items and what
was decided for them — from
central when it can be reached, so the clerk can go on at once instead of waiting for a sync.

Stations hold what is expected at their site and what they look up; this is the "look up" half.
Rows are only added, never written over: the station's own state of anything it already holds
stays as it is until a pull brings central's.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from console.lookup import LOOKUP, lookup_params
from db.models import (
    Base, Customer, Decision, DecisionLine, Order, OrderLine, ParcelReceipt, ReturnAuthorization, ReturnItem, Shipment, Station, User,
)
from db.push import unreachable

# Where central is asked at the bench, a dead network must cost seconds, not the usual five.
LOOKUP_CONNECT_TIMEOUT_S = 2


def fetch_code(station: Engine, central: Engine, raw: str) -> bool:
    """Copy what ``raw`` refers to at central into the station; False if central does not know
    it either. Raises ``EnvironmentProblem`` when central cannot be reached."""
    params = lookup_params(raw)
    try:
        with central.connect() as conn:
            found = conn.execute(LOOKUP, params).first()
            if found is None:
                return False
            rows = _order_rows(conn, int(found.order_id))
    except (OperationalError, InterfaceError) as exc:
        raise unreachable(central, exc) from None
    with station.connect() as conn:
        conn = conn.execution_options(sqlite_begin="immediate")
        with conn.begin():
            for table in Base.metadata.sorted_tables:
                batch = rows.get(table.name)
                if batch:
                    conn.execute(sqlite.insert(table).on_conflict_do_nothing(), batch)
    return True


def _order_rows(conn: Connection, order_id: int) -> dict[str, list[dict[str, Any]]]:
    def fetch(table: Table, *where: Any) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in conn.execute(select(*table.columns).where(*where))]

    order = fetch(Order.__table__, Order.id == order_id)
    rmas = fetch(ReturnAuthorization.__table__, ReturnAuthorization.order_id == order_id)
    items = fetch(ReturnItem.__table__, ReturnItem.rma_id.in_([r["id"] for r in rmas]))
    receipts = fetch(ParcelReceipt.__table__, ParcelReceipt.id.in_({i["receipt_id"] for i in items} - {None}))
    decisions = fetch(Decision.__table__, Decision.order_id == order_id)
    lines = fetch(DecisionLine.__table__, DecisionLine.decision_id.in_([d["id"] for d in decisions]))
    user_ids = {r["closed_by_id"] for r in rmas} | {r["user_id"] for r in receipts} | {
        d["decided_by_id"] for d in decisions}
    users = fetch(User.__table__, User.id.in_(user_ids - {None}))
    for user in users:
        # Credentials stay where central keeps them; a station signs people in with its own copy.
        user.update(password_hash="!", badge_hash=None, failed_attempts=0, locked_until=None)
    return {
        "customers": fetch(Customer.__table__, Customer.id.in_([o["customer_id"] for o in order])),
        "orders": order,
        "order_lines": fetch(OrderLine.__table__, OrderLine.order_id == order_id),
        "shipments": fetch(Shipment.__table__, Shipment.order_id == order_id),
        "stations": fetch(Station.__table__, Station.id.in_({r["station_id"] for r in [*receipts, *decisions]})),
        "users": users,
        "return_authorizations": rmas,
        "parcel_receipts": receipts,
        "return_items": items,
        # What was already decided for its units, so this bench does not offer to refund them again.
        "decisions": decisions,
        "decision_lines": lines,
    }
