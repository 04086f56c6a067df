"""Push the station's outbox to central: at-least-once delivery, idempotent apply.

- ``pipeline``: the outbox read ahead in batches, sent, acknowledged (``push_once``);
- ``refs``: the rows an event names by key that central lacks, sent as the station's copy;
- ``apply``: central applies a batch — the fast path, the careful path event by event;
- ``rules``: central's rules over a station's rows (verdicts, disablings, identities, units);
- ``sql``: the COPY and upsert statements the apply paths write with;
- ``schema``: which tables a station writes and how, central's schema checked;
- ``events``, ``errors``: an event as the push holds it; a driver error said as a sentence.
"""
from __future__ import annotations

from db.push.apply import ACTIVE_ITEM_INDEX
from db.push.errors import unreachable
from db.push.pipeline import BATCH_SIZE, SyncReport, mark_sent, pending_count, push_once, record_failures
from db.push.schema import (
    APPEND_ONLY, CENTRAL_DECIDES, ECHO_DIFFERS, INSERT_ONLY, READ_BACK, check_central_schema, ensure_central_schema,
    open_conflict_count,
)

__all__ = [
    "ACTIVE_ITEM_INDEX", "APPEND_ONLY", "BATCH_SIZE", "CENTRAL_DECIDES", "ECHO_DIFFERS", "INSERT_ONLY", "READ_BACK",
    "SyncReport", "check_central_schema", "ensure_central_schema", "mark_sent", "open_conflict_count",
    "pending_count", "push_once", "record_failures", "unreachable",
]
