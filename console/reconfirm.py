"""Asking again who is at the bench before money goes out.

The idle lock already signs a bench out after ``idle_lock_minutes`` without input; what it cannot
see is a colleague stepping in at a bench that was never idle. So a decision that pays out at
once (a refund or store credit that does not wait for a supervisor) asks for the signed-in
person's badge or PIN again when their last check is older than the same span.

Why this and not "before every refund": a clerk doing 300 returns a day decides a refund every
minute or two; a prompt each time would be answered without thought, which guards nothing. At
most one badge scan per idle span (six an hour, a second each) costs little and still means no
money leaves on a check older than the time a bench may stand unattended. Decisions that wait
for review pay nothing until a supervisor approves, and exchanges and denials pay nothing.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from console import audit
from console.context import StationContext
from console.errors import InvalidInput, NotAllowed, NotFound
from console.signin import badge_hash, sign_in, sign_in_badge
from db.models import User
from db.uow import UnitOfWork

PAYING_KINDS = frozenset({"full_refund", "partial_refund", "store_credit"})
NOT_YOUR_BADGE = "That is not your badge: scan your own badge, or type your PIN."


def must_reconfirm(kind: str, needs_review: bool, amount_minor: int, last_check: datetime, now: datetime,
                   within: timedelta) -> bool:
    """Whether this decision asks for the badge or PIN again before it is sent."""
    if kind not in PAYING_KINDS or needs_review or amount_minor <= 0:
        return False
    return now - last_check >= within


class IdentityCheckNeeded(NotAllowed):
    """A decision that pays at once, asked for with an identity check older than the bench's
    idle span: the service refuses it, whichever desk or command asked."""


def check_identity_fresh(ctx: StationContext, kind: str, needs_review: bool, amount_minor: int) -> None:
    """Refuse (``IdentityCheckNeeded``) a payout whose signed-in actor last proved who they are
    longer ago than ``ctx.reconfirm_within``. An actor no one signed in as (the station's
    configured user of the headless commands) and a context without a bench have nothing to
    go stale."""
    checked, within = ctx.actor.identity_checked_at, ctx.reconfirm_within
    if checked is None or within is None:
        return
    if must_reconfirm(kind, needs_review, amount_minor, checked, ctx.now(), within):
        raise IdentityCheckNeeded(f"{ctx.actor.display_name}, confirm it is you before money goes out: scan "
                                  "your badge or type your PIN, then decide again.")


def reconfirm(uow: UnitOfWork, ctx: StationContext, secret: str, *, badge: bool) -> datetime:
    """Check that ``secret`` (a PIN, or a scanned badge code) is the signed-in person's, and commit
    the outcome with an audit event; the time of the check, which the caller's actor now carries
    (``Actor.identity_checked_at``). A wrong PIN counts towards the lock like any sign-in; a
    wrong badge does not (it cannot be pinned on anyone). Raises ``InvalidInput`` or
    ``AccountLocked``."""
    actor = ctx.actor
    now = ctx.now()
    if not badge:
        sign_in(uow, ctx.station_id, actor.username, secret, now)  # audited, counted, committed
    else:
        user = uow.session.get(User, actor.user_id)
        if user is None or not user.active:
            raise NotFound(f"{actor.display_name} is no longer an active user here: sign out [Ctrl+L].")
        if not secret.strip() or user.badge_hash is None or user.badge_hash != badge_hash(secret):
            audit.record(uow.session, ctx, "identity_check_failed", "user", actor.user_id, {"method": "badge"})
            uow.commit()
            raise InvalidInput(NOT_YOUR_BADGE)
        # Their own badge: checked as a badge sign-in is (a lock still holds; the count of wrong
        # PINs starts again), only once it is known to be theirs, so no one else's sign-in is logged.
        sign_in_badge(uow, ctx.station_id, secret, now)
    audit.record(uow.session, ctx, "identity_confirmed", "user", actor.user_id,
                 {"method": "badge" if badge else "pin", "before": "refund"})
    uow.commit()
    return now

