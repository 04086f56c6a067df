"""Rows as JSON-safe dicts and back: the payload format of outbox events.

An outbox event carries the rows its transaction wrote (``{"table": ..., "values": {...}}``),
so central can apply it with plain upserts, whatever the kind of event. The rows it only refers
to travel by key (``"refs": {table: [key, ...]}``) when they belong to the order system or to
central's users (``BY_REFERENCE``): central nearly always holds them already, and the station
sends a copy at push time only of those it lacks (see ``db.push``).
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Table, Uuid, inspect

from db.models import Base
from db.types import UTCDateTime


# Tables whose rows an event may name by key instead of carrying, when its transaction only read
# them: the order system's rows and users (central owns them, and only fills a gap with a
# station's copy), and the station, RMAs, items and receipts an event is about. Every row a
# transaction writes travels in full; a row named by key is sent at push time only if central
# lacks it and no earlier event of the batch carries it (see db.push.refs).
BY_REFERENCE = frozenset({"users", "customers", "orders", "order_lines", "shipments", "stations",
                          "return_authorizations", "return_items", "parcel_receipts"})


def snapshot(obj: Base) -> dict[str, Any]:
    mapper = inspect(obj).mapper
    table = type(obj).__table__  # the mapper's local table, typed as the Table it is (see db.models.Base)
    values: dict[str, Any] = {}
    for column in table.columns:
        attr = mapper.get_property_by_column(column).key
        values[column.name] = json_value(getattr(obj, attr))
    return {"table": table.name, "values": values}


# Columns a station never sends: credentials and lock state stay where they are checked. A user
# row only travels so that central can apply an event that names the user before it knows them;
# central then holds a row nobody can sign in with ("!" is no hash) and never takes a station's
# copy over its own (see db.push: users are insert-only).
_NOT_SENT = {"users": {"password_hash": "!", "badge_hash": None, "failed_attempts": 0, "locked_until": None}}


def outbound_snapshot(obj: Base) -> dict[str, Any]:
    """``snapshot`` for an outbox event: without what must not leave the station."""
    snap = snapshot(obj)
    hidden = _NOT_SENT.get(snap["table"])
    if hidden:
        snap["values"].update(hidden)
    return snap


def outbound_values(table_name: str, row: Any) -> dict[str, Any]:
    """``outbound_snapshot``'s values for a row read with SQLAlchemy Core (a mapping by column)."""
    values = {name: json_value(value) for name, value in row.items()}
    hidden = _NOT_SENT.get(table_name)
    if hidden:
        values.update(hidden)
    return values


def json_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"naive time {text!r} refused: times travel as UTC with their offset")
    return moment


def _converters(table: Table) -> dict[str, Any]:
    """Per column, what turns its JSON value back into the column's Python type (None: as is)."""
    out: dict[str, Any] = {}
    for column in table.columns:
        out[column.name] = (uuid.UUID if isinstance(column.type, Uuid)
                            else _aware if isinstance(column.type, UTCDateTime) else None)
    return out


def _uuid_text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"a UUID travels as text, not {type(value).__name__}")
    return value


_CONVERTERS: dict[tuple[str, bool], dict[str, Any]] = {}


def restore_values(table_name: str, values: dict[str, Any], *, uuid_text: bool = False,
                   ) -> tuple[Table, dict[str, Any]]:
    """Values typed for the table's columns again (UUIDs, aware datetimes); unknown keys refused
    (KeyError), a naive time refused (ValueError). ``uuid_text``: UUIDs stay text, for a COPY
    that sends them as text anyway (the server checks them)."""
    table = Base.metadata.tables[table_name]
    converters = _CONVERTERS.get((table_name, uuid_text))
    if converters is None:
        converters = _CONVERTERS[(table_name, uuid_text)] = {
            name: _uuid_text if uuid_text and convert is uuid.UUID else convert
            for name, convert in _converters(table).items()}
    out: dict[str, Any] = {}
    for name, value in values.items():
        convert = converters[name]
        out[name] = value if value is None or convert is None else convert(value)
    return table, out
