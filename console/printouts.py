"""The content of every printed document, read from the station database.

Each builder returns one of ``printing.content``'s plain dataclasses; amounts are formatted
here with :class:`console.money.Money` so that the documents never do money arithmetic.
"""
from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.checkdigits import luhn_mod36_char
from console.context import StationContext
from console.errors import InvalidInput, NotFound
from console.inspection import latest_grades
from console.money import Money
from db.models import (
    Claim, Decision, Disposition, Inspection, Order, OrderLine, ParcelReceipt, ReceiptRma, ReturnAuthorization,
    ReturnItem, Shipment, Station, User,
)
from printing.content import (
    CarrierEventLine, ClaimPacket, DispositionLabel, ExchangeSlip, LpnSticker, ReceiptDeduction, ReceiptLine,
    RefundReceipt,
)

KINDS_WITH_RECEIPT = ("full_refund", "partial_refund", "store_credit")


def _station_name(session: Session, ctx: StationContext) -> str:
    row = session.get(Station, ctx.station_id)
    return row.name if row is not None else ctx.station_id


def _latest_grade(session: Session, item_id: int) -> str:
    return latest_grades(session, [item_id]).get(item_id, "-")


def _disposed_item(session: Session, return_item_id: int) -> tuple[ReturnItem, Disposition]:
    item = session.get(ReturnItem, return_item_id)
    if item is None:
        raise NotFound(f"Return item #{return_item_id} is not known at this station.")
    disposition = session.scalar(select(Disposition).where(Disposition.return_item_id == item.id)
                                 .order_by(Disposition.decided_at.desc()).limit(1))
    if disposition is None:
        raise InvalidInput(f"{item.order_line.sku} on {item.rma.number} has no disposition yet: "
                           "decide where it goes before printing its label.")
    return item, disposition


def disposition_label(session: Session, ctx: StationContext, return_item_id: int) -> DispositionLabel:
    item, disposition = _disposed_item(session, return_item_id)
    return DispositionLabel(
        lpn=disposition.lpn, disposition=disposition.kind.replace("_", "-"), rma=item.rma.number,
        sku=item.order_line.sku, title=item.order_line.title, grade=_latest_grade(session, item.id),
        date=ctx.local(disposition.decided_at).date().isoformat(), station=_station_name(session, ctx),
        bin_hint=disposition.bin_hint)


def lpn_sticker(session: Session, return_item_id: int) -> LpnSticker:
    item, disposition = _disposed_item(session, return_item_id)
    return LpnSticker(lpn=disposition.lpn, sku=item.order_line.sku, grade=_latest_grade(session, item.id),
                      rma=item.rma.number)


def disposed_items(session: Session, rma_id: int) -> list[int]:
    """The RMA's return items that have a disposition, in order: one label each."""
    return list(session.scalars(
        select(ReturnItem.id).where(ReturnItem.rma_id == rma_id,
                                    ReturnItem.id.in_(select(Disposition.return_item_id)))
        .order_by(ReturnItem.id)))


def latest_decision(session: Session, rma_id: int, kinds: tuple[str, ...] | None = None) -> Decision:
    query = select(Decision).where(Decision.rma_id == rma_id, Decision.status.in_(("approved", "pending_review")))
    if kinds:
        query = query.where(Decision.kind.in_(kinds))
    decision = session.scalar(query.order_by(Decision.decided_at.desc()).limit(1))
    if decision is None:
        wanted = " or ".join(k.replace("_", " ") for k in kinds) if kinds else "any"
        rma = session.get(ReturnAuthorization, rma_id)
        raise InvalidInput(f"{rma.number if rma else rma_id} has no {wanted} decision to print.")
    return decision


def _money(minor: int, currency: str) -> str:
    return Money(minor, currency).format()


def _size_of(title: str) -> str | None:
    """Catalog titles end with the variant ("…, Navy, M", "…, US 9"): the part a picker needs."""
    parts = [p.strip() for p in title.split(",")]
    return ", ".join(parts[1:]) if len(parts) > 1 else None


def exchange_slip(session: Session, ctx: StationContext, decision: Decision) -> ExchangeSlip:
    if decision.kind != "exchange" or not decision.exchange_sku:
        raise InvalidInput("Only an exchange has an exchange slip.")
    rma = session.get(ReturnAuthorization, decision.rma_id)
    assert rma is not None
    returned = [session.get(ReturnItem, line.return_item_id) for line in decision.lines if line.active]
    first = returned[0].order_line if returned and returned[0] else None
    # The replacement as the catalog last sold it: title, GTIN and price from its newest order line.
    replacement = session.scalar(select(OrderLine).join(Order).where(OrderLine.sku == decision.exchange_sku)
                                 .order_by(Order.placed_at.desc()).limit(1))
    paid = sum(line.paid_minor for line in decision.lines if line.active)
    if replacement is None:
        title, pick, difference = "not in the order history: check the SKU", decision.exchange_sku, \
            "Price difference: check at the till"
    else:
        title, pick = replacement.title, replacement.gtin or replacement.sku
        diff = replacement.unit_price_minor * len(returned) - paid
        currency = decision.currency
        difference = ("No price difference" if diff == 0 else
                      f"Customer pays {_money(diff, currency)}" if diff > 0 else
                      f"Refund to customer {_money(-diff, currency)}")
    return ExchangeSlip(
        rma=rma.number, customer_name=rma.order.customer.name,
        original_sku=first.sku if first else "-", original_title=first.title if first else "-",
        replacement_sku=decision.exchange_sku, replacement_title=title,
        replacement_size=_size_of(replacement.title) if replacement else None, pick_code=pick,
        difference=difference, station=_station_name(session, ctx),
        date=ctx.local(decision.decided_at).date().isoformat())


