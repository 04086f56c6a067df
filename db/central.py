"""Central's side: preparing a central database (``returns-console central init``), the database
roles stations connect with, and each station's own credential.

Stations hand in events; central decides what they mean. On PostgreSQL every station logs in as
a role of its own (``central station add``), a member of the group role ``returns_station``,
which holds exactly what a sync pass needs:

- SELECT on what the change feed serves and the push looks up (not the credentials);
- INSERT into the rows stations create (receipts, inspections, decisions, approvals, audit
  rows …) and UPDATE of the rows several benches work on (the RMA, its items, receipts);
- never UPDATE or DELETE of decisions, approvals, users, customers, orders, applied events or
  audit rows: the door for those is central's own functions (migration 0009: claiming event ids,
  copies of users, a station admin's disabling of a user) and its triggers (a verdict settles a
  case only as central accepts it; every row a station writes must be its own station's).

Every ``central`` command reaches central through ``open_central``, which says in a sentence
what is wrong when the server does not answer or the schema is not this code's.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from console.errors import EnvironmentProblem, NotFound
from db.engine import make_engine, normalize_url
from db.errors import translate
from db.migrate import current_revision, head_revision
from db.models import Base, StationCredential
from db.push import ensure_central_schema
from db.types import utcnow

# Kept in step with migration 0009, whose functions tell a station's session by this membership.
STATION_GROUP = "returns_station"
# Central's own: which login role speaks for which station.
CENTRAL_ONLY = ("station_credentials", "sealed_keys", "refused_verdicts", "rc_sums_due", "rc_used_signatures")
# Rows a station creates at central; the rest it reads only (or writes through central's door).
STATION_INSERTS = frozenset({
    "stations", "customers", "orders", "order_lines", "shipments", "carrier_events",  # copies that fill a gap
    "return_authorizations", "return_items", "parcel_receipts", "receipt_rmas", "item_scans", "inspections",
    "risk_assessments", "decisions", "decision_lines", "deductions", "approvals", "claims", "dispositions",
    "sync_conflicts", "audit_events", "approver_keys",
})
# Rows several benches work on over time: a station's newer copy moves them on (central's rules
# in db.push keep the older copy out; the triggers of 0009 keep other stations' rows out).
STATION_UPDATES = frozenset({
    "stations", "return_authorizations", "return_items", "parcel_receipts", "receipt_rmas", "item_scans",
    "inspections", "risk_assessments", "claims", "dispositions",
    "approver_keys",  # only to retire a key: central's trigger keeps the rest (migration 0011)
})
DOORS = ("rc_station()", "rc_claim_events(json)", "rc_fill_users(json)", "rc_disable_user(integer, integer, json)",
         "rc_signature_problem(json)")
_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_STATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")


# --- reaching central ------------------------------------------------------------------------------
def public_url(engine: Engine) -> str:
    """The engine's URL as a person may see it: no password, no driver name."""
    url = engine.url
    driver = "postgresql" if url.drivername.startswith("postgresql+") else url.drivername
    # (URL.set(password=None) would keep the password: None there means "unchanged".)
    return URL.create(driver, url.username, None, url.host, url.port, url.database,
                      url.query).render_as_string(hide_password=False)


def open_central(url: str, *, prepared: bool) -> Engine:
    """An engine on central whose server answers; with ``prepared``, also at this code's schema
    (``central init`` prepares it: an import never creates or migrates a database by itself)."""
    try:
        parsed = make_url(normalize_url(url))
    except (ArgumentError, ValueError):
        parsed = None  # make_engine says what is wrong with it
    if prepared and parsed is not None and parsed.get_backend_name() == "sqlite":
        file = parsed.database or ""
        if file and file != ":memory:" and not Path(file).exists():
            raise EnvironmentProblem(f"central database file {file} does not exist; prepare it with "
                                     f"`returns-console central init --url {url}` or check the URL")
    engine = make_engine(url)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        where = public_url(engine)
        engine.dispose()
        raise translate(exc, f"central database at {where}", failing="is unreachable",
                        then="check that the server is running and the URL (--url or --central)") from None
    if prepared:
        revision, head = current_revision(engine), head_revision()
        if revision != head:
            where = public_url(engine)
            engine.dispose()
            if revision is not None and not _known_revision(revision):
                raise EnvironmentProblem(f"central database at {where} is at schema {revision}, newer than this "
                                         f"console knows (it stops at {head}); update the console and import again")
            state = "has no schema" if revision is None else f"is at schema {revision}, this console needs {head}"
            raise EnvironmentProblem(f"central database at {where} {state}; run "
                                     f"`returns-console central init --url {where}` first")
    return engine


def _known_revision(revision: str) -> bool:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from db.migrate import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        return ScriptDirectory.from_config(config).get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - alembic says "unknown" in several ways
        return False


# --- preparing central -----------------------------------------------------------------------------
def init_central(engine: Engine) -> str:
    """Bring central to the current schema (idempotent), and on PostgreSQL grant the station
    group exactly what a sync needs; the revision it is at."""
    ensure_central_schema(engine)
    if engine.dialect.name == "postgresql":
        grant_station_group(engine)
    revision = current_revision(engine)
    assert revision is not None
    return revision


