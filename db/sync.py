"""Push the station's outbox to central: at-least-once delivery, idempotent apply.

Each outbox event carries the rows its transaction wrote (see ``db.snapshot``). Central applies
them as upserts keyed by primary key and records the event id in ``applied_events`` in the same
transaction, so an event delivered twice (the station crashed before it could mark it sent) is
a no-op the second time. The station marks events sent only after central has committed.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import (JSON, String, Table, Text, Uuid, and_, any_, bindparam, func, literal_column, or_, select, text,
                        type_coerce, update)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from console.errors import EnvironmentProblem
from db.bulk_gc import full_collections_held_off
from db.models import (
    APPROVER_ROLES,
    AppliedEvent,
    Approval,
    Base,
    Claim,
    Decision,
    DecisionLine,
    OrderLine,
    OutboxRow,
    ParcelReceipt,
    ReturnItem,
    Station,
    SyncConflict,
    SyncCursor,
    SyncRefetch,
    User,
)
from db.snapshot import BY_REFERENCE, json_value, outbound_values, restore_values
from db.types import UTCDateTime, utcnow

# Station-only bookkeeping must never be written to central through a payload.
_REFUSED_TABLES = frozenset({OutboxRow.__tablename__, AppliedEvent.__tablename__, SyncCursor.__tablename__,
                             SyncConflict.__tablename__, "sync_refetch", "station_credentials",
                             "station_refusals", "sealed_keys", "refused_verdicts"})
# What central decides on PostgreSQL: a station inserts these once and never changes them there
# (its role may not: db.central); a verdict settles a case through central's own trigger on the
# approval (migration 0009), checked against central's users and what was paid.
CENTRAL_DECIDES = frozenset({"decisions", "decision_lines", "deductions", "approvals"})
# Rows several benches may change (the RMA, its items): a station's copy older than central's is
# not taken (see the updated_at columns, migration 0007).
_VERSIONED = frozenset({"return_authorizations", "return_items"})
# Columns central keeps for itself whatever a station's row says.
_CENTRAL_COLUMNS = {"stations": frozenset({"last_synced_at"}),
                    # An approver's key: a station's copy may only retire it; central confirms or
                    # revokes it (on PostgreSQL its trigger holds that, migration 0011).
                    "approver_keys": frozenset({"user_id", "station_id", "method", "public_key", "enrolled_at",
                                                "confirmed_at", "confirmed_by", "revoked_at"})}
_MAX_ERROR_CHARS = 1000
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
        raise unreachable(central, exc) from None


def check_central_schema(central: Engine) -> None:
    """What a station's sync worker does before it pushes: PostgreSQL central must already be at
    this console's schema (``returns-console central init`` migrates it; stations never run DDL
    on central, and two of them must not race at it). A demo's SQLite central is brought up to
    date here, as nobody else would."""
    from db.migrate import current_revision, ensure_at_head, head_revision

    try:
        if central.dialect.name != "postgresql":
            ensure_at_head(central)
            return
        revision = current_revision(central)
    except (OperationalError, InterfaceError) as exc:
        raise unreachable(central, exc) from None
    head = head_revision()
    if revision == head:
        return
    where = central.url.render_as_string(hide_password=True)
    if revision is None:
        raise EnvironmentProblem(f"central database at {where} has no schema yet: run `returns-console central "
                                 "init` there first; decisions stay queued on this station")
    if revision < head:
        raise EnvironmentProblem(f"central database at {where} is at schema {revision}, older than this console's "
                                 f"{head}: run `returns-console central init` to upgrade it; decisions stay queued")
    raise EnvironmentProblem(f"central database at {where} is at schema {revision}, newer than this console's "
                             f"{head}: update this station's console; decisions stay queued")


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
        raise EnvironmentProblem(f"central refuses this station's login: {_first_line(exc)}; an admin runs "
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


def _parse(text: str | None) -> Any:
    try:
        return orjson.loads(text) if text is not None else None
    except orjson.JSONDecodeError:
        return None  # refused as "payload has no list of rows", never dropped


def _resolve_refs(conn: Connection, central: Engine, station: Engine, batch: list[_Pending], *,
                  deferred: bool = False, carried_before: dict[str, set[Any]] | None = None,
                  ) -> tuple[dict[str, set[Any]], bool]:
    """Turn each event's ``refs`` (rows named by key, see ``db.snapshot.BY_REFERENCE``) into rows:
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


def _apply_batch(conn: Connection, central: Engine, batch: list[_Pending], station_id: str | None, *,
                 prepared: _Prepared | None = None, before_careful: Callable[[], Any] | None = None,
                 ) -> tuple[list[int], dict[int, str], int, int, str | None]:
    """One central transaction for the batch.

    The fast path applies the whole batch with one statement per table; whatever it cannot take
    as a whole (a malformed event, an approval to check, a constraint that says no) sends the batch
    down the careful path: one SAVEPOINT per event, conflicts kept and flagged, refusals reported.
    Returns (outbox ids central now holds, {outbox id: reason} refused, pushed, duplicates, and
    for the fast path on PostgreSQL the transaction's xid: see ``SyncReport.echo_xids``).
    """
    import psycopg

    lost = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
    try:
        try:
            with conn.begin():
                return _apply_fast(conn, batch, station_id, prepared)
        except lost:
            raise
        except (_Careful, DBAPIError, psycopg.Error):
            # Rolled back (a COPY's error comes straight from psycopg): the careful path decides
            # event by event, and keeps a lost race as a conflict.
            pass
    except lost as exc:
        raise unreachable(central, exc, lost=True) from None
    if before_careful is not None:
        # Outside the mapping above: it reads the station too, and reports central itself.
        before_careful()
    try:
        with conn.begin():
            return (*_apply_careful(conn, batch, station_id), None)
    except lost as exc:
        raise unreachable(central, exc, lost=True) from None


