"""The statements the apply paths write with: COPY into staging, upserts with central's conflict
rules, typed key look-ups."""
from __future__ import annotations

import uuid
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    String,
    Table,
    Uuid,
    and_,
    any_,
    bindparam,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from console.errors import EnvironmentProblem
from db.models import (
    AppliedEvent,
    Base,
    Decision,
    DecisionLine,
)
from db.push.events import _Careful
from db.push.schema import _CENTRAL_COLUMNS, _VERSIONED, APPEND_ONLY, CENTRAL_DECIDES, INSERT_ONLY
from db.snapshot import restore_values
from db.types import UTCDateTime

_CLAIMS_PER_STATEMENT = 1000


_COPY_FROM_ROWS = 20  # below this, plain statements beat setting up a COPY


def _uuid_objects(table: Table, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows whose UUIDs stayed text (``restore_values(uuid_text=True)``) with UUID objects, for
    a statement executed through SQLAlchemy."""
    names = [name for name in columns if isinstance(table.c[name].type, Uuid)]
    if not names:
        return rows
    try:
        return [{**values, **{name: uuid.UUID(values[name]) for name in names if isinstance(values[name], str)}}
                for values in rows]
    except ValueError:
        raise _Careful() from None  # the careful path names the event


def _claim(conn: Connection, claims: list[dict[str, Any]]) -> set[str]:
    """Record the events as applied; the ids that were new, as text. A concurrent push of the same
    events waits here for the first, then claims nothing."""
    if conn.dialect.name == "postgresql":
        # Through central's door: the ids are claimed for the station whose credential pushes.
        wanted = orjson.dumps([{"event_id": str(c["event_id"]), "station_id": c["station_id"], "kind": c["kind"]}
                               for c in claims]).decode()
        return set(conn.execute(text("SELECT rc_claim_events(CAST(:claims AS json))"), {"claims": wanted}).scalars())
    claimed: set[str] = set()
    for start in range(0, len(claims), _CLAIMS_PER_STATEMENT):
        stmt = (_insert(conn, AppliedEvent.__table__).values(claims[start:start + _CLAIMS_PER_STATEMENT])
                .on_conflict_do_nothing(index_elements=["event_id"]).returning(AppliedEvent.event_id))
        claimed.update(str(event_id) for event_id in conn.execute(stmt).scalars())
    return claimed


def _fill_users(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: a station's copies of users central lacks, through central's door, which keeps
    them as that station's word, without credentials (stations may not insert users)."""
    if rows:
        copies = orjson.dumps([{name: values.get(name) for name in (
            "id", "username", "display_name", "role", "active", "created_at", "created_from_station")}
            for values in rows]).decode()
        conn.execute(text("SELECT rc_fill_users(CAST(:copies AS json))"), {"copies": copies})


def _typed(name: str, by_columns: dict[tuple[str, ...], list[dict[str, Any]]],
           ) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Rows kept as JSON values by a lazy ``_restored_rows``, typed for writing."""
    try:
        return {columns: [restore_values(name, values)[1] for values in rows] for columns, rows in by_columns.items()}
    except (KeyError, ValueError, TypeError, AttributeError):
        raise _Careful() from None  # the careful path names the event


def _key_in(conn: Connection, column: Any, keys: list[Any]) -> Any:
    """``column IN (keys)``; on PostgreSQL as ``= ANY(array)``: one parameter however many keys,
    where an IN list costs a bound parameter (and its rendering) per key."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(keys), type_=postgresql.ARRAY(column.type)))
    return column.in_(keys)


def _missing_only(conn: Connection, table: Table, by_columns: dict[tuple[str, ...], list[dict[str, Any]]],
                  ) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """The rows of an insert-only table that central does not hold yet."""
    (pk,) = table.primary_key.columns
    keys = [values[pk.name] for rows in by_columns.values() for values in rows]
    present: set[Any] = set()
    for start in range(0, len(keys), 10_000):
        present.update(conn.execute(select(pk).where(_key_in(conn, pk, keys[start:start + 10_000]))).scalars())
    kept = {columns: [v for v in rows if v[pk.name] not in present] for columns, rows in by_columns.items()}
    return {columns: rows for columns, rows in kept.items() if rows}


def _copied_tables(latest: dict[str, dict[tuple[Any, ...], dict[str, Any]]],
                   ) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    """The tables whose rows may be COPYed straight in if central holds none of them: not those
    that skip a row clashing on any key (APPEND_ONLY), nor INSERT_ONLY (the order system's rows,
    which two stations may well fill at once: ON CONFLICT DO NOTHING lets both through)."""
    return {name: rows for name, rows in latest.items() if name not in APPEND_ONLY and name not in INSERT_ONLY}


def _fresh_tables(conn: Connection, latest: dict[str, dict[tuple[Any, ...], dict[str, Any]]]) -> set[str]:
    """Of the tables (PostgreSQL; keys as ``_latest`` makes them, UUIDs as text), those where
    central holds no row under any of the keys: one statement for all of them."""
    # A table of a few rows is written by plain statements anyway.
    candidates = {name: rows for name, rows in latest.items() if len(rows) >= _COPY_FROM_ROWS}
    parts = []
    params: dict[str, str] = {}
    for i, (name, rows) in enumerate(sorted(candidates.items())):
        pk = list(Base.metadata.tables[name].primary_key.columns)
        # The keys as one JSON parameter (a list of lists): orjson writes it and the server reads
        # it far faster than arrays bound element by element.
        try:
            params[f"p{i}"] = orjson.dumps([list(key) for key in rows]).decode()
        except TypeError:
            raise _Careful() from None  # a key JSON cannot hold (an integer beyond 64 bits): named there
        match = " AND ".join(f'(t."{column.name}" = CAST(k.value ->> {j} AS {_sql_kind(column)}))'
                             for j, column in enumerate(pk))
        parts.append(f"SELECT '{name}' AS t WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(CAST(:p{i} AS jsonb)) "
                     f"AS k JOIN {name} AS t ON {match})")
    if not parts:
        return set()
    held = set(conn.execute(text(" UNION ALL ".join(parts)), params).scalars())
    return set(candidates) - held


def _sql_kind(column: Any) -> str:
    """A key or identity column's PostgreSQL type, for a cast."""
    return ("uuid" if isinstance(column.type, Uuid) else "text" if isinstance(column.type, String)
            else "timestamptz" if isinstance(column.type, UTCDateTime) else "bigint")


def _copy_upsert(conn: Connection, table: Table, columns: tuple[str, ...], rows: list[dict[str, Any]], *,
                 insert_only: bool = False) -> None:
    """PostgreSQL: the rows COPYed into a temporary table of this session, then one
    ``INSERT ... SELECT ... ON CONFLICT`` with exactly ``_upsert``'s rules (``insert_only``: DO
    NOTHING). Per row this costs a fraction of an executed statement; the transaction is the caller's."""
    stage = f"stage_{table.name}"
    names = ", ".join(f'"{c}"' for c in columns)
    all_columns = ", ".join(f'"{c.name}"' for c in table.columns)
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur:
        # No constraints copied (AS ... WITH NO DATA): central's own columns may be absent here.
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} AS SELECT {all_columns} FROM {table.name} WITH NO DATA")
    _copy_rows(conn, table, stage, columns, rows)
    with raw.cursor() as cur:
        cur.execute(f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} "
                    f"{_on_conflict_sql(table, columns, insert_only=insert_only)}")
        cur.execute(f"DELETE FROM {stage}")


