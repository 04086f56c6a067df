"""Push the station's outbox to central: at-least-once delivery, idempotent apply.

Each outbox event carries the rows its transaction wrote (see ``db.snapshot``). Central applies
them as upserts keyed by primary key and records the event id in ``applied_events`` in the same
transaction, so an event delivered twice (the station crashed before it could mark it sent) is
a no-op the second time. The station marks events sent only after central has committed.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from console.errors import EnvironmentProblem
from db.models import AppliedEvent, OutboxRow, Station
from db.snapshot import restore_values
from db.types import utcnow

# Station-only bookkeeping must never be written to central through a payload.
_REFUSED_TABLES = frozenset({OutboxRow.__tablename__, AppliedEvent.__tablename__})
_MAX_ERROR_CHARS = 1000


@dataclass(frozen=True)
class SyncReport:
    pushed: int
    skipped_duplicates: int
    failed: int
    pending_after: int
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Pending:
    id: int
    event_id: uuid.UUID
    kind: str
    aggregate_id: str
    payload: dict[str, Any]


class _BadEvent(ValueError):
    """The payload itself is malformed: the event cannot be applied as it is."""


def ensure_central_schema(central: Engine) -> None:
    from db.migrate import ensure_at_head

    try:
        ensure_at_head(central)
    except OperationalError as exc:
        raise _unreachable(central, exc) from None


def pending_count(station: Engine) -> int:
    with station.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(OutboxRow)
                                .where(OutboxRow.sent_at.is_(None))).scalar_one())


def push_once(station: Engine, central: Engine, *, batch_size: int = 500,
              station_id: str | None = None) -> SyncReport:
    """Push every event pending now, in outbox order, ``batch_size`` events per central transaction.

    An event central refuses (a constraint says no) stays pending with ``attempts`` and
    ``last_error`` set, and is reported; the rest of its batch still lands.
    Raises ``EnvironmentProblem`` if central cannot be reached; the station is left as it was
    for every batch central did not commit.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    try:
        conn = central.connect()
    except OperationalError as exc:
        raise _unreachable(central, exc) from None
    pushed = skipped = 0
    errors: list[str] = []
    failed_ids: set[int] = set()
    seen_stations: set[str] = set()
    with conn:
        after_id = 0
        while batch := _read_pending(station, after_id, batch_size):
            after_id = batch[-1].id
            done, failures, batch_pushed, batch_skipped = _apply_batch(conn, central, batch, station_id)
            # Central has committed: only now may the station forget these events.
            mark_sent(station, done, at=utcnow())
            record_failures(station, failures)
            pushed += batch_pushed
            skipped += batch_skipped
            failed_ids.update(failures)
            by_id = {event.id: event for event in batch}
            for outbox_id, reason in failures.items():
                event = by_id[outbox_id]
                errors.append(f"event {event.event_id} ({event.kind} {event.aggregate_id}): {reason}")
            seen_stations.update(str(e.payload.get("station_id")) for e in batch
                                 if isinstance(e.payload, dict) and e.payload.get("station_id"))
    if not failed_ids:
        _mark_station_synced(station, {station_id} if station_id else seen_stations)
    return SyncReport(pushed=pushed, skipped_duplicates=skipped, failed=len(failed_ids),
                      pending_after=pending_count(station), errors=errors)


def mark_sent(station: Engine, outbox_ids: Iterable[int], *, at: datetime) -> None:
    """Station side of the acknowledgement. A crash before this runs is harmless: the events
    are pushed again next time and central recognises them as already applied."""
    ids = list(outbox_ids)
    if not ids:
        return
    with station.begin() as conn:
        conn.execute(update(OutboxRow).where(OutboxRow.id.in_(ids), OutboxRow.sent_at.is_(None))
                     .values(sent_at=at, last_error=None))


def record_failures(station: Engine, failures: dict[int, str]) -> None:
    if not failures:
        return
    with station.begin() as conn:
        for outbox_id, reason in failures.items():
            conn.execute(update(OutboxRow).where(OutboxRow.id == outbox_id)
                         .values(attempts=OutboxRow.attempts + 1, last_error=reason))


def _read_pending(station: Engine, after_id: int, limit: int) -> list[_Pending]:
    query = (select(OutboxRow.id, OutboxRow.event_id, OutboxRow.kind, OutboxRow.aggregate_id,
                    OutboxRow.payload)
             .where(OutboxRow.sent_at.is_(None), OutboxRow.id > after_id)
             .order_by(OutboxRow.id).limit(limit))
    with station.connect() as conn:
        return [_Pending(*row) for row in conn.execute(query)]