class _Careful(Exception):
    """The batch needs the event-by-event path."""


def _origin(event: _Pending, station_id: str | None) -> str:
    payload = event.payload
    if not isinstance(payload, dict) or not isinstance(payload.get("rows"), list):
        raise _BadEvent("payload has no list of rows")
    origin = str(payload.get("station_id") or station_id or "")
    if not origin:
        raise _BadEvent("payload names no station_id")
    return origin


def _event_rows(event: _Pending, origin: str) -> list[tuple[str, dict[str, Any], bool]]:
    """The event's rows as they travel (JSON values), their shape checked: known table, one a
    station may write, a dict of values holding the primary key; and whether the row only fills
    a gap (a copy ``_resolve_refs`` added)."""
    payload = event.payload
    if payload.get("unresolved"):
        raise _BadEvent("refers to rows neither central nor this station holds: "
                        + ", ".join(map(str, payload["unresolved"][:5])))
    if payload.get("refs"):
        raise _BadEvent("its rows named by key were not resolved before applying")
    rows: list[tuple[str, dict[str, Any], bool]] = []
    for row in payload["rows"]:
        if not isinstance(row, dict) or "table" not in row or not isinstance(row.get("values"), dict):
            raise _BadEvent(f"malformed row {str(row)[:80]!r}")
        name, values = row["table"], row["values"]
        if name in _REFUSED_TABLES:
            raise _BadEvent(f"table {name!r} may not be written through an event")
        pk = _PK.get(name)
        if pk is None:
            raise _BadEvent(f"unknown table or column {name!r} in table {name!r}")
        for column in pk:
            if column not in values:
                missing = [c for c in pk if c not in values]
                raise _BadEvent(f"row of {name!r} lacks primary key column(s) {', '.join(missing)}")
        if name == User.__tablename__:
            values = {**values, **_from_station(origin)}
        rows.append((name, values, row.get("fill") is True))
    return rows


def _from_station(origin: str) -> dict[str, Any]:
    # Insert-only at central (see INSERT_ONLY): if central never heard of this user, the row it
    # keeps says where it came from, and that user cannot approve until confirmed; it never takes
    # credentials from a station, whatever the station sent.
    return {"created_from_station": origin, "password_hash": "!", "badge_hash": None, "failed_attempts": 0,
            "locked_until": None}


def _restored_rows(event: _Pending, origin: str) -> list[tuple[Table, dict[str, Any]]]:
    """The event's rows with their values typed again."""
    return [_restore(name, values) for name, values, _ in _event_rows(event, origin)]


def _fills(event: _Pending) -> set[tuple[str, Any]]:
    """(table, key as it travels) of the rows in the event that only fill a gap."""
    return {(row["table"], row["values"].get(_PK[row["table"]][0])) for row in event.payload["rows"]
            if isinstance(row, dict) and row.get("fill") is True and row.get("table") in _PK
            and isinstance(row.get("values"), dict)}


def _restore(name: str, values: dict[str, Any], *, uuid_text: bool = False) -> tuple[Table, dict[str, Any]]:
    try:
        return restore_values(name, values, uuid_text=uuid_text)
    except KeyError as exc:
        raise _BadEvent(f"unknown table or column {exc} in table {name!r}") from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise _BadEvent(f"a value of table {name!r} has the wrong type: {exc}") from None


_TABLE_RANK = {t.name: i for i, t in enumerate(Base.metadata.sorted_tables)}
_PK = {t.name: tuple(c.name for c in t.primary_key.columns) for t in Base.metadata.sorted_tables}
_CLAIMS_PER_STATEMENT = 1000


@dataclass
class _Prepared:
    """What the fast path makes of a batch before it asks central anything (``_prepare``): done
    on the read-ahead thread while central takes the batch before."""
    events: list[tuple[_Pending, list[tuple[str, dict[str, Any], bool]]]]
    claims: list[dict[str, Any]]
    # Per table, the latest values of each row, as if every event were claimed (nearly always so),
    # and the keys of those that only fill a gap (no event carries them).
    latest: dict[str, dict[tuple[Any, ...], dict[str, Any]]]
    fill_only: dict[str, set[tuple[Any, ...]]]


def _prepare(batch: list[_Pending], station_id: str | None, on_postgresql: bool) -> _Prepared | None:
    """The batch's events checked and merged for the fast path; None if it needs the careful one."""
    try:
        events = [(event, _event_rows(event, _origin(event, station_id))) for event in batch]
    except (_BadEvent, KeyError, ValueError, TypeError):
        return None
    if any(name == Approval.__tablename__ for _, rows in events for name, _, _ in rows):
        return None  # approvals are checked one by one (four eyes, the approver's role)
    if any(event.kind == USER_DISABLED for event, _ in events):
        return None  # the disabling admin is checked at central
    if any(name == Decision.__tablename__ and values.get("status") == "approved" and values.get("review_reasons")
           for _, rows in events for name, values, _ in rows):
        # Approved without the review its reasons call for: central holds it (migration 0009), so
        # the station's copy is not what central keeps, and the pull must bring it back.
        return None
    claims = [{"event_id": event.event_id, "station_id": _origin(event, station_id), "kind": event.kind}
              for event, _ in events]
    try:
        latest, fill_only = _latest(events, on_postgresql)
    except _Careful:
        return None
    return _Prepared(events, claims, latest, fill_only)


