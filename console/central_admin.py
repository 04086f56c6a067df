"""What an admin asks of central: which stations have gone quiet, and what waits in conflict."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from db.models import RefusedVerdict, Station, SyncConflict
from db.types import utcnow

QUIET_AFTER = timedelta(minutes=30)


@dataclass(frozen=True)
class StationState:
    station_id: str
    name: str
    last_synced_at: datetime | None
    open_conflicts: int
    quiet: bool  # not heard from for longer than the threshold (or never)
    # Claims' verdicts and disablings it sent without their maker's valid signature (migration 0012).
    refused_verdicts: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"station": self.station_id, "name": self.name,
                "last_synced_at": self.last_synced_at.isoformat() if self.last_synced_at else None,
                "open_conflicts": self.open_conflicts, "refused_verdicts": self.refused_verdicts,
                "quiet": self.quiet}


def station_states(central: Engine, quiet_after: timedelta = QUIET_AFTER,
                   now: datetime | None = None) -> list[StationState]:
    """Every station central knows, quiet ones first, then by id. ``last_synced_at`` is central's
    own record of the station's last sync pass (a station's rows never overwrite it)."""
    now = now or utcnow()
    with central.connect() as conn:
        conflicts = dict(conn.execute(select(SyncConflict.station_id, func.count())
                                      .where(SyncConflict.resolved_at.is_(None))
                                      .group_by(SyncConflict.station_id)).all())
        refused = dict(conn.execute(select(RefusedVerdict.station_id, func.count())
                                    .group_by(RefusedVerdict.station_id)).all())
        rows = conn.execute(select(Station.id, Station.name, Station.last_synced_at)).all()
    states = [StationState(r.id, r.name, r.last_synced_at, int(conflicts.get(r.id, 0)),
                           r.last_synced_at is None or now - r.last_synced_at > quiet_after,
                           int(refused.get(r.id, 0))) for r in rows]
    return sorted(states, key=lambda s: (not s.quiet, s.station_id))


@dataclass(frozen=True)
class ConfirmedUser:
    user_id: int
    username: str
    role: str
    from_station: str


def confirm_user(central: Engine, username: str) -> ConfirmedUser:
    """Confirm a user central knows only from a station's copy (a user added at a station, see
    ``console.users_admin``): from now on central takes their approvals like anyone's. The role
    stays what the station gave; central's trigger and the sync's approval check both read
    ``created_from_station``, so clearing it is the whole confirmation. Stations pull the row
    back, and keep their own credentials for it (central never holds a station's PIN hashes)."""
    from sqlalchemy import update

    from console.errors import NotFound, StateConflict
    from db.models import User

    name = username.strip().lower()
    with central.begin() as conn:
        row = conn.execute(select(User.id, User.username, User.role, User.created_from_station, User.active)
                           .where(func.lower(User.username) == name).with_for_update()).first()
        if row is None:
            raise NotFound(f"Central knows no user {username.strip()!r}: they reach central with the first "
                           "sync after they were added at a station.")
        if row.created_from_station is None:
            raise StateConflict(f"{row.username} is confirmed at central already.")
        if not row.active:
            raise StateConflict(f"{row.username} is disabled at central: enable them there first.")
        conn.execute(update(User).where(User.id == row.id).values(created_from_station=None))
    return ConfirmedUser(row.id, row.username, row.role, row.created_from_station)


@dataclass(frozen=True)
class Published:
    version: str
    sha256: str
    already: bool  # the same text was published under this version before


def publish_policy(central: Engine, path: Path) -> Published:
    """Central takes the policy in ``path`` as a version of its own: from then on a decision that
    arrives approved under a version central did not publish, under another text, at or above the
    version's always-review amount or with a risk score at or above its threshold, waits for a
    supervisor at central (migration 0010). Stations pull the versions. A version is published
    once: other rules need another version."""
    from sqlalchemy.dialects import postgresql, sqlite

    from console.errors import StateConflict
    from console.policy import load_policy
    from db.models import PolicyVersion

    policy = load_policy(path)  # refused, naming the key, if it is not usable
    table = PolicyVersion.__table__
    with central.begin() as conn:
        held = conn.execute(select(table.c.body, table.c.sha256).where(table.c.version == policy.version)
                            .with_for_update()).first()
        if held is not None and held.sha256 == policy.sha256:
            return Published(policy.version, policy.sha256, True)
        if held is not None and held.sha256 is not None:
            raise StateConflict(f"Central published policy {policy.version} with other rules already: give these "
                                "rules a version of their own.")
        values = {"version": policy.version, "body": policy.source, "activated_at": utcnow(),
                  "sha256": policy.sha256, "review_limits": dict(policy.always_review_amount),
                  "review_at_or_above": policy.review_at_or_above}
        insert = (postgresql if central.dialect.name == "postgresql" else sqlite).insert(table).values(values)
        conn.execute(insert.on_conflict_do_update(index_elements=["version"],
                                                  set_={k: v for k, v in values.items() if k != "version"}))
    return Published(policy.version, policy.sha256, False)


@dataclass(frozen=True)
class KeyRow:
    """One approver key central holds (``central keys list``): never a private half, which
    central does not have."""

    key_id: str
    username: str
    station_id: str
    method: str
    enrolled_at: datetime
    confirmed_at: datetime | None
    confirmed_by: str | None
    revoked_at: datetime | None
    retired_at: datetime | None
    public_key: str

    @property
    def fingerprint(self) -> str:
        from console.approval_signing import fingerprint

        return fingerprint(self.public_key)

    @property
    def state(self) -> str:
        return ("revoked" if self.revoked_at else "retired" if self.retired_at
                else "confirmed" if self.confirmed_at else "waiting")

    def to_dict(self) -> dict[str, object]:
        return {"key": self.key_id, "user": self.username, "station": self.station_id, "method": self.method,
                "fingerprint": self.fingerprint, "state": self.state, "enrolled_at": self.enrolled_at.isoformat(),
                "confirmed_at": self.confirmed_at.isoformat() if self.confirmed_at else None,
                "confirmed_by": self.confirmed_by,
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


def approver_keys(central: Engine, *, waiting_only: bool = False) -> list[KeyRow]:
    """Every approver key central holds, waiting ones first, then by user, station and age."""
    from db.models import ApproverKey, User

    k = ApproverKey.__table__.c
    query = (select(k.id, User.username, k.station_id, k.method, k.enrolled_at, k.confirmed_at, k.confirmed_by,
                    k.revoked_at, k.retired_at, k.public_key).join(User, User.id == k.user_id))
    if waiting_only:
        query = query.where(k.confirmed_at.is_(None), k.revoked_at.is_(None), k.retired_at.is_(None))
    with central.connect() as conn:
        rows = [KeyRow(str(r.id), *r[1:]) for r in conn.execute(query)]
    order = {"waiting": 0, "confirmed": 1, "retired": 2, "revoked": 3}
    return sorted(rows, key=lambda r: (order[r.state], r.username, r.station_id, r.enrolled_at))


def confirm_keys(central: Engine, username: str, fingerprint: str, *, confirmed_by: str) -> list[KeyRow]:
    """Confirm the one waiting key of ``username`` with this ``fingerprint``: from now on central
    takes verdicts signed with it. The fingerprint is what the supervisor reads at the station
    where they enrolled the key (their review page says it, and `review` prints it) and tells the
    admin — by phone, in person — so a key a station made up in their name, which has another
    fingerprint, is never confirmed with it. One key at a time; ``confirmed_by`` says who did it."""
    from sqlalchemy import update

    from console.approval_signing import fingerprint as fingerprint_of
    from console.approval_signing import normalize_fingerprint
    from console.errors import InvalidInput, NotFound, StateConflict
    from db.models import ApproverKey, User

    wanted = normalize_fingerprint(fingerprint)
    if len(wanted) != 24:
        raise InvalidInput("A key's fingerprint is 20 letters and digits, like ABCD-EF01-2345-6789-ABCD: ask the "
                           "supervisor to read it from their station.")
    name = username.strip().lower()
    k = ApproverKey.__table__.c
    with central.begin() as conn:
        user = conn.execute(select(User.id, User.username, User.active, User.role, User.created_from_station)
                            .where(func.lower(User.username) == name)).first()
        if user is None:
            raise NotFound(f"Central knows no user {username.strip()!r}.")
        if not user.active:
            raise StateConflict(f"{user.username} is disabled at central: their keys sign nothing.")
        if user.created_from_station:
            raise StateConflict(f"{user.username} is known to central only from station "
                                f"{user.created_from_station}'s copy: confirm the person first "
                                f"(`returns-console central confirm-user {user.username}`).")
        waiting = conn.execute(select(k.id, k.public_key).where(
            k.user_id == user.id, k.confirmed_at.is_(None), k.revoked_at.is_(None), k.retired_at.is_(None))
            .with_for_update()).all()
        ids = [row.id for row in waiting if fingerprint_of(row.public_key) == wanted]
        if len(ids) != 1:
            raise NotFound(f"No key of {user.username} with fingerprint {wanted} waits for confirmation "
                           f"({len(waiting)} of theirs wait{'s' if len(waiting) == 1 else ''}): check the "
                           "fingerprint with them; a key reaches central with its station's next sync after "
                           "they first sign in there.")
        conn.execute(update(ApproverKey).where(k.id == ids[0])
                     .values(confirmed_at=utcnow(), confirmed_by=confirmed_by[:64]))
    return [row for row in approver_keys(central) if row.key_id == str(ids[0])]


def revoke_keys(central: Engine, username: str, *, station_id: str | None = None) -> list[KeyRow]:
    """Revoke ``username``'s keys (of one station): verdicts signed with them are refused from
    now on, also those still queued at a station (a lost badge, a PIN seen by someone else)."""
    from sqlalchemy import update

    from console.errors import NotFound
    from db.models import ApproverKey, User

    k = ApproverKey.__table__.c
    with central.begin() as conn:
        user_id = conn.execute(select(User.id).where(func.lower(User.username) == username.strip().lower())).scalar()
        if user_id is None:
            raise NotFound(f"Central knows no user {username.strip()!r}.")
        query = select(k.id).where(k.user_id == user_id, k.revoked_at.is_(None))
        if station_id:
            query = query.where(k.station_id == station_id)
        ids = list(conn.execute(query.with_for_update()).scalars())
        if not ids:
            raise NotFound(f"Central holds no live key of {username.strip()}"
                           + (f" from station {station_id}." if station_id else "."))
        conn.execute(update(ApproverKey).where(k.id.in_(ids)).values(revoked_at=utcnow()))
    return [row for row in approver_keys(central) if row.key_id in {str(i) for i in ids}]
