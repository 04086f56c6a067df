"""Central's side: preparing a central database (``returns-console central init``)."""
from __future__ import annotations

from sqlalchemy.engine import Engine

from db.migrate import current_revision
from db.sync import ensure_central_schema


def init_central(engine: Engine) -> str:
    """Bring central to the current schema (idempotent); the revision it is at."""
    ensure_central_schema(engine)
    revision = current_revision(engine)
    assert revision is not None
    return revision
