"""Unit of work: one transaction for a change and the outbox row that carries it to central."""
from __future__ import annotations

import uuid
from types import TracebackType
from typing import Any, cast

from sqlalchemy import Update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import Session, sessionmaker

from db.models import OutboxRow


class UnitOfWork:
    """``with UnitOfWork(factory) as uow: ...; uow.commit()`` — anything not committed is rolled
    back on exit, so a refused step never leaves half a decision behind."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._factory = session_factory
        self.session: Session

    @classmethod
    def for_engine(cls, engine: Engine) -> UnitOfWork:
        return cls(sessionmaker(engine, expire_on_commit=False))

    def __enter__(self) -> UnitOfWork:
        self.session = self._factory()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # close() rolls back whatever was not committed, without expiring loaded objects, so
        # results handed back to a caller stay readable after the unit of work ends.
        self.session.close()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

    def add_outbox(self, kind: str, aggregate_id: str, payload: dict[str, Any]) -> OutboxRow:
        row = OutboxRow(event_id=uuid.uuid4(), kind=kind, aggregate_id=aggregate_id, payload=payload)
        self.session.add(row)
        return row


def rows_changed(session: Session, statement: Update) -> int:
    """Run an UPDATE (without RETURNING) in ``session``: how many rows it changed. For such a
    statement Session.execute returns a CursorResult, the result that holds the count; it is typed
    as a plain Result because it cannot promise a cursor for every statement it runs."""
    return cast("CursorResult[Any]", session.execute(statement)).rowcount
