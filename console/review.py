"""Supervisor review: the queue of cases waiting, a case's evidence, and approve / change / reject.

Four eyes holds for every role: nobody who decided a case or received any of its parcels settles
it. The service says so first, with a message a person can act on; the database refuses it again
(migration 0005's trigger on approvals), and central checks it a third time when it applies the
event (db.push). A case is settled with a conditional update (``… WHERE status = 'pending_review'``),
so of two supervisors pressing Approve at once exactly one wins and the other is told who did.

What a verdict does:
- approved / partial: the decision becomes ``approved`` (a changed amount is itemized per unit on
  its decision lines; a full refund cut below what was paid becomes a partial refund), its units
  are accepted, and the RMA closes once no unit is left undecided (else it opens again for them).
- rejected: the decision becomes ``rejected`` and its lines stay active, so the units are settled
  as denied (no second refund can be asked for them); the units are marked rejected and stay in
  quarantine, where their labels sent them while the case waited, until they go back to the
  customer. The RMA closes the same way. Nothing prints for a rejection.

The verdict flows back: central applies the approval event; the station that received the parcel
pulls it and queues the refund receipt or exchange slip and the units' new disposition labels
(``print_settled_reviews``), exactly once per decision, marked by an audit event written in the
same transaction as the print jobs.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from console import approval_signing, audit, permissions
from console.card_numbers import free_text
from console.context import Actor, StationContext
from console.errors import DomainError, InvalidInput, NotAllowed, NotFound, StateConflict
from console.inspection import latest_inspections
from console.money import MINOR_UNITS, Money
from console.permissions import REVIEW, VIEW_PII
from console.print_jobs import Queued
from console.refunds import KINDS_THAT_PAY
from console.rmas import add_event
from console.views import mask_email, mask_phone
from db.models import (
    AuditEvent,
    Approval,
    ApproverKey,
    Claim,
    Customer,
    Decision,
    DecisionLine,
    Deduction,
    ItemScan,
    Order,
    ParcelReceipt,
    ReceiptRma,
    ReturnAuthorization,
    ReturnItem,
    RiskAssessment,
    SyncConflict,
    SyncCursor,
    User,
)
from db.uow import UnitOfWork, rows_changed
from printing.settings import PrinterSettings

log = logging.getLogger(__name__)

QUEUE_KINDS = ("decision", "conflict", "claim")
SORTS = ("oldest", "largest")
CLAIM_STATUSES_WAITING = ("pending_review", "open")
MAX_NOTE_CHARS = 2000
# The audit action that marks a settled review as printed at the station that received it.
PRINTED_ACTION = "review_printed"
# ... and the one that marks those printouts void: central refused the verdict they print.
VOIDED_ACTION = "review_printouts_voided"


# -- the queue ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QueueFilters:
    station: str | None = None      # the station that decided (or recorded) the case
    kind: str | None = None         # decision | conflict | claim
    min_amount_minor: int | None = None
    # The same in whole units of each case's own currency (what a person types on the page).
    min_amount_major: int | None = None
    text: str = ""                  # RMA, order, customer, clerk, station, reason
    sort: str = "oldest"            # oldest: oldest day first, largest amount first within a day


@dataclass(frozen=True)
class QueueEntry:
    kind: str
    id: uuid.UUID                   # the decision's id (decision, conflict) or the claim's
    rma_number: str
    order_number: str
    customer_name: str
    station_id: str
    amount: Money
    waiting_since: datetime
    decided_by: str
    score: int | None
    reasons: tuple[str, ...]
    actionable: bool                # approve / reject possible (a pending decision, a claim)

    @property
    def summary(self) -> str:
        return "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": str(self.id), "rma": self.rma_number, "order": self.order_number,
                "customer": self.customer_name, "station": self.station_id, "amount_minor": self.amount.minor,
                "currency": self.amount.currency, "waiting_since": self.waiting_since.isoformat(),
                "decided_by": self.decided_by, "score": self.score, "reasons": list(self.reasons),
                "actionable": self.actionable}


def _check_filters(filters: QueueFilters) -> None:
    if filters.kind is not None and filters.kind not in QUEUE_KINDS:
        raise InvalidInput(f"'{filters.kind}' is not a kind of case; choose one of {', '.join(QUEUE_KINDS)}")
    if filters.sort not in SORTS:
        raise InvalidInput(f"'{filters.sort}' is not a sort order; choose one of {', '.join(SORTS)}")
    if filters.min_amount_minor is not None and filters.min_amount_minor < 0:
        raise InvalidInput("The minimum amount cannot be negative.")


def _scores(session: Session, decisions: list[Decision]) -> dict[uuid.UUID, int]:
    """Each decision's risk score: the RMA's latest assessment made no later than the decision
    (deciding writes both with the same time)."""
    rma_ids = {d.rma_id for d in decisions if d.rma_id is not None}
    if not rma_ids:
        return {}
    by_rma: dict[int, list[RiskAssessment]] = {}
    for risk in session.scalars(select(RiskAssessment).where(RiskAssessment.rma_id.in_(rma_ids))
                                .order_by(RiskAssessment.assessed_at)):
        by_rma.setdefault(risk.rma_id, []).append(risk)
    scores: dict[uuid.UUID, int] = {}
    for d in decisions:
        risks = by_rma.get(d.rma_id or -1, [])
        before = [r for r in risks if r.assessed_at <= d.decided_at]
        chosen = (before or risks)[-1] if risks else None
        if chosen is not None:
            scores[d.id] = chosen.score
    return scores


def review_queue(uow: UnitOfWork, ctx: StationContext, filters: QueueFilters | None = None) -> list[QueueEntry]:
    """Every case waiting for a supervisor at any station (a station holds central's replica)."""
    permissions.require(ctx.actor, REVIEW)
    filters = filters or QueueFilters()
    _check_filters(filters)
    session = uow.session
    open_conflicts: dict[uuid.UUID, list[SyncConflict]] = {}
    for conflict in session.scalars(select(SyncConflict).where(SyncConflict.resolved_at.is_(None))
                                    .order_by(SyncConflict.detected_at)):
        open_conflicts.setdefault(conflict.decision_id, []).append(conflict)
    decisions = list(session.scalars(select(Decision).where(
        (Decision.status.in_(("pending_review", "conflict"))) | Decision.id.in_(list(open_conflicts)))))
    scores = _scores(session, decisions)
    rmas = {r.id: r for r in session.scalars(select(ReturnAuthorization).where(
        ReturnAuthorization.id.in_({d.rma_id for d in decisions if d.rma_id is not None})))}
    orders = {o.id: o for o in session.scalars(select(Order).where(
        Order.id.in_({d.order_id for d in decisions})))}
    entries: list[QueueEntry] = []
    for d in decisions:
        conflicts = open_conflicts.get(d.id, [])
        pending = d.status == "pending_review"
        kind = "decision" if pending else "conflict"
        reasons = [str(r) for r in (d.review_reasons or [])]
        reasons += [c.reason for c in conflicts]
        if d.status == "conflict" and not conflicts:
            reasons.append("lost a race for its units at central: another decision holds them")
        if not pending and d.status != "conflict" and not conflicts:
            continue
        rma = rmas.get(d.rma_id) if d.rma_id is not None else None
        order = orders.get(d.order_id)
        waiting = min([d.decided_at, *(c.detected_at for c in conflicts)]) if not pending else d.decided_at
        entries.append(QueueEntry(
            kind, d.id, rma.number if rma else "—", order.number if order else "—",
            order.customer.name if order else "—", d.station_id, Money(d.amount_minor, d.currency), waiting,
            d.decided_by.display_name if d.decided_by else f"user {d.decided_by_id}", scores.get(d.id),
            tuple(reasons), pending))
    for claim in session.scalars(select(Claim).where(Claim.status.in_(CLAIM_STATUSES_WAITING))):
        order = session.get(Order, claim.order_id)
        creator = session.get(User, claim.created_by_id)
        entries.append(QueueEntry(
            "claim", claim.id, "—", order.number if order else "—", order.customer.name if order else "—",
            str((claim.evidence or {}).get("station_id", "—")), Money(claim.amount_minor, claim.currency),
            claim.created_at, creator.display_name if creator else f"user {claim.created_by_id}", None,
            (f"{claim.kind.replace('_', ' ')} claim, {claim.status.replace('_', ' ')}",),
            claim.created_by_id != ctx.actor.user_id))  # settled by console.claim_review
    return _filtered_sorted(ctx, entries, filters)


def _filtered_sorted(ctx: StationContext, entries: list[QueueEntry], filters: QueueFilters) -> list[QueueEntry]:
    text = filters.text.strip().casefold()
    kept = [e for e in entries
            if (filters.kind is None or e.kind == filters.kind)
            and (not filters.station or e.station_id.casefold() == filters.station.strip().casefold())
            and (filters.min_amount_minor is None or e.amount.minor >= filters.min_amount_minor)
            and (filters.min_amount_major is None
                 or e.amount.minor >= filters.min_amount_major * 10 ** MINOR_UNITS[e.amount.currency])
            and (not text or text in " ".join((e.rma_number, e.order_number, e.customer_name, e.station_id,
                                               e.decided_by, e.kind, *e.reasons)).casefold())]
    if filters.sort == "largest":
        kept.sort(key=lambda e: (-e.amount.minor, e.waiting_since))
    else:
        # "Oldest and largest first": by the day it started waiting (the station's day), the
        # largest amount first within a day — exact times alone would never let amount count.
        kept.sort(key=lambda e: (ctx.local(e.waiting_since).date(), -e.amount.minor, e.waiting_since))
    return kept


def parse_amount(text: str, currency: str) -> int:
    """A typed amount ("1,234.5", "USD 80") as minor units of ``currency``; never through a float."""
    cleaned = text.strip().upper().removeprefix(currency).replace(",", "").replace(" ", "")
    exp = MINOR_UNITS[currency]
    whole, dot, frac = cleaned.partition(".")
    if not whole.isdigit() and not (whole == "" and frac.isdigit()) or (dot and not frac.isdigit()) \
            or len(frac) > exp:
        example = "80" if not exp else "80." + "0" * exp
        raise InvalidInput(f"'{text.strip()}' is not an amount in {currency}: type it like {example}.")
    return int(whole or 0) * 10 ** exp + (int(frac.ljust(exp, "0")) if exp else 0)


# -- a case ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignalView:
    code: str
    weight: int
    message: str
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScanView:
    code: str
    result: str
    message: str | None
    scanned_at: datetime
    undone: bool

    @property
    def flagged(self) -> bool:
        return self.result != "matched"


@dataclass(frozen=True)
class ParcelView:
    receipt_id: uuid.UUID
    station_id: str
    received_by: str
    received_at: datetime
    weight_g: int | None
    expected_weight_g: int | None
    tolerance_g: int
    note: str | None
    photos: tuple[str, ...]
    scans: tuple[ScanView, ...]

    @property
    def weight_off_by_g(self) -> int | None:
        if self.weight_g is None or not self.expected_weight_g:
            return None
        return self.weight_g - self.expected_weight_g

    @property
    def weight_mismatch(self) -> bool:
        off = self.weight_off_by_g
        return off is not None and abs(off) > self.tolerance_g


@dataclass(frozen=True)
class UnitView:
    return_item_id: int
    sku: str
    title: str
    reason: str
    reception_status: str
    acceptance_status: str
    paid: Money
    refund: Money
    grade_at_decision: str | None
    grade: str | None               # the latest inspection not taken back
    checklist: dict[str, bool]
    notes: str | None
    photos: tuple[str, ...]
    serials_shipped: tuple[str, ...]
    received_serial: str | None
    deductions: tuple[tuple[str, Money], ...]


@dataclass(frozen=True)
class OtherReturn:
    rma_number: str
    order_number: str
    customer_name: str
    status: str
    created_at: datetime
    same_address_only: bool        # another customer's return to the same delivery address


@dataclass(frozen=True)
class CustomerView:
    name: str
    email: str
    phone: str | None
    contact_masked: bool
    loyalty_tier: str
    address: tuple[str, ...]
    orders_count: int
    returns_count: int
    claims_count: int
    other_returns: tuple[OtherReturn, ...]


@dataclass(frozen=True)
class ApprovalView:
    supervisor: str
    verdict: str
    amount: Money | None
    note: str
    decided_at: datetime
    refused_reason: str | None


@dataclass(frozen=True)
class CaseView:
    decision_id: uuid.UUID
    kind: str
    status: str
    amount: Money
    store_credit_bonus: Money
    shipping_refund: Money
    rma_number: str
    rma_status: str
    order_number: str
    station_id: str
    decided_by_id: int
    decided_by: str
    decided_at: datetime
    policy_version: str
    clerk_note: str | None
    review_reasons: tuple[str, ...]
    risk_score: int | None
    rules_version: str | None
    signals: tuple[SignalView, ...]
    units: tuple[UnitView, ...]
    parcels: tuple[ParcelView, ...]
    received_by_ids: tuple[int, ...]
    customer: CustomerView
    conflicts: tuple[str, ...]
    approvals: tuple[ApprovalView, ...]
    # Why the signed-in user may not settle this case (None: they may).
    why_not: str | None
    # Evidence this station does not hold (made at another station and not in central's feed).
    missing_evidence: tuple[str, ...]
    # Why the signed-in user's verdict would not count at central yet, though they may give it
    # (their signing key waits for central's confirmation): said, not blocking.
    signing_note: str | None = None

    @property
    def received_by(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.received_by for p in self.parcels))

    @property
    def may_settle(self) -> bool:
        return self.why_not is None


