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
from console.errors import InvalidInput, NotFound
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


def reconfirm(uow: UnitOfWork, ctx: StationContext, secret: str, *, badge: bool) -> None:
    """Check that ``secret`` (a PIN, or a scanned badge code) is the signed-in person's, and commit
    the outcome with an audit event. A wrong PIN counts towards the lock like any sign-in; a
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