def _copy_rows(conn: Connection, table: Table, into: str, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: ``COPY into (columns) FROM STDIN`` of the rows, ``table``'s JSON columns as text."""
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    names = ", ".join(f'"{c}"' for c in columns)
    raw = conn.connection.driver_connection
    assert raw is not None
    # A row's values picked by one C call; only JSON columns (as text, by orjson: COPY's text
    # format takes it as it is) are touched one by one.
    pick = itemgetter(*columns) if len(columns) > 1 else lambda values: (values[columns[0]],)
    wrap = [i for i, name in enumerate(columns) if name in json_columns]
    with raw.cursor() as cur, cur.copy(f"COPY {into} ({names}) FROM STDIN") as copy:
        for values in rows:
            row = pick(values)
            if wrap:
                row = list(row)
                for i in wrap:
                    if row[i] is not None:
                        row[i] = _json_text(row[i])
            copy.write_row(row)


def _json_text(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # what orjson refuses (an integer beyond 64 bits) the standard library writes
        import json

        return json.dumps(value)


def _on_conflict_sql(table: Table, columns: tuple[str, ...], *, insert_only: bool = False) -> str:
    """``_upsert``'s conflict rules as SQL text (for ``_copy_upsert``); ``insert_only``: its mode
    of that name."""
    pk = [c.name for c in table.primary_key.columns]
    target = ", ".join(f'"{c}"' for c in pk)
    if table.name in APPEND_ONLY:
        return "ON CONFLICT DO NOTHING"
    if table.name in INSERT_ONLY or table.name in CENTRAL_DECIDES or insert_only:
        return f"ON CONFLICT ({target}) DO NOTHING"
    kept = _CENTRAL_COLUMNS.get(table.name, frozenset())
    changes = {name: f'EXCLUDED."{name}"' for name in columns if name not in pk and name not in kept}
    if table.name == DecisionLine.__tablename__ and "active" in changes:
        changes["active"] = f'{table.name}.active AND EXCLUDED.active'
    if table.name == "approver_keys" and "retired_at" in changes:  # a key retired stays retired
        changes["retired_at"] = f'COALESCE({table.name}.retired_at, EXCLUDED.retired_at)'
    if not changes:
        return f"ON CONFLICT ({target}) DO NOTHING"
    sql = f"ON CONFLICT ({target}) DO UPDATE SET " + ", ".join(f'"{k}" = {v}' for k, v in changes.items())
    if table.name == Decision.__tablename__:
        sql += (f" WHERE {table.name}.status <> 'conflict' AND {table.name}.amount_minor = EXCLUDED.amount_minor"
                f" AND ({table.name}.status <> 'pending_review' OR EXCLUDED.status = 'pending_review')")
    elif table.name in _VERSIONED and "updated_at" in changes:
        sql += f" WHERE {table.name}.updated_at IS NULL OR EXCLUDED.updated_at >= {table.name}.updated_at"
    return sql


def _upsert(conn: Connection, table: Table, columns: tuple[str, ...],
            cache: dict[tuple[str, tuple[str, ...], str], Any], mode: str = "upsert") -> Any:
    """``INSERT ... ON CONFLICT (pk) DO UPDATE`` for exactly the columns the snapshot carries, so a
    column it leaves out is never overwritten with a default. ``insert_only``: DO NOTHING.

    Central's verdicts stand against a station's later writes: a decision in ``conflict`` keeps
    that status, and a decision line central made inactive is never made active again."""
    if table.name in CENTRAL_DECIDES and conn.dialect.name == "postgresql":
        mode = "insert_only"  # central's trigger settles a case (see CENTRAL_DECIDES)
    key = (table.name, columns, mode)
    if key not in cache:
        pk = [c.name for c in table.primary_key.columns]
        stmt = _insert(conn, table)
        changes: dict[str, Any] = {}
        if mode in ("upsert", "approved") and table.name not in INSERT_ONLY:
            kept = _CENTRAL_COLUMNS.get(table.name, frozenset())
            changes = {name: stmt.excluded[name] for name in columns if name not in pk and name not in kept}
        where = None
        if table.name == Decision.__tablename__:
            where = table.c.status != "conflict"
            if mode != "approved":
                # A decision is settled once made: a station's later copy may move it on (superseded),
                # but never changes its amount or settles a case waiting for review on its own.
                where = and_(where, table.c.amount_minor == stmt.excluded.amount_minor,
                             or_(table.c.status != "pending_review", stmt.excluded.status == "pending_review"))
        elif table.name == DecisionLine.__tablename__ and "active" in changes:
            changes["active"] = and_(table.c.active, stmt.excluded.active)
        elif table.name == "approver_keys" and "retired_at" in changes:  # a key retired stays retired
            changes["retired_at"] = func.coalesce(table.c.retired_at, stmt.excluded.retired_at)
        elif table.name in _VERSIONED and "updated_at" in changes:
            where = or_(table.c.updated_at.is_(None), stmt.excluded.updated_at >= table.c.updated_at)
        if table.name in APPEND_ONLY:
            cache[key] = stmt.on_conflict_do_nothing()
        else:
            cache[key] = (stmt.on_conflict_do_update(index_elements=pk, set_=changes, where=where) if changes
                          else stmt.on_conflict_do_nothing(index_elements=pk))
    return cache[key]


def _insert(conn: Connection, table: Any) -> Any:
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise EnvironmentProblem(f"unsupported central database {name!r}: use SQLite or PostgreSQL")
