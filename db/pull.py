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
locally until central has it; the push comes first in every sync pass anyway), and the station's
own lock-out counters are never taken from central.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import String, Table, Uuid, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from db.models import Base, OutboxRow, SyncCursor
from db.sync import unreachable
from db.types import utcnow

# (table, key) in foreign-key order; migration 0006 stamps exactly these.
FEED_TABLES: tuple[tuple[str, str], ...] = (
    ("stations", "id"), ("users", "id"), ("customers", "id"), ("orders", "id"), ("order_lines", "id"),
    ("shipments", "id"), ("return_authorizations", "id"), ("parcel_receipts", "id"), ("return_items", "id"),
    ("policy_versions", "version"), ("decisions", "id"), ("approvals", "id"), ("sync_conflicts", "id"),
)
# Station-local state a pull never overwrites.
_KEEP_LOCAL = {"users": {"failed_attempts", "locked_until"}, "stations": {"last_synced_at"}}
PAGE_SIZE = 5000


@dataclass
class PullReport:
    supported: bool
    pulled: int = 0
    pages: int = 0
    kept_local: int = 0  # rows skipped because the station has unpushed changes to them
    by_table: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pull_once(station: Engine, central: Engine, *, page_size: int = PAGE_SIZE) -> PullReport:
    """Apply every change committed at central below this pass's horizon. Raises
    ``EnvironmentProblem`` if central cannot be reached or goes away; what was applied stays."""
    if central.dialect.name != "postgresql":
        return PullReport(supported=False)  # a demo's SQLite central serves no feed
    try:
        return _pull(station, central, page_size)
    except (OperationalError, InterfaceError) as exc:
        raise unreachable(central, exc, lost=True) from None


def _pull(station: Engine, central: Engine, page_size: int) -> PullReport:
    report = PullReport(supported=True)
    with central.connect() as conn:
        horizon = int(conn.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")).scalar_one())
        for table_name, key in FEED_TABLES:
            while True:
                rows = _page(conn, table_name, key, _cursor(station, table_name), horizon, page_size)
                if not rows:
                    break
                applied, kept = _apply_page(station, table_name, key, rows)
                report.pulled += applied
                report.kept_local += kept
                report.pages += 1
                if applied:
                    report.by_table[table_name] = report.by_table.get(table_name, 0) + applied
                if len(rows) < page_size:
                    break
        conn.rollback()
    return report


def _cursor(station: Engine, table_name: str) -> tuple[int, str] | None:
    with station.connect() as conn:
        row = conn.execute(select(SyncCursor.xid, SyncCursor.key).where(SyncCursor.table_name == table_name)).first()
    return (int(row.xid), str(row.key)) if row else None


def _page(conn: Connection, table_name: str, key: str, cursor: tuple[int, str] | None, horizon: int,
          limit: int) -> list[dict[str, Any]]:
    table = Base.metadata.tables[table_name]
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    key_type = {"version": "text"}.get(key) or ("uuid" if isinstance(table.c[key].type, Uuid) else
                                                 "text" if isinstance(table.c[key].type, String) else "bigint")
    where = "change_xid < CAST(CAST(:horizon AS text) AS xid8)"
    params: dict[str, Any] = {"horizon": str(horizon), "limit": limit}
    if cursor is not None:
        where += (f" AND (change_xid, {key}) > (CAST(CAST(:xid AS text) AS xid8), CAST(:key AS {key_type}))")
        params.update(xid=str(cursor[0]), key=cursor[1])
    sql = (f"SELECT {columns}, change_xid::text AS change_xid FROM {table_name} WHERE {where} "
           f"ORDER BY change_xid, {key} LIMIT :limit")
    return [dict(row._mapping) for row in conn.execute(text(sql), params)]


def _apply_page(station: Engine, table_name: str, key: str, rows: list[dict[str, Any]]) -> tuple[int, int]:
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
            groups: dict[tuple[tuple[str, ...], bool], list[dict[str, Any]]] = {}
            for row in rows:
                values = {name: value for name, value in row.items() if name != "change_xid"}
                if str(values[key]) in unpushed:
                    kept += 1
                    continue
                # A user central only knows from a station's copy has no credentials there: it must
                # never replace the station's own row of that user.
                insert_only = table_name == "users" and bool(values.get("created_from_station"))
                groups.setdefault((tuple(values), insert_only), []).append(values)
                applied += 1
            for (columns, insert_only), batch in groups.items():
                conn.execute(_upsert(table, columns, keep, insert_only), batch)
            cursor = {"table_name": table_name, "xid": int(last["change_xid"]), "key": str(last[key]),
                      "pulled_at": utcnow()}
            conn.execute(sqlite.insert(SyncCursor).values(cursor).on_conflict_do_update(
                index_elements=["table_name"], set_={k: v for k, v in cursor.items() if k != "table_name"}))
    return applied, kept


def _unpushed_keys(conn: Connection, table_name: str, key: str) -> set[str]:
    """Keys of this table's rows carried by events still in the outbox."""
    keys: set[str] = set()
    for payload in conn.execute(select(OutboxRow.payload).where(OutboxRow.sent_at.is_(None))).scalars():
        if isinstance(payload, str):
            payload = json.loads(payload)
        for row in payload.get("rows", ()) if isinstance(payload, dict) else ():
            if isinstance(row, dict) and row.get("table") == table_name and isinstance(row.get("values"), dict):
                keys.add(str(row["values"].get(key)))
    return keys


_STATEMENTS: dict[tuple[str, tuple[str, ...], bool], Any] = {}


def _upsert(table: Table, columns: tuple[str, ...], keep: set[str], insert_only: bool) -> Any:
    cache_key = (table.name, columns, insert_only)
    if cache_key not in _STATEMENTS:
        pk = [c.name for c in table.primary_key.columns]
        stmt = sqlite.insert(table)
        changes = {} if insert_only else {name: stmt.excluded[name] for name in columns
                                          if name not in pk and name not in keep}
        _STATEMENTS[cache_key] = (stmt.on_conflict_do_update(index_elements=pk, set_=changes) if changes
                                  else stmt.on_conflict_do_nothing(index_elements=pk))
    return _STATEMENTS[cache_key]
