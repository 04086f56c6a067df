"""Pull what changed at central into the station: the change feed.

Every row of a fed table carries ``change_xid``, the id of the transaction that last wrote it
(stamped by a trigger, migration 0006). A plain ``id > last`` poll skips rows: a transaction that
took a smaller id but commits after a larger one is read past. Reading only rows stamped below
``pg_snapshot_xmin(pg_current_snapshot())`` — every transaction below it has ended — in
``(change_xid, key)`` order cannot skip anything: a transaction still running has an xid at or above
the horizon, and its rows are read in a later pass.

One horizon per pass for every table, tables in foreign-key order: what a pass applies is
consistent (an item's RMA comes with it). Each page of rows is applied with its cursor in one
station transaction, so a pull killed half-way resumes exactly where it stopped.

Rows the station changed itself and has not pushed yet are left alone (its newer state wins
locally until central has it; the push comes first in every sync pass anyway) and fetched again
by key once the change has gone out. The station's own lock-out counters, and the credentials it
signs people in with, are never replaced by central's copy of a user it only heard of from a
station.
"""
from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import String, Table, Uuid, case, delete, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from db.bulk_gc import full_collections_held_off
from db.models import Base, OutboxRow, SyncCursor, SyncRefetch
from db.push import ECHO_DIFFERS, INSERT_ONLY, unreachable
from db.types import utcnow

# (table, key) in foreign-key order; migration 0006 stamps exactly these. A key of several
# columns is written "a, b"; its value as text joins the parts with "|".
FEED_TABLES: tuple[tuple[str, str], ...] = (
    ("stations", "id"), ("users", "id"), ("customers", "id"), ("orders", "id"), ("order_lines", "id"),
    ("shipments", "id"), ("return_authorizations", "id"), ("parcel_receipts", "id"), ("return_items", "id"),
    ("policy_versions", "version"), ("decisions", "id"), ("decision_lines", "decision_id, return_item_id"),
    ("approvals", "id"), ("sync_conflicts", "id"),
    # Since 0008: the evidence a supervisor at any station reads in the case view.
    ("item_scans", "id"), ("inspections", "id"), ("risk_assessments", "id"), ("deductions", "id"), ("claims", "id"),
    # Since 0011: approvers' public keys, with central's confirmation (a supervisor sees whether
    # their verdicts will count before they give them).
    ("approver_keys", "id"),
)
# Station-local state a pull never overwrites.
_KEEP_LOCAL = {"users": {"failed_attempts", "locked_until"}, "stations": {"last_synced_at"},
               "approver_keys": {"retired_at", "enrolled_at"}}
PAGE_SIZE = 5000


@dataclass
class PullReport:
    supported: bool
    pulled: int = 0
    pages: int = 0
    kept_local: int = 0  # rows passed over because the station has unpushed changes to them
    incomplete: bool = False  # stopped early (a row ahead of its parent); the next pass goes on
    by_table: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pull_once(station: Engine, central: Engine, *, page_size: int = PAGE_SIZE,
              echo_xids: Collection[str] = ()) -> PullReport:
    """Apply every change committed at central below this pass's horizon. Raises
    ``EnvironmentProblem`` if central cannot be reached or goes away; what was applied stays.

    ``echo_xids``: central transactions of this station's own push that wrote exactly what the
    station holds (``db.push.SyncReport.echo_xids``); their rows are passed over, not applied
    again (the cursor still moves past them), except in tables where central may have kept
    something else (``db.push.ECHO_DIFFERS``)."""
    if central.dialect.name != "postgresql":
        return PullReport(supported=False)  # a demo's SQLite central serves no feed
    try:
        with full_collections_held_off():
            return _pull(station, central, page_size, frozenset(echo_xids))
    except (OperationalError, InterfaceError) as exc:
        raise unreachable(central, exc, lost=True) from None