def _latest(events: list[tuple[_Pending, list[tuple[str, dict[str, Any], bool]]]], on_postgresql: bool,
            ) -> tuple[dict[str, dict[tuple[Any, ...], dict[str, Any]]], dict[str, set[tuple[Any, ...]]]]:
    """Per table one version of each row the events write: later events win, as if applied one
    by one, and a copy that fills a gap never overrides what an event carries. Also per table the
    keys of rows only copies fill: written only where central still has none."""
    latest: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
    fill_only: dict[str, set[tuple[Any, ...]]] = {}
    try:
        for _event, rows in events:
            for name, values, fill in rows:
                if name in INSERT_ONLY:
                    # Typed only if central lacks them (``_typed``, below): it nearly always has them.
                    values = dict(values)
                else:
                    # On PostgreSQL UUIDs stay text until a row needs them as objects
                    # (``_uuid_objects``): a COPY writes them out as text again.
                    values = _restore(name, values, uuid_text=on_postgresql)[1]
                pk = _PK[name]
                key = (values[pk[0]],) if len(pk) == 1 else tuple(values[column] for column in pk)
                if name in INSERT_ONLY and any(not isinstance(part, (int, str)) for part in key):
                    raise _Careful()
                per_table = latest.get(name)
                if per_table is None:
                    per_table = latest[name] = {}
                seen = per_table.get(key)
                if seen is None:
                    per_table[key] = values  # this batch's own copy
                    if fill:
                        fill_only.setdefault(name, set()).add(key)
                elif not fill:
                    seen.update(values)
                    if name in fill_only:
                        fill_only[name].discard(key)
    except _BadEvent:
        raise _Careful() from None  # the careful path names the event
    except TypeError:
        raise _Careful() from None  # a key that is no key (a list, say): the careful path names it
    return latest, fill_only


def _apply_fast(conn: Connection, batch: list[_Pending], station_id: str | None,
                prepared: _Prepared | None = None) -> tuple[list[int], dict[int, str], int, int, str | None]:
    """The whole batch in a few statements: claim every event id at once, then per table one
    upsert of the latest values of each row (later events win, as if applied one by one).
    ``prepared``: what ``_prepare`` made of this batch already.

    A row this transaction writes holds exactly the values the station sent, except in
    ``ECHO_DIFFERS`` (a decision line central keeps inactive, a user central keeps without
    credentials): its xid is returned so the pull after the push can leave the rest alone."""
    on_postgresql = conn.dialect.name == "postgresql"
    if prepared is None:
        prepared = _prepare(batch, station_id, on_postgresql)
        if prepared is None:
            raise _Careful()
    now = utcnow()
    claims = [{**claim, "applied_at": now} for claim in prepared.claims]
    latest, fill_only = prepared.latest, prepared.fill_only
    # Tables whose rows central holds none of yet (a decision's rows nearly always; the event ids
    # always, unless pushed before) take a COPY straight in, without a staging table or ON
    # CONFLICT, and cannot clash with central's rows: one look-up for all of them first. A row
    # another push writes in between makes the COPY fail, and the batch go the careful way.
    # (The event ids are claimed through central's door, which stamps them with the pushing
    # station: never COPYed in.)
    claimed = _claim(conn, claims)
    if len(claimed) < len(prepared.events):
        # Some events central had applied already (a push again after a lost acknowledgement):
        # only the others' rows are written.
        latest, fill_only = _latest([(event, rows) for event, rows in prepared.events
                                     if str(event.event_id) in claimed], on_postgresql)
    fresh = _fresh_tables(conn, _copied_tables(latest)) if on_postgresql else set()
    for name, rows_by_key in latest.items():
        if name not in fresh and _identity_clash(conn, Base.metadata.tables[name], list(rows_by_key.values())):
            raise _Careful()  # the careful path names the event
    decided_items = {values["return_item_id"] for values in latest.get(DecisionLine.__tablename__, {}).values()
                     if values.get("active", True)}
    order_lines = _lock_order_lines(conn, decided_items, latest.get(ReturnItem.__tablename__, {}).values())
    statements: dict[tuple[str, tuple[str, ...], str], Any] = {}
    for name in sorted(latest, key=_TABLE_RANK.__getitem__):
        table = Base.metadata.tables[name]
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        fills: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        # A copy that only fills a gap: central may have gained the row since the look-up (another
        # station's push, the batch before), and its version stands. (INSERT_ONLY rows and those
        # of a table central holds none of are written only where central has none anyway.)
        only_fill = fill_only.get(name, ()) if name not in fresh and name not in INSERT_ONLY else ()
        # Rows in key order: two pushes touching the same rows lock them in the same order.
        for key in sorted(latest[name], key=_sort_key):
            values = latest[name][key]
            (fills if key in only_fill else by_columns).setdefault(tuple(values), []).append(values)
        for columns, rows in fills.items():
            if on_postgresql and len(rows) >= _COPY_FROM_ROWS:
                _copy_upsert(conn, table, columns, rows, insert_only=True)
            else:
                conn.execute(_upsert(conn, table, columns, statements, "insert_only"), _uuid_objects(table, columns, rows))
        if name in INSERT_ONLY:
            if conn.dialect.name == "postgresql":
                # Central almost always has these already (orders come from the order system): one
                # look-up of the keys instead of writing rows that would only be skipped.
                by_columns = _missing_only(conn, table, by_columns)
            by_columns = _typed(name, by_columns)
            if on_postgresql and name == User.__tablename__:
                _fill_users(conn, [values for rows in by_columns.values() for values in rows])
                continue
        for columns, rows in by_columns.items():
            if name in fresh:
                _copy_rows(conn, table, table.name, columns, rows)
            elif on_postgresql and len(rows) >= _COPY_FROM_ROWS:
                _copy_upsert(conn, table, columns, rows)
            else:
                conn.execute(_upsert(conn, table, columns, statements), _uuid_objects(table, columns, rows))
    if _over_quantity(conn, order_lines):
        raise _Careful()  # more units refunded than were shipped: the careful path finds the loser
    if on_postgresql and Decision.__tablename__ in latest:
        _deferred_checks_now(conn)  # before asking what central holds: its checks may hold some
    pushed = len(claimed)
    echo_xid = None
    if on_postgresql and not _held_at_central(conn, latest.get(Decision.__tablename__, {})):
        echo_xid = str(conn.execute(text("SELECT pg_current_xact_id()::text")).scalar_one())
    return [event.id for event in batch], {}, pushed, len(batch) - pushed, echo_xid


