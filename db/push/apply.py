"""Central applies a batch: the fast path (one COPY per table) and, when anything in the batch is
refused or races another push, the careful path event by event, with central's rules
(db.push.rules) deciding what a station's rows may change."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Table,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from db.models import (
    Approval,
    Base,
    Decision,
    DecisionLine,
    ReturnItem,
    SyncConflict,
    User,
)
from db.push.errors import _reason, unreachable
from db.push.events import _BadEvent, _Careful, _Pending
from db.push.rules import (
    _BY_DECISION,
    USER_DISABLED,
    _contested_items,
    _disable_user,
    _held_row,
    _identity_clash,
    _lock_order_lines,
    _over_quantity,
    _OverQuantity,
    _refused_approvals,
    _with_settles,
)
from db.push.schema import _PK, _REFUSED_TABLES, _TABLE_RANK, INSERT_ONLY
from db.push.sql import (
    _COPY_FROM_ROWS,
    _claim,
    _copied_tables,
    _copy_rows,
    _copy_upsert,
    _fill_users,
    _fresh_tables,
    _insert,
    _missing_only,
    _typed,
    _upsert,
    _uuid_objects,
)
from db.snapshot import json_value, restore_values
from db.types import utcnow


def _apply_batch(conn: Connection, central: Engine, batch: list[_Pending], station_id: str | None, *,
                 prepared: _Prepared | None = None, before_careful: Callable[[], Any] | None = None,
                 ) -> tuple[list[int], dict[int, str], int, int, str | None]:
    """One central transaction for the batch.

    The fast path applies the whole batch with one statement per table; whatever it cannot take
    as a whole (a malformed event, an approval to check, a constraint that says no) sends the batch
    down the careful path: one SAVEPOINT per event, conflicts kept and flagged, refusals reported.
    Returns (outbox ids central now holds, {outbox id: reason} refused, pushed, duplicates, and
    for the fast path on PostgreSQL the transaction's xid: see ``SyncReport.echo_xids``).
    """
    import psycopg

    lost = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
    try:
        try:
            with conn.begin():
                return _apply_fast(conn, batch, station_id, prepared)
        except lost:
            raise
        except (_Careful, DBAPIError, psycopg.Error):
            # Rolled back (a COPY's error comes straight from psycopg): the careful path decides
            # event by event, and keeps a lost race as a conflict.
            pass
    except lost as exc:
        raise unreachable(central, exc, lost=True) from None
    if before_careful is not None:
        # Outside the mapping above: it reads the station too, and reports central itself.
        before_careful()
    try:
        with conn.begin():
            return (*_apply_careful(conn, batch, station_id), None)
    except lost as exc:
        raise unreachable(central, exc, lost=True) from None


def _origin(event: _Pending, station_id: str | None) -> str:
    payload = event.payload
    if not isinstance(payload, dict) or not isinstance(payload.get("rows"), list):
        raise _BadEvent("payload has no list of rows")
    origin = str(payload.get("station_id") or station_id or "")
    if not origin:
        raise _BadEvent("payload names no station_id")
    return origin


def _event_rows(event: _Pending, origin: str) -> list[tuple[str, dict[str, Any], bool]]:
    """The event's rows as they travel (JSON values), their shape checked: known table, one a
    station may write, a dict of values holding the primary key; and whether the row only fills
    a gap (a copy ``_resolve_refs`` added)."""
    payload = event.payload
    if payload.get("unresolved"):
        raise _BadEvent("refers to rows neither central nor this station holds: "
                        + ", ".join(map(str, payload["unresolved"][:5])))
    if payload.get("refs"):
        raise _BadEvent("its rows named by key were not resolved before applying")
    rows: list[tuple[str, dict[str, Any], bool]] = []
    for row in payload["rows"]:
        if not isinstance(row, dict) or "table" not in row or not isinstance(row.get("values"), dict):
            raise _BadEvent(f"malformed row {str(row)[:80]!r}")
        name, values = row["table"], row["values"]
        if name in _REFUSED_TABLES:
            raise _BadEvent(f"table {name!r} may not be written through an event")
        pk = _PK.get(name)
        if pk is None:
            raise _BadEvent(f"unknown table or column {name!r} in table {name!r}")
        for column in pk:
            if column not in values:
                missing = [c for c in pk if c not in values]
                raise _BadEvent(f"row of {name!r} lacks primary key column(s) {', '.join(missing)}")
        if name == User.__tablename__:
            values = {**values, **_from_station(origin)}
        rows.append((name, values, row.get("fill") is True))
    return rows


def _from_station(origin: str) -> dict[str, Any]:
    # Insert-only at central (see INSERT_ONLY): if central never heard of this user, the row it
    # keeps says where it came from, and that user cannot approve until confirmed; it never takes
    # credentials from a station, whatever the station sent.
    return {"created_from_station": origin, "password_hash": "!", "badge_hash": None, "failed_attempts": 0,
            "locked_until": None}


def _restored_rows(event: _Pending, origin: str) -> list[tuple[Table, dict[str, Any]]]:
    """The event's rows with their values typed again."""
    return [_restore(name, values) for name, values, _ in _event_rows(event, origin)]


def _fills(event: _Pending) -> set[tuple[str, Any]]:
    """(table, key as it travels) of the rows in the event that only fill a gap."""
    return {(row["table"], row["values"].get(_PK[row["table"]][0])) for row in event.payload["rows"]
            if isinstance(row, dict) and row.get("fill") is True and row.get("table") in _PK
            and isinstance(row.get("values"), dict)}


def _restore(name: str, values: dict[str, Any], *, uuid_text: bool = False) -> tuple[Table, dict[str, Any]]:
    try:
        return restore_values(name, values, uuid_text=uuid_text)
    except KeyError as exc:
        raise _BadEvent(f"unknown table or column {exc} in table {name!r}") from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise _BadEvent(f"a value of table {name!r} has the wrong type: {exc}") from None


@dataclass
class _Prepared:
    """What the fast path makes of a batch before it asks central anything (``_prepare``): done
    on the read-ahead thread while central takes the batch before."""
    events: list[tuple[_Pending, list[tuple[str, dict[str, Any], bool]]]]
    claims: list[dict[str, Any]]
    # Per table, the latest values of each row, as if every event were claimed (nearly always so),
    # and the keys of those that only fill a gap (no event carries them).
    latest: dict[str, dict[tuple[Any, ...], dict[str, Any]]]
    fill_only: dict[str, set[tuple[Any, ...]]]


def _prepare(batch: list[_Pending], station_id: str | None, on_postgresql: bool) -> _Prepared | None:
    """The batch's events checked and merged for the fast path; None if it needs the careful one."""
    try:
        events = [(event, _event_rows(event, _origin(event, station_id))) for event in batch]
    except (_BadEvent, KeyError, ValueError, TypeError):
        return None
    if any(name == Approval.__tablename__ for _, rows in events for name, _, _ in rows):
        return None  # approvals are checked one by one (four eyes, the approver's role)
    if any(event.kind == USER_DISABLED for event, _ in events):
        return None  # the disabling admin is checked at central
    if any(name == Decision.__tablename__ and values.get("status") == "approved" and values.get("review_reasons")
           for _, rows in events for name, values, _ in rows):
        # Approved without the review its reasons call for: central holds it (migration 0009), so
        # the station's copy is not what central keeps, and the pull must bring it back.
        return None
    claims = [{"event_id": event.event_id, "station_id": _origin(event, station_id), "kind": event.kind}
              for event, _ in events]
    try:
        latest, fill_only = _latest(events, on_postgresql)
    except _Careful:
        return None
    return _Prepared(events, claims, latest, fill_only)


def _latest(events: list[tuple[_Pending, list[tuple[str, dict[str, Any], bool]]]], on_postgresql: bool,
            ) -> tuple[dict[str, dict[tuple[Any, ...], dict[str, Any]]], dict[str, set[tuple[Any, ...]]]]:
    """Per table one version of each row the events write: later events win, as if applied one
    by one, and a copy that fills a gap never overrides what an event carries. Also per table the
    keys of rows only copies fill: written only where central still has none."""
    latest: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
    fill_only: dict[str, set[tuple[Any, ...]]] = {}
    try:
        for _event, rows in events:
            for name, values, fill in rows:
                if name in INSERT_ONLY:
                    # Typed only if central lacks them (``_typed``, below): it nearly always has them.
                    values = dict(values)
                else:
                    # On PostgreSQL UUIDs stay text until a row needs them as objects
                    # (``_uuid_objects``): a COPY writes them out as text again.
                    values = _restore(name, values, uuid_text=on_postgresql)[1]
                pk = _PK[name]
                key = (values[pk[0]],) if len(pk) == 1 else tuple(values[column] for column in pk)
                if name in INSERT_ONLY and any(not isinstance(part, (int, str)) for part in key):
                    raise _Careful()
                per_table = latest.get(name)
                if per_table is None:
                    per_table = latest[name] = {}
                seen = per_table.get(key)
                if seen is None:
                    per_table[key] = values  # this batch's own copy
                    if fill:
                        fill_only.setdefault(name, set()).add(key)
                elif not fill:
                    seen.update(values)
                    if name in fill_only:
                        fill_only[name].discard(key)
    except _BadEvent:
        raise _Careful() from None  # the careful path names the event
    except TypeError:
        raise _Careful() from None  # a key that is no key (a list, say): the careful path names it
    return latest, fill_only


def _apply_fast(conn: Connection, batch: list[_Pending], station_id: str | None,
                prepared: _Prepared | None = None) -> tuple[list[int], dict[int, str], int, int, str | None]:
    """The whole batch in a few statements: claim every event id at once, then per table one
    upsert of the latest values of each row (later events win, as if applied one by one).
    ``prepared``: what ``_prepare`` made of this batch already.

    A row this transaction writes holds exactly the values the station sent, except in
    ``ECHO_DIFFERS`` (a decision line central keeps inactive, a user central keeps without
    credentials): its xid is returned so the pull after the push can leave the rest alone."""
    on_postgresql = conn.dialect.name == "postgresql"
    if prepared is None:
        prepared = _prepare(batch, station_id, on_postgresql)
        if prepared is None:
            raise _Careful()
    now = utcnow()
    claims = [{**claim, "applied_at": now} for claim in prepared.claims]
    latest, fill_only = prepared.latest, prepared.fill_only
    # Tables whose rows central holds none of yet (a decision's rows nearly always; the event ids
    # always, unless pushed before) take a COPY straight in, without a staging table or ON
    # CONFLICT, and cannot clash with central's rows: one look-up for all of them first. A row
    # another push writes in between makes the COPY fail, and the batch go the careful way.
    # (The event ids are claimed through central's door, which stamps them with the pushing
    # station: never COPYed in.)
    claimed = _claim(conn, claims)
    if len(claimed) < len(prepared.events):
        # Some events central had applied already (a push again after a lost acknowledgement):
        # only the others' rows are written.
        latest, fill_only = _latest([(event, rows) for event, rows in prepared.events
                                     if str(event.event_id) in claimed], on_postgresql)
    fresh = _fresh_tables(conn, _copied_tables(latest)) if on_postgresql else set()
    for name, rows_by_key in latest.items():
        if name not in fresh and _identity_clash(conn, Base.metadata.tables[name], list(rows_by_key.values())):
            raise _Careful()  # the careful path names the event
    decided_items = {values["return_item_id"] for values in latest.get(DecisionLine.__tablename__, {}).values()
                     if values.get("active", True)}
    order_lines = _lock_order_lines(conn, decided_items, latest.get(ReturnItem.__tablename__, {}).values())
    statements: dict[tuple[str, tuple[str, ...], str], Any] = {}
    for name in sorted(latest, key=_TABLE_RANK.__getitem__):
        table = Base.metadata.tables[name]
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        fills: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        # A copy that only fills a gap: central may have gained the row since the look-up (another
        # station's push, the batch before), and its version stands. (INSERT_ONLY rows and those
        # of a table central holds none of are written only where central has none anyway.)
        only_fill = fill_only.get(name, ()) if name not in fresh and name not in INSERT_ONLY else ()
        # Rows in key order: two pushes touching the same rows lock them in the same order.
        for key in sorted(latest[name], key=_sort_key):
            values = latest[name][key]
            (fills if key in only_fill else by_columns).setdefault(tuple(values), []).append(values)
        for columns, rows in fills.items():
            if on_postgresql and len(rows) >= _COPY_FROM_ROWS:
                _copy_upsert(conn, table, columns, rows, insert_only=True)
            else:
                conn.execute(_upsert(conn, table, columns, statements, "insert_only"), _uuid_objects(table, columns, rows))
        if name in INSERT_ONLY:
            if conn.dialect.name == "postgresql":
                # Central almost always has these already (orders come from the order system): one
                # look-up of the keys instead of writing rows that would only be skipped.
                by_columns = _missing_only(conn, table, by_columns)
            by_columns = _typed(name, by_columns)
            if on_postgresql and name == User.__tablename__:
                _fill_users(conn, [values for rows in by_columns.values() for values in rows])
                continue
        for columns, rows in by_columns.items():
            if name in fresh:
                _copy_rows(conn, table, table.name, columns, rows)
            elif on_postgresql and len(rows) >= _COPY_FROM_ROWS:
                _copy_upsert(conn, table, columns, rows)
            else:
                conn.execute(_upsert(conn, table, columns, statements), _uuid_objects(table, columns, rows))
    if _over_quantity(conn, order_lines):
        raise _Careful()  # more units refunded than were shipped: the careful path finds the loser
    if on_postgresql and Decision.__tablename__ in latest:
        _deferred_checks_now(conn)  # before asking what central holds: its checks may hold some
    pushed = len(claimed)
    echo_xid = None
    if on_postgresql and not _held_at_central(conn, latest.get(Decision.__tablename__, {})):
        echo_xid = str(conn.execute(text("SELECT pg_current_xact_id()::text")).scalar_one())
    return [event.id for event in batch], {}, pushed, len(batch) - pushed, echo_xid


def _held_at_central(conn: Connection, decisions: dict[tuple[Any, ...], dict[str, Any]]) -> bool:
    """Whether central holds for review any decision the station sent as approved (migration
    0010): then the rows this push wrote are not all as the station holds them, and the pull
    after it must bring them back."""
    approved = [str(key[0]) for key, values in decisions.items() if values.get("status") == "approved"]
    if not approved:
        return False
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM decisions WHERE id = ANY(CAST(:ids AS uuid[])) "
                                  "AND status = 'pending_review')"), {"ids": approved}).scalar())