def store_credit_code(decision_id: uuid.UUID) -> str:
    """The code a store-credit refund is redeemed with: derived from the decision, so a reprint
    shows the same code, with a check character against mistyping at the till."""
    body = "SC" + hashlib.blake2b(decision_id.bytes, digest_size=8).hexdigest().upper()[:12]
    return body + luhn_mod36_char(body)


def refund_receipt(session: Session, ctx: StationContext, decision: Decision) -> RefundReceipt:
    if decision.kind not in KINDS_WITH_RECEIPT:
        raise InvalidInput(f"A {decision.kind.replace('_', ' ')} pays nothing back: there is no refund receipt.")
    rma = session.get(ReturnAuthorization, decision.rma_id)
    assert rma is not None
    order = rma.order
    cur = decision.currency
    lines = []
    for line in decision.lines:
        if not line.active:
            continue
        item = session.get(ReturnItem, line.return_item_id)
        assert item is not None
        lines.append(ReceiptLine(item.order_line.title, item.order_line.sku, _money(line.paid_minor, cur)))
    deductions = [ReceiptDeduction(d.label, _money(-d.amount_minor, cur)) for d in decision.deductions]
    if decision.shipping_refund_minor:
        lines.append(ReceiptLine("Original shipping", "", _money(decision.shipping_refund_minor, cur)))
    if decision.store_credit_bonus_minor:
        lines.append(ReceiptLine("Store credit bonus", "", _money(decision.store_credit_bonus_minor, cur)))
    credit = decision.kind == "store_credit"
    clerk = session.get(User, decision.decided_by_id)
    return RefundReceipt(
        store=_station_name(session, ctx), station=ctx.station_id, rma=rma.number, order=order.number,
        customer_name=order.customer.name, when=ctx.local(decision.decided_at).strftime("%Y-%m-%d %H:%M"),
        clerk=clerk.display_name if clerk else "-", lines=tuple(lines), deductions=tuple(deductions),
        total=_money(decision.amount_minor + decision.store_credit_bonus_minor, cur),
        refund_method="store credit" if credit else "original payment",
        card_brand=None if credit else order.payment_brand, card_last4=None if credit else order.payment_last4,
        store_credit_code=store_credit_code(decision.id) if credit else None)


def claim_packet(session: Session, ctx: StationContext, rma_id: int) -> ClaimPacket:
    """The packet for a carrier claim on the RMA's order: the order's claim if one is recorded,
    else a draft for a parcel damaged in transit, with everything the station knows."""
    rma = session.get(ReturnAuthorization, rma_id)
    if rma is None:
        raise NotFound(f"RMA #{rma_id} is not known at this station.")
    order = rma.order
    claim = session.scalar(select(Claim).where(Claim.order_id == order.id).order_by(Claim.created_at.desc()).limit(1))
    shipment = session.scalar(select(Shipment).where(Shipment.order_id == order.id).order_by(Shipment.shipped_at)
                              .limit(1))
    receipt = session.scalar(select(ParcelReceipt).join(ReceiptRma, ReceiptRma.receipt_id == ParcelReceipt.id)
                             .where(ReceiptRma.rma_id == rma.id).order_by(ParcelReceipt.received_at.desc()).limit(1))
    photos: list[Path] = []
    for item in rma.items:
        for inspection in session.scalars(select(Inspection).where(Inspection.return_item_id == item.id,
                                                                   Inspection.undone_at.is_(None))):
            photos += [Path(p) for p in inspection.photos or []]
    try:
        decision_row: Decision | None = latest_decision(session, rma.id)
    except InvalidInput:
        decision_row = None
    if claim is not None:
        amount = _money(claim.amount_minor, claim.currency)
        outcome = claim.outcome or claim.status
    elif decision_row is not None:
        amount = _money(decision_row.amount_minor, decision_row.currency)
        outcome = "draft"
    else:
        amount, outcome = "to be assessed", "draft"
    decision_text = (f"{decision_row.kind.replace('_', ' ')} ({decision_row.status.replace('_', ' ')}), "
                     f"{_money(decision_row.amount_minor, decision_row.currency)}"
                     if decision_row is not None else "no decision yet")
    when = ctx.local_time_text
    return ClaimPacket(
        claim_id=str(claim.id)[:8].upper() if claim else f"DRAFT-{rma.number}",
        kind=(claim.kind if claim else "damaged_in_transit").replace("_", " "), order=order.number,
        customer_name=order.customer.name,
        address=tuple((order.customer.address or "").splitlines()),
        carrier=shipment.carrier if shipment else "-", tracking_number=shipment.tracking_number if shipment else "-",
        shipped=ctx.local(shipment.shipped_at).strftime("%Y-%m-%d %H:%M") if shipment else "-",
        delivered=(ctx.local(shipment.delivered_at).strftime("%Y-%m-%d %H:%M")
                   if shipment and shipment.delivered_at else "not delivered"),
        events=tuple(CarrierEventLine(when(e.occurred_at), e.code, e.description, e.location or "")
                     for e in (shipment.events if shipment else [])),
        shipped_weight_g=shipment.weight_g if shipment and shipment.weight_g else None,
        expected_weight_g=receipt.expected_weight_g if receipt else None,
        received_weight_g=receipt.weight_g if receipt else None,
        amount=amount, decision=f"{outcome}; return decision: {decision_text}",
        note=(receipt.note or "") if receipt else "",
        prepared_by=ctx.actor.display_name,
        prepared_at=ctx.local(ctx.now()).strftime("%Y-%m-%d %H:%M %Z"), photos=tuple(photos))