def _held_at_central(conn: Connection, decisions: dict[tuple[Any, ...], dict[str, Any]]) -> bool:
    """Whether central holds for review any decision the station sent as approved (migration
    0010): then the rows this push wrote are not all as the station holds them, and the pull
    after it must bring them back."""
    approved = [str(key[0]) for key, values in decisions.items() if values.get("status") == "approved"]
    if not approved:
        return False
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM decisions WHERE id = ANY(CAST(:ids AS uuid[])) "
                                  "AND status = 'pending_review')"), {"ids": approved}).scalar())


# Tables where a row the fast path writes may differ from the station's copy (see _upsert and
# _event_rows): the pull brings these back even when this station's push wrote them.
ECHO_DIFFERS = frozenset({DecisionLine.__tablename__, User.__tablename__})
# Rows central may keep otherwise than a station sent them without the feed serving them again:
# a claim whose verdict central refused stays as central had it (migration 0012). The station
# reads them again by key at its next pull (db.pull's refetch), so it shows central's claim.
READ_BACK = frozenset({Claim.__tablename__})
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


def _sort_key(key: tuple[Any, ...]) -> Any:
    return str(key[0]) if len(key) == 1 else tuple(str(part) for part in key)


def _apply_careful(conn: Connection, batch: list[_Pending], station_id: str | None,
                   ) -> tuple[list[int], dict[int, str], int, int]:
    done: list[int] = []
    failures: dict[int, str] = {}
    pushed = skipped = 0
    statements: dict[tuple[str, tuple[str, ...], str], Any] = {}
    for event in batch:
        try:
            with conn.begin_nested():
                applied = _apply_event(conn, event, station_id, statements)
        except (OperationalError, InterfaceError):
            raise  # the connection, not the event: give up on the whole batch
        except (IntegrityError, _OverQuantity) as exc:
            if isinstance(exc, IntegrityError) and not _is_item_conflict(exc):
                failures[event.id] = _reason(exc)
                continue
            # Another decision already holds one of its items (two stations decided offline):
            # keep this one, as a conflict for review, never silently dropped or merged.
            try:
                with conn.begin_nested():
                    applied = _apply_event(conn, event, station_id, statements, conflict=True)
            except (OperationalError, InterfaceError):
                raise
            except Exception as again:  # noqa: BLE001 - reported, never dropped
                failures[event.id] = _reason(again)
                continue
        except Exception as exc:  # noqa: BLE001 - whatever is wrong with one event, the others go on
            failures[event.id] = _reason(exc)
            continue
        done.append(event.id)
        if applied:
            pushed += 1
        else:
            skipped += 1
    return done, failures, pushed, skipped


ACTIVE_ITEM_INDEX = "uq_decision_lines_active_item"
# Central's own count of a line's standing refunds against the units shipped (migration 0012).
ORDER_LINE_UNITS = "rc_order_line_units"
# Central's checks of a decision once its lines are in, deferred to the end of the transaction:
# its sums (migration 0012) and whether it refunds against a station's copy of an order (0013).
# Asked before the fast path looks for decisions central holds, and on the careful path at the
# end of each event, inside the event's savepoint, so that a refusal is that event's alone.
DEFERRED_CHECKS = "rc_decision_sums, rc_station_orders"


def _deferred_checks_now(conn: Connection) -> None:
    conn.execute(text(f"SET CONSTRAINTS {DEFERRED_CHECKS} IMMEDIATE"))
    conn.execute(text(f"SET CONSTRAINTS {DEFERRED_CHECKS} DEFERRED"))


def _is_item_conflict(exc: IntegrityError) -> bool:
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        return diag.constraint_name in (ACTIVE_ITEM_INDEX, ORDER_LINE_UNITS)
    return "decision_lines.return_item_id" in str(orig)  # SQLite names the columns, not the index