def _sort_key(key: tuple[Any, ...]) -> Any:
    return str(key[0]) if len(key) == 1 else tuple(str(part) for part in key)


def _apply_careful(conn: Connection, batch: list[_Pending], station_id: str | None,
                   ) -> tuple[list[int], dict[int, str], int, int]:
    done: list[int] = []
    failures: dict[int, str] = {}
    pushed = skipped = 0
    statements: dict[tuple[str, tuple[str, ...], str], Any] = {}
    for event in batch:
        try:
            with conn.begin_nested():
                applied = _apply_event(conn, event, station_id, statements)
        except (OperationalError, InterfaceError):
            raise  # the connection, not the event: give up on the whole batch
        except (IntegrityError, _OverQuantity) as exc:
            if isinstance(exc, IntegrityError) and not _is_item_conflict(exc):
                failures[event.id] = _reason(exc)
                continue
            # Another decision already holds one of its items (two stations decided offline):
            # keep this one, as a conflict for review, never silently dropped or merged.
            try:
                with conn.begin_nested():
                    applied = _apply_event(conn, event, station_id, statements, conflict=True)
            except (OperationalError, InterfaceError):
                raise
            except Exception as again:  # noqa: BLE001 - reported, never dropped
                failures[event.id] = _reason(again)
                continue
        except Exception as exc:  # noqa: BLE001 - whatever is wrong with one event, the others go on
            failures[event.id] = _reason(exc)
            continue
        done.append(event.id)
        if applied:
            pushed += 1
        else:
            skipped += 1
    return done, failures, pushed, skipped


