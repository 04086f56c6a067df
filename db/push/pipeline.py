"""The push: the station's outbox read ahead in batches, sent to central, acknowledged.

Each outbox event carries the rows its transaction wrote (see ``db.outbox``). Central applies
them as upserts keyed by primary key and records the event id in ``applied_events`` in the same
transaction, so an event delivered twice (the station crashed before it could mark it sent) is
a no-op the second time. The station marks events sent only after central has committed.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import orjson
from sqlalchemy import (
    Text,
    func,
    literal_column,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from console.errors import EnvironmentProblem, first_line
from db.bulk_gc import full_collections_held_off
from db.models import (
    OutboxRow,
    Station,
    SyncRefetch,
)
from db.push.apply import _apply_batch, _prepare, _Prepared
from db.push.errors import unreachable
from db.push.events import _parse, _Pending
from db.push.refs import _resolve_refs
from db.push.schema import READ_BACK
from db.push.sql import _insert
from db.types import utcnow

# Events per central transaction: large enough that per-batch costs (round trips, COPY set-up)
# fade, small enough that a batch lost with its connection is quickly sent again. A catch-up of
# 6,800 events took 1.5-1.8 s in batches of 3,500 against 1.7-2.0 s in batches of 2,000.
BATCH_SIZE = 3500


@dataclass(frozen=True)
class SyncReport:
    pushed: int
    skipped_duplicates: int
    failed: int
    pending_after: int
    errors: list[str] = field(default_factory=list)
    # Central transactions (xid8 as text) that wrote exactly the station's own values: the pull
    # that follows need not bring those rows back (see db.pull.pull_once).
    echo_xids: list[str] = field(default_factory=list, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if name != "echo_xids"}


def pending_count(station: Engine) -> int:
    with station.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(OutboxRow)
                                .where(OutboxRow.sent_at.is_(None))).scalar_one())


def push_once(station: Engine, central: Engine, *, batch_size: int = BATCH_SIZE,
              station_id: str | None = None) -> SyncReport:
    """Push every event pending now, in outbox order, ``batch_size`` events per central transaction.

    An event central refuses (a constraint says no) stays pending with ``attempts`` and
    ``last_error`` set, and is reported; the rest of its batch still lands.
    Raises ``EnvironmentProblem`` if central cannot be reached; the station is left as it was
    for every batch central did not commit.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    with full_collections_held_off():
        return _push(station, central, batch_size, station_id)


def _push(station: Engine, central: Engine, batch_size: int, station_id: str | None) -> SyncReport:
    try:
        conn = central.connect()
    except OperationalError as exc:
        raise unreachable(central, exc) from None
    if central.dialect.name == "postgresql":
        try:
            _check_login(conn, central, station_id)
        except BaseException:
            conn.close()
            raise
    pushed = skipped = 0
    errors: list[str] = []
    failed_ids: set[int] = set()
    seen_stations: set[str] = set()
    echo_xids: list[str] = []
    # The next batch is read, its JSON parsed, its rows named by key resolved (PostgreSQL: with a
    # connection of its own) and merged for the fast path on a second thread while central works
    # on the one in hand: all of that depends only on where the last batch ended, and two cores
    # overlap. The station's acknowledgement of a batch (an fsync) runs on a third thread while
    # central takes the next one: central has committed what it acknowledges, and a crash before
    # it lands only means those events are pushed again and recognised.
    ahead = _ReadAhead(station, central, station_id, batch_size)
    with conn, ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-read") as reader, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-ack") as acker:
        # The first batch is resolved here: a pass of one batch (a station keeping up) needs no
        # second connection to central.
        upcoming = reader.submit(ahead.next, 0, resolve=False)
        acknowledged: Future[None] | None = None
        refused_before = False
        try:
            while (read := upcoming.result()).batch:
                batch, prepared = read.batch, read.prepared
                if not read.resolved:
                    # Before the next read starts: it sets aside what this batch carries.
                    ahead.carried, _ = _resolve_refs(conn, central, station, batch)
                elif refused_before and read.deferred_across:
                    # Again: a row passed over as carried by the batch before may not have landed,
                    # as central refused an event of it.
                    _resolve_refs(conn, central, station, batch, deferred=True)
                    prepared = None
                upcoming = reader.submit(ahead.next, batch[-1].id)
                done, failures, batch_pushed, batch_skipped, echo_xid = _apply_batch(
                    conn, central, batch, station_id, prepared=prepared,
                    before_careful=partial(_resolve_refs, conn, central, station, batch, deferred=True))
                refused_before = bool(failures)
                if echo_xid is not None:
                    echo_xids.append(echo_xid)
                if acknowledged is not None:
                    acknowledged.result()  # a station that cannot write says so now, not batches later
                # Central has committed: only now may the station forget these events.
                acknowledged = acker.submit(_acknowledge, station, done, failures,
                                            _read_back(batch, done) if central.dialect.name == "postgresql" else [])
                pushed += batch_pushed
                skipped += batch_skipped
                failed_ids.update(failures)
                by_id = {event.id: event for event in batch}
                for outbox_id, reason in failures.items():
                    event = by_id[outbox_id]
                    errors.append(f"event {event.event_id} ({event.kind} {event.aggregate_id}): {reason}")
                seen_stations.update(str(e.payload.get("station_id")) for e in batch
                                     if isinstance(e.payload, dict) and e.payload.get("station_id"))
        except BaseException as exc:
            # Not lost behind the error that ended the pass (the events are pushed again anyway).
            if acknowledged is not None and (ack_error := acknowledged.exception()) not in (None, exc):
                exc.add_note(f"the station's acknowledgement of the previous batch failed too: {ack_error}")
            raise
        finally:
            upcoming.cancel()
            reader.submit(ahead.close).result()  # on its own thread, after whatever it was doing
        if acknowledged is not None:
            acknowledged.result()
        if station_id:
            # Central's own record of when it last heard from the station: what an admin's list
            # of stations that have gone quiet reads (a station's rows never overwrite it).
            try:
                with conn.begin():
                    conn.execute(update(Station).where(Station.id == station_id).values(last_synced_at=utcnow()))
            except (OperationalError, InterfaceError) as exc:
                raise unreachable(central, exc, lost=True) from None
    if not failed_ids:
        _mark_station_synced(station, {station_id} if station_id else seen_stations)
    return SyncReport(pushed=pushed, skipped_duplicates=skipped, failed=len(failed_ids),
                      pending_after=pending_count(station), errors=errors, echo_xids=echo_xids)


