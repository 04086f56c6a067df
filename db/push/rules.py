"""Central's rules over a station's rows: verdicts it accepts, a user's disabling, identity clashes,
units refunded beyond what was shipped, conflicts between stations."""
from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import (
    Table,
    func,
    select,
    text,
)
from sqlalchemy.engine import Connection

from db.models import (
    APPROVER_ROLES,
    Approval,
    Decision,
    DecisionLine,
    OrderLine,
    ParcelReceipt,
    ReturnItem,
    User,
)
from db.push.sql import _COPY_FROM_ROWS, _json_text, _key_in, _sql_kind
from db.snapshot import json_value

USER_DISABLED = "user_disabled"


def _with_settles(rows: list[tuple[Table, dict[str, Any]]]) -> list[tuple[Table, dict[str, Any]]]:
    """Approvals written before they said what they settle (queued before this version) say it
    from the case's rows in the same event, as the station settled it: central checks that and
    settles the case from it (migration 0009)."""
    decisions = {values["id"]: values for table, values in rows if table.name == Decision.__tablename__}
    lines: dict[Any, dict[str, int]] = {}
    for table, values in rows:
        if table.name == DecisionLine.__tablename__ and values.get("active", True):
            lines.setdefault(values["decision_id"], {})[str(values["return_item_id"])] = values["refund_minor"]
    out = []
    for table, values in rows:
        if table.name == Approval.__tablename__ and not values.get("settles") and values["decision_id"] in decisions:
            decision = decisions[values["decision_id"]]
            values = {**values, "settles": {
                "status": decision.get("status"), "kind": decision.get("kind"),
                "amount_minor": decision.get("amount_minor"),
                "store_credit_bonus_minor": decision.get("store_credit_bonus_minor"),
                "lines": lines.get(values["decision_id"], {})}}
        out.append((table, values))
    return out


def _disable_user(conn: Connection, rows: list[tuple[Table, dict[str, Any]]]) -> None:
    """A station's admin disabled someone: central stops them everywhere — if the admin, in
    central's own view, is an active admin it has confirmed. Central takes no other change to a
    user from a station (roles, enabling, credentials stay central's), and never this one from
    anybody else: the audit row that came with the event still says it was tried."""
    users = User.__table__
    for table, values in rows:
        if table.name != "audit_events" or values.get("action") != USER_DISABLED:
            continue
        if not str(values.get("entity_id", "")).isdigit() or not isinstance(values.get("user_id"), int):
            continue
        if conn.dialect.name == "postgresql":
            # Through central's door: a station may disable a user, never change one otherwise,
            # and only with the disabling admin's signature (console.users_admin).
            details = values.get("details")
            signature = details.get("signature") if isinstance(details, dict) else None
            conn.execute(text("SELECT rc_disable_user(:target, :admin, CAST(:sig AS json))"),
                         {"target": int(values["entity_id"]), "admin": values["user_id"],
                          "sig": _json_text(signature) if signature is not None else None})
            continue
        admin = conn.execute(select(users.c.id).where(
            users.c.id == values.get("user_id"), users.c.active, users.c.role == "admin",
            users.c.created_from_station.is_(None))).first()
        if admin is not None:
            conn.execute(users.update().where(users.c.id == int(values["entity_id"])).values(active=False))


_BY_DECISION = frozenset({"decision_lines", "deductions"})


def _held_row(table: str, values: dict[str, Any], held: set[uuid.UUID], items: set[int], rmas: set[Any]) -> bool:
    """Whether a row of an event belongs to a case whose verdict central refused."""
    if table in _BY_DECISION:
        return values.get("decision_id") in held
    if table == "return_items":
        return values.get("id") in items
    if table == "dispositions":
        return values.get("return_item_id") in items
    if table == "return_authorizations":
        return values.get("id") in rmas
    return False


# What makes a row with an integer id the same row: a station that created an RMA offline with an
# id central already gave another RMA must not have the two merged into one.
_IDENTITY = {"return_authorizations": ("order_id", "number", "created_at"),
             "return_items": ("rma_id", "order_line_id")}


