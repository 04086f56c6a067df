"""Append-only audit trail whose rows are chained by hash per station.

Each row's hash covers the previous row's hash, its own position (``seq``) and its content, so an
edited or deleted row breaks the chain from there on (``console.audit_verify`` walks it). The
chain has no secret key: whoever can write the station file can also re-hash everything after an
edit. What catches that is a copy kept elsewhere — so every audit row leaves the station in an
outbox event, committed in the same transaction as the row (see ``_carry_to_central``), and
central holds every station's chain side by side.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session, SessionTransaction

from console.context import StationContext
from db.models import AuditEvent, OutboxRow
from db.snapshot import outbound_snapshot

GENESIS = "0" * 64
# The outbox kind of an event that carries only audit rows (a sign-in, a print): a transaction
# that writes an outbox event anyway carries its audit rows in that event instead.
OUTBOX_KIND = "audit"

_UNSENT = "audit_rows_unsent"
_OUTBOX_WRITTEN = "audit_outbox_written"


# One encoder, not one per call (json.dumps builds a new one for any non-default option): verify
# hashes every row of a chain that may be millions long.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical(body: dict[str, Any]) -> str:
    """The text a row's hash covers. Keys sorted: PostgreSQL's ``jsonb`` and a station's JSON text
    may order an object's keys differently, and the hash must not care."""
    return _CANONICAL.encode(body)


def body(occurred_at: datetime, station_id: str, user_id: int | None, action: str, entity: str,
         entity_id: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"at": occurred_at.isoformat(), "station": station_id, "user": user_id, "action": action,
            "entity": entity, "id": entity_id, "details": details}


def digest(prev_hash: str, seq: int, content: dict[str, Any]) -> str:
    return hashlib.sha256(f"{prev_hash}|{seq}|{canonical(content)}".encode()).hexdigest()


def row_digest(row: Any) -> str:
    """The hash a stored row (ORM object or result row with the column names) ought to carry."""
    return digest(row.prev_hash, row.seq, body(row.occurred_at, row.station_id, row.user_id, row.action,
                                               row.entity, row.entity_id, row.details))


def _as_stored(details: dict[str, Any] | None) -> dict[str, Any]:
    # Hash exactly what the JSON column gives back: tuples come back as lists, integer keys as
    # strings (which sort differently), a UUID or Decimal as its text.
    stored: dict[str, Any] = json.loads(json.dumps(details or {}, ensure_ascii=False, default=str))
    return stored


def append(session: Session, station_id: str, user_id: int | None, at: datetime, action: str, entity: str,
           entity_id: object, details: dict[str, Any] | None = None) -> AuditEvent:
    """Add the station's next row in the caller's transaction.

    Two writers at one station must not both take the same ``seq``: the station's units of work
    begin with the write lock (BEGIN IMMEDIATE, ``console.station``), so the last row read here
    is the last row there is. A transaction that read before another writer committed fails
    instead (SQLite's busy snapshot, or the UNIQUE(station_id, seq) constraint): the chain never
    forks, the caller's step is refused as a whole and can be run again."""
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.station_id == station_id)
        .order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    occurred = at.astimezone(timezone.utc)  # read back as UTC: the hash must see the same text
    stored = _as_stored(details)
    key = str(entity_id)
    row = AuditEvent(id=uuid.uuid4(), seq=seq, occurred_at=occurred, station_id=station_id, user_id=user_id,
                     action=action, entity=entity, entity_id=key, details=stored, prev_hash=prev,
                     hash=digest(prev, seq, body(occurred, station_id, user_id, action, entity, key, stored)))
    session.add(row)
    session.flush()
    session.info.setdefault(_UNSENT, []).append(row)
    return row


def record(session: Session, ctx: StationContext, action: str, entity: str, entity_id: object,
           details: dict[str, Any] | None = None) -> AuditEvent:
    """The audit event of a step: who (``ctx.actor``), where, when, what."""
    return append(session, ctx.station_id, ctx.actor.user_id, ctx.now(), action, entity, entity_id, details)


# --- carrying audit rows to central ------------------------------------------------------------
# Listeners on every Session: the services write audit rows through many units of work (and the
# sign-in through its own), and each must send its rows with its commit, whoever wrote the commit.

@event.listens_for(Session, "after_flush")
def _note_outbox_rows(session: Session, _context: Any) -> None:
    # An event flushed before the step's audit row was written is still the step's carrier.
    written = [obj for obj in session.new if isinstance(obj, OutboxRow)]
    if written:
        session.info.setdefault(_OUTBOX_WRITTEN, []).extend(written)


@event.listens_for(Session, "before_commit")
def _carry_to_central(session: Session) -> None:
    """Put the transaction's audit rows into its outbox event (the last one it wrote), or into an
    event of their own when the step sends nothing else (a sign-in, a print)."""
    if session.in_nested_transaction():
        return  # a SAVEPOINT's commit: the rows go with the transaction's own commit
    rows = [r for r in session.info.pop(_UNSENT, []) if inspect(r).persistent]
    if not rows:
        return
    written = [o for o in session.info.pop(_OUTBOX_WRITTEN, []) if inspect(o).persistent]
    written += [o for o in session.new if isinstance(o, OutboxRow) and o not in written]
    carrier = next((o for o in reversed(written)
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
        session.add(OutboxRow(event_id=uuid.uuid4(), kind=OUTBOX_KIND, aggregate_id=f"{station_id}#{own[0].seq}",
                              payload={"station_id": station_id, "rows": [outbound_snapshot(r) for r in own]}))


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed, rolled back or closed: nothing is left to carry
        session.info.pop(_UNSENT, None)
        session.info.pop(_OUTBOX_WRITTEN, None)