def _decision(session: Session, decision_id: uuid.UUID) -> Decision:
    decision = session.get(Decision, decision_id)
    if decision is None:
        raise NotFound(f"Decision {decision_id} is not known at this station: sync, then look again.")
    return decision


def _receipts(session: Session, decision: Decision) -> list[ParcelReceipt]:
    """Every parcel of the case: those its units came in, and those booked against its RMA."""
    item_receipts = select(ReturnItem.receipt_id).join(
        DecisionLine, DecisionLine.return_item_id == ReturnItem.id).where(DecisionLine.decision_id == decision.id)
    query = select(ParcelReceipt).where(ParcelReceipt.id.in_(item_receipts))
    if decision.rma_id is not None:
        query = select(ParcelReceipt).where(ParcelReceipt.id.in_(item_receipts) | ParcelReceipt.id.in_(
            select(ReceiptRma.receipt_id).where(ReceiptRma.rma_id == decision.rma_id)))
    return list(session.scalars(query.order_by(ParcelReceipt.received_at)))


def unconfirmed_problem(session: Session, ctx: StationContext) -> str | None:
    """Why the signed-in user's verdicts cannot count yet: added, enabled or promoted at a station
    and not yet confirmed at central (console.users_admin); None when they can."""
    actor = ctx.actor
    me = session.get(User, actor.user_id)
    if me is None or not me.created_from_station:
        return None
    return (f"{actor.display_name} was added or given this role at station {me.created_from_station}: an admin "
            f"must confirm them at central (`returns-console central confirm-user {actor.username}`) before "
            "their verdicts count.")


