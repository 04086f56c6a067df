"""Managing the people who work at a station: add, new PIN, badge, disable, enable, role.

Every step needs ``permissions.MANAGE_USERS``, leaves an audit event and commits. PINs and badge
codes go through ``console.signin`` (Argon2id), so nothing here ever sees a stored secret again.

Two guards an admin cannot talk their way past:
- the station always keeps an active admin: the last one cannot be disabled or demoted, by
  themselves or by another admin (a station with no admin has nobody who can let a locked-out
  clerk back in);
- a new user's id is taken from the station's own id block, like the RMAs it creates, so two
  stations adding people offline never hand the same id to two persons at central.

A user added here reaches central in an outbox event ("user_added"); central keeps such a copy
marked ``created_from_station`` and refuses that person's approvals until an admin confirms them
there (``console.central_admin.confirm_user``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console import approval_signing, audit, signin
from console.authorization import _next_id
from console.context import StationContext
from console.errors import InvalidInput, NotFound, StateConflict
from console.permissions import MANAGE_USERS, require
from console.rmas import add_event
from db.models import APPROVER_ROLES, ROLES, User
from db.uow import UnitOfWork

USERNAME = re.compile(r"[a-z][a-z0-9._-]{1,31}")
MAX_DISPLAY_NAME = 120


@dataclass(frozen=True)
class UserRow:
    """One line of the users page and of ``returns-console users list``: never a hash."""

    id: int
    username: str
    display_name: str
    role: str
    active: bool
    has_badge: bool
    locked_until: datetime | None
    failed_attempts: int

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "username": self.username, "display_name": self.display_name, "role": self.role,
                "active": self.active, "badge": self.has_badge,
                "locked_until": self.locked_until.isoformat() if self.locked_until else None,
                "failed_attempts": self.failed_attempts}


def list_users(session: Session, ctx: StationContext) -> list[UserRow]:
    """Everybody known at this station, active ones first, then by user name."""
    require(ctx.actor, MANAGE_USERS)
    users = session.scalars(select(User).order_by(User.active.desc(), User.username))
    return [UserRow(u.id, u.username, u.display_name, u.role, u.active, u.badge_hash is not None,
                    u.locked_until, u.failed_attempts or 0) for u in users]


def add_user(uow: UnitOfWork, ctx: StationContext, username: str, display_name: str, role: str, pin: str,
             *, badge: str | None = None) -> int:
    """Create an active user with a PIN (and optionally a badge); returns the new id."""
    require(ctx.actor, MANAGE_USERS)
    session = uow.session
    name = username.strip().lower()
    if not USERNAME.fullmatch(name):
        raise InvalidInput("A user name is 2-32 lower-case letters, digits, '.', '_' or '-', starting with a "
                           f"letter: {username.strip()[:40]!r} is not one. Choose another.")
    shown = " ".join(display_name.split())
    if not shown or len(shown) > MAX_DISPLAY_NAME:
        raise InvalidInput(f"Type the person's name as colleagues know it (1-{MAX_DISPLAY_NAME} characters).")
    _check_role(role)
    if session.scalar(select(User.id).where(func.lower(User.username) == name)) is not None:
        raise StateConflict(f"The user name {name!r} is taken here: choose another (or enable that user).")
    first, last = ctx.id_range()
    user = User(id=_next_id(session, User.id, first, last), username=name, display_name=shown, role=role,
                password_hash="!", active=True, created_at=ctx.now(), created_from_station=ctx.station_id)
    session.add(user)
    session.flush()
    audit.record(session, ctx, "user_added", "user", user.id, {"username": name, "role": role})
    # set_pin and set_badge check the secret, hash it and commit: all of it is one transaction,
    # so a refused PIN or badge leaves no user behind.
    try:
        if badge is not None:
            signin.set_badge(cast(UnitOfWork, _NoCommit(uow)), user.id, badge, ctx=ctx)
        add_event(uow, ctx, "user_added", user.id, [], [user])
        signin.set_pin(uow, user.id, pin, ctx=ctx)
    except BaseException:
        uow.rollback()
        raise
    return user.id


def reset_pin(uow: UnitOfWork, ctx: StationContext, user_id: int, pin: str) -> None:
    """A new PIN; it also lifts a lock (how a locked-out clerk gets back in before 30 minutes)."""
    require(ctx.actor, MANAGE_USERS)
    _user(uow.session, user_id)
    signin.set_pin(uow, user_id, pin, ctx=ctx)


def set_badge(uow: UnitOfWork, ctx: StationContext, user_id: int, badge: str) -> None:
    require(ctx.actor, MANAGE_USERS)
    _user(uow.session, user_id)
    signin.set_badge(uow, user_id, badge, ctx=ctx)


def remove_badge(uow: UnitOfWork, ctx: StationContext, user_id: int) -> None:
    """Take a badge away (lost, or handed back): the code no longer signs anybody in."""
    require(ctx.actor, MANAGE_USERS)
    _user(uow.session, user_id)
    signin.set_badge(uow, user_id, None, ctx=ctx)


def disable_user(uow: UnitOfWork, ctx: StationContext, user_id: int) -> None:
    """The user can no longer sign in; what they recorded stays theirs."""
    require(ctx.actor, MANAGE_USERS)
    session = uow.session
    user = _user(session, user_id)
    if not user.active:
        raise StateConflict(f"{user.display_name} is disabled already.")
    _keep_an_admin(session, user, "disable")
    # Central stops the user everywhere only on the admin's own signature (migration 0012): a
    # station's word alone (an admin's id in its rows) could stop anyone.
    signer = approval_signing.own_signer(ctx.actor, ctx.station_id, "Disabling a user")
    user.active = False
    signed = approval_signing.signature(signer, approval_signing.disabling_message(
        user_id=user.id, admin_id=ctx.actor.user_id, station_id=ctx.station_id, at=ctx.now()))
    audit.record(session, ctx, "user_disabled", "user", user.id, {"signature": signed})
    # Central applies a disable from any station (db.push): someone stopped here must not go on
    # working at the next bench, and a pull must not bring the account back.
    add_event(uow, ctx, "user_disabled", user.id, [], [user])
    uow.commit()


def enable_user(uow: UnitOfWork, ctx: StationContext, user_id: int) -> None:
    require(ctx.actor, MANAGE_USERS)
    session = uow.session
    user = _user(session, user_id)
    if user.active:
        raise StateConflict(f"{user.display_name} is enabled already.")
    user.active = True
    _unconfirmed(user, ctx)
    audit.record(session, ctx, "user_enabled", "user", user.id, {})
    uow.commit()


def _unconfirmed(user: User, ctx: StationContext) -> None:
    """More authority given at a station (enabled again, made a supervisor or admin) is this
    station's word only: the user's approvals are refused — here by the four-eyes trigger, at
    central by the sync — until an admin confirms them at central (`central confirm-user`)."""
    if user.role in APPROVER_ROLES:
        user.created_from_station = ctx.station_id


def change_role(uow: UnitOfWork, ctx: StationContext, user_id: int, role: str) -> None:
    require(ctx.actor, MANAGE_USERS)
    _check_role(role)
    session = uow.session
    user = _user(session, user_id)
    if user.role == role:
        raise StateConflict(f"{user.display_name} is a {role} already.")
    if role != "admin":
        _keep_an_admin(session, user, f"make a {role}")
    before = user.role
    user.role = role
    _unconfirmed(user, ctx)
    audit.record(session, ctx, "role_changed", "user", user.id, {"from": before, "to": role})
    uow.commit()


def user_id_by_name(session: Session, username: str) -> int:
    """For the command line: the id of the user called ``username`` (any case)."""
    found = session.scalar(select(User.id).where(func.lower(User.username) == username.strip().lower()))
    if found is None:
        raise NotFound(f"No user {username.strip()!r} at this station: `returns-console users list` shows who is.")
    return found


# -- helpers ------------------------------------------------------------------------------------

def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"User #{user_id} is not known at this station.")
    return user


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"Unknown role {role!r}: choose one of {', '.join(ROLES)}.")


def _keep_an_admin(session: Session, user: User, what: str) -> None:
    if user.role != "admin" or not user.active:
        return
    others = session.scalar(select(func.count()).select_from(User)
                            .where(User.role == "admin", User.active, User.id != user.id))
    if not others:
        raise StateConflict(f"{user.display_name} is the last active admin here: nobody could manage users "
                            f"after that. Make someone else an admin first, then {what} {user.display_name}.")


class _NoCommit:
    """A unit of work whose ``commit`` only flushes: lets ``add_user`` run signin's committing
    steps inside its own transaction."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session

    def commit(self) -> None:
        self.session.flush()
