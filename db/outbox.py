"""The outbox event format, and the part of a unit of work's commit that writes it.

An event (an ``outbox`` row) carries to central what its transaction wrote, so central can apply
it with plain upserts, whatever the kind of event::

    {"station_id": "WH1-01",
     "rows": [{"table": "decisions", "values": {...}}, ...],   # written here: carried in full
     "refs": {"orders": [1042], "users": [1]}}                  # only read here: named by key

A row an event only refers to travels by key when it belongs to the order system or to central's
users, or is the station, RMA, item or receipt the event is about (``BY_REFERENCE``): central
nearly always holds it already, and the station sends a copy at push time only of those it lacks
(see ``db.push.refs``). Every row the transaction wrote travels in full.

The audit rows a transaction writes (``console.audit``) travel in its last event, or in an event
of their own (``AUDIT_KIND``) when the step sends nothing else (a sign-in, a print).

``Outbox`` collects all of this for one unit of work's session, in the open: the rows each flush
wrote, the audit rows, the events added; ``UnitOfWork.commit`` calls ``assemble`` before it
commits. A change that would not reach central is refused rather than lost: an audit row
written outside a unit of work, a commit that goes round ``UnitOfWork.commit``, and a Core
UPDATE (``session.execute(update(...))``) of a synced table whose rows no event of the
transaction carries (a Core INSERT or DELETE of one is refused at once: write it through the
ORM). Only ``Session.execute`` is watched: a statement run on ``session.connection()`` is
outside, as on any raw connection.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Table, TextClause, event, inspect, select
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction

from db.models import AuditEvent, Base, OutboxRow
from db.snapshot import json_value, snapshot

# The kind of an event that carries only audit rows (a sign-in, a print): a transaction that
# writes an event anyway carries its audit rows in that event instead.
AUDIT_KIND = "audit"

# Tables whose rows an event may name by key instead of carrying, when its transaction only read
# them: the order system's rows and users (central owns them, and only fills a gap with a
# station's copy), and the station, RMAs, items and receipts an event is about. Every row a
# transaction writes travels in full; a row named by key is sent at push time only if central
# lacks it and no earlier event of the batch carries it (see db.push.refs).
BY_REFERENCE = frozenset({"users", "customers", "orders", "order_lines", "shipments", "stations",
                          "return_authorizations", "return_items", "parcel_receipts"})

# Tables a station keeps to itself (its sync bookkeeping, print queue, sealed keys, policy
# limits, cached figures) or that only central writes: no event carries them, so a Core
# statement may change them freely. Every other table is synced.
STATION_ONLY = frozenset({"outbox", "applied_events", "sync_cursors", "sync_conflicts", "sync_refetch",
                          "station_credentials", "station_refusals", "sealed_keys", "refused_verdicts",
                          "print_jobs", "review_limits", "risk_baselines"})

_TABLE_ORDER = {t.name: i for i, t in enumerate(Base.metadata.sorted_tables)}


class OutboxBypassed(Exception):
    """A bug, not a refusal a clerk can act on: a change was about to be committed that no
    outbox event would carry to central."""


# --- rows as they leave the station -------------------------------------------------------------

# Columns a station never sends: credentials and lock state stay where they are checked. A user
# row only travels so that central can apply an event that names the user before it knows them;
# central then holds a row nobody can sign in with ("!" is no hash) and never takes a station's
# copy over its own (see db.push: users are insert-only).
_NOT_SENT = {"users": {"password_hash": "!", "badge_hash": None, "failed_attempts": 0, "locked_until": None}}


def outbound_snapshot(obj: Base) -> dict[str, Any]:
    """``db.snapshot.snapshot`` for an outbox event: without what must not leave the station."""
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


def payload(station_id: str, rows: list[dict[str, Any]],
            refs: Mapping[str, Iterable[Any]] | None = None) -> dict[str, Any]:
    """An event's payload: the rows it carries (``outbound_snapshot``s) and, if any, the keys it
    names by table (``BY_REFERENCE``; a table with no key left out)."""
    body: dict[str, Any] = {"station_id": station_id, "rows": rows}
    if refs is not None:
        body["refs"] = {name: sorted(keys) for name, keys in refs.items() if keys}
    return body


def _row_key(obj: Base) -> tuple[str, Any]:
    (key,) = inspect(obj).mapper.primary_key_from_instance(obj)
    return type(obj).__table__.name, key  # the mapper's local table, as a Table (see db.models.Base)


def _snapshot_key(table: Table, values: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(values.get(c.name) for c in table.primary_key.columns)


# --- what one unit of work's transaction sends ------------------------------------------------

class UowSession(Session):
    """The session class of a unit of work (``db.uow``), and the only one whose flushes,
    statements and commits the outbox listens to. The listeners are registered once on this
    class, not on every ``Session`` and not per session: registering per session cost about
    80 µs per unit of work, which the bench's look-ups would pay. A ``UowSession`` without an
    ``Outbox`` (none made it) is not listened to."""


class Outbox:
    """The events, audit rows and written rows of one session's current transaction. Made by
    ``UnitOfWork.__enter__`` for its own ``UowSession`` (whose ``info`` then names it);
    ``detach`` in ``UnitOfWork.__exit__``."""

    _INFO_KEY = "outbox"

    def __init__(self, session: Session) -> None:
        self.session = session
        self._events: list[OutboxRow] = []
        self._audit_rows: list[AuditEvent] = []
        # (table, primary key) of the BY_REFERENCE rows the transaction wrote so far, noted at
        # every flush: what an event carries in full rather than by key. Over-noting (a dirty
        # object left unchanged, a rolled back savepoint) only makes an event carry a row it
        # could have named.
        self._written: set[tuple[str, Any]] = set()
        # Rows a Core UPDATE changed: (table, primary key as it travels) -> the statement, for
        # the refusal's message. An event of the transaction must carry each of them.
        self._core_changed: dict[tuple[str, tuple[Any, ...]], str] = {}
        session.info[self._INFO_KEY] = self

    @classmethod
    def of(cls, session: Session) -> Outbox:
        """The outbox of a unit of work's session; refused for any other session, whose commit
        nothing would carry to central."""
        outbox = session.info.get(cls._INFO_KEY)
        if not isinstance(outbox, Outbox):
            raise OutboxBypassed("This session is not a unit of work's (db.uow.UnitOfWork): an audit row or "
                                 "outbox event written in it would never reach central. Open a UnitOfWork "
                                 "and commit it with uow.commit().")
        return outbox

    def detach(self) -> None:
        self.session.info.pop(self._INFO_KEY, None)

    # -- what services add --------------------------------------------------------------------

    def add(self, kind: str, aggregate_id: str, body: dict[str, Any]) -> OutboxRow:
        """An event with a payload built by the caller (``payload``)."""
        row = OutboxRow(event_id=uuid.uuid4(), kind=kind, aggregate_id=aggregate_id, payload=body)
        self.session.add(row)
        self._events.append(row)
        return row

    def event(self, kind: str, aggregate_id: str, station_id: str, rows: Iterable[Base],
              context: Iterable[Base] = (), refs: Mapping[str, Iterable[Any]] | None = None) -> OutboxRow:
        """An event that carries ``rows``, and of ``context`` (rows the event is about) those
        written in this transaction; the rest of ``context`` and ``refs`` (keys by table) it names
        by key, unless it carries them anyway. Rows in foreign-key order, each once."""
        self.session.flush()
        named: dict[str, set[Any]] = {name: {json_value(k) for k in keys} for name, keys in (refs or {}).items()}
        objs: list[Base] = list(rows)
        for obj in context:
            key = _row_key(obj)
            if key in self._written:
                objs.append(obj)  # changed in this transaction: carried in full
            else:
                named.setdefault(key[0], set()).add(json_value(key[1]))
        seen: set[tuple[str, str]] = set()
        snaps: list[dict[str, Any]] = []
        for snap in sorted((outbound_snapshot(o) for o in objs), key=lambda s: _TABLE_ORDER[s["table"]]):
            keys = list(_snapshot_key(Base.metadata.tables[snap["table"]], snap["values"]))
            seen_key = (snap["table"], repr(keys))
            if seen_key not in seen:
                seen.add(seen_key)
                snaps.append(snap)
                if snap["table"] in named:
                    named[snap["table"]].discard(keys[0])  # carried in full
        assert set(named) <= BY_REFERENCE
        return self.add(kind, aggregate_id, payload(station_id, snaps, named))

    def audit_row(self, row: AuditEvent) -> None:
        """An audit row written in this transaction: ``assemble`` puts it into an event."""
        self._audit_rows.append(row)

    # -- the commit -----------------------------------------------------------------------------

    def assemble(self) -> None:
        """Before the commit: refuse a Core UPDATE's rows that no event carries, then put the
        transaction's audit rows into its last event, or into an event of their own."""
        events = [o for o in self._events if _in_transaction(o)]
        self._refuse_uncarried(events)
        rows = [r for r in self._audit_rows if inspect(r).persistent]
        self._audit_rows = []
        if not rows:
            return
        carrier = next((o for o in reversed(events)
                        if isinstance(o.payload, dict) and isinstance(o.payload.get("rows"), list)), None)
        if carrier is not None:
            # A new dict, not the old one changed in place: the ORM then writes it even if the
            # event was flushed already.
            carrier.payload = {**carrier.payload,
                               "rows": [*carrier.payload["rows"], *(outbound_snapshot(r) for r in rows)]}
            return
        by_station: dict[str, list[AuditEvent]] = {}
        for r in rows:
            by_station.setdefault(r.station_id, []).append(r)
        for station_id, own in by_station.items():
            self.add(AUDIT_KIND, f"{station_id}#{own[0].seq}",
                     {"station_id": station_id, "rows": [outbound_snapshot(r) for r in own]})

    def _refuse_uncarried(self, events: list[OutboxRow]) -> None:
        if not self._core_changed:
            return
        carried: set[tuple[str, tuple[Any, ...]]] = set()
        for o in events:
            for snap in (o.payload.get("rows") if isinstance(o.payload, dict) else None) or []:
                if not isinstance(snap, dict) or not isinstance(snap.get("values"), dict):
                    continue
                table = Base.metadata.tables.get(str(snap.get("table")))
                if table is not None:
                    carried.add((table.name, _snapshot_key(table, snap["values"])))
        missing = [(key, statement) for key, statement in self._core_changed.items() if key not in carried]
        if missing:
            shown = ", ".join(f"{table} {list(pk)}" for (table, pk), _ in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise OutboxBypassed(f"Not committed: a Core UPDATE ({missing[0][1]}) changed {shown}{more}, and no "
                                 "outbox event of this transaction carries the row, so central would never "
                                 "see the change. Pass the row to the step's event (console.rmas.add_event) "
                                 "or change it through the ORM.")

    # -- the listeners on this one session ------------------------------------------------------

    def _note_flushed(self, session: Session, _flush: UOWTransaction) -> None:
        for obj in (*session.new, *session.dirty, *session.deleted):
            if inspect(obj).mapper.local_table.name in BY_REFERENCE:
                self._written.add(_row_key(obj))

    def _note_statement(self, state: ORMExecuteState) -> None:
        statement = state.statement
        if isinstance(statement, TextClause):
            verb = statement.text.lstrip().split(None, 1)[:1]
            if verb and verb[0].upper() in ("INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "UPSERT"):
                raise OutboxBypassed("A textual INSERT, UPDATE or DELETE in a unit of work would not reach "
                                     "central's copy: write through the ORM, or a Core statement on the table.")
            return
        if not (state.is_update or state.is_insert or state.is_delete):
            return
        name = getattr(getattr(statement, "table", None), "name", None)
        table = Base.metadata.tables.get(name) if isinstance(name, str) else None
        if table is None or table.name in STATION_ONLY:
            return
        if not state.is_update:
            raise OutboxBypassed(f"A Core {'INSERT' if state.is_insert else 'DELETE'} on {table.name} in a unit of "
                                 "work cannot reach central (an outbox event carries rows as the ORM wrote "
                                 "them): add or change the rows through the ORM.")
        if isinstance(state.parameters, list):
            raise OutboxBypassed(f"An UPDATE of {table.name} by a list of parameter sets cannot be followed to "
                                 "the rows it changes: name them with a WHERE clause, or use the ORM.")
        # The rows it is about to change, read first in the same transaction (under the
        # station's write lock): an event must carry each, or the commit is refused.
        where = getattr(statement, "whereclause", None)
        keys = select(*table.primary_key.columns)
        if where is not None:
            keys = keys.where(where)
        shown = f"UPDATE {table.name}"
        for row in self.session.execute(keys, bind_arguments=state.bind_arguments):
            pk = tuple(json_value(v) for v in row)
            self._core_changed[(table.name, pk)] = shown
            if table.name in BY_REFERENCE:
                self._written.add((table.name, row[0]))

    def _refuse_unassembled(self, session: Session) -> None:
        if session.in_nested_transaction():
            return  # a SAVEPOINT's release: the transaction's own commit carries its rows
        if any(inspect(r).persistent for r in self._audit_rows):
            raise OutboxBypassed("Not committed: this transaction holds audit rows that no outbox event carries "
                                 "yet. Commit a unit of work with uow.commit() (db.uow), not session.commit().")
        self._refuse_uncarried([o for o in self._events if _in_transaction(o)])

    def _forget(self, _session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:  # committed, rolled back or closed: nothing is left to carry
            self._events = []
            self._audit_rows = []
            self._written = set()
            self._core_changed = {}


def _listening(name: str) -> Callable[..., None]:
    method = getattr(Outbox, name)

    def listener(session: Session, *args: Any) -> None:
        outbox = session.info.get(Outbox._INFO_KEY)
        if isinstance(outbox, Outbox):
            method(outbox, session, *args)

    return listener


def _on_statement(state: ORMExecuteState) -> None:
    outbox = state.session.info.get(Outbox._INFO_KEY)
    if isinstance(outbox, Outbox):
        outbox._note_statement(state)


event.listen(UowSession, "after_flush", _listening("_note_flushed"))
event.listen(UowSession, "before_commit", _listening("_refuse_unassembled"))
event.listen(UowSession, "after_transaction_end", _listening("_forget"))
event.listen(UowSession, "do_orm_execute", _on_statement)


def _in_transaction(obj: Base) -> bool:
    """Still to be written or written by this transaction (a rolled back SAVEPOINT expunged it)."""
    state = inspect(obj)
    return state.pending or state.persistent
