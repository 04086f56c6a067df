"""Signing in at a station: a user name and PIN (or password), or a badge scan.

Every attempt leaves an audit event, successful or not. A wrong PIN, an unknown user name and a
disabled account all get the same answer, so nobody can find out at the bench which user names
exist. Ten wrong PINs in a row lock the account for thirty minutes; a lock is said as such,
with its end, because a clerk who is locked out must know to wait (or to ask an admin for a new
PIN, which unlocks the account).

Hashing is deliberately slow (Argon2id); callers run these functions on the database worker,
never on the GUI thread.
"""
from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from functools import cache
from typing import NoReturn, cast
from zoneinfo import ZoneInfo

from argon2 import Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import hash_secret
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console import approval_signing, audit
from console.codes import normalize
from console.context import Actor, StationContext
from console.errors import InvalidInput, NotFound, StateConflict
from console.passwords import password_hasher
from console.policy import Policy, load_policy
from console.rmas import add_event
from db.models import User
from db.types import utcnow
from db.uow import UnitOfWork

LOCK_AFTER_FAILURES = 10
LOCK_FOR = timedelta(minutes=30)
MIN_PIN_LENGTH = 4
MAX_SECRET_LENGTH = 128
MIN_BADGE_LENGTH = 8

WRONG_PIN = "User name or PIN is wrong: try again, or scan your badge"
UNKNOWN_BADGE = "This badge is not known here: scan it again, or sign in with your user name and PIN"

# Badge hashes use one fixed salt (see ``badge_hash``); changing it is a new scheme version and
# old hashes keep working through the per-prefix lookup in ``_user_by_badge``.
BADGE_SALT = b"returns-console:badge:v1"


class AccountLocked(StateConflict):
    """Too many wrong PINs in a row. ``locked_until`` is UTC: the UI shows it in the station's zone."""

    def __init__(self, message: str, locked_until: datetime) -> None:
        super().__init__(message)
        self.locked_until = locked_until


def badge_hash(code: str) -> str:
    """The stored form of a badge code: Argon2id with the fixed ``BADGE_SALT``.

    Why not a per-user random salt as for PINs: a badge scan says nothing about who is scanning,
    so a salted hash could only be found by verifying the scan against every user with a badge,
    one slow hash each (a second or more at a station with twenty badges). Why not a keyed
    SHA-256: the key would have to live beside the database on every station, where it protects
    nothing. A fixed salt makes the hash deterministic, so one slow hash per scan finds the user
    by equality, and two users can never be given the same badge; guessing a badge from a stolen
    database still costs one Argon2id hash per guess. What the fixed salt gives up — an attacker
    can test each guess against every user at once — matters little next to the code's own
    entropy: badge codes should be random, not derived from names like the demo's.
    """
    hasher = password_hasher()
    return _argon2(_badge_secret(code), BADGE_SALT, hasher.time_cost, hasher.memory_cost,
                   hasher.parallelism, hasher.hash_len)


def sign_in(uow: UnitOfWork, station_id: str, username: str, secret: str, now: datetime) -> Actor:
    """Check a user name and PIN (or password) and commit the outcome: the user's failure counter,
    the lock, and an audit event. Returns who is signed in; raises ``InvalidInput`` (wrong) or
    ``AccountLocked``."""
    _require_aware(now)
    session = uow.session
    name = username.strip()
    user = _user_by_name(session, name)
    hasher = password_hasher()
    if user is None or not user.active:
        _dummy_verify(secret)  # the same work as a real check: timing does not tell them apart
        details: dict[str, object] = {"method": "pin", "reason": "unknown_user" if user is None else "disabled"}
        if user is None:
            # Never what was typed: a PIN or a badge typed into the user-name field must not reach
            # the audit trail (or, with it, central). Its shape is enough to see a pattern.
            details["typed"] = {"characters": len(name), "kind": "digits" if name.isdigit() else "text"}
        _audit(session, station_id, now, None, "sign_in_failed", user.id if user else "unknown", details)
        uow.commit()
        raise InvalidInput(WRONG_PIN)
    _refuse_if_locked(uow, station_id, now, user, "pin")
    try:
        hasher.verify(user.password_hash, secret)
    except (VerificationError, InvalidHashError):
        _count_failure(uow, station_id, now, user)
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(secret)
    return _signed_in(uow, station_id, now, user, "pin", secret.encode("utf-8"))