def _pull(station: Engine, central: Engine, page_size: int, echo_xids: frozenset[str]) -> PullReport:
    report = PullReport(supported=True)
    with central.connect() as conn:
        horizon = int(conn.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")).scalar_one())
        try:
            for table_name, key in FEED_TABLES:
                while True:
                    rows = _page(conn, table_name, key, _cursor(station, table_name), horizon, page_size)
                    if not rows:
                        break
                    echo = echo_xids if table_name not in ECHO_DIFFERS else frozenset()
                    applied, kept = _apply_page(station, table_name, key, rows, echo=echo)
                    report.pulled += applied
                    report.kept_local += kept
                    report.pages += 1
                    if applied:
                        report.by_table[table_name] = report.by_table.get(table_name, 0) + applied
                    if len(rows) < page_size:
                        break
        except IntegrityError:
            # A row whose parent central re-stamped above this pass's horizon (its page rolled
            # back, the cursor where it was): the next pass brings the parent first.
            report.incomplete = True
        # After the feed: a row read again by key may refer to rows the feed has just brought.
        _refetch(station, conn, report)
        conn.rollback()
    return report


def _cursor(station: Engine, table_name: str) -> tuple[int, str] | None:
    with station.connect() as conn:
        row = conn.execute(select(SyncCursor.xid, SyncCursor.key).where(SyncCursor.table_name == table_name)).first()
    return (int(row.xid), str(row.key)) if row else None


def _key_columns(key: str) -> list[str]:
    return [part.strip() for part in key.split(",")]


def _key_text(values: dict[str, Any], key: str) -> str:
    return "|".join(str(values.get(name)) for name in _key_columns(key))


def _sql_type(column: Any) -> str:
    return "uuid" if isinstance(column.type, Uuid) else "text" if isinstance(column.type, String) else "bigint"


def _page(conn: Connection, table_name: str, key: str, cursor: tuple[int, str] | None, horizon: int | None,
          limit: int, *, only_key: str | None = None) -> list[dict[str, Any]]:
    table = Base.metadata.tables[table_name]
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    names = _key_columns(key)
    casts = [f"CAST(:k{i} AS {_sql_type(table.c[name])})" for i, name in enumerate(names)]
    if only_key is not None:
        parts = only_key.split("|")
        where = " AND ".join(f"{name} = {cast}" for name, cast in zip(names, casts))
        sql = f"SELECT {columns}, change_xid::text AS change_xid FROM {table_name} WHERE {where}"
        return [dict(row._mapping) for row in conn.execute(text(sql), {f"k{i}": v for i, v in enumerate(parts)})]
    where = "change_xid < CAST(CAST(:horizon AS text) AS xid8)"
    params: dict[str, Any] = {"horizon": str(horizon), "limit": limit}
    if cursor is not None:
        where += (f" AND (change_xid, {', '.join(names)}) > (CAST(CAST(:xid AS text) AS xid8), {', '.join(casts)})")
        params.update(xid=str(cursor[0]), **{f"k{i}": v for i, v in enumerate(cursor[1].split("|"))})
    sql = (f"SELECT {columns}, change_xid::text AS change_xid FROM {table_name} WHERE {where} "
           f"ORDER BY change_xid, {', '.join(names)} LIMIT :limit")
    return [dict(row._mapping) for row in conn.execute(text(sql), params)]


def _apply_page(station: Engine, table_name: str, key: str, rows: list[dict[str, Any]], *,
                cursor_too: bool = True, echo: frozenset[str] = frozenset()) -> tuple[int, int]:
    """Apply ``rows`` (and move the table's cursor past them) in one station transaction. Rows
    the station has unpushed changes to are passed over and listed for fetching again."""
    table = Base.metadata.tables[table_name]
    keep = _KEEP_LOCAL.get(table_name, set())
    last = rows[-1]
    # BEGIN IMMEDIATE (the station's write lock up front): the set of rows with unpushed changes
    # cannot grow between reading it and writing over the rest.
    with station.connect() as conn:
        conn = conn.execution_options(sqlite_begin="immediate")
        with conn.begin():
            conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # a page may refer forwards
            unpushed = _unpushed_keys(conn, table_name, key)
            applied = kept = 0
            groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row in rows:
                values = {name: value for name, value in row.items() if name != "change_xid"}
                if _key_text(values, key) in unpushed:
                    # Even a row this station's own push wrote: the station has moved on since,
                    # and central may yet refuse that change (then only a fetch again converges).
                    kept += 1
                    conn.execute(sqlite.insert(SyncRefetch).values(table_name=table_name, key=_key_text(values, key))
                                 .on_conflict_do_nothing())
                    continue
                if echo and row["change_xid"] in echo:
                    continue  # what this station's own push just wrote, as the station holds it
                groups.setdefault(tuple(values), []).append(values)
                applied += 1
            if table_name == "decision_lines":
                _make_way_for_standing_lines(conn, [v for batch in groups.values() for v in batch])
            for columns, batch in groups.items():
                conn.execute(_upsert(table, columns, keep), batch)
            if table_name == "approvals":
                _undo_refused_verdicts(conn, [v for batch in groups.values() for v in batch])
            if cursor_too:
                cursor = {"table_name": table_name, "xid": int(last["change_xid"]), "key": _key_text(last, key),
                          "pulled_at": utcnow()}
                conn.execute(sqlite.insert(SyncCursor).values(cursor).on_conflict_do_update(
                    index_elements=["table_name"], set_={k: v for k, v in cursor.items() if k != "table_name"}))
    return applied, kept


def _undo_refused_verdicts(conn: Connection, approvals: list[dict[str, Any]]) -> None:
    """Central refused a verdict this station gave (a supervisor disabled while it was offline):
    the case is central's again. Central kept its own rows of the case as they were, so the feed
    does not bring them: they are read again by key after the feed (decision, units, RMA), and
    the case shows as waiting with central's reason."""
    from db.models import Decision, DecisionLine, ReturnItem

    refused = [values["decision_id"] for values in approvals if values.get("refused_reason")]
    for decision_id in refused:
        decision = conn.execute(select(Decision.id, Decision.rma_id).where(Decision.id == decision_id)).first()
        if decision is None:
            continue
        wanted = [("decisions", str(decision.id))]
        items = list(conn.execute(select(DecisionLine.return_item_id)
                                  .where(DecisionLine.decision_id == decision.id)).scalars())
        wanted += [("decision_lines", f"{decision.id}|{item}") for item in items]
        wanted += [("return_items", str(item)) for item in
                   conn.execute(select(ReturnItem.id).where(ReturnItem.id.in_(items))).scalars()]
        if decision.rma_id is not None:
            wanted.append(("return_authorizations", str(decision.rma_id)))
        for table_name, key_value in wanted:
            conn.execute(sqlite.insert(SyncRefetch).values(table_name=table_name, key=key_value)
                         .on_conflict_do_nothing())


def _make_way_for_standing_lines(conn: Connection, lines: list[dict[str, Any]]) -> None:
    """Central's standing line for an item wins over this station's: another decision's active
    line for the same item here is set inactive first (the station's unique index allows one).
    Central holds that other decision as a conflict, or will once the station has pushed it."""
    from db.models import DecisionLine

    standing: dict[Any, set[Any]] = {}
    for values in lines:
        if values.get("active"):
            standing.setdefault(values["return_item_id"], set()).add(values["decision_id"])
    items = list(standing)
    # One look-up per chunk instead of an UPDATE per line: nearly always nothing is in the way.
    for start in range(0, len(items), 500):
        in_the_way = conn.execute(select(DecisionLine.decision_id, DecisionLine.return_item_id).where(
            DecisionLine.active, DecisionLine.return_item_id.in_(items[start:start + 500]))).all()
        for decision_id, item_id in in_the_way:
            if decision_id not in standing[item_id]:
                conn.execute(update(DecisionLine).where(DecisionLine.decision_id == decision_id,
                                                        DecisionLine.return_item_id == item_id).values(active=False))


def _refetch(station: Engine, conn: Connection, report: PullReport) -> None:
    """Rows passed over earlier, read again by key now that the station's changes have gone out."""
    with station.connect() as local:
        waiting = local.execute(select(SyncRefetch.table_name, SyncRefetch.key)).all()
    for table_name, key_value in waiting:
        key = dict(FEED_TABLES)[table_name]
        with station.connect() as local:
            if key_value in _unpushed_keys(local, table_name, key):
                continue  # still not out: next pass
        rows = _page(conn, table_name, key, None, None, 1, only_key=key_value)
        if rows:
            try:
                applied, _ = _apply_page(station, table_name, key, rows, cursor_too=False)
            except IntegrityError:
                # Its parent is not here yet (written at central after this pass's horizon): kept
                # for the next pass, which brings the parent first. Never a pass that fails for good.
                report.incomplete = True
                continue
            report.pulled += applied
            report.by_table[table_name] = report.by_table.get(table_name, 0) + applied
        with station.begin() as local:
            local.execute(delete(SyncRefetch).where(SyncRefetch.table_name == table_name,
                                                    SyncRefetch.key == key_value))


def _unpushed_keys(conn: Connection, table_name: str, key: str) -> set[str]:
    """Keys of this table's rows carried by events still in the outbox. Tables central owns
    (insert-only from stations: users, orders, ...) are never held back: the station's copy in an
    event could not change central's anyway."""
    if table_name in INSERT_ONLY:
        return set()
    keys: set[str] = set()
    for payload in conn.execute(select(OutboxRow.payload).where(OutboxRow.sent_at.is_(None))).scalars():
        if isinstance(payload, str):
            payload = json.loads(payload)
        for row in payload.get("rows", ()) if isinstance(payload, dict) else ():
            if isinstance(row, dict) and row.get("table") == table_name and isinstance(row.get("values"), dict):
                keys.add(_key_text(row["values"], key))
    return keys


_STATEMENTS: dict[tuple[str, tuple[str, ...]], Any] = {}


def _upsert(table: Table, columns: tuple[str, ...], keep: set[str]) -> Any:
    cache_key = (table.name, columns)
    if cache_key not in _STATEMENTS:
        pk = [c.name for c in table.primary_key.columns]
        stmt = sqlite.insert(table)
        changes: dict[str, Any] = {name: stmt.excluded[name] for name in columns if name not in pk and name not in keep}
        if table.name == "users":
            # Central keeps "!" for a user it only knows from a station's copy: such a row never
            # replaces the credentials the station signs that person in with.
            copy_only = stmt.excluded.password_hash == "!"
            for name in ("password_hash", "badge_hash"):
                if name in changes:
                    changes[name] = case((copy_only, table.c[name]), else_=stmt.excluded[name])
        _STATEMENTS[cache_key] = (stmt.on_conflict_do_update(index_elements=pk, set_=changes) if changes
                                  else stmt.on_conflict_do_nothing(index_elements=pk))
    return _STATEMENTS[cache_key]
