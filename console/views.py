"""Read models: what a screen or a JSON command shows about an RMA, built in one place.

A customer's e-mail and phone are always shown masked here, whoever asks: a bench screen is
seen by whoever passes by. Someone whose role may see them (``permissions.VIEW_PII``) asks for
them one case at a time with ``reveal_contact``, which says why in the audit trail.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console import audit
from console.context import StationContext
from console.errors import InvalidInput, NotFound
from console.inspection import latest_inspections
from console.money import Money
from console.paid import paid_for_items
from console.permissions import VIEW_PII, require
from console.policy import WindowCheck
from db.models import (
    Customer,
    Decision,
    DecisionLine,
    Order,
    ReturnAuthorization,
    ReturnItem,
    Shipment,
)
from db.uow import UnitOfWork

MIN_REASON = 3


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return (local[:1] + "•••@" + domain) if domain else "•••"


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    digits = [c for c in phone if c.isdigit()]
    return "•••• " + "".join(digits[-3:])


@dataclass(frozen=True)
class ItemView:
    id: int
    order_line_id: int
    sku: str
    gtin: str | None
    title: str
    category: str
    reason_code: str
    reason: str
    reception_status: str
    acceptance_status: str
    paid: Money
    weight_g: int
    serial_numbers: list[str]
    received_serial: str | None
    grade: str | None
    decided: bool
    # The latest inspection's checklist, note and photo paths (empty when never inspected).
    checklist: dict[str, bool] = field(default_factory=dict)
    notes: str | None = None
    photos: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RmaView:
    id: int
    number: str
    status: str
    channel: str
    reason_code: str
    customer_comment: str | None
    order_id: int
    order_number: str
    placed_at: datetime
    delivered_at: datetime | None
    currency: str
    customer_name: str
    customer_email: str
    customer_phone: str | None
    loyalty_tier: str
    customer_returns: int
    customer_orders: int
    window: WindowCheck | None
    expected_weight_g: int
    items: list[ItemView] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for item in data["items"]:
            item["paid"] = {"minor": item["paid"]["minor"], "currency": item["paid"]["currency"]}
        for key in ("placed_at", "delivered_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


@dataclass(frozen=True)
class ContactDetails:
    rma_number: str
    customer_name: str
    email: str
    phone: str | None


def reveal_contact(uow: UnitOfWork, ctx: StationContext, rma_id: int, reason: str) -> ContactDetails:
    """The customer's e-mail and phone in full, for a case that needs them (a supervisor calling
    about a disputed refund). Needs ``VIEW_PII`` and a reason; leaves a "pii_viewed" audit event
    and commits it before anything is shown."""
    require(ctx.actor, VIEW_PII)
    why = " ".join(reason.split())
    if len(why) < MIN_REASON:
        raise InvalidInput("Say why this case needs the customer's contact details (a few words); it is logged.")
    session = uow.session
    rma = session.get(ReturnAuthorization, rma_id)
    if rma is None:
        raise NotFound(f"RMA #{rma_id} is not known at this station: scan the parcel again.")
    order = session.get(Order, rma.order_id)
    assert order is not None
    customer = session.get(Customer, order.customer_id)
    assert customer is not None
    audit.record(session, ctx, "pii_viewed", "customer", customer.id,
                 {"rma": rma.number, "fields": ["email", "phone"], "reason": why[:200]})
    uow.commit()
    return ContactDetails(rma.number, customer.name, customer.email, customer.phone)


def load_rma_view(session: Session, ctx: StationContext, rma_id: int) -> RmaView:
    rma = session.get(ReturnAuthorization, rma_id)
    if rma is None:
        raise NotFound(f"RMA #{rma_id} is not known at this station: scan the parcel again.")
    order = session.get(Order, rma.order_id)
    assert order is not None
    customer = session.get(Customer, order.customer_id)
    assert customer is not None
    delivered_at = session.scalar(select(func.min(Shipment.delivered_at)).where(Shipment.order_id == order.id))
    items = list(session.scalars(select(ReturnItem).where(ReturnItem.rma_id == rma.id).order_by(ReturnItem.id)))
    paid = paid_for_items(session, items)
    item_ids = [i.id for i in items]
    inspections = latest_inspections(session, item_ids) if item_ids else {}  # the latest not undone
    grades = {item_id: i.grade for item_id, i in inspections.items()}
    decided = set(session.scalars(select(DecisionLine.return_item_id)
                                  .where(DecisionLine.return_item_id.in_(item_ids), DecisionLine.active)))
    window = None
    categories = {i.order_line.category for i in items}
    if delivered_at is not None:
        # The most generous category on the RMA shows in the header; each item is checked on its own.
        checks = [ctx.policy.check_window(delivered_at, ctx.now(), c, customer.loyalty_tier, ctx.zone)
                  for c in sorted(categories)] or [ctx.policy.check_window(delivered_at, ctx.now(), "", customer.loyalty_tier, ctx.zone)]
        window = max(checks, key=lambda w: w.window_days)
    awaiting_weight = sum(i.order_line.weight_g for i in items if i.reception_status in ("awaiting", "received"))
    item_views = [
        ItemView(
            id=i.id, order_line_id=i.order_line_id, sku=i.order_line.sku, gtin=i.order_line.gtin,
            title=i.order_line.title, category=i.order_line.category, reason_code=i.reason_code,
            reason=ctx.policy.reasons.get(i.reason_code, i.reason_code),
            reception_status=i.reception_status, acceptance_status=i.acceptance_status,
            paid=Money(paid[i.id], order.currency), weight_g=i.order_line.weight_g,
            serial_numbers=list(i.order_line.serial_numbers or []), received_serial=i.received_serial,
            grade=grades.get(i.id), decided=i.id in decided,
            checklist=dict(inspections[i.id].checklist or {}) if i.id in inspections else {},
            notes=inspections[i.id].notes if i.id in inspections else None,
            photos=list(inspections[i.id].photos or []) if i.id in inspections else [],
        )
        for i in items
    ]
    decisions = [
        {"id": str(d.id), "kind": d.kind, "status": d.status, "amount_minor": d.amount_minor,
         "currency": d.currency, "decided_at": d.decided_at.isoformat(), "decided_by": d.decided_by.display_name}
        for d in session.scalars(select(Decision).where(Decision.rma_id == rma.id).order_by(Decision.decided_at))
    ]
    return RmaView(
        id=rma.id, number=rma.number, status=rma.status, channel=rma.channel, reason_code=rma.reason_code,
        customer_comment=rma.customer_comment, order_id=order.id, order_number=order.number,
        placed_at=order.placed_at, delivered_at=delivered_at, currency=order.currency,
        customer_name=customer.name,
        customer_email=mask_email(customer.email),
        customer_phone=mask_phone(customer.phone),
        loyalty_tier=customer.loyalty_tier, customer_returns=customer.returns_count,
        customer_orders=customer.orders_count, window=window,
        expected_weight_g=awaiting_weight + ctx.policy.packaging_g if awaiting_weight else 0,
        items=item_views, decisions=decisions,
    )