def sign_in_badge(uow: UnitOfWork, station_id: str, badge_code: str, now: datetime) -> Actor:
    """Find the user whose badge this is and commit the outcome with an audit event.

    A failed scan cannot be pinned on a user, so it counts towards no lock; it is audited."""
    _require_aware(now)
    session = uow.session
    if not normalize(badge_code):
        raise InvalidInput("Nothing was scanned: scan your badge again.")
    paused_until = _badges_paused_until(session, station_id, now)
    if paused_until is not None:
        _audit(session, station_id, now, None, "sign_in_failed", "unknown",
               {"method": "badge", "reason": "badges_paused", "paused_until": paused_until.isoformat()})
        uow.commit()
        raise AccountLocked(f"Badge sign-in at this station is paused after {LOCK_AFTER_FAILURES} unknown badges in "
                            f"a row, until {paused_until:%Y-%m-%d %H:%M} UTC: sign in with your user name and PIN, "
                            "or ask an admin.", paused_until)
    user, current = _user_by_badge(session, badge_code)
    if user is None or not user.active:
        reason = "unknown_badge" if user is None else "disabled"
        _audit(session, station_id, now, None, "sign_in_failed", user.id if user else "unknown",
               {"method": "badge", "reason": reason})
        uow.commit()
        raise InvalidInput(UNKNOWN_BADGE)
    _refuse_if_locked(uow, station_id, now, user, "badge")
    if user.badge_hash != current:  # set under older parameters: store it the current way
        user.badge_hash = current
    return _signed_in(uow, station_id, now, user, "badge", _badge_secret(badge_code))


def sign_out(uow: UnitOfWork, ctx: StationContext, *, reason: str | None = None) -> None:
    """Record that the signed-in user left the station (``reason``: e.g. "idle") and commit."""
    details = {"reason": reason} if reason else {}
    audit.record(uow.session, ctx, "signed_out", "user", ctx.actor.user_id, details)
    uow.commit()


def set_pin(uow: UnitOfWork, user_id: int, pin: str, *, ctx: StationContext | None = None) -> None:
    """Give a user a new PIN (or password) and commit. A new PIN also lifts a lock: it is how an
    admin lets a locked-out clerk back in. With ``ctx`` (who does it, where) it is audited."""
    user = _get_user(uow.session, user_id)
    if not pin or not pin.strip() or len(pin) < MIN_PIN_LENGTH:
        raise InvalidInput(f"A PIN needs at least {MIN_PIN_LENGTH} digits or characters: choose a longer one.")
    if len(pin) > MAX_SECRET_LENGTH:
        raise InvalidInput(f"A PIN or password can have at most {MAX_SECRET_LENGTH} characters.")
    user.password_hash = password_hasher().hash(pin)
    user.failed_attempts = 0
    user.locked_until = None
    # The old PIN's signing key is sealed under the old PIN: it goes, and the next sign-in with
    # the new PIN enrols a new one.
    _retire_keys(uow, user, "pin", ctx)
    if ctx is not None:
        audit.record(uow.session, ctx, "pin_set", "user", user.id, {})
    uow.commit()


def set_badge(uow: UnitOfWork, user_id: int, badge_code: str | None, *, ctx: StationContext | None = None) -> None:
    """Give a user a badge, or take it away with ``None``, and commit; the code itself is never
    stored. With ``ctx`` (who does it, where) it is audited."""
    session = uow.session
    user = _get_user(session, user_id)
    _retire_keys(uow, user, "badge", ctx)
    if badge_code is None:
        user.badge_hash = None
        action = "badge_removed"
    else:
        if len(_badge_secret(badge_code)) < MIN_BADGE_LENGTH:
            raise InvalidInput(f"A badge code needs at least {MIN_BADGE_LENGTH} characters: "
                               "scan the badge again, or use another badge.")
        stored = badge_hash(badge_code)
        holder = session.scalars(select(User).where(User.badge_hash == stored, User.id != user.id)).first()
        if holder is not None:
            raise StateConflict(f"This badge already belongs to {holder.display_name}: take it from them "
                                "first, or use another badge.")
        user.badge_hash = stored
        action = "badge_set"
    if ctx is not None:
        audit.record(session, ctx, action, "user", user.id, {})
    uow.commit()


