"""Unit of work: one transaction for a change and the outbox rows that carry it to central."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, cast

from sqlalchemy import Update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import Session, sessionmaker

from db.models import Base, OutboxRow
from db.outbox import Outbox, UowSession


class UnitOfWork:
    """``with UnitOfWork(factory) as uow: ...; uow.commit()`` — anything not committed is rolled
    back on exit, so a refused step never leaves half a decision behind.

    The outbox (``db.outbox``) is built here, in the open: the services add events
    (``add_event``, ``add_outbox``) and audit rows (``console.audit``) to ``uow.outbox``, and
    ``commit`` assembles them (the audit rows into the last event, or one of their own) before
    it commits — or refuses a transaction whose change no event would carry."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._factory = session_factory
        self.session: Session
        self.outbox: Outbox

    @classmethod
    def for_engine(cls, engine: Engine) -> UnitOfWork:
        return cls(sessionmaker(engine, expire_on_commit=False))

    def __enter__(self) -> UnitOfWork:
        # The factory's settings (engine, expire_on_commit …) in the outbox's own session class.
        self.session = UowSession(**self._factory.kw)
        self.outbox = Outbox(self.session)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # close() rolls back whatever was not committed, without expiring loaded objects, so
        # results handed back to a caller stay readable after the unit of work ends.
        self.session.close()
        self.outbox.detach()

    def commit(self) -> None:
        self.outbox.assemble()
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

    def add_outbox(self, kind: str, aggregate_id: str, payload: dict[str, Any]) -> OutboxRow:
        """An event whose payload the caller built (``db.outbox.payload``)."""
        return self.outbox.add(kind, aggregate_id, payload)

    def add_event(self, kind: str, aggregate_id: str, station_id: str, rows: Iterable[Base],
                  context: Iterable[Base] = (), refs: Mapping[str, Iterable[Any]] | None = None) -> OutboxRow:
        """An event that carries ``rows`` and what of ``context`` this transaction wrote, and
        names the rest by key (``db.outbox.Outbox.event``)."""
        return self.outbox.event(kind, aggregate_id, station_id, rows, context, refs)


def rows_changed(session: Session, statement: Update) -> int:
    """Run an UPDATE (without RETURNING) in ``session``: how many rows it changed. For such a
    statement Session.execute returns a CursorResult, the result that holds the count; it is typed
    as a plain Result because it cannot promise a cursor for every statement it runs."""
    return cast("CursorResult[Any]", session.execute(statement)).rowcount
