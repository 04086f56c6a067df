"""The composition root's core: a station's database, policy and signed-in user, ready for services."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from console import audit
from console.config import Settings
from console.context import Actor, StationContext
from console.errors import NotFound
from db.errors import translate
from console.policy import Policy, load_policy
from db.engine import make_engine
from db.migrate import ensure_at_head
from db.models import AuditEvent, PolicyVersion, Station as StationRow, User
from db.uow import UnitOfWork


@dataclass
class Station:
    settings: Settings
    engine: Engine
    policy: Policy
    actor: Actor
    zone: ZoneInfo = field(init=False)
    sessions: sessionmaker[Session] = field(init=False)
    _central: Engine | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.zone = self.settings.zone
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Units of work take the write lock at every BEGIN, not only the first: a service that
        # commits more than once (printouts after a decision) must not lose its later writes to
        # a print or sync worker's commit (SQLITE_BUSY_SNAPSHOT, which no busy timeout retries).
        writer = self.engine.execution_options(sqlite_begin="immediate") if self.engine.dialect.name == "sqlite" \
            else self.engine
        self._write_sessions = sessionmaker(writer, expire_on_commit=False)

    @classmethod
    def open(cls, settings: Settings, *, must_exist: bool = True) -> Station:
        """Open the station database (upgrading its schema if needed), its policy and user."""
        engine = make_engine(settings.station_url, must_exist=must_exist)
        try:
            ensure_at_head(engine)
            policy = load_policy(settings.policy_file)
            with UnitOfWork.for_engine(engine) as uow:
                if uow.session.get(StationRow, settings.station_id) is None:
                    uow.session.add(StationRow(id=settings.station_id, name=settings.station_name,
                                               time_zone=settings.time_zone))
                if uow.session.get(PolicyVersion, policy.version) is None:
                    uow.session.add(PolicyVersion(version=policy.version, body=policy.source))
                write_review_limits(uow.session, settings.station_id, policy)
                uow.commit()
                user = uow.session.scalar(select(User).where(User.username == settings.user, User.active))
            if user is None:
                raise NotFound(f"user '{settings.user}' is not set up at this station; run `returns-console demo` "
                               "for demo users, or set `user` in config.toml")
            station = cls(settings, engine, policy, Actor(user.id, user.username, user.display_name, user.role))
            with station.uow() as uow:
                if record_policy_in_force(uow.session, station.ctx()):
                    uow.commit()
        except (OperationalError, DatabaseError) as exc:
            engine.dispose()
            raise translate(exc, f"station database {settings.station_db}", then="") from None
        except BaseException:
            engine.dispose()
            raise
        return station

    def ctx(self) -> StationContext:
        return StationContext(self.settings.station_id, self.zone, self.policy, self.actor,
                              id_block=self.settings.id_block,
                              reconfirm_within=timedelta(minutes=self.settings.idle_lock_minutes))

    def uow(self) -> UnitOfWork:
        # The station's database is shared by the database, print and sync workers: each step
        # takes the write lock up front rather than failing on a lost race (see UnitOfWork).
        return UnitOfWork(self._write_sessions)

    def read_uow(self) -> UnitOfWork:
        """A unit of work that only reads (a proposal, a view): no write lock held meanwhile."""
        return UnitOfWork(self.sessions)

    def reader(self) -> Connection:
        """A connection for look-ups only: autocommit, so every statement sees what other
        connections committed, and no read transaction is left holding the WAL back."""
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def central_for_lookups(self) -> Engine | None:
        """Central, to ask about a code the station does not know — PostgreSQL only (a demo's
        SQLite central holds nothing the station lacks), with a short connect timeout."""
        from sqlalchemy.engine import make_url

        from db.engine import normalize_url
        from console.fetch import LOOKUP_CONNECT_TIMEOUT_S

        if self._central is None:
            url = make_url(normalize_url(self.settings.central_url))
            if url.get_backend_name() != "postgresql":
                return None
            if "connect_timeout" not in url.query:
                url = url.update_query_dict({"connect_timeout": str(LOOKUP_CONNECT_TIMEOUT_S)})
            self._central = make_engine(url.render_as_string(hide_password=False))
            from db.watchdog import guard_engine

            guard_engine(self._central, 10)  # a look-up is a few small statements
        return self._central

    def close(self) -> None:
        self.engine.dispose()
        if self._central is not None:
            self._central.dispose()


POLICY_ACTIVATED = "policy_activated"


def write_review_limits(session: Session, station_id: str, policy: Policy) -> None:
    """The amounts at or above which this station's database refuses an approved refund written
    without review (migration 0008's trigger): the policy's, replaced whenever the station opens."""
    from sqlalchemy import delete

    from db.models import ReviewLimit

    session.execute(delete(ReviewLimit).where(ReviewLimit.station_id == station_id))
    session.add_all([ReviewLimit(station_id=station_id, currency=currency, amount_minor=amount,
                                 policy_version=policy.version)
                     for currency, amount in policy.always_review_amount.items()])


def record_policy_in_force(session: Session, ctx: StationContext) -> bool:
    """Audit a policy change: the station now works under ``ctx.policy``, and its last
    ``policy_activated`` event names another version, or the same version with other rules (a
    policy file edited without a new version), or there is none yet. True if an event was added."""
    policy = ctx.policy
    fingerprint = policy.sha256
    last = session.scalar(select(AuditEvent.details)
                          .where(AuditEvent.station_id == ctx.station_id, AuditEvent.action == POLICY_ACTIVATED)
                          .order_by(AuditEvent.seq.desc()).limit(1))
    previous = last if isinstance(last, dict) else {}
    if previous.get("version") == policy.version and previous.get("sha256") == fingerprint:
        return False
    known = session.get(PolicyVersion, policy.version)
    audit.record(session, ctx, POLICY_ACTIVATED, "policy_version", policy.version,
                 {"version": policy.version, "sha256": fingerprint, "previous": previous.get("version"),
                  "previous_sha256": previous.get("sha256"),
                  "body_matches_stored_version": known is None or known.body == policy.source})
    return True