# -- helpers ------------------------------------------------------------------------------------

def _retire_keys(uow: UnitOfWork, user: User, method: str, ctx: StationContext | None) -> None:
    """Retire the user's signing keys for ``method`` and tell central, in this transaction."""
    now = ctx.now() if ctx is not None else utcnow()
    retired = approval_signing.retire(uow.session, user.id, None, method, now)
    for station_id in sorted({key.station_id for key in retired}):  # (keys sealed here: this station's)
        here = (ctx if ctx is not None and ctx.station_id == station_id
                else StationContext(station_id, _UTC, _audit_policy(), ctx.actor if ctx else _NOBODY,
                                    clock=lambda: now))
        keys = [key for key in retired if key.station_id == station_id]
        add_event(uow, here, "approver_key", keys[0].id, [], list(keys))

def _badges_paused_until(session: Session, station_id: str, now: datetime) -> datetime | None:
    """A failed badge scan names nobody, so it cannot lock an account; badges lock out like PINs
    all the same, per station: after ten unknown badges in a row (no badge sign-in between them,
    within the lock's half hour) badge sign-in here pauses until half an hour after the last."""
    from db.models import AuditEvent

    rows = session.execute(
        select(AuditEvent.action, AuditEvent.details, AuditEvent.occurred_at)
        .where(AuditEvent.station_id == station_id, AuditEvent.action.in_(("sign_in_failed", "signed_in")),
               AuditEvent.occurred_at > now - LOCK_FOR)
        .order_by(AuditEvent.seq.desc()).limit(4 * LOCK_AFTER_FAILURES)).all()
    unknown: list[datetime] = []
    for action, details, occurred_at in rows:
        method = details.get("method") if isinstance(details, dict) else None
        if method != "badge":
            continue
        if action == "signed_in":
            break
        if details.get("reason") == "unknown_badge":
            unknown.append(occurred_at)
            if len(unknown) == LOCK_AFTER_FAILURES:
                return unknown[0] + LOCK_FOR
    return None


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("naive datetime refused: pass an aware `now`")


def _get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"User #{user_id} is not known at this station.")
    return user


def _user_by_name(session: Session, name: str) -> User | None:
    """Exact match first; otherwise a case-insensitive one, if it is unambiguous."""
    if not name or len(name) > 64:
        return None
    exact = session.scalars(select(User).where(User.username == name)).first()
    if exact is not None:
        return exact
    matches = session.scalars(select(User).where(func.lower(User.username) == name.lower()).limit(2)).all()
    return matches[0] if len(matches) == 1 else None


def _badge_secret(code: str) -> bytes:
    # What a scanner adds (spaces, a trailing Tab or CR, lower case from Caps Lock) is not part of it.
    return normalize(code).encode()


def _argon2(secret: bytes, salt: bytes, time_cost: int, memory_cost: int, parallelism: int,
            hash_len: int) -> str:
    return hash_secret(secret, salt, time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism,
                       hash_len=hash_len, type=Type.ID).decode("ascii")


def _user_by_badge(session: Session, code: str) -> tuple[User | None, str]:
    """The badge's holder, if any, and the badge's hash as it is stored now."""
    current = badge_hash(code)
    user = session.scalars(select(User).where(User.badge_hash == current)).first()
    if user is not None:
        return user, current
    # Badges stored under earlier parameters or salt: one hash per distinct kind, not per user.
    current_prefix = current.rsplit("$", 1)[0]
    samples: dict[str, str] = {}
    for stored in session.scalars(select(User.badge_hash).where(User.badge_hash.is_not(None))):
        prefix = (stored or "").rsplit("$", 1)[0]
        if stored and prefix != current_prefix:
            samples.setdefault(prefix, stored)
    for prefix, sample in sorted(samples.items()):
        try:
            params = extract_parameters(sample)
            salt_b64 = prefix.rsplit("$", 1)[1]
            salt = base64.b64decode(salt_b64 + "=" * (-len(salt_b64) % 4))
            if params.type is not Type.ID:
                continue
            candidate = _argon2(_badge_secret(code), salt, params.time_cost, params.memory_cost,
                                params.parallelism, params.hash_len)
        except (InvalidHashError, ValueError, IndexError, binascii.Error):
            continue  # not a hash this console wrote: it can never match
        user = session.scalars(select(User).where(User.badge_hash == candidate)).first()
        if user is not None:
            return user, current
    return None, current


