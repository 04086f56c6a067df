"""What an event names by key but does not carry: which of those keys central lacks, and the
station's copy of just those rows (a copy only fills a gap)."""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import (
    String,
    Uuid,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from db.models import (
    Base,
)
from db.push.errors import unreachable
from db.push.events import _Pending
from db.push.schema import _PK, _TABLE_RANK
from db.push.sql import _key_in, _sql_kind
from db.outbox import BY_REFERENCE, outbound_values
from db.snapshot import json_value


def _resolve_refs(conn: Connection, central: Engine, station: Engine, batch: list[_Pending], *,
                  deferred: bool = False, carried_before: dict[str, set[Any]] | None = None,
                  ) -> tuple[dict[str, set[Any]], bool]:
    """Turn each event's ``refs`` (rows named by key, see ``db.outbox.BY_REFERENCE``) into rows:
    none for what central holds already or an earlier event of the batch carries, the station's
    copy for the rest. One look-up at central and, only for a gap, one per table at the station.
    A key neither holds stays in the payload as ``unresolved``: that event is refused with the
    keys named, the others go on.

    A key an earlier event of the batch carries in full (a receipt its receiving event wrote,
    named by the scans after it) is set aside as ``deferred_refs``: the fast path applies the
    batch as a whole and needs no copy. Only if the batch goes down the careful path, where the
    carrying event may be refused, are those resolved too (``deferred=True``).

    ``carried_before``: the keys the batch before carries (its push may not have committed yet);
    set aside like the batch's own. Returns the keys this batch carries or fills, and whether any
    key was set aside for the batch before."""
    if deferred:
        for event in batch:
            if isinstance(event.payload, dict) and (put_back := event.payload.pop("deferred_refs", None)):
                event.payload["refs"] = put_back
    wanted: dict[str, set[Any]] = {}
    before = carried_before or {}
    carried: dict[str, set[Any]] = {}
    across = False
    for event in batch:
        payload = event.payload if isinstance(event.payload, dict) else None
        refs = payload.get("refs") if payload is not None else None
        if refs is not None:
            if not _valid_refs(refs):
                payload["unresolved"] = [f"malformed refs {str(refs)[:80]!r}"]
                del payload["refs"]
            else:
                later: dict[str, list[Any]] = {}
                for name, keys in refs.items():
                    have, had = carried.get(name), before.get(name)
                    if have or had:
                        if put_off := [k for k in keys if (have and k in have) or (had and k in had)]:
                            later[name] = put_off
                            keys = [k for k in keys if k not in put_off]
                            across = across or any(had and k in had and not (have and k in have) for k in put_off)
                    wanted.setdefault(name, set()).update(keys)
                if later:
                    payload["deferred_refs"] = later
        if deferred:
            continue  # every key is looked up: nothing to set aside
        for row in payload.get("rows", ()) if payload is not None and isinstance(payload.get("rows"), list) else ():
            if isinstance(row, dict) and row.get("table") in BY_REFERENCE and isinstance(row.get("values"), dict):
                key = row["values"].get(_PK[row["table"]][0])
                if isinstance(key, (int, str)):
                    carried.setdefault(row["table"], set()).add(key)
    missing: dict[str, set[Any]] = {}
    if any(wanted.values()):  # else every key is set aside: only the refs are taken off below
        try:
            with conn.begin():
                missing = _missing_keys_of(conn, wanted)
        except (OperationalError, InterfaceError) as exc:
            raise unreachable(central, exc, lost=True) from None
    copies: dict[str, dict[Any, dict[str, Any]]] = {}
    # The station's copy of a row is as it is now: it may refer to rows central lacks too (an
    # item now pointing at a receipt a later event writes). Those come along, until nothing
    # more is missing; every table these rows refer to is one named by key.
    frontier = missing
    while frontier:
        found: dict[str, dict[Any, dict[str, Any]]] = {}
        with station.connect() as local:
            for name, keys in frontier.items():
                table = Base.metadata.tables[name]
                (pk,) = table.primary_key.columns
                found[name] = {json_value(row[pk.name]): outbound_values(name, row) for row in local.execute(
                    select(table).where(pk.in_(sorted(_typed_keys(pk, keys), key=str)))).mappings()}
                copies.setdefault(name, {}).update(found[name])
        parents: dict[str, set[Any]] = {}
        for name, rows in found.items():
            for values in rows.values():
                for target, key in _parents(name, values):
                    if key not in copies.get(target, {}) and key not in missing.get(target, set()):
                        parents.setdefault(target, set()).add(key)
        try:
            with conn.begin():
                frontier = _missing_keys_of(conn, parents)
        except (OperationalError, InterfaceError) as exc:
            raise unreachable(central, exc, lost=True) from None
        for name, gap in frontier.items():
            missing.setdefault(name, set()).update(gap)
    for event in batch:
        payload = event.payload if isinstance(event.payload, dict) else {}
        refs = payload.pop("refs", None)
        extra: list[dict[str, Any]] = []
        unresolved: list[str] = []
        needed = [(name, key) for name, keys in (refs or {}).items() if name in missing
                  for key in keys if key in missing[name]]
        seen: set[tuple[str, Any]] = set()
        while needed:
            name, key = needed.pop()
            if (name, key) in seen:
                continue
            seen.add((name, key))
            held = copies.get(name, {}).get(key)
            if held is None:
                unresolved.append(f"{name} {key}")
                continue
            # Only fills a gap: a version an event carries, earlier in the batch or at central
            # already, stands (see _apply_fast and _apply_event).
            extra.append({"table": name, "values": held, "fill": True})
            if not deferred:  # the batch after sets it aside too (see _ReadAhead)
                carried.setdefault(name, set()).add(key)
            needed.extend((target, parent) for target, parent in _parents(name, held)
                          if parent in missing.get(target, ()))
        if unresolved:
            payload["unresolved"] = [*payload.get("unresolved", ()), *unresolved]
        if extra and isinstance(payload.get("rows"), list):
            # In foreign-key order among the event's own rows: the careful path applies them in turn.
            payload["rows"] = sorted(extra + payload["rows"], key=lambda row: _TABLE_RANK.get(row.get("table", ""), -1)
                                     if isinstance(row, dict) else -1)
    return carried, across


def _parents(name: str, values: dict[str, Any]) -> list[tuple[str, Any]]:
    """(table, key as it travels) of the rows a row named by key refers to."""
    out = []
    for fk in Base.metadata.tables[name].foreign_keys:
        target = fk.column.table.name
        key = values.get(fk.parent.name)
        if key is not None and target in BY_REFERENCE:
            out.append((target, key))
    return out


def _missing_keys_of(conn: Connection, wanted: dict[str, set[Any]]) -> dict[str, set[Any]]:
    """{table: keys (as they travel) central has no row for}, tables with no gap left out. On
    PostgreSQL one statement for all tables (a catch-up names rows of nine), and only the gaps
    come back (nearly always none), not every key central holds."""
    wanted = {name: keys for name, keys in wanted.items() if keys}
    if conn.dialect.name != "postgresql":
        per_table = {name: _missing_keys_sqlite(conn, name, keys) for name, keys in wanted.items()}
        return {name: gap for name, gap in per_table.items() if gap}
    if not wanted:
        return {}
    parts = []
    params: dict[str, str] = {}
    gaps: dict[str, set[Any]] = {}
    for i, (name, keys) in enumerate(sorted(wanted.items())):
        (pk,) = Base.metadata.tables[name].primary_key.columns
        typed = _typed_keys(pk, keys, as_text=True)
        if untyped := keys - {json_value(key) for key in typed}:
            gaps[name] = untyped  # a key that is no UUID is nowhere
        # One JSON parameter per table (see _fresh_tables); every key casts, checked above.
        params[f"k{i}"] = orjson.dumps(typed).decode()
        parts.append(f"SELECT '{name}' AS t, k AS k FROM jsonb_array_elements_text(CAST(:k{i} AS jsonb)) AS k "
                     f'WHERE NOT EXISTS (SELECT 1 FROM {name} WHERE {name}."{pk.name}" = CAST(k AS {_sql_kind(pk)}))')
    for name, key in conn.execute(text(" UNION ALL ".join(parts)), params):
        (pk,) = Base.metadata.tables[name].primary_key.columns
        gaps.setdefault(name, set()).add(key if isinstance(pk.type, (Uuid, String)) else int(key))
    return gaps


def _missing_keys_sqlite(conn: Connection, name: str, keys: set[Any]) -> set[Any]:
    """Of ``keys`` (as they travel), those a SQLite central has no row for."""
    (pk,) = Base.metadata.tables[name].primary_key.columns
    typed = _typed_keys(pk, keys)
    present: set[Any] = set()
    for start in range(0, len(typed), 10_000):
        present.update(json_value(key) for key in conn.execute(
            select(pk).where(_key_in(conn, pk, typed[start:start + 10_000]))).scalars())
    return keys - present  # a key that is no UUID is never present


_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def _typed_keys(pk: Any, keys: Iterable[Any], *, as_text: bool = False) -> list[Any]:
    """Keys as they travel (UUIDs as text), typed for a query; a key that is no UUID is left out
    (it is then neither at central nor at the station: the event is refused with it named).
    ``as_text``: UUIDs checked but kept as text, for a query that casts them."""
    if isinstance(pk.type, String):
        return [key for key in keys if isinstance(key, str)]
    if not isinstance(pk.type, Uuid):  # an integer key: what a bigint holds
        return [key for key in keys if type(key) is int and -2**63 <= key < 2**63]
    if as_text:
        return [key for key in keys if isinstance(key, str) and _UUID_TEXT.match(key)]
    typed = []
    for key in keys:
        try:
            typed.append(uuid.UUID(str(key)))
        except ValueError:
            pass
    return typed


def _valid_refs(refs: Any) -> bool:
    return isinstance(refs, dict) and all(
        name in BY_REFERENCE and isinstance(keys, list) and {type(k) for k in keys} <= {int, str}
        for name, keys in refs.items())