def _apply_event(conn: Connection, event: _Pending, station_id: str | None,
                 statements: dict[tuple[str, tuple[str, ...], str], Any], *, conflict: bool = False) -> bool:
    """Apply one event; False if central had already applied it.

    ``conflict``: the event's decision lost the race for an item. Its decision is written with
    status ``conflict`` and inactive lines, every other row only where central has none yet (the
    winner's state of the RMA stands), and a ``sync_conflicts`` row per contested item.
    """
    origin = _origin(event, station_id)
    rows = _restored_rows(event, origin)
    fills = _fills(event)
    # Claiming the event id first makes a concurrent second push of the same event wait for
    # the first and then do nothing, instead of applying the rows twice.
    if not _claim(conn, [{"event_id": event.event_id, "station_id": origin, "kind": event.kind,
                          "applied_at": utcnow()}]):
        return False
    for table, values in rows:
        clash = _identity_clash(conn, table, [values])
        if clash:
            raise _BadEvent(clash)
    rows = _with_settles(rows)
    refused = _refused_approvals(conn, rows)
    held = {values["decision_id"] for table, values in rows
            if table.name == Approval.__tablename__ and values["id"] in refused}
    # What a refused verdict changed at the station (the units' acceptance, refunds per unit, the
    # RMA's state, put-away) must not land either: central keeps the case as it stands.
    held_items = {values["return_item_id"] for table, values in rows
                  if table.name in _BY_DECISION and values.get("decision_id") in held and "return_item_id" in values}
    held_rmas = {values["rma_id"] for table, values in rows
                 if table.name == Decision.__tablename__ and values["id"] in held}
    # Only an approval central accepts may settle a case that waits for review.
    approved = {values["decision_id"] for table, values in rows
                if table.name == Approval.__tablename__ and values["id"] not in refused} - held
    contested: list[tuple[uuid.UUID, int, uuid.UUID]] = []
    if conflict:
        contested = _contested_items(conn, rows)
        if not contested:
            raise _BadEvent("a decision line conflicts, but no other decision holds its item")
    losers = {decision_id for decision_id, _, _ in contested}
    decided_items = {values["return_item_id"] for table, values in rows
                     if table.name == DecisionLine.__tablename__ and values.get("active", True)}
    order_lines = _lock_order_lines(conn, decided_items,
                                    [values for table, values in rows if table.name == ReturnItem.__tablename__])
    for table, values in rows:
        mode = "upsert"
        # A lost race comes first: such a decision is a conflict whatever else the event says.
        if conflict and table.name == Decision.__tablename__ and values["id"] in losers:
            values = {**values, "status": "conflict"}
        elif conflict and table.name == DecisionLine.__tablename__ and values["decision_id"] in losers:
            values = {**values, "active": False}
        elif table.name == Approval.__tablename__ and values["id"] in refused:
            values = {**values, "refused_reason": refused[values["id"]]}
        elif table.name == Decision.__tablename__ and values["id"] in held:
            mode = "insert_only"  # a refused approval changes nothing about its decision
        elif held and _held_row(table.name, values, held, held_items, held_rmas):
            mode = "insert_only"
        elif table.name == Decision.__tablename__ and values["id"] in approved:
            mode = "approved"
        elif conflict:
            mode = "insert_only"
        if fills and (table.name, json_value(values.get(_PK[table.name][0]))) in fills:
            mode = "insert_only"  # a copy that only fills a gap (see _resolve_refs)
        if table.name == User.__tablename__ and conn.dialect.name == "postgresql":
            _fill_users(conn, [values])
            continue
        conn.execute(_upsert(conn, table, tuple(values), statements, mode), values)
    if not conflict and _over_quantity(conn, order_lines):
        raise _OverQuantity()
    if conn.dialect.name == "postgresql" and any(table.name == Decision.__tablename__ for table, _ in rows):
        _deferred_checks_now(conn)
    if event.kind == USER_DISABLED:
        _disable_user(conn, rows)
    now = utcnow()
    for decision_id, item_id, holder in contested:
        conn.execute(_insert(conn, SyncConflict.__table__).values(
            id=uuid.uuid4(), kind="item_already_decided", decision_id=decision_id, return_item_id=item_id,
            other_decision_id=holder, station_id=origin, event_id=event.event_id, detected_at=now,
            reason=f"return item {item_id} (or every shipped unit of its order line) was already decided by "
                   f"decision {holder}; decision {decision_id} from {origin} is kept as a conflict for review"))
    for table, values in rows:
        if table.name == Approval.__tablename__ and values["id"] in refused:
            conn.execute(_insert(conn, SyncConflict.__table__).values(
                id=uuid.uuid4(), kind="approval_refused", decision_id=values["decision_id"],
                approval_id=values["id"], station_id=origin, event_id=event.event_id, detected_at=now,
                reason=refused[values["id"]]))
    return True


USER_DISABLED = "user_disabled"