ACTIVE_ITEM_INDEX = "uq_decision_lines_active_item"


# Central's own count of a line's standing refunds against the units shipped (migration 0012).
ORDER_LINE_UNITS = "rc_order_line_units"


# Central's checks of a decision once its lines are in, deferred to the end of the transaction:
# its sums (migration 0012) and whether it refunds against a station's copy of an order (0013).
# Asked before the fast path looks for decisions central holds, and on the careful path at the
# end of each event, inside the event's savepoint, so that a refusal is that event's alone.
DEFERRED_CHECKS = "rc_decision_sums, rc_station_orders"


def _deferred_checks_now(conn: Connection) -> None:
    conn.execute(text(f"SET CONSTRAINTS {DEFERRED_CHECKS} IMMEDIATE"))
    conn.execute(text(f"SET CONSTRAINTS {DEFERRED_CHECKS} DEFERRED"))


def _is_item_conflict(exc: IntegrityError) -> bool:
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        return diag.constraint_name in (ACTIVE_ITEM_INDEX, ORDER_LINE_UNITS)
    return "decision_lines.return_item_id" in str(orig)  # SQLite names the columns, not the index


def _apply_event(conn: Connection, event: _Pending, station_id: str | None,
                 statements: dict[tuple[str, tuple[str, ...], str], Any], *, conflict: bool = False) -> bool:
    """Apply one event; False if central had already applied it.

    ``conflict``: the event's decision lost the race for an item. Its decision is written with
    status ``conflict`` and inactive lines, every other row only where central has none yet (the
    winner's state of the RMA stands), and a ``sync_conflicts`` row per contested item.
    """
    origin = _origin(event, station_id)
    rows = _restored_rows(event, origin)
    fills = _fills(event)
    # Claiming the event id first makes a concurrent second push of the same event wait for
    # the first and then do nothing, instead of applying the rows twice.
    if not _claim(conn, [{"event_id": event.event_id, "station_id": origin, "kind": event.kind,
                          "applied_at": utcnow()}]):
        return False
    for table, values in rows:
        clash = _identity_clash(conn, table, [values])
        if clash:
            raise _BadEvent(clash)
    rows = _with_settles(rows)
    refused = _refused_approvals(conn, rows)
    held = {values["decision_id"] for table, values in rows
            if table.name == Approval.__tablename__ and values["id"] in refused}
    # What a refused verdict changed at the station (the units' acceptance, refunds per unit, the
    # RMA's state, put-away) must not land either: central keeps the case as it stands.
    held_items = {values["return_item_id"] for table, values in rows
                  if table.name in _BY_DECISION and values.get("decision_id") in held and "return_item_id" in values}
    held_rmas = {values["rma_id"] for table, values in rows
                 if table.name == Decision.__tablename__ and values["id"] in held}
    # Only an approval central accepts may settle a case that waits for review.
    approved = {values["decision_id"] for table, values in rows
                if table.name == Approval.__tablename__ and values["id"] not in refused} - held
    contested: list[tuple[uuid.UUID, int, uuid.UUID]] = []
    if conflict:
        contested = _contested_items(conn, rows)
        if not contested:
            raise _BadEvent("a decision line conflicts, but no other decision holds its item")
    losers = {decision_id for decision_id, _, _ in contested}
    decided_items = {values["return_item_id"] for table, values in rows
                     if table.name == DecisionLine.__tablename__ and values.get("active", True)}
    order_lines = _lock_order_lines(conn, decided_items,
                                    [values for table, values in rows if table.name == ReturnItem.__tablename__])
    for table, values in rows:
        mode = "upsert"
        # A lost race comes first: such a decision is a conflict whatever else the event says.
        if conflict and table.name == Decision.__tablename__ and values["id"] in losers:
            values = {**values, "status": "conflict"}
        elif conflict and table.name == DecisionLine.__tablename__ and values["decision_id"] in losers:
            values = {**values, "active": False}
        elif table.name == Approval.__tablename__ and values["id"] in refused:
            values = {**values, "refused_reason": refused[values["id"]]}
        elif table.name == Decision.__tablename__ and values["id"] in held:
            mode = "insert_only"  # a refused approval changes nothing about its decision
        elif held and _held_row(table.name, values, held, held_items, held_rmas):
            mode = "insert_only"
        elif table.name == Decision.__tablename__ and values["id"] in approved:
            mode = "approved"
        elif conflict:
            mode = "insert_only"
        if fills and (table.name, json_value(values.get(_PK[table.name][0]))) in fills:
            mode = "insert_only"  # a copy that only fills a gap (see _resolve_refs)
        if table.name == User.__tablename__ and conn.dialect.name == "postgresql":
            _fill_users(conn, [values])
            continue
        conn.execute(_upsert(conn, table, tuple(values), statements, mode), values)
    if not conflict and _over_quantity(conn, order_lines):
        raise _OverQuantity()
    if conn.dialect.name == "postgresql" and any(table.name == Decision.__tablename__ for table, _ in rows):
        _deferred_checks_now(conn)
    if event.kind == USER_DISABLED:
        _disable_user(conn, rows)
    now = utcnow()
    for decision_id, item_id, holder in contested:
        conn.execute(_insert(conn, SyncConflict.__table__).values(
            id=uuid.uuid4(), kind="item_already_decided", decision_id=decision_id, return_item_id=item_id,
            other_decision_id=holder, station_id=origin, event_id=event.event_id, detected_at=now,
            reason=f"return item {item_id} (or every shipped unit of its order line) was already decided by "
                   f"decision {holder}; decision {decision_id} from {origin} is kept as a conflict for review"))
    for table, values in rows:
        if table.name == Approval.__tablename__ and values["id"] in refused:
            conn.execute(_insert(conn, SyncConflict.__table__).values(
                id=uuid.uuid4(), kind="approval_refused", decision_id=values["decision_id"],
                approval_id=values["id"], station_id=origin, event_id=event.event_id, detected_at=now,
                reason=refused[values["id"]]))
    return True
