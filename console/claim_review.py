"""A supervisor's verdict on a delivery claim waiting in the review queue.

Claims reach the queue from every station (and from central); a supervisor approves the claimed
amount, approves less, or rejects, always with a note. Four eyes as for returns: whoever made the
claim can never settle it — the service says so, and a trigger (migration 0008) refuses it
even written straight through a session. Two supervisors at once: a checked conditional update
lets the first win; the verdict travels to central with its outbox event, signed with the
supervisor's own key (console.approval_signing): central takes a claim's verdict only so (migration
0012), as it takes a verdict on a return.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import update

from console import approval_signing, audit, permissions
from console.card_numbers import free_text
from console.context import StationContext
from console.errors import InvalidInput, NotFound, StateConflict
from console.money import Money
from console.permissions import REVIEW
from console.review import unconfirmed_problem
from console.rmas import add_event
from db.models import Claim, User
from db.uow import UnitOfWork, rows_changed

WAITING = ("pending_review", "open")


@dataclass(frozen=True)
class ClaimVerdict:
    claim_id: uuid.UUID
    status: str  # approved | rejected
    amount: Money
    claimed: Money

    def to_dict(self) -> dict[str, object]:
        return {"claim_id": str(self.claim_id), "status": self.status, "amount_minor": self.amount.minor,
                "claimed_minor": self.claimed.minor, "currency": self.amount.currency}


def settle_claim(uow: UnitOfWork, ctx: StationContext, claim_id: uuid.UUID, note: str, *,
                 reject: bool = False, amount_minor: int | None = None) -> ClaimVerdict:
    """Approve (the claimed amount, or ``amount_minor`` — never more) or reject, and commit."""
    permissions.require(ctx.actor, REVIEW)
    session = uow.session
    claim = session.get(Claim, claim_id)
    if claim is None:
        raise NotFound(f"Claim {claim_id} is not known at this station: sync, then look again.")
    if not (note or "").strip():
        raise InvalidInput("Write a note for the claims agent and the audit trail: why it is approved or rejected.")
    note = free_text(note.strip()) or ""
    if claim.status not in WAITING:
        who = session.get(User, claim.settled_by_id) if claim.settled_by_id else None
        raise StateConflict(f"Already settled: {claim.status}" + (f" by {who.display_name}" if who else "")
                            + ". Refresh the queue.")
    if claim.created_by_id == ctx.actor.user_id:
        raise StateConflict(f"{ctx.actor.display_name} made this claim, so someone else must settle it "
                            "(four eyes): ask another supervisor.")
    unconfirmed = unconfirmed_problem(session, ctx)
    if unconfirmed:
        raise StateConflict(unconfirmed)
    # A verdict pays money as an approval does: central takes it only signed (migration 0012).
    signer = approval_signing.own_signer(ctx.actor, ctx.station_id, "A claim's verdict")
    claimed = claim.amount_minor
    if reject:
        amount = 0
    elif amount_minor is None:
        amount = claimed
    elif not 0 <= amount_minor <= claimed:
        raise InvalidInput(f"Approve at most the claimed {Money(claimed, claim.currency)}, and not less than 0.")
    else:
        amount = amount_minor
    status = "rejected" if reject else "approved"
    now = ctx.now()
    signed = approval_signing.signature(signer, approval_signing.claim_verdict_message(
        claim_id=claim.id, supervisor_id=ctx.actor.user_id, station_id=ctx.station_id, status=status,
        amount_minor=amount, currency=claim.currency, settled_at=now, note=note))
    won = rows_changed(
        session, update(Claim).where(Claim.id == claim.id, Claim.status.in_(WAITING))
        .values(status=status, outcome="deny" if reject else "refund", amount_minor=amount,
                settled_by_id=ctx.actor.user_id, settled_at=now, review_note=note, signature=signed)
        .execution_options(synchronize_session="fetch"))
    if won != 1:  # another supervisor's verdict came first
        session.rollback()
        raise StateConflict("Already settled by another supervisor meanwhile. Refresh the queue.")
    session.refresh(claim)
    audit.record(session, ctx, "claim_settled", "claim", claim.id,
                 {"status": status, "amount_minor": amount, "claimed_minor": claimed, "currency": claim.currency,
                  "note": note.strip()})
    add_event(uow, ctx, "claim_settled", claim.id, [], [claim])
    uow.commit()
    return ClaimVerdict(claim.id, status, Money(amount, claim.currency), Money(claimed, claim.currency))