def _with_settles(rows: list[tuple[Table, dict[str, Any]]]) -> list[tuple[Table, dict[str, Any]]]:
    """Approvals written before they said what they settle (queued before this version) say it
    from the case's rows in the same event, as the station settled it: central checks that and
    settles the case from it (migration 0009)."""
    decisions = {values["id"]: values for table, values in rows if table.name == Decision.__tablename__}
    lines: dict[Any, dict[str, int]] = {}
    for table, values in rows:
        if table.name == DecisionLine.__tablename__ and values.get("active", True):
            lines.setdefault(values["decision_id"], {})[str(values["return_item_id"])] = values["refund_minor"]
    out = []
    for table, values in rows:
        if table.name == Approval.__tablename__ and not values.get("settles") and values["decision_id"] in decisions:
            decision = decisions[values["decision_id"]]
            values = {**values, "settles": {
                "status": decision.get("status"), "kind": decision.get("kind"),
                "amount_minor": decision.get("amount_minor"),
                "store_credit_bonus_minor": decision.get("store_credit_bonus_minor"),
                "lines": lines.get(values["decision_id"], {})}}
        out.append((table, values))
    return out


def _disable_user(conn: Connection, rows: list[tuple[Table, dict[str, Any]]]) -> None:
    """A station's admin disabled someone: central stops them everywhere — if the admin, in
    central's own view, is an active admin it has confirmed. Central takes no other change to a
    user from a station (roles, enabling, credentials stay central's), and never this one from
    anybody else: the audit row that came with the event still says it was tried."""
    users = User.__table__
    for table, values in rows:
        if table.name != "audit_events" or values.get("action") != USER_DISABLED:
            continue
        if not str(values.get("entity_id", "")).isdigit() or not isinstance(values.get("user_id"), int):
            continue
        if conn.dialect.name == "postgresql":
            # Through central's door: a station may disable a user, never change one otherwise,
            # and only with the disabling admin's signature (console.users_admin).
            details = values.get("details")
            signature = details.get("signature") if isinstance(details, dict) else None
            conn.execute(text("SELECT rc_disable_user(:target, :admin, CAST(:sig AS json))"),
                         {"target": int(values["entity_id"]), "admin": values["user_id"],
                          "sig": _json_text(signature) if signature is not None else None})
            continue
        admin = conn.execute(select(users.c.id).where(
            users.c.id == values.get("user_id"), users.c.active, users.c.role == "admin",
            users.c.created_from_station.is_(None))).first()
        if admin is not None:
            conn.execute(users.update().where(users.c.id == int(values["entity_id"])).values(active=False))


_BY_DECISION = frozenset({"decision_lines", "deductions"})


def _held_row(table: str, values: dict[str, Any], held: set[uuid.UUID], items: set[int], rmas: set[Any]) -> bool:
    """Whether a row of an event belongs to a case whose verdict central refused."""
    if table in _BY_DECISION:
        return values.get("decision_id") in held
    if table == "return_items":
        return values.get("id") in items
    if table == "dispositions":
        return values.get("return_item_id") in items
    if table == "return_authorizations":
        return values.get("id") in rmas
    return False


# What makes a row with an integer id the same row: a station that created an RMA offline with an
# id central already gave another RMA must not have the two merged into one.
_IDENTITY = {"return_authorizations": ("order_id", "number", "created_at"),
             "return_items": ("rma_id", "order_line_id")}