def signing_note(session: Session, ctx: StationContext) -> str | None:
    """What the station knows of central's view of the signed-in approver's key: waiting for an
    admin's confirmation, or revoked. Only once central's feed has brought keys at all (a demo's
    SQLite central confirms nothing and needs nothing); None when nothing stands in the way."""
    signer = ctx.actor.signer
    if signer is None:
        return None
    key = session.get(ApproverKey, signer.key_id)
    if key is None or key.confirmed_at is not None and key.revoked_at is None:
        return None
    if session.get(SyncCursor, ApproverKey.__tablename__) is None:
        return None
    name = ctx.actor.display_name
    if key.revoked_at is not None:
        return (f"{name}'s signing key at this station was revoked at central: verdicts given with it are "
                "refused there. Ask an admin for a new PIN, then sign in again.")
    return (f"{name}'s signing key at this station (fingerprint {signer.fingerprint}) waits for central's "
            "confirmation: a verdict given now is refused at central. Read the fingerprint to a central admin, "
            f"who confirms it (`returns-console central keys confirm {ctx.actor.username} --fingerprint …`); "
            "then sync.")


def four_eyes_problem(session: Session, ctx: StationContext, decision: Decision) -> str | None:
    """Why the signed-in user may not settle ``decision`` (whatever their role), or None."""
    actor = ctx.actor
    unconfirmed = unconfirmed_problem(session, ctx)
    if unconfirmed:
        return unconfirmed
    if decision.decided_by_id == actor.user_id:
        return (f"{actor.display_name} made this decision, so someone else must approve or reject it "
                "(four eyes): ask another supervisor.")
    if any(r.user_id == actor.user_id for r in _receipts(session, decision)):
        return (f"{actor.display_name} received a parcel of this case, so someone else must approve or "
                "reject it (four eyes): ask another supervisor.")
    return None


