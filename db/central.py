"""Central's side: preparing a central database (``returns-console central init``) and the
database role stations connect with."""
from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.engine import Engine

from console.errors import EnvironmentProblem
from db.migrate import current_revision
from db.models import Base
from db.sync import APPEND_ONLY, INSERT_ONLY, ensure_central_schema

# Tables a station's push only ever inserts into (ON CONFLICT DO NOTHING) besides INSERT_ONLY.
_APPEND_ONLY = frozenset({"applied_events", "sync_conflicts"}) | APPEND_ONLY
_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def init_central(engine: Engine) -> str:
    """Bring central to the current schema (idempotent); the revision it is at."""
    ensure_central_schema(engine)
    revision = current_revision(engine)
    assert revision is not None
    return revision


def grant_station_role(engine: Engine, role: str) -> list[str]:
    """Create (if needed) the PostgreSQL role stations connect as, with exactly what a sync pass
    needs in central's schema: read everything, insert, and update only the rows stations own.
    No DDL, no updates of users, customers, orders or anything else central owns — the rules in
    ``db.sync`` then hold even against a station that writes to central by hand. Returns the
    tables the role may update."""
    if engine.dialect.name != "postgresql":
        raise EnvironmentProblem("a station role is a PostgreSQL role: central here is not PostgreSQL")
    if not _ROLE.match(role):
        raise EnvironmentProblem(f"role name {role!r}: use lower-case letters, digits and _")
    updatable = sorted(t.name for t in Base.metadata.sorted_tables
                       if t.name not in INSERT_ONLY and t.name not in _APPEND_ONLY)
    with engine.begin() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        conn.execute(text(f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') "
                          f"THEN CREATE ROLE {role} LOGIN; END IF; END $$"))
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}'))
        conn.execute(text(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM {role}'))
        conn.execute(text(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO {role}'))
        for table in Base.metadata.sorted_tables:
            conn.execute(text(f'GRANT INSERT ON "{schema}".{table.name} TO {role}'))
        for name in updatable:
            conn.execute(text(f'GRANT UPDATE ON "{schema}".{name} TO {role}'))
        # A station's admin may disable a user (db.sync checks the admin); nothing else of users.
        conn.execute(text(f'GRANT UPDATE (active) ON "{schema}".users TO {role}'))
    return updatable
