"""Append-only audit trail whose rows are chained by hash per station.

Each row's hash covers the previous row's hash, its own position (``seq``) and its content, so an
edited or deleted row breaks the chain from there on (``console.audit_verify`` walks it). The
chain has no secret key: whoever can write the station file can also re-hash everything after an
edit. What catches that is a copy kept elsewhere — so every audit row leaves the station in an
outbox event, committed in the same transaction as the row (the unit of work's commit puts it
there, ``db.outbox.Outbox.assemble``), and central holds every station's chain side by side.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.context import StationContext
from db.models import AuditEvent
from db.outbox import Outbox

GENESIS = "0" * 64


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
    """Add the station's next row in the caller's transaction, a unit of work's (its commit
    carries the row to central; any other session is refused, ``db.outbox.OutboxBypassed``).

    Two writers at one station must not both take the same ``seq``: the station's units of work
    begin with the write lock (BEGIN IMMEDIATE, ``console.station``), so the last row read here
    is the last row there is. A transaction that read before another writer committed fails
    instead (SQLite's busy snapshot, or the UNIQUE(station_id, seq) constraint): the chain never
    forks, the caller's step is refused as a whole and can be run again."""
    outbox = Outbox.of(session)
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
    outbox.audit_row(row)
    return row


def record(session: Session, ctx: StationContext, action: str, entity: str, entity_id: object,
           details: dict[str, Any] | None = None) -> AuditEvent:
    """The audit event of a step: who (``ctx.actor``), where, when, what."""
    return append(session, ctx.station_id, ctx.actor.user_id, ctx.now(), action, entity, entity_id, details)