def _state_problem(session: Session, ctx: StationContext, decision: Decision) -> str | None:
    if decision.status == "pending_review":
        return None
    if decision.status == "conflict":
        return ("This decision lost a race at central: another decision already holds its units. It cannot be "
                "approved; compare the two and settle it at central.")
    settled = session.scalar(select(Approval).where(Approval.decision_id == decision.id,
                                                    Approval.refused_reason.is_(None))
                             .order_by(Approval.decided_at.desc()).limit(1))
    if settled is not None:
        who = session.get(User, settled.supervisor_id)
        name = who.display_name if who else f"user {settled.supervisor_id}"
        return (f"Already settled: {settled.verdict} by {name} at {ctx.local_time_text(settled.decided_at)}. "
                "Refresh the queue.")
    return f"This decision is {decision.status.replace('_', ' ')}, not waiting for review."


def _signals(raw: Any) -> tuple[SignalView, ...]:
    """Signals as stored; read defensively: rule sets grow fields (and older rows lack them)."""
    out: list[SignalView] = []
    for s in raw or []:
        if not isinstance(s, dict):
            continue
        try:
            weight = int(s.get("weight") or 0)
        except (TypeError, ValueError):
            weight = 0
        inputs = s.get("inputs")
        out.append(SignalView(str(s.get("code") or "?"), weight, str(s.get("message") or s.get("code") or ""),
                              dict(inputs) if isinstance(inputs, dict) else {}))
    return tuple(sorted(out, key=lambda v: -v.weight))


def review_case(uow: UnitOfWork, ctx: StationContext, decision_id: uuid.UUID, *,
                reveal: str | None = None) -> CaseView:
    """The evidence of one case side by side, the customer's e-mail and phone masked. With
    ``reveal`` (why the case needs them) they are shown to those who may see them, and the
    showing is audited (``pii_viewed``, committed here); without, nothing is written."""
    permissions.require(ctx.actor, REVIEW)
    session = uow.session
    d = _decision(session, decision_id)
    rma = session.get(ReturnAuthorization, d.rma_id) if d.rma_id is not None else None
    order = session.get(Order, d.order_id)
    if order is None:
        raise NotFound(f"The order of decision {decision_id} is not at this station: sync, then look again.")
    customer = session.get(Customer, order.customer_id)
    assert customer is not None
    missing: list[str] = []

    risks = list(session.scalars(select(RiskAssessment).where(RiskAssessment.rma_id == d.rma_id)
                                 .order_by(RiskAssessment.assessed_at))) if d.rma_id is not None else []
    before = [r for r in risks if r.assessed_at <= d.decided_at]
    risk = (before or risks)[-1] if risks else None
    if risk is None:
        missing.append("risk signals")

    lines = [line for line in d.lines]
    items = {i.id: i for i in session.scalars(select(ReturnItem).where(
        ReturnItem.id.in_([line.return_item_id for line in lines])))}
    inspections = latest_inspections(session, list(items)) if items else {}
    if items and not inspections:
        missing.append("grades, checklists and photos")
    deductions: dict[int | None, list[Deduction]] = {}
    for ded in d.deductions:
        deductions.setdefault(ded.return_item_id, []).append(ded)
    units = []
    for line in sorted(lines, key=lambda ln: ln.return_item_id):
        item = items.get(line.return_item_id)
        if item is None:
            continue
        insp = inspections.get(item.id)
        units.append(UnitView(
            item.id, item.order_line.sku, item.order_line.title, ctx.policy.reasons.get(item.reason_code, item.reason_code),
            item.reception_status, item.acceptance_status, Money(line.paid_minor, d.currency),
            Money(line.refund_minor, d.currency), line.grade, insp.grade if insp else None,
            {str(k): bool(v) for k, v in (insp.checklist or {}).items()} if insp else {},
            insp.notes if insp else None, tuple(str(p) for p in (insp.photos or [])) if insp else (),
            tuple(str(s) for s in (item.order_line.serial_numbers or [])), item.received_serial,
            tuple((x.label, Money(x.amount_minor, d.currency)) for x in deductions.get(item.id, []))))

    parcels = []
    receipts = _receipts(session, d)
    users = {u.id: u for u in session.scalars(select(User).where(
        User.id.in_({r.user_id for r in receipts} | {d.decided_by_id})))}
    any_scans = False
    for r in receipts:
        scans = tuple(ScanView(s.code, s.result, s.message, s.scanned_at, s.undone_at is not None)
                      for s in session.scalars(select(ItemScan).where(ItemScan.receipt_id == r.id)
                                               .order_by(ItemScan.scanned_at)))
        any_scans = any_scans or bool(scans)
        who = users.get(r.user_id)
        parcels.append(ParcelView(r.id, r.station_id, who.display_name if who else f"user {r.user_id}", r.received_at,
                                  r.weight_g, r.expected_weight_g,
                                  ctx.policy.weight_tolerance_g(r.expected_weight_g or 0, r.scale_division_g),
                                  r.note, tuple(str(p) for p in (r.photos or [])), scans))
    if receipts and not any_scans:
        missing.append("item scans")

    if reveal is not None and not reveal.strip():
        raise InvalidInput("Say why this case needs the customer's contact details.")
    if reveal is not None:
        permissions.require(ctx.actor, VIEW_PII)
    allowed = reveal is not None
    cust = CustomerView(
        customer.name, customer.email if allowed else mask_email(customer.email),
        customer.phone if allowed else mask_phone(customer.phone), not allowed, customer.loyalty_tier,
        tuple((customer.address or "").splitlines()), customer.orders_count, customer.returns_count,
        int(session.scalar(select(func.count()).select_from(Claim).join(Order, Order.id == Claim.order_id)
                           .where(Order.customer_id == customer.id)) or 0),
        _other_returns(session, customer, rma))

    conflicts = tuple(c.reason for c in session.scalars(
        select(SyncConflict).where(SyncConflict.decision_id == d.id, SyncConflict.resolved_at.is_(None))
        .order_by(SyncConflict.detected_at)))
    approvals = []
    for a in session.scalars(select(Approval).where(Approval.decision_id == d.id).order_by(Approval.decided_at)):
        who = session.get(User, a.supervisor_id)
        approvals.append(ApprovalView(who.display_name if who else f"user {a.supervisor_id}", a.verdict,
                                      Money(a.amount_minor, d.currency) if a.amount_minor is not None else None,
                                      a.note, a.decided_at, a.refused_reason))
    why_not = _state_problem(session, ctx, d) or four_eyes_problem(session, ctx, d)
    decider = users.get(d.decided_by_id)
    view = CaseView(
        d.id, d.kind, d.status, Money(d.amount_minor, d.currency), Money(d.store_credit_bonus_minor, d.currency),
        Money(d.shipping_refund_minor, d.currency), rma.number if rma else "—", rma.status if rma else "—",
        order.number, d.station_id, d.decided_by_id, decider.display_name if decider else f"user {d.decided_by_id}",
        d.decided_at, d.policy_version, _clerk_note(d, units, parcels), tuple(str(r) for r in d.review_reasons or []),
        risk.score if risk else None, risk.rules_version if risk else None, _signals(risk.signals if risk else []),
        tuple(units), tuple(parcels), tuple(dict.fromkeys(r.user_id for r in receipts)), cust, conflicts,
        tuple(approvals), why_not, tuple(missing), signing_note(session, ctx))
    if allowed:
        audit.record(session, ctx, "pii_viewed", "customer", customer.id,
                     {"decision": str(d.id), "why": reveal})
        uow.commit()
    return view