def _check_login(conn: Connection, central: Engine, station_id: str | None) -> None:
    """Before anything is sent: central must take this login as this station's (``central
    station add``). Central refuses the rows of any other station anyway; this says so once,
    plainly, instead of refusing every event."""
    try:
        speaks_for, role = conn.execute(text("SELECT rc_station(), session_user")).one()
        conn.rollback()  # wrote nothing
    except (OperationalError, InterfaceError) as exc:
        raise unreachable(central, exc) from None
    except DBAPIError as exc:
        # No door to ask (a central not prepared by this version), or this login may not use it.
        conn.rollback()
        raise EnvironmentProblem(f"central refuses this station's login: {first_line(exc)}; an admin runs "
                                 "`returns-console central init` and `central station add STATION` there. "
                                 "Decisions stay queued on this station") from None
    if speaks_for == "":
        raise EnvironmentProblem(f"central refuses this station: it logs in as {role}, which speaks for no station; "
                                 "an admin issues each station its own login with `returns-console central station "
                                 "add STATION` there. Decisions stay queued on this station")
    if speaks_for is not None and station_id and speaks_for != station_id:
        raise EnvironmentProblem(f"central refuses this station: its login {role} logs in as station {speaks_for}, "
                                 f"not {station_id}; put station {station_id}'s own login in central_url. Decisions "
                                 "stay queued on this station")


def _acknowledge(station: Engine, done: list[int], failures: dict[int, str],
                 read_back: list[tuple[str, str]]) -> None:
    mark_sent(station, done, at=utcnow(), read_back=read_back)
    record_failures(station, failures)


def _read_back(batch: list[_Pending], done: list[int]) -> list[tuple[str, str]]:
    """(table, key) of the ``READ_BACK`` rows the events central took carried."""
    taken = set(done)
    found: set[tuple[str, str]] = set()
    for event in batch:
        if event.id not in taken or not isinstance(event.payload, dict):
            continue
        for row in event.payload.get("rows", ()):
            if (isinstance(row, dict) and row.get("table") in READ_BACK and isinstance(row.get("values"), dict)
                    and row["values"].get("id") is not None):
                found.add((row["table"], str(row["values"]["id"])))
    return sorted(found)