def _require_postgresql(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        raise EnvironmentProblem("station credentials are PostgreSQL roles: central here is a SQLite file, which "
                                 "only this machine's console writes")


def grant_station_group(engine: Engine) -> None:
    """Create (if needed) the group role every station's login is a member of, and give it in
    central's schema exactly the privileges above, taking back any others."""
    _require_postgresql(engine)
    with engine.begin() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        _create_role(conn, STATION_GROUP, login=False)
        group = f'"{STATION_GROUP}"'
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO {group}'))
        conn.execute(text(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM {group}'))
        conn.execute(text(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO {group}'))
        for name in CENTRAL_ONLY:
            conn.execute(text(f'REVOKE SELECT ON "{schema}".{name} FROM {group}'))
        for table in Base.metadata.sorted_tables:
            if table.name in STATION_INSERTS:
                conn.execute(text(f'GRANT INSERT ON "{schema}".{table.name} TO {group}'))
            if table.name in STATION_UPDATES:
                conn.execute(text(f'GRANT UPDATE ON "{schema}".{table.name} TO {group}'))
        for door in DOORS:
            conn.execute(text(f'GRANT EXECUTE ON FUNCTION "{schema}".{door} TO {group}'))


def _create_role(conn: Connection, role: str, *, login: bool) -> None:
    # Roles are the server's, not the schema's: two inits at once may both try; the second waits.
    conn.execute(text("SELECT pg_advisory_xact_lock(7302, 0)"))
    if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first() is None:
        conn.execute(text(f'CREATE ROLE "{role}" {"LOGIN" if login else "NOLOGIN"}'))


def station_role_name(station_id: str) -> str:
    """The login role a station's credential is, from its id: ``WH1-01`` → ``returns_station_wh1_01``."""
    return f"{STATION_GROUP}_{re.sub(r'[^a-z0-9_]', '_', station_id.lower())}"[:63]


@dataclass(frozen=True)
class StationLogin:
    station_id: str
    role: str
    password: str  # shown once to whoever issues it; central keeps only the server's hash


def add_station(engine: Engine, station_id: str, *, role: str | None = None) -> StationLogin:
    """Issue (or issue again, with a new password) the credential a station logs in with: a role
    of its own in the station group, tied to that station alone."""
    _require_postgresql(engine)
    if not _STATION_ID.match(station_id):
        raise EnvironmentProblem(f"station id {station_id!r}: use letters, digits, '.', '_' or '-', at most 40")
    role = role or station_role_name(station_id)
    if not _ROLE.match(role):
        raise EnvironmentProblem(f"role name {role!r}: use lower-case letters, digits and _")
    password = secrets.token_urlsafe(24)  # letters, digits, - and _: safe inside the statement below
    grant_station_group(engine)
    with engine.begin() as conn:
        taken = conn.execute(select(StationCredential.station_id).where(StationCredential.role_name == role)).scalar()
        if taken is not None and taken != station_id:
            raise EnvironmentProblem(f"role {role} already speaks for station {taken}: choose another --role")
        _create_role(conn, role, login=True)
        conn.execute(text(f"ALTER ROLE \"{role}\" LOGIN PASSWORD '{password}'"))
        conn.execute(text(f'GRANT "{STATION_GROUP}" TO "{role}"'))
        if taken is None:
            conn.execute(StationCredential.__table__.insert().values(role_name=role, station_id=station_id,
                                                                     issued_at=utcnow()))
        else:
            conn.execute(StationCredential.__table__.update().where(StationCredential.role_name == role)
                         .values(issued_at=utcnow(), revoked_at=None))
    return StationLogin(station_id, role, password)


def revoke_station(engine: Engine, station_id: str) -> list[str]:
    """Take a station's credentials back: its roles can no longer log in, their sessions are
    ended, and their passwords are replaced. The station's decisions stay queued on it until an
    admin issues it a new credential. Returns the roles revoked."""
    _require_postgresql(engine)
    now = utcnow()
    with engine.begin() as conn:
        roles = list(conn.execute(select(StationCredential.role_name).where(
            StationCredential.station_id == station_id, StationCredential.revoked_at.is_(None))).scalars())
        if not roles:
            raise NotFound(f"Central holds no live credential for station {station_id!r}: "
                           "see `returns-console central station list`.")
        for role in roles:
            conn.execute(text(f"ALTER ROLE \"{role}\" NOLOGIN PASSWORD '{secrets.token_urlsafe(24)}'"))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"),
                         {"r": role})
        conn.execute(StationCredential.__table__.update().where(StationCredential.role_name.in_(roles))
                     .values(revoked_at=now))
    return roles


@dataclass(frozen=True)
class Credential:
    station_id: str
    role: str
    issued_at: datetime
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, object]:
        return {"station": self.station_id, "role": self.role, "issued_at": self.issued_at.isoformat(),
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


def credentials(engine: Engine) -> list[Credential]:
    with engine.connect() as conn:
        c = StationCredential.__table__.c
        rows = conn.execute(select(c.station_id, c.role_name, c.issued_at, c.revoked_at)
                            .order_by(c.station_id, c.issued_at)).all()
        return [Credential(*row) for row in rows]
