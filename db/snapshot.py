"""Rows as JSON-safe dicts and back (``{"table": ..., "values": {...}}``): how an outbox
event carries a row (``db.outbox`` owns the event format), and how central's push and the pull
turn the values back into each column's type.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Table, Uuid, inspect

from db.models import Base
from db.types import UTCDateTime


def snapshot(obj: Base) -> dict[str, Any]:
    mapper = inspect(obj).mapper
    table = type(obj).__table__  # the mapper's local table, typed as the Table it is (see db.models.Base)
    values: dict[str, Any] = {}
    for column in table.columns:
        attr = mapper.get_property_by_column(column).key
        values[column.name] = json_value(getattr(obj, attr))
    return {"table": table.name, "values": values}


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