def _apply_batch(conn: Connection, central: Engine, batch: list[_Pending], station_id: str | None,
                 ) -> tuple[list[int], dict[int, str], int, int]:
    """One central transaction for the batch, one SAVEPOINT per event.

    Returns (outbox ids central now holds, {outbox id: reason} refused, pushed, duplicates).
    """
    done: list[int] = []
    failures: dict[int, str] = {}
    pushed = skipped = 0
    statements: dict[tuple[str, tuple[str, ...]], Any] = {}
    try:
        with conn.begin():
            for event in batch:
                try:
                    with conn.begin_nested():
                        applied = _apply_event(conn, event, station_id, statements)
                except (OperationalError, InterfaceError):
                    raise  # the connection, not the event: give up on the whole batch
                except (DBAPIError, _BadEvent, KeyError, ValueError, TypeError) as exc:
                    failures[event.id] = _reason(exc)
                    continue
                done.append(event.id)
                if applied:
                    pushed += 1
                else:
                    skipped += 1
    except (OperationalError, InterfaceError) as exc:
        raise _unreachable(central, exc, lost=True) from None
    return done, failures, pushed, skipped


def _apply_event(conn: Connection, event: _Pending, station_id: str | None,
                 statements: dict[tuple[str, tuple[str, ...]], Any]) -> bool:
    """Apply one event; False if central had already applied it."""
    payload = event.payload
    if not isinstance(payload, dict) or not isinstance(payload.get("rows"), list):
        raise _BadEvent("payload has no list of rows")
    origin = str(payload.get("station_id") or station_id or "")
    if not origin:
        raise _BadEvent("payload names no station_id")
    # Claiming the event id first makes a concurrent second push of the same event wait for
    # the first and then do nothing, instead of applying the rows twice.
    claim = _insert(conn, AppliedEvent.__table__).values(
        event_id=event.event_id, station_id=origin, kind=event.kind, applied_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["event_id"]).returning(AppliedEvent.event_id)
    # RETURNING rather than rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT here.
    if conn.execute(claim).first() is None:
        return False
    for row in payload["rows"]:
        if not isinstance(row, dict) or "table" not in row or not isinstance(row.get("values"), dict):
            raise _BadEvent(f"malformed row {str(row)[:80]!r}")
        if row["table"] in _REFUSED_TABLES:
            raise _BadEvent(f"table {row['table']!r} may not be written through an event")
        try:
            table, values = restore_values(row["table"], row["values"])
        except KeyError as exc:
            raise _BadEvent(f"unknown table or column {exc} in table {row['table']!r}") from None
        conn.execute(_upsert(conn, table, tuple(values), statements), values)
    return True


INSERT_ONLY = frozenset({"users"})


def _upsert(conn: Connection, table: Table, columns: tuple[str, ...],
            cache: dict[tuple[str, tuple[str, ...]], Any]) -> Any:
    """``INSERT ... ON CONFLICT (pk) DO UPDATE`` for exactly the columns the snapshot carries, so a
    column it leaves out is never overwritten with a default."""
    key = (table.name, columns)
    if key not in cache:
        pk = [c.name for c in table.primary_key.columns]
        missing = [name for name in pk if name not in columns]
        if missing:
            raise _BadEvent(f"row of {table.name!r} lacks primary key column(s) {', '.join(missing)}")
        stmt = _insert(conn, table)
        # Central owns users (their credentials and roles): a station's copy only fills a gap.
        changes = {} if table.name in INSERT_ONLY else {name: stmt.excluded[name] for name in columns if name not in pk}
        cache[key] = (stmt.on_conflict_do_update(index_elements=pk, set_=changes) if changes
                      else stmt.on_conflict_do_nothing(index_elements=pk))
    return cache[key]


def _insert(conn: Connection, table: Any) -> Any:
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise EnvironmentProblem(f"unsupported central database {name!r}: use SQLite or PostgreSQL")


def _mark_station_synced(station: Engine, station_ids: set[str]) -> None:
    if not station_ids:
        return
    with station.begin() as conn:
        conn.execute(update(Station).where(Station.id.in_(station_ids)).values(last_synced_at=utcnow()))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        text = f"{type(exc.orig).__name__}: {exc.orig}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text[:_MAX_ERROR_CHARS]


def _first_line(exc: BaseException) -> str:
    source = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = [line.strip() for line in str(source).splitlines() if line.strip()]
    return lines[0] if lines else type(source).__name__


def _unreachable(central: Engine, exc: BaseException, *, lost: bool = False) -> EnvironmentProblem:
    url = central.url
    where = URL.create(url.drivername, url.username, None, url.host, url.port, url.database,
                       url.query).render_as_string(hide_password=False)
    what = "lost the connection" if lost else "is unreachable"
    return EnvironmentProblem(f"central database at {where} {what}: {_first_line(exc)}; decisions stay "
                              "queued on this station — check the network or --central URL")
