"""Rows as JSON-safe dicts and back: the payload format of outbox events.

An outbox event carries the rows its transaction wrote (``{"table": ..., "values": {...}}``),
so central can apply it with plain upserts, whatever the kind of event.
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
    table = mapper.local_table
    values: dict[str, Any] = {}
    for column in table.columns:
        attr = mapper.get_property_by_column(column).key
        values[column.name] = _to_json(getattr(obj, attr))
    return {"table": table.name, "values": values}


def _to_json(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def restore_values(table_name: str, values: dict[str, Any]) -> tuple[Table, dict[str, Any]]:
    """Values typed for the table's columns again (UUIDs, aware datetimes); unknown keys refused."""
    table = Base.metadata.tables[table_name]
    out: dict[str, Any] = {}
    for name, value in values.items():
        column = table.columns[name]
        if value is not None and isinstance(column.type, Uuid):
            value = uuid.UUID(value)
        elif value is not None and isinstance(column.type, UTCDateTime):
            value = datetime.fromisoformat(value)
        out[name] = value
    return table, out