def _clerk_note(d: Decision, units: list[UnitView], parcels: list[ParcelView]) -> str | None:
    parts = [d.note or ""] + [f"{u.sku}: {u.notes}" for u in units if u.notes] + \
            [f"parcel: {p.note}" for p in parcels if p.note]
    text = "\n".join(p for p in parts if p.strip())
    return text or None


def _other_returns(session: Session, customer: Customer, rma: ReturnAuthorization | None) -> tuple[OtherReturn, ...]:
    """The customer's other returns, and other customers' returns to the same delivery address."""
    same_address: list[int] = []
    address = " ".join((customer.address or "").split()).casefold()
    if address:
        for other_id, other_address in session.execute(
                select(Customer.id, Customer.address).where(Customer.id != customer.id, Customer.address.is_not(None))):
            if " ".join((other_address or "").split()).casefold() == address:
                same_address.append(other_id)
    rows = session.execute(
        select(ReturnAuthorization, Order.number, Customer.name, Customer.id)
        .join(Order, Order.id == ReturnAuthorization.order_id).join(Customer, Customer.id == Order.customer_id)
        .where(Customer.id.in_([customer.id, *same_address]))
        .order_by(ReturnAuthorization.created_at.desc()).limit(50))
    return tuple(OtherReturn(r.number, number, name, r.status, r.created_at, cid != customer.id)
                 for r, number, name, cid in rows if rma is None or r.id != rma.id)


# -- settling a case ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReviewResult:
    approval_id: uuid.UUID
    decision_id: uuid.UUID
    rma_number: str
    verdict: str
    status: str
    amount: Money
    was: Money
    rma_status: str
    already_existed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"approval_id": str(self.approval_id), "decision_id": str(self.decision_id), "rma": self.rma_number,
                "verdict": self.verdict, "status": self.status, "amount_minor": self.amount.minor,
                "was_minor": self.was.minor, "currency": self.amount.currency, "rma_status": self.rma_status,
                "already_existed": self.already_existed}


def approve(uow: UnitOfWork, ctx: StationContext, decision_id: uuid.UUID, note: str,
            amounts: dict[int, int] | None = None, *, approval_id: uuid.UUID | None = None) -> ReviewResult:
    """Approve the case as decided, or with ``amounts`` (return item id → refund, minor units) for
    the units whose refund the supervisor changes; verdict ``partial`` when any differs."""
    return _settle(uow, ctx, decision_id, note, amounts, reject=False, approval_id=approval_id)


def reject(uow: UnitOfWork, ctx: StationContext, decision_id: uuid.UUID, note: str, *,
           approval_id: uuid.UUID | None = None) -> ReviewResult:
    """Refuse the refund: the case closes as denied (see the module's description)."""
    return _settle(uow, ctx, decision_id, note, None, reject=True, approval_id=approval_id)


def _result(session: Session, approval: Approval, decision: Decision, was_minor: int,
            already: bool) -> ReviewResult:
    rma = session.get(ReturnAuthorization, decision.rma_id) if decision.rma_id is not None else None
    return ReviewResult(approval.id, decision.id, rma.number if rma else "", approval.verdict, decision.status,
                        Money(approval.amount_minor or 0, decision.currency), Money(was_minor, decision.currency),
                        rma.status if rma else "", already)


