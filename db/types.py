"""Column types shared by every model."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.dialects.postgresql import base as postgresql_base
from sqlalchemy.types import TypeDecorator, UserDefinedType


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, stored as UTC on every backend.

    SQLite has no time zones; without this a naive local time could slip in and every
    return-window calculation after it would be off by the station's offset.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store times as aware UTC")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Xid8(UserDefinedType[str]):
    """PostgreSQL's 64-bit transaction id, the change feed's stamp (migration 0006). Named here
    so that reflecting a central table knows the type instead of warning about it."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


postgresql_base.ischema_names["xid8"] = Xid8
