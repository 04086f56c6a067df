"""An outbox event as the push holds it, and the refusal of one event."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class _Pending:
    id: int
    event_id: uuid.UUID
    kind: str
    aggregate_id: str
    payload: dict[str, Any]


class _BadEvent(ValueError):
    """The payload itself is malformed: the event cannot be applied as it is."""


def _parse(text: str | None) -> Any:
    try:
        return orjson.loads(text) if text is not None else None
    except orjson.JSONDecodeError:
        return None  # refused as "payload has no list of rows", never dropped


class _Careful(Exception):
    """The batch needs the event-by-event path."""