def _checked_amounts(decision: Decision, amounts: dict[int, int] | None) -> dict[int, int]:
    """The refund per active line after the supervisor's changes; refused if impossible."""
    lines = {line.return_item_id: line for line in decision.lines if line.active}
    result = {item_id: line.refund_minor for item_id, line in lines.items()}
    if not amounts:
        return result
    if decision.kind not in KINDS_THAT_PAY:
        raise InvalidInput(f"A {decision.kind.replace('_', ' ')} pays nothing back: approve or reject it as it is.")
    for item_id, refund in amounts.items():
        if item_id not in lines:
            raise InvalidInput(f"Return item {item_id} is not a unit of this decision: choose one of "
                               f"{', '.join(map(str, sorted(lines)))}.")
        if not isinstance(refund, int) or isinstance(refund, bool):
            raise InvalidInput(f"The refund for return item {item_id} must be a whole number of minor units.")
        paid = lines[item_id].paid_minor
        if refund < 0 or refund > paid:
            raise InvalidInput(f"The refund for return item {item_id} must be between "
                               f"{Money(0, decision.currency)} and what was paid for it, "
                               f"{Money(paid, decision.currency)}; {Money(max(refund, 0), decision.currency) if refund >= 0 else refund} is not.")
        result[item_id] = refund
    return result


def _settle(uow: UnitOfWork, ctx: StationContext, decision_id: uuid.UUID, note: str,
            amounts: dict[int, int] | None, *, reject: bool, approval_id: uuid.UUID | None) -> ReviewResult:
    permissions.require(ctx.actor, REVIEW)
    session = uow.session
    approval_id = approval_id or uuid.uuid4()
    existing = session.get(Approval, approval_id)
    if existing is not None and existing.decision_id != decision_id:
        raise InvalidInput(f"Approval {approval_id} belongs to another case: press again for this one.")
    if existing is not None:  # the same press retried (a crash, a double key press): no second verdict
        decision = _decision(session, existing.decision_id)
        return _result(session, existing, decision, decision.amount_minor, True)
    note = free_text((note or "").strip()) or ""
    if not note:
        raise InvalidInput("Write a note for the clerk and the audit trail: why it is "
                           + ("rejected." if reject else "approved (and why the amount changed, if it did)."))
    if len(note) > MAX_NOTE_CHARS:
        raise InvalidInput(f"The note is {len(note)} characters; keep it under {MAX_NOTE_CHARS}.")
    decision = _decision(session, decision_id)
    problem = _state_problem(session, ctx, decision)
    if problem:
        raise StateConflict(problem)
    problem = four_eyes_problem(session, ctx, decision)
    if problem:
        raise NotAllowed(problem)
    signer = ctx.actor.signer
    if signer is None or signer.user_id != ctx.actor.user_id or signer.station_id != ctx.station_id:
        # Central refuses a verdict its approver did not sign: say so now, not after the sync.
        raise NotAllowed(f"A verdict needs {ctx.actor.display_name}'s own signature, which only their PIN or badge "
                         "opens: sign in again with it [Ctrl+L], then settle the case.")
    if reject and amounts:
        raise InvalidInput("A rejection pays nothing: leave the amounts out.")
    refunds = _checked_amounts(decision, None if reject else amounts)
    lines = [line for line in decision.lines if line.active]
    was = decision.amount_minor
    changed = {i: r for i, r in refunds.items() if r != next(ln.refund_minor for ln in lines if ln.return_item_id == i)}
    now = ctx.now()
    if reject:
        verdict, status, kind, amount = "rejected", "rejected", decision.kind, decision.amount_minor
        bonus = decision.store_credit_bonus_minor
    else:
        verdict = "partial" if changed else "approved"
        status = "approved"
        items_before = sum(ln.refund_minor for ln in lines)
        items_after = sum(refunds.values())
        amount = items_after + decision.shipping_refund_minor
        kind = decision.kind
        if kind == "full_refund" and any(refunds[ln.return_item_id] < ln.paid_minor for ln in lines):
            kind = "partial_refund"
        # The store-credit bonus follows the units' refund in proportion (its rate is the policy's).
        bonus = (decision.store_credit_bonus_minor * items_after // items_before
                 if items_before and changed else decision.store_credit_bonus_minor)
    # The checked conditional update: of two supervisors settling at once, only one finds the case
    # still pending; the other's update changes nothing and is refused below.
    settled = rows_changed(
        session, update(Decision).where(Decision.id == decision.id, Decision.status == "pending_review")
        .values(status=status, kind=kind, amount_minor=amount, store_credit_bonus_minor=bonus)
        .execution_options(synchronize_session=False))
    if settled != 1:
        session.rollback()
        decision = _decision(session, decision_id)
        raise StateConflict(_state_problem(session, ctx, decision) or "Another supervisor settled this case just now.")
    session.refresh(decision)
    for line in lines:
        line.refund_minor = refunds[line.return_item_id]
    rma = session.get(ReturnAuthorization, decision.rma_id) if decision.rma_id is not None else None
    acceptance = "rejected" if reject else "accepted"
    for item in session.scalars(select(ReturnItem).where(ReturnItem.id.in_([ln.return_item_id for ln in lines]))):
        item.acceptance_status = acceptance
    # What central sets on the case when it accepts this verdict (stations never update a decision
    # there: migration 0009), and checks against what was paid.
    settles = {"status": status, "kind": kind, "amount_minor": amount, "store_credit_bonus_minor": bonus,
               "lines": {str(item_id): refund for item_id, refund in sorted(refunds.items())}}
    approval = Approval(id=approval_id, decision_id=decision.id, supervisor_id=ctx.actor.user_id, verdict=verdict,
                        amount_minor=0 if reject else amount, note=note, decided_at=now, settles=settles)
    # The supervisor's own proof of the verdict, which central checks (console.approval_signing).
    approval.signature = approval_signing.sign_approval(
        signer, approval_id=approval.id, decision_id=decision.id, supervisor_id=ctx.actor.user_id,
        station_id=ctx.station_id, verdict=verdict, amount_minor=approval.amount_minor, currency=decision.currency,
        decided_at=now, settles=settles, note=note)
    session.add(approval)
    session.flush()  # the database's own four-eyes check (trigger) runs here
    if rma is not None:
        _after_settling(session, ctx, rma, now)
    audit.record(session, ctx, "approval", "decision", decision.id,
                 {"verdict": verdict, "rma": rma.number if rma else None, "amount_minor": approval.amount_minor,
                  "was_minor": was, "currency": decision.currency, "note": note,
                  "changed": {str(i): r for i, r in changed.items()}})
    add_event(uow, ctx, "approval", decision.id, [rma] if rma else [], [decision, *lines, approval])
    uow.commit()
    return _result(session, approval, decision, was, False)


