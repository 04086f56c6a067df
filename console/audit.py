"""Append-only audit trail whose rows are chained by hash per station."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.context import StationContext
from db.models import AuditEvent

GENESIS = "0" * 64


def _digest(prev_hash: str, seq: int, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{prev_hash}|{seq}|{canonical}".encode()).hexdigest()


def record(session: Session, ctx: StationContext, action: str, entity: str, entity_id: object,
           details: dict[str, Any] | None = None) -> AuditEvent:
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.station_id == ctx.station_id)
        .order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    occurred = ctx.now()
    body = {"at": occurred.isoformat(), "station": ctx.station_id, "user": ctx.actor.user_id,
            "action": action, "entity": entity, "id": str(entity_id), "details": details or {}}
    event = AuditEvent(seq=seq, occurred_at=occurred, station_id=ctx.station_id, user_id=ctx.actor.user_id,
                       action=action, entity=entity, entity_id=str(entity_id), details=details or {},
                       prev_hash=prev, hash=_digest(prev, seq, body))
    session.add(event)
    session.flush()
    return event


def verify_chain(session: Session, station_id: str) -> int | None:
    """The seq of the first row whose hash does not hold, or None when the chain is intact."""
    prev = GENESIS
    rows = session.scalars(select(AuditEvent).where(AuditEvent.station_id == station_id).order_by(AuditEvent.seq))
    for row in rows:
        body = {"at": row.occurred_at.isoformat(), "station": row.station_id, "user": row.user_id,
                "action": row.action, "entity": row.entity, "id": row.entity_id, "details": row.details}
        if row.prev_hash != prev or row.hash != _digest(prev, row.seq, body):
            return row.seq
        prev = row.hash
    return None