def _identity_clash(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> str | None:
    columns = _IDENTITY.get(table.name)
    if not columns or not rows:
        return None
    if conn.dialect.name == "postgresql" and len(rows) > _COPY_FROM_ROWS:
        # Only a clash comes back (nearly always none), not every row central holds.
        found = conn.execute(text(_clash_sql(table, columns)), {
            "ids": [str(values["id"]) for values in rows],
            **{f"c{i}": [None if values.get(name) is None else str(values[name]) for values in rows]
               for i, name in enumerate(columns)}}).scalar()
        if found is None:
            return None
        rows = [values for values in rows if values["id"] == found]
    ids = [values["id"] for values in rows]
    existing = {row[0]: tuple(row[1:]) for row in conn.execute(
        select(table.c.id, *(table.c[name] for name in columns)).where(_key_in(conn, table.c.id, ids)))}
    for values in rows:
        theirs = existing.get(values["id"])
        mine = tuple(values.get(name) for name in columns)
        if theirs is not None and theirs != mine:
            def show(row: tuple[Any, ...]) -> str:
                return ", ".join(f"{name} {value}" for name, value in zip(columns, row))
            return (f"{table.name} id {values['id']} is already another row at central ({show(theirs)}; this "
                    f"station's: {show(mine)}): nothing merged. Give each station its own [station] id_block")
    return None


def _clash_sql(table: Table, columns: tuple[str, ...]) -> str:
    arrays = ", ".join([f"CAST(CAST(:ids AS text[]) AS {_sql_kind(table.c.id)}[])"]
                       + [f"CAST(CAST(:c{i} AS text[]) AS {_sql_kind(table.c[name])}[])" for i, name in enumerate(columns)])
    names = ", ".join(f"c{i}" for i in range(len(columns)))
    mine = ", ".join(f"s.c{i}" for i in range(len(columns)))
    theirs = ", ".join(f't."{name}"' for name in columns)
    return (f"SELECT s.id FROM unnest({arrays}) AS s(id, {names}) JOIN {table.name} AS t ON t.id = s.id "
            f"WHERE ({theirs}) IS DISTINCT FROM ({mine}) LIMIT 1")


class _OverQuantity(Exception):
    """Applying the event would refund more units of an order line than were shipped."""


_STANDING = ("approved", "pending_review")


_ORDER_LINE_LOCKS = 7301  # the advisory-lock class for "refunds of this order line are being counted"


def _lock_order_lines(conn: Connection, item_ids: set[int], item_rows: Any) -> list[int]:
    """The order lines behind ``item_ids``, locked (in id order) until the transaction ends: two
    stations' pushes refunding units of one line take turns, so the count below is true."""
    if not item_ids:
        return []
    line_of = {values["id"]: values["order_line_id"] for values in item_rows if "order_line_id" in values}
    missing = [i for i in item_ids if i not in line_of]
    if missing:
        line_of.update((row[0], row[1]) for row in conn.execute(
            select(ReturnItem.id, ReturnItem.order_line_id).where(_key_in(conn, ReturnItem.id, missing))))
    ids = sorted({line_of[i] for i in item_ids if i in line_of})
    if ids and conn.dialect.name == "postgresql":
        # Advisory locks, not SELECT … FOR UPDATE: a station's database role may not update
        # order lines (see db.central.grant_station_role), and needs no privilege for these.
        conn.execute(text("SELECT pg_advisory_xact_lock(:kind, x) FROM (SELECT unnest(CAST(:ids AS integer[])) AS x "
                          "ORDER BY 1) AS lines"), {"kind": _ORDER_LINE_LOCKS, "ids": ids})
    return ids


def _over_quantity(conn: Connection, order_line_ids: list[int]) -> list[int]:
    """Order lines with more standing refund lines than units shipped: the same unit refunded
    twice through two RMAs created offline at two stations."""
    if not order_line_ids:
        return []
    return list(conn.execute(
        select(ReturnItem.order_line_id)
        .join(DecisionLine, DecisionLine.return_item_id == ReturnItem.id)
        .join(Decision, Decision.id == DecisionLine.decision_id)
        .join(OrderLine, OrderLine.id == ReturnItem.order_line_id)
        .where(_key_in(conn, ReturnItem.order_line_id, order_line_ids), DecisionLine.active,
               Decision.status.in_(_STANDING))
        .group_by(ReturnItem.order_line_id, OrderLine.quantity)
        .having(func.count() > OrderLine.quantity)).scalars())


def _contested_items(conn: Connection, rows: list[tuple[Table, dict[str, Any]]],
                     ) -> list[tuple[uuid.UUID, int, uuid.UUID]]:
    """(this event's decision, item, the decision holding it) for each item it lost: the item
    itself already decided, or its order line's every shipped unit already refunded."""
    found = []
    lines = DecisionLine.__table__
    items = {values["id"]: values.get("order_line_id") for table, values in rows
             if table.name == ReturnItem.__tablename__}
    for table, values in rows:
        if table.name != DecisionLine.__tablename__ or not values.get("active", True):
            continue
        holder = conn.execute(select(lines.c.decision_id).where(
            lines.c.return_item_id == values["return_item_id"], lines.c.active,
            lines.c.decision_id != values["decision_id"])).scalar()
        if holder is None:
            line_id = items.get(values["return_item_id"]) or conn.execute(
                select(ReturnItem.order_line_id).where(ReturnItem.id == values["return_item_id"])).scalar()
            quantity = conn.execute(select(OrderLine.quantity).where(OrderLine.id == line_id)).scalar() or 0
            others = list(conn.execute(
                select(DecisionLine.decision_id).join(ReturnItem, ReturnItem.id == DecisionLine.return_item_id)
                .join(Decision, Decision.id == DecisionLine.decision_id)
                .where(ReturnItem.order_line_id == line_id, DecisionLine.active, Decision.status.in_(_STANDING),
                       DecisionLine.decision_id != values["decision_id"])).scalars())
            if len(others) >= quantity and others:
                holder = others[0]
        if holder is not None:
            found.append((values["decision_id"], values["return_item_id"], holder))
    return found


def _refused_approvals(conn: Connection, rows: list[tuple[Table, dict[str, Any]]]) -> dict[uuid.UUID, str]:
    """Approvals central will not let stand, with the reason: central's own view of the approver
    (a supervisor demoted or disabled while their station was offline cannot approve) and four
    eyes (whoever decided the case or received its parcel cannot approve it)."""
    refused: dict[uuid.UUID, str] = {}
    users, decisions, approvals = User.__table__, Decision.__table__, Approval.__table__
    in_event = {values["id"]: values for table, values in rows if table.name == Decision.__tablename__}
    for table, values in rows:
        if table.name != Approval.__tablename__ or values.get("refused_reason"):
            continue
        approver = conn.execute(select(users.c.username, users.c.role, users.c.active, users.c.created_from_station)
                                .where(users.c.id == values["supervisor_id"])).first()
        # (On PostgreSQL central's own trigger checks again, with the case locked, so that two
        # stations' approvals of one case pushed at once take turns: migration 0009.)
        decided_by = conn.execute(select(decisions.c.decided_by_id)
                                  .where(decisions.c.id == values["decision_id"])).scalar()
        earlier = conn.execute(
            select(approvals.c.id, users.c.username).join(users, users.c.id == approvals.c.supervisor_id)
            .where(approvals.c.decision_id == values["decision_id"], approvals.c.refused_reason.is_(None),
                   approvals.c.id != values["id"])).first()
        if decided_by is None and values["decision_id"] in in_event:
            decided_by = in_event[values["decision_id"]]["decided_by_id"]
        receivers = set(conn.execute(
            select(ParcelReceipt.user_id).join(ReturnItem, ReturnItem.receipt_id == ParcelReceipt.id)
            .join(DecisionLine, DecisionLine.return_item_id == ReturnItem.id)
            .where(DecisionLine.decision_id == values["decision_id"])).scalars())
        who = f"user {values['supervisor_id']}" if approver is None else approver.username
        if approver is not None and approver.created_from_station:
            refused[values["id"]] = (f"approval refused: {who} is known to central only from station "
                                     f"{approver.created_from_station}'s copy; an admin must confirm them first")
        elif approver is None or not approver.active or approver.role not in APPROVER_ROLES:
            state = ("unknown at central" if approver is None else "disabled at central" if not approver.active
                     else f"a {approver.role} at central")
            refused[values["id"]] = f"approval refused: {who} is {state}, not an active supervisor"
        elif values["supervisor_id"] == decided_by:
            refused[values["id"]] = f"approval refused: {who} made this decision (four eyes)"
        elif values["supervisor_id"] in receivers:
            refused[values["id"]] = f"approval refused: {who} received this parcel (four eyes)"
        elif earlier is not None:
            # Two supervisors settled the case at two stations while apart: the first verdict to
            # reach central stands; the second is kept, refused, for a supervisor to look at.
            refused[values["id"]] = (f"approval refused: {earlier.username} had already settled this case "
                                     f"(approval {earlier.id}); {who}'s verdict reached central later")
        elif conn.dialect.name == "postgresql":
            # The approver's proof, as central's trigger will check it (migration 0011), asked
            # before the event is applied: a verdict refused for it changes nothing of its case.
            problem = conn.execute(text("SELECT rc_signature_problem(CAST(:a AS json))"),
                                   {"a": orjson.dumps({k: json_value(v) for k, v in values.items()}).decode()}).scalar()
            if problem:
                refused[values["id"]] = str(problem)
    return refused