def _after_settling(session: Session, ctx: StationContext, rma: ReturnAuthorization, now: datetime) -> None:
    """The RMA waits while another case of it does; closes when every unit is decided; else opens again."""
    session.flush()
    waiting = session.scalar(select(func.count()).select_from(Decision).where(
        Decision.rma_id == rma.id, Decision.status == "pending_review"))
    decided = set(session.scalars(select(DecisionLine.return_item_id).join(
        ReturnItem, ReturnItem.id == DecisionLine.return_item_id).where(ReturnItem.rma_id == rma.id,
                                                                         DecisionLine.active)))
    open_units = [i for i in rma.items if i.id not in decided and i.reception_status != "lost_in_transit"]
    if waiting:
        rma.status = "pending_review"
    elif open_units:
        rma.status = "received" if any(i.reception_status == "received" for i in rma.items) else "authorized"
    else:
        rma.status = "closed"
        rma.closed_at = now
        rma.closed_by_id = ctx.actor.user_id


# -- what prints at the receiving station once a verdict arrives ----------------------------------------

def receiving_station(session: Session, decision: Decision) -> str:
    """The station whose bench holds the parcel: where its units were received (else where decided)."""
    station = session.scalar(select(ParcelReceipt.station_id).join(ReturnItem, ReturnItem.receipt_id == ParcelReceipt.id)
                             .join(DecisionLine, DecisionLine.return_item_id == ReturnItem.id)
                             .where(DecisionLine.decision_id == decision.id)
                             .order_by(ParcelReceipt.received_at.desc()).limit(1))
    return station or decision.station_id