@cache
def _dummy_hash() -> str:
    return password_hasher().hash("not a PIN anybody has")


def _dummy_verify(secret: str) -> None:
    try:
        password_hasher().verify(_dummy_hash(), secret)
    except (VerificationError, InvalidHashError):
        pass


def _refuse_if_locked(uow: UnitOfWork, station_id: str, now: datetime, user: User, method: str) -> None:
    if user.locked_until is not None and now >= user.locked_until:
        # The lock has run out: the next ten attempts start from zero.
        user.locked_until = None
        user.failed_attempts = 0
    if user.locked_until is None:
        return
    until = user.locked_until
    _audit(uow.session, station_id, now, None, "sign_in_failed", user.id,
           {"method": method, "reason": "locked", "locked_until": until.isoformat()})
    uow.commit()
    raise AccountLocked(locked_message(until), until)


def _count_failure(uow: UnitOfWork, station_id: str, now: datetime, user: User) -> NoReturn:
    """Count a wrong PIN, lock at the tenth in a row, commit, and raise."""
    session = uow.session
    user.failed_attempts = (user.failed_attempts or 0) + 1
    _audit(session, station_id, now, None, "sign_in_failed", user.id,
           {"method": "pin", "reason": "wrong_pin", "failed_attempts": user.failed_attempts})
    if user.failed_attempts >= LOCK_AFTER_FAILURES:
        until = now + LOCK_FOR
        user.locked_until = until
        _audit(session, station_id, now, None, "user_locked", user.id,
               {"failed_attempts": user.failed_attempts, "locked_until": until.isoformat()})
        uow.commit()
        raise AccountLocked(locked_message(until), until)
    uow.commit()
    raise InvalidInput(WRONG_PIN)


def locked_message(until: datetime, zone: ZoneInfo | None = None) -> str:
    """What a locked-out person reads: the end of the lock in the station's time (UTC without a zone)."""
    local = until.astimezone(zone) if zone is not None else until
    when = f"{local:%H:%M}" if zone is not None else f"{local:%Y-%m-%d %H:%M} UTC"
    return (f"This account is locked after {LOCK_AFTER_FAILURES} wrong PINs in a row, until {when}: try again "
            "then, or ask an admin to set a new PIN.")


def _signed_in(uow: UnitOfWork, station_id: str, now: datetime, user: User, method: str, secret: bytes) -> Actor:
    user.failed_attempts = 0
    user.locked_until = None
    signer = None
    actor = Actor(user.id, user.username, user.display_name, user.role, identity_checked_at=now)
    if approval_signing.may_sign(user.role):
        # The secret just checked opens the approver's signing key here (or enrols one): what
        # makes their verdicts count at central, and only while they are signed in.
        signer, keys = approval_signing.unlock(uow.session, user, station_id, method, secret, now)
        actor = Actor(user.id, user.username, user.display_name, user.role, signer, identity_checked_at=now)
        if keys:
            ctx = StationContext(station_id, _UTC, _audit_policy(), actor, clock=lambda: now)
            audit.record(uow.session, ctx, "signing_key_enrolled", "user", user.id,
                         {"key": str(signer.key_id), "method": method, "fingerprint": signer.fingerprint})
            add_event(uow, ctx, "approver_key", signer.key_id, [], list(keys))
    _audit(uow.session, station_id, now, actor, "signed_in", user.id, {"method": method})
    uow.commit()
    return actor


# Before a sign-in succeeds nobody is signed in: audit events then carry no user (the column is
# nullable for this). Actor's type says int, so the None is cast; this actor never leaves here.
_NOBODY = Actor(cast(int, None), "", "(nobody signed in)", "clerk")
_UTC = ZoneInfo("UTC")


@cache
def _audit_policy() -> Policy:
    return load_policy()


def _audit(session: Session, station_id: str, now: datetime, actor: Actor | None, action: str,
           entity_id: object, details: dict[str, object]) -> None:
    # audit.record needs a StationContext but reads only its station, actor and clock; the
    # policy and zone are placeholders, never consulted on this path.
    ctx = StationContext(station_id, _UTC, _audit_policy(), actor or _NOBODY, clock=lambda: now)
    audit.record(session, ctx, action, "user", entity_id, dict(details))