def _identity_clash(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> str | None:
    columns = _IDENTITY.get(table.name)
    if not columns or not rows:
        return None
    if conn.dialect.name == "postgresql" and len(rows) > _COPY_FROM_ROWS:
        # Only a clash comes back (nearly always none), not every row central holds.
        found = conn.execute(text(_clash_sql(table, columns)), {
            "ids": [str(values["id"]) for values in rows],
            **{f"c{i}": [None if values.get(name) is None else str(values[name]) for values in rows]
               for i, name in enumerate(columns)}}).scalar()
        if found is None:
            return None
        rows = [values for values in rows if values["id"] == found]
    ids = [values["id"] for values in rows]
    existing = {row[0]: tuple(row[1:]) for row in conn.execute(
        select(table.c.id, *(table.c[name] for name in columns)).where(_key_in(conn, table.c.id, ids)))}
    for values in rows:
        theirs = existing.get(values["id"])
        mine = tuple(values.get(name) for name in columns)
        if theirs is not None and theirs != mine:
            def show(row: tuple[Any, ...]) -> str:
                return ", ".join(f"{name} {value}" for name, value in zip(columns, row))
            return (f"{table.name} id {values['id']} is already another row at central ({show(theirs)}; this "
                    f"station's: {show(mine)}): nothing merged. Give each station its own [station] id_block")
    return None


def _clash_sql(table: Table, columns: tuple[str, ...]) -> str:
    arrays = ", ".join([f"CAST(CAST(:ids AS text[]) AS {_sql_kind(table.c.id)}[])"]
                       + [f"CAST(CAST(:c{i} AS text[]) AS {_sql_kind(table.c[name])}[])" for i, name in enumerate(columns)])
    names = ", ".join(f"c{i}" for i in range(len(columns)))
    mine = ", ".join(f"s.c{i}" for i in range(len(columns)))
    theirs = ", ".join(f't."{name}"' for name in columns)
    return (f"SELECT s.id FROM unnest({arrays}) AS s(id, {names}) JOIN {table.name} AS t ON t.id = s.id "
            f"WHERE ({theirs}) IS DISTINCT FROM ({mine}) LIMIT 1")


class _OverQuantity(Exception):
    """Applying the event would refund more units of an order line than were shipped."""


_STANDING = ("approved", "pending_review")
_ORDER_LINE_LOCKS = 7301  # the advisory-lock class for "refunds of this order line are being counted"


def _lock_order_lines(conn: Connection, item_ids: set[int], item_rows: Any) -> list[int]:
    """The order lines behind ``item_ids``, locked (in id order) until the transaction ends: two
    stations' pushes refunding units of one line take turns, so the count below is true."""
    if not item_ids:
        return []
    line_of = {values["id"]: values["order_line_id"] for values in item_rows if "order_line_id" in values}
    missing = [i for i in item_ids if i not in line_of]
    if missing:
        line_of.update((row[0], row[1]) for row in conn.execute(
            select(ReturnItem.id, ReturnItem.order_line_id).where(_key_in(conn, ReturnItem.id, missing))))
    ids = sorted({line_of[i] for i in item_ids if i in line_of})
    if ids and conn.dialect.name == "postgresql":
        # Advisory locks, not SELECT … FOR UPDATE: a station's database role may not update
        # order lines (see db.central.grant_station_role), and needs no privilege for these.
        conn.execute(text("SELECT pg_advisory_xact_lock(:kind, x) FROM (SELECT unnest(CAST(:ids AS integer[])) AS x "
                          "ORDER BY 1) AS lines"), {"kind": _ORDER_LINE_LOCKS, "ids": ids})
    return ids


def _over_quantity(conn: Connection, order_line_ids: list[int]) -> list[int]:
    """Order lines with more standing refund lines than units shipped: the same unit refunded
    twice through two RMAs created offline at two stations."""
    if not order_line_ids:
        return []
    return list(conn.execute(
        select(ReturnItem.order_line_id)
        .join(DecisionLine, DecisionLine.return_item_id == ReturnItem.id)
        .join(Decision, Decision.id == DecisionLine.decision_id)
        .join(OrderLine, OrderLine.id == ReturnItem.order_line_id)
        .where(_key_in(conn, ReturnItem.order_line_id, order_line_ids), DecisionLine.active,
               Decision.status.in_(_STANDING))
        .group_by(ReturnItem.order_line_id, OrderLine.quantity)
        .having(func.count() > OrderLine.quantity)).scalars())


def _contested_items(conn: Connection, rows: list[tuple[Table, dict[str, Any]]],
                     ) -> list[tuple[uuid.UUID, int, uuid.UUID]]:
    """(this event's decision, item, the decision holding it) for each item it lost: the item
    itself already decided, or its order line's every shipped unit already refunded."""
    found = []
    lines = DecisionLine.__table__
    items = {values["id"]: values.get("order_line_id") for table, values in rows
             if table.name == ReturnItem.__tablename__}
    for table, values in rows:
        if table.name != DecisionLine.__tablename__ or not values.get("active", True):
            continue
        holder = conn.execute(select(lines.c.decision_id).where(
            lines.c.return_item_id == values["return_item_id"], lines.c.active,
            lines.c.decision_id != values["decision_id"])).scalar()
        if holder is None:
            line_id = items.get(values["return_item_id"]) or conn.execute(
                select(ReturnItem.order_line_id).where(ReturnItem.id == values["return_item_id"])).scalar()
            quantity = conn.execute(select(OrderLine.quantity).where(OrderLine.id == line_id)).scalar() or 0
            others = list(conn.execute(
                select(DecisionLine.decision_id).join(ReturnItem, ReturnItem.id == DecisionLine.return_item_id)
                .join(Decision, Decision.id == DecisionLine.decision_id)
                .where(ReturnItem.order_line_id == line_id, DecisionLine.active, Decision.status.in_(_STANDING),
                       DecisionLine.decision_id != values["decision_id"])).scalars())
            if len(others) >= quantity and others:
                holder = others[0]
        if holder is not None:
            found.append((values["decision_id"], values["return_item_id"], holder))
    return found


def _refused_approvals(conn: Connection, rows: list[tuple[Table, dict[str, Any]]]) -> dict[uuid.UUID, str]:
    """Approvals central will not let stand, with the reason: central's own view of the approver
    (a supervisor demoted or disabled while their station was offline cannot approve) and four
    eyes (whoever decided the case or received its parcel cannot approve it)."""
    refused: dict[uuid.UUID, str] = {}
    users, decisions, approvals = User.__table__, Decision.__table__, Approval.__table__
    in_event = {values["id"]: values for table, values in rows if table.name == Decision.__tablename__}
    for table, values in rows:
        if table.name != Approval.__tablename__ or values.get("refused_reason"):
            continue
        approver = conn.execute(select(users.c.username, users.c.role, users.c.active, users.c.created_from_station)
                                .where(users.c.id == values["supervisor_id"])).first()
        # (On PostgreSQL central's own trigger checks again, with the case locked, so that two
        # stations' approvals of one case pushed at once take turns: migration 0009.)
        decided_by = conn.execute(select(decisions.c.decided_by_id)
                                  .where(decisions.c.id == values["decision_id"])).scalar()
        earlier = conn.execute(
            select(approvals.c.id, users.c.username).join(users, users.c.id == approvals.c.supervisor_id)
            .where(approvals.c.decision_id == values["decision_id"], approvals.c.refused_reason.is_(None),
                   approvals.c.id != values["id"])).first()
        if decided_by is None and values["decision_id"] in in_event:
            decided_by = in_event[values["decision_id"]]["decided_by_id"]
        receivers = set(conn.execute(
            select(ParcelReceipt.user_id).join(ReturnItem, ReturnItem.receipt_id == ParcelReceipt.id)
            .join(DecisionLine, DecisionLine.return_item_id == ReturnItem.id)
            .where(DecisionLine.decision_id == values["decision_id"])).scalars())
        who = f"user {values['supervisor_id']}" if approver is None else approver.username
        if approver is not None and approver.created_from_station:
            refused[values["id"]] = (f"approval refused: {who} is known to central only from station "
                                     f"{approver.created_from_station}'s copy; an admin must confirm them first")
        elif approver is None or not approver.active or approver.role not in APPROVER_ROLES:
            state = ("unknown at central" if approver is None else "disabled at central" if not approver.active
                     else f"a {approver.role} at central")
            refused[values["id"]] = f"approval refused: {who} is {state}, not an active supervisor"
        elif values["supervisor_id"] == decided_by:
            refused[values["id"]] = f"approval refused: {who} made this decision (four eyes)"
        elif values["supervisor_id"] in receivers:
            refused[values["id"]] = f"approval refused: {who} received this parcel (four eyes)"
        elif earlier is not None:
            # Two supervisors settled the case at two stations while apart: the first verdict to
            # reach central stands; the second is kept, refused, for a supervisor to look at.
            refused[values["id"]] = (f"approval refused: {earlier.username} had already settled this case "
                                     f"(approval {earlier.id}); {who}'s verdict reached central later")
        elif conn.dialect.name == "postgresql":
            # The approver's proof, as central's trigger will check it (migration 0011), asked
            # before the event is applied: a verdict refused for it changes nothing of its case.
            problem = conn.execute(text("SELECT rc_signature_problem(CAST(:a AS json))"),
                                   {"a": orjson.dumps({k: json_value(v) for k, v in values.items()}).decode()}).scalar()
            if problem:
                refused[values["id"]] = str(problem)
    return refused


# Central owns users (their credentials and roles) and the order system's data: a station's copy
# only fills a gap, it never overwrites what central holds.
INSERT_ONLY = frozenset({"users", "customers", "orders", "order_lines", "shipments", "carrier_events"})
# Written once, never changed: a station's copy of an audit row never overwrites central's, and a
# row that collides with central's chain on any key (a station rebuilt under the same id) is left
# out instead of failing the event that carries it — `audit verify --central` reports the difference.
APPEND_ONLY = frozenset({"audit_events"})


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


def _mark_station_synced(station: Engine, station_ids: set[str]) -> None:
    if not station_ids:
        return
    with station.begin() as conn:
        conn.execute(update(Station).where(Station.id.in_(station_ids)).values(last_synced_at=utcnow()))


def _driver_error(exc: BaseException) -> BaseException:
    """The driver's own error behind SQLAlchemy's wrapper (what the server said), else ``exc``."""
    return exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc


def _reason(exc: BaseException) -> str:
    source = _driver_error(exc)
    text = " ".join(f"{type(source).__name__}: {source}".split())
    return text[:_MAX_ERROR_CHARS]


def _first_line(exc: BaseException) -> str:
    source = _driver_error(exc)
    lines = [line.strip() for line in str(source).splitlines() if line.strip()]
    return lines[0] if lines else type(source).__name__


def unreachable(central: Engine, exc: BaseException, *, lost: bool = False) -> EnvironmentProblem:
    url = central.url
    where = URL.create(url.drivername, url.username, None, url.host, url.port, url.database,
                       url.query).render_as_string(hide_password=False)
    if _busy(exc):
        # The server answered, it just could not do it now (a lock, a deadlock, a timeout, a full
        # disk or lock table): not the network's fault, and the next pass tries again.
        return EnvironmentProblem(f"central database at {where} could not take the push just now: "
                                  f"{_first_line(exc)}{_hint(exc)}; decisions stay queued on this station "
                                  "and go out at the next try")
    what = "lost the connection" if lost else "is unreachable"
    return EnvironmentProblem(f"central database at {where} {what}: {_first_line(exc)}; decisions stay "
                              "queued on this station — check the network or --central URL")


def _hint(exc: BaseException) -> str:
    """The server's own hint, for its administrator (a full lock table names the setting)."""
    source = _driver_error(exc)
    diag = getattr(source, "diag", None)
    hint = getattr(diag, "message_hint", None)
    return f" (the server's hint: {hint.rstrip('.')})" if hint else ""


def _busy(exc: BaseException) -> bool:
    import psycopg.errors as pg

    source = _driver_error(exc)
    if isinstance(source, pg.OutOfMemory):
        # "Out of shared memory": the server's lock table is full (a push locks each order line it
        # refunds, and many stations catching up at once add up), not the backend's own memory.
        return "out of shared memory" in str(source)
    return isinstance(source, (pg.LockNotAvailable, pg.QueryCanceled, pg.DeadlockDetected,
                               pg.SerializationFailure, pg.DiskFull, pg.TooManyConnections))


def open_conflict_count(central: Engine, station_id: str) -> int:
    """Conflicts central found in this station's events that nobody has resolved yet."""
    try:
        with central.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(SyncConflict).where(
                SyncConflict.station_id == station_id, SyncConflict.resolved_at.is_(None))).scalar_one())
    except (OperationalError, InterfaceError) as exc:
        raise unreachable(central, exc, lost=True) from None