def _printed_here(session: Session, station_id: str,
                  decision_id: uuid.UUID | None = None) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each decision's latest print mark at this station (or only ``decision_id``'s): printed, or
    its printouts voided."""
    query = select(AuditEvent.entity_id, AuditEvent.action, AuditEvent.details).where(
        AuditEvent.station_id == station_id, AuditEvent.action.in_((PRINTED_ACTION, VOIDED_ACTION)))
    if decision_id is not None:
        query = query.where(AuditEvent.entity_id == str(decision_id))
    rows = session.execute(query.order_by(AuditEvent.seq))
    return {entity: (action, details if isinstance(details, dict) else {}) for entity, action, details in rows}


def settled_reviews_to_print(session: Session, station_id: str) -> list[uuid.UUID]:
    """Decisions approved at review whose parcel this station received, not yet printed here
    (or printed for a verdict central refused, and approved again since)."""
    candidates = session.scalars(
        select(Decision).join(Approval, Approval.decision_id == Decision.id)
        .where(Decision.status == "approved", Approval.refused_reason.is_(None),
               Approval.verdict.in_(("approved", "partial")))
        .order_by(Approval.decided_at)).unique().all()
    marks = _printed_here(session, station_id)
    return [d.id for d in dict.fromkeys(candidates) if marks.get(str(d.id), ("",))[0] != PRINTED_ACTION
            and receiving_station(session, d) == station_id]


def _back_to_quarantine(uow: UnitOfWork, ctx: StationContext, decision: Decision) -> list[str]:
    """The units the void verdict's labels sent on (restock, outlet …) wait in quarantine again
    while the case waits: their LPNs."""
    from console.disposition import dispose
    from db.models import Disposition

    session = uow.session
    moved: list[str] = []
    for line in decision.lines:
        item = session.get(ReturnItem, line.return_item_id)
        last = session.scalar(select(Disposition).where(Disposition.return_item_id == line.return_item_id)
                              .order_by(Disposition.decided_at.desc()).limit(1))
        if not line.active or item is None or last is None or last.kind == "quarantine":
            continue
        try:
            moved.append(dispose(uow, ctx, item.id, "quarantine", after="void").lpn)
        except DomainError as exc:  # not one to move here (not received here): the void goes on
            log.warning("unit %s not sent back to quarantine: %s", item.id, exc.message)
    return moved


@dataclass(frozen=True)
class Voided:
    decision_id: uuid.UUID
    rma_number: str
    documents: tuple[str, ...]
    cancelled: int  # jobs that had not printed yet, and now never will
    reason: str
    back_to_quarantine: tuple[str, ...] = ()  # LPNs of units to bring back to the quarantine shelf


def void_refused_printouts(uow: UnitOfWork, ctx: StationContext) -> list[Voided]:
    """Central refused a verdict whose printouts this station already queued (the supervisor
    approved here, before central had a say): the jobs not yet printed are cancelled, and the
    printouts are marked void with central's reason, so the clerk takes back what did print.
    Once per refusal; a later verdict on the case prints again (``settled_reviews_to_print``)."""
    from db.models import PrintJob

    session = uow.session
    voided: list[Voided] = []
    for entity, (action, details) in _printed_here(session, ctx.station_id).items():
        if action != PRINTED_ACTION:
            continue
        try:
            decision = session.get(Decision, uuid.UUID(entity))
        except ValueError:
            continue
        if decision is None:
            continue
        printed_for = details.get("approval")
        if printed_for:
            # The verdict these printouts are of: void once central refused it, whatever stands
            # now (another station's verdict reached central first: that one prints next).
            try:
                refused = session.get(Approval, uuid.UUID(str(printed_for)))
            except ValueError:
                continue
            if refused is None or refused.refused_reason is None:
                continue
        else:  # printed before the mark named its verdict
            if decision.status != "pending_review":
                continue
            refused = session.scalar(select(Approval).where(Approval.decision_id == decision.id,
                                                            Approval.refused_reason.is_not(None))
                                     .order_by(Approval.decided_at.desc()).limit(1))
            if refused is None:
                continue
        supervisor = session.get(User, refused.supervisor_id)
        # In the name of the verdict's supervisor, as its printouts were (the sync worker is nobody).
        here = ctx if supervisor is None else replace(ctx, actor=Actor(
            supervisor.id, supervisor.username, supervisor.display_name, supervisor.role))
        cancelled = 0
        for job_id in details.get("jobs", []):
            try:
                job = session.get(PrintJob, uuid.UUID(str(job_id)))
            except ValueError:
                continue
            if job is not None and job.status in ("waiting", "failed"):
                job.status = "cancelled"
                job.last_error = f"void: {refused.refused_reason}"[:1000]
                cancelled += 1
        rma = session.get(ReturnAuthorization, decision.rma_id) if decision.rma_id is not None else None
        documents = tuple(str(d) for d in details.get("documents", []))
        back = _back_to_quarantine(uow, here, decision)
        audit.record(session, here, VOIDED_ACTION, "decision", decision.id,
                     {"documents": list(documents), "cancelled": cancelled, "reason": refused.refused_reason,
                      "approval": str(refused.id), "back_to_quarantine": back})
        uow.commit()
        voided.append(Voided(decision.id, rma.number if rma else "", documents, cancelled,
                             refused.refused_reason or "", tuple(back)))
    return voided


def print_settled_reviews(uow: UnitOfWork, ctx: StationContext, printers: PrinterSettings) -> list[Queued]:
    """Queue what the receiving station prints once a verdict has reached it: the units' new
    disposition labels (they waited in quarantine) and the refund receipt or exchange slip.

    One transaction per decision holds its print jobs, its dispositions and the audit event that
    marks it printed, so each decision prints exactly once, across restarts and repeated pulls.
    The jobs are requested in the name of the supervisor who gave the verdict."""
    session = uow.session
    queued: list[Queued] = []
    for decision_id in settled_reviews_to_print(session, ctx.station_id):
        # Asked again inside this decision's own transaction: the review page and the sync worker
        # may both be printing, and the other's commit may have come after the list was read.
        if _printed_here(session, ctx.station_id, decision_id).get(str(decision_id), ("",))[0] == PRINTED_ACTION:
            continue
        decision = _decision(session, decision_id)
        approval = session.scalar(select(Approval).where(
            Approval.decision_id == decision.id, Approval.refused_reason.is_(None),
            Approval.verdict.in_(("approved", "partial"))).order_by(Approval.decided_at.desc()).limit(1))
        assert approval is not None
        supervisor = session.get(User, approval.supervisor_id)
        who = (Actor(supervisor.id, supervisor.username, supervisor.display_name, supervisor.role)
               if supervisor is not None else ctx.actor)
        here = replace(ctx, actor=who)
        queued += _queue_printouts(uow, here, printers, decision)
        audit.record(session, here, PRINTED_ACTION, "decision", decision.id,
                     {"documents": [q.document for q in queued if q.decision_id == decision.id],
                      "jobs": [str(q.job_id) for q in queued if q.decision_id == decision.id],
                      "approval": str(approval.id)})
        uow.commit()
    return queued


def _queue_printouts(uow: UnitOfWork, ctx: StationContext, printers: PrinterSettings,
                     decision: Decision) -> list[Queued]:
    """The printouts of a verdict, through the bench's own path (console.print_jobs): each unit
    that moves on its new disposition and label, then the receipt or slip."""
    from console.disposition import suggested_disposition
    from console.inspection import latest_grades
    from console.print_jobs import closing_documents, put_away, submit
    from db.models import Disposition
    from printing.content import ReceiptDeduction, RefundReceipt

    session = uow.session
    if decision.rma_id is None or session.get(ReturnAuthorization, decision.rma_id) is None:
        return []
    docs: list[Any] = []
    for line in decision.lines:
        item = session.get(ReturnItem, line.return_item_id)
        if not line.active or item is None or item.reception_status != "received":
            continue
        if latest_grades(session, [item.id]).get(item.id) is None:
            continue  # graded at another station whose inspections this one does not hold
        kind = suggested_disposition(uow, item)
        last = session.scalar(select(Disposition).where(Disposition.return_item_id == item.id)
                              .order_by(Disposition.decided_at.desc()).limit(1))
        if last is not None and last.kind == kind:
            continue  # still where its label sends it (a unit flagged at the scan stays in quarantine)
        docs.append(put_away(uow, ctx, item, kind, after="review"))
    for doc in closing_documents(session, ctx, decision):
        if isinstance(doc, RefundReceipt):
            # A changed amount lives on the decision lines; the clerk's itemized deductions stay
            # as they were. The receipt shows the difference as one line, so it always adds up.
            paid = sum(line.paid_minor for line in decision.lines if line.active)
            deducted = sum(d.amount_minor for d in decision.deductions)
            difference = paid + decision.shipping_refund_minor - deducted - decision.amount_minor
            if difference:
                doc = replace(doc, deductions=(*doc.deductions, ReceiptDeduction(
                    "Changed at supervisor review", Money(-difference, decision.currency).format())))
        docs.append(doc)
    return [submit(uow, ctx, printers, doc, decision.id) for doc in docs]