def mark_sent(station: Engine, outbox_ids: Iterable[int], *, at: datetime,
              read_back: list[tuple[str, str]] | None = None) -> None:
    """Station side of the acknowledgement. A crash before this runs is harmless: the events
    are pushed again next time and central recognises them as already applied. ``read_back``:
    rows to read again by key at the next pull (``READ_BACK``), noted in the same transaction."""
    ids = list(outbox_ids)
    if not ids:
        return
    with station.begin() as conn:
        if read_back:
            conn.execute(_insert(conn, SyncRefetch.__table__).values(
                [{"table_name": name, "key": key} for name, key in read_back]).on_conflict_do_nothing())
        if conn.dialect.name == "sqlite":
            # The ids as one JSON parameter: a batch's thousands of bound parameters cost more
            # to render and bind than the update itself.
            chosen: Any = select(literal_column("value")).select_from(func.json_each(orjson.dumps(ids).decode()))
        else:
            chosen = ids
        conn.execute(update(OutboxRow).where(OutboxRow.id.in_(chosen), OutboxRow.sent_at.is_(None))
                     .values(sent_at=at, last_error=None))


def record_failures(station: Engine, failures: dict[int, str]) -> None:
    if not failures:
        return
    with station.begin() as conn:
        for outbox_id, reason in failures.items():
            conn.execute(update(OutboxRow).where(OutboxRow.id == outbox_id)
                         .values(attempts=OutboxRow.attempts + 1, last_error=reason))


def _read_pending(station: Engine, after_id: int, limit: int) -> list[_Pending]:
    # The payload's JSON text is parsed by orjson: on a catch-up it is most of the station's work.
    with station.connect() as conn:
        if conn.dialect.name == "sqlite":
            # Straight through the driver: per row, SQLAlchemy's result handling cost as much as
            # reading and parsing the event. event_id is stored as SQLAlchemy's Uuid stores it.
            raw = conn.connection.driver_connection
            assert raw is not None
            found = raw.execute("SELECT id, event_id, kind, aggregate_id, payload FROM outbox "
                                "WHERE sent_at IS NULL AND id > ? ORDER BY id LIMIT ?", (after_id, limit)).fetchall()
            return [_Pending(id_, uuid.UUID(event_id), kind, aggregate, _parse(text))
                    for id_, event_id, kind, aggregate, text in found]
        query = (select(OutboxRow.id, OutboxRow.event_id, OutboxRow.kind, OutboxRow.aggregate_id,
                        type_coerce(OutboxRow.payload, Text))
                 .where(OutboxRow.sent_at.is_(None), OutboxRow.id > after_id)
                 .order_by(OutboxRow.id).limit(limit))
        return [_Pending(id_, event_id, kind, aggregate, _parse(text))
                for id_, event_id, kind, aggregate, text in conn.execute(query)]


@dataclass(frozen=True)
class _Read:
    batch: list[_Pending]
    prepared: _Prepared | None = None  # None: the fast path prepares it, or the batch needs the careful one
    resolved: bool = False  # its rows named by key resolved already
    deferred_across: bool = False  # a key set aside as carried by the batch before


class _ReadAhead:
    """The read-ahead thread's part of a push pass (see ``push_once``): it reads the next batch
    and, on a PostgreSQL central, resolves its rows named by key over a connection of its own
    and prepares it for the fast path. Used from that one thread, except ``carried``, which the
    pushing thread sets for a batch it resolved itself before it asks for the next."""

    def __init__(self, station: Engine, central: Engine, station_id: str | None, batch_size: int) -> None:
        self.station, self.central, self.station_id, self.batch_size = station, central, station_id, batch_size
        self._conn: Connection | None = None
        # The keys the batch before carries (set by the pushing thread if it resolved that one).
        self.carried: dict[str, set[Any]] = {}

    def next(self, after_id: int, *, resolve: bool = True) -> _Read:
        batch = _read_pending(self.station, after_id, self.batch_size)
        # A SQLite central (demos, tests) is left to the pushing thread: one writer at a time.
        if not batch or not resolve or self.central.dialect.name != "postgresql":
            return _Read(batch)
        if self._conn is None:
            try:
                self._conn = self.central.connect()
            except OperationalError as exc:
                raise unreachable(self.central, exc) from None
        # Central takes the batch before while this one is resolved: what that one carries is
        # set aside, as it would be within a batch (see _resolve_refs).
        self.carried, across = _resolve_refs(self._conn, self.central, self.station, batch,
                                             carried_before=self.carried)
        return _Read(batch, _prepare(batch, self.station_id, on_postgresql=True), resolved=True,
                     deferred_across=across)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _mark_station_synced(station: Engine, station_ids: set[str]) -> None:
    if not station_ids:
        return
    with station.begin() as conn:
        conn.execute(update(Station).where(Station.id.in_(station_ids)).values(last_synced_at=utcnow()))
