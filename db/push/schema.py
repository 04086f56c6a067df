"""What central is to the push: its schema checked, which tables a station may write and how
(insert-only, append-only, decided by central), the conflicts it holds."""
from __future__ import annotations

from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from console.errors import EnvironmentProblem
from db.models import (
    AppliedEvent,
    Base,
    Claim,
    DecisionLine,
    OutboxRow,
    SyncConflict,
    SyncCursor,
    User,
)
from db.push.errors import unreachable

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


_TABLE_RANK = {t.name: i for i, t in enumerate(Base.metadata.sorted_tables)}


_PK = {t.name: tuple(c.name for c in t.primary_key.columns) for t in Base.metadata.sorted_tables}


# Tables where a row the fast path writes may differ from the station's copy (see _upsert and
# _event_rows): the pull brings these back even when this station's push wrote them.
ECHO_DIFFERS = frozenset({DecisionLine.__tablename__, User.__tablename__})


# Rows central may keep otherwise than a station sent them without the feed serving them again:
# a claim whose verdict central refused stays as central had it (migration 0012). The station
# reads them again by key at its next pull (db.pull's refetch), so it shows central's claim.
READ_BACK = frozenset({Claim.__tablename__})


# Central owns users (their credentials and roles) and the order system's data: a station's copy
# only fills a gap, it never overwrites what central holds.
INSERT_ONLY = frozenset({"users", "customers", "orders", "order_lines", "shipments", "carrier_events"})


# Written once, never changed: a station's copy of an audit row never overwrites central's, and a
# row that collides with central's chain on any key (a station rebuilt under the same id) is left
# out instead of failing the event that carries it — `audit verify --central` reports the difference.
APPEND_ONLY = frozenset({"audit_events"})


def open_conflict_count(central: Engine, station_id: str) -> int:
    """Conflicts central found in this station's events that nobody has resolved yet."""
    try:
        with central.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(SyncConflict).where(
                SyncConflict.station_id == station_id, SyncConflict.resolved_at.is_(None))).scalar_one())
    except (OperationalError, InterfaceError) as exc:
        raise unreachable(central, exc, lost=True) from None
