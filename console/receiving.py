"""Receiving a parcel and matching the units in it: the first steps at the bench.

Receiving is separate from acceptance and refund: a parcel is recorded (with its weight, when
there is one) whether or not anything is ever refunded for it.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from console import audit
from console.barcodes import interpret
from console.authorization import ReturnLine, authorize_return, quantity_left
from console.codes import normalize
from console.context import StationContext
from console.errors import InvalidInput, NotFound, StateConflict
from console.lookup import CodeMatch, find_code
from console.rmas import OPEN_STATUSES, add_event, ensure_open, get_rma
from console.risk import weight_message, weight_mismatch
from console.permissions import RECEIVE, require
from db.models import ItemScan, OrderLine, ParcelReceipt, ReceiptRma, ReturnAuthorization, ReturnItem
from db.uow import UnitOfWork

WEIGHT_SOURCES = ("scale", "manual")


@dataclass(frozen=True)
class WeightCheck:
    weight_g: int | None
    expected_g: int
    tolerance_g: int
    mismatch: bool
    message: str


@dataclass(frozen=True)
class ReceiptResult:
    receipt_id: uuid.UUID
    rma_ids: list[int]
    rma_numbers: list[str]
    match: CodeMatch
    weight: WeightCheck
    returned_to_sender: bool


def expected_weight(uow: UnitOfWork, ctx: StationContext, rma_ids: list[int]) -> int:
    weights = uow.session.scalars(
        select(OrderLine.weight_g).join(ReturnItem, ReturnItem.order_line_id == OrderLine.id)
        .where(ReturnItem.rma_id.in_(rma_ids), ReturnItem.reception_status.in_(("awaiting", "received")))
    ).all()
    return sum(weights) + ctx.policy.packaging_g if weights else 0


def check_weight(ctx: StationContext, weight_g: int | None, expected_g: int,
                 division_g: int | None = None) -> WeightCheck:
    tolerance = ctx.policy.weight_tolerance_g(expected_g, division_g)
    if weight_g is None:
        return WeightCheck(None, expected_g, tolerance, False, f"not weighed; expected {expected_g:,} g")
    mismatch = weight_mismatch(weight_g, expected_g, tolerance)
    text = weight_message(weight_g, expected_g, tolerance)
    return WeightCheck(weight_g, expected_g, tolerance, mismatch, ("WEIGHT MISMATCH: " if mismatch else "") + text)


def _validate_weight(weight_g: int | None, source: str | None, reason: str | None,
                     division_g: int | None = None) -> None:
    if division_g is not None and (isinstance(division_g, bool) or not isinstance(division_g, int)
                                   or not 0 < division_g <= 1000):
        raise InvalidInput(f"scale division {division_g!r} g is not plausible: check the scale settings (1–1,000 g).")
    if weight_g is None:
        return
    if isinstance(weight_g, bool) or not isinstance(weight_g, int) or weight_g < 0 or weight_g > 100_000:
        raise InvalidInput(f"weight {weight_g!r} g is not plausible: weigh the parcel again (0–100,000 g).")
    if source not in WEIGHT_SOURCES:
        raise InvalidInput("say where the weight came from: the scale, or typed by hand")
    if source == "manual" and not (reason and reason.strip()):
        raise InvalidInput("a weight typed by hand needs a reason (scale broken, parcel too large, ...)")


def receive_parcel(uow: UnitOfWork, ctx: StationContext, code: str, *, weight_g: int | None = None,
                   weight_source: str | None = None, weight_reason: str | None = None,
                   scale_division_g: int | None = None, receipt_id: uuid.UUID | None = None) -> ReceiptResult:
    """Record a parcel against what ``code`` finds and commit.

    All open RMAs the code finds are received together (one parcel, several RMAs). A parcel found
    only by its outbound tracking number, with no RMA, is a return to sender: it is received on a
    new RMA (reason ``returned_to_sender``) so its units can be inspected and put away, with no
    refund unless someone decides one.
    """
    require(ctx.actor, RECEIVE)
    _validate_weight(weight_g, weight_source, weight_reason, scale_division_g)
    session = uow.session
    receipt_id = receipt_id or uuid.uuid4()
    existing = session.get(ParcelReceipt, receipt_id)
    if existing is not None:  # the same command again (a double Enter, a retry): no second receipt
        rma_ids = list(session.scalars(select(ReceiptRma.rma_id).where(ReceiptRma.receipt_id == receipt_id)))
        rmas = [get_rma(session, i) for i in rma_ids]
        match = find_code(session, existing.scanned_code)
        return ReceiptResult(receipt_id, rma_ids, [r.number for r in rmas], match,
                             check_weight(ctx, existing.weight_g, existing.expected_weight_g or 0,
                                          existing.scale_division_g), False)
    match = find_code(session, code)
    returned_to_sender = False
    rmas = [get_rma(session, r.id) for r in match.open_rmas]
    if not rmas:
        live = [r for r in match.rmas if r.status != "canceled"]
        if match.kind == "outbound_tracking" and not live:
            rmas = [_return_to_sender_rma(uow, ctx, match)]
            returned_to_sender = True
        elif match.rmas:
            ensure_open(session, ctx, get_rma(session, (live or match.rmas)[-1].id))  # raises: none is open
        else:
            raise NotFound(f"Order {match.order_number} has no return authorization. Create an RMA for it, "
                           "or record the parcel as unexpected.")
    expected = expected_weight(uow, ctx, [r.id for r in rmas])
    division = scale_division_g if weight_g is not None and weight_source == "scale" else None
    weight = check_weight(ctx, weight_g, expected, division)
    receipt = ParcelReceipt(id=receipt_id, station_id=ctx.station_id, user_id=ctx.actor.user_id,
                            received_at=ctx.now(), scanned_code=normalize(code)[:100], weight_g=weight_g,
                            weight_source=weight_source if weight_g is not None else None,
                            weight_reason=weight_reason, expected_weight_g=expected, scale_division_g=division,
                            order_id=match.order_id if returned_to_sender else None,
                            note="returned to sender" if returned_to_sender else None)
    session.add(receipt)
    session.flush()
    links = [ReceiptRma(receipt_id=receipt.id, rma_id=r.id) for r in rmas]
    session.add_all(links)
    for rma in rmas:
        rma.status = "received"
    audit.record(session, ctx, "parcel_received", "receipt", receipt.id,
                 {"rmas": [r.number for r in rmas], "weight_g": weight_g, "expected_g": expected,
                  "weight_mismatch": weight.mismatch})
    add_event(uow, ctx, "receipt", receipt.id, rmas, [receipt, *links])
    uow.commit()
    return ReceiptResult(receipt.id, [r.id for r in rmas], [r.number for r in rmas], match, weight,
                         returned_to_sender)


def weigh_parcel(uow: UnitOfWork, ctx: StationContext, receipt_id: uuid.UUID, weight_g: int, *,
                 source: str, reason: str | None = None, scale_division_g: int | None = None) -> WeightCheck:
    """Record the parcel's weight after it was received (the scale settles after the scan) and commit.

    Weighing again replaces the weight; the audit trail keeps every reading.
    """
    require(ctx.actor, RECEIVE)
    _validate_weight(weight_g, source, reason, scale_division_g)
    session = uow.session
    receipt = session.get(ParcelReceipt, receipt_id)
    if receipt is None:
        raise NotFound("This parcel has not been received yet: scan the parcel label first.")
    rma_ids = list(session.scalars(select(ReceiptRma.rma_id).where(ReceiptRma.receipt_id == receipt_id)))
    rmas = [get_rma(session, i) for i in rma_ids]
    for rma in rmas:
        ensure_open(session, ctx, rma)
    receipt.weight_g = weight_g
    receipt.weight_source = source
    receipt.weight_reason = reason if source == "manual" else None
    receipt.scale_division_g = scale_division_g if source == "scale" else None
    check = check_weight(ctx, weight_g, receipt.expected_weight_g or 0, receipt.scale_division_g)
    audit.record(session, ctx, "parcel_weighed", "receipt", receipt_id,
                 {"weight_g": weight_g, "source": source, "expected_g": receipt.expected_weight_g,
                  "tolerance_g": check.tolerance_g, "weight_mismatch": check.mismatch})
    add_event(uow, ctx, "receipt", receipt_id, rmas, [receipt])
    uow.commit()
    return check


def _return_to_sender_rma(uow: UnitOfWork, ctx: StationContext, match: CodeMatch) -> ReturnAuthorization:
    lines = uow.session.scalars(select(OrderLine).where(OrderLine.order_id == match.order_id)
                                .order_by(OrderLine.line_no)).all()
    requests = [ReturnLine(ln.id, left, "returned_to_sender") for ln in lines if (left := quantity_left(uow, ln)) > 0]
    if not requests:
        raise StateConflict(f"Every unit of order {match.order_number} has already been returned.")
    return authorize_return(uow, ctx, match.order_number, requests, channel="mail",
                            comment="Parcel came back to the warehouse by its outbound tracking number.")


@dataclass(frozen=True)
class ScanResult:
    code: str
    result: str  # matched | not_on_order | over_quantity | serial_not_shipped | duplicate_serial
    return_item_id: int | None
    message: str

    @property
    def flagged(self) -> bool:
        return self.result != "matched"


def _gtin14(code: str) -> str | None:
    return code.zfill(14) if code.isdigit() and len(code) in (8, 12, 13, 14) else None


def scan_item(uow: UnitOfWork, ctx: StationContext, receipt_id: uuid.UUID, code: str) -> ScanResult:
    """Match one scanned unit (serial number, GTIN or SKU) to a line of the parcel's RMAs and commit.

    A unit that is not on the order, a unit beyond the quantity, or a serial number never shipped
    on this order is recorded and flagged on the spot, never silently accepted.
    """
    require(ctx.actor, RECEIVE)
    session = uow.session
    receipt = session.get(ParcelReceipt, receipt_id)
    if receipt is None:
        raise NotFound("This parcel has not been received yet: scan the parcel label first.")
    _refuse_unidentified(receipt)
    reading = interpret(code)
    value = normalize(code[len(reading.aim_id):] if reading.aim_id else code)
    if not value:
        raise InvalidInput("Nothing was scanned: scan the item's barcode or serial number.")
    if len(value) > 60:
        raise InvalidInput("That scan is too long to be an item barcode: rescan the item.")
    rma_ids = list(session.scalars(select(ReceiptRma.rma_id).where(ReceiptRma.receipt_id == receipt_id)))
    rmas = [get_rma(session, i) for i in rma_ids]
    for rma in rmas:
        if rma.status not in OPEN_STATUSES:
            ensure_open(session, ctx, rma)
    items = list(session.scalars(select(ReturnItem).where(ReturnItem.rma_id.in_(rma_ids)).order_by(ReturnItem.id)))
    gtin = _gtin14(value)
    if reading.kind == "gtin" and reading.valid:
        # GS1 data on the item (a DataMatrix with GTIN and serial, say): match by its parts.
        gtin = reading.value
        if serial := reading.details.get("ai_21"):
            value = normalize(serial)

    def is_serial_of(item: ReturnItem) -> bool:
        return value in (item.order_line.serial_numbers or [])

    def is_product_of(item: ReturnItem) -> bool:
        line = item.order_line
        return value == line.sku.upper() or (gtin is not None and line.gtin is not None and gtin == line.gtin.zfill(14))

    target: ReturnItem | None = None
    result, message = "matched", ""
    serial_items = [i for i in items if is_serial_of(i)]
    if not serial_items and reading.kind == "gtin" and not reading.valid:
        raise InvalidInput(reading.message)  # a misread digit: nothing is recorded, the clerk rescans
    if serial_items:
        if any(i.received_serial == value for i in items):
            result, message = "duplicate_serial", f"serial {value} was already scanned in this parcel"
        else:
            line_id = serial_items[0].order_line_id
            target = next((i for i in items if i.order_line_id == line_id and i.reception_status == "awaiting"), None)
            if target is None:
                result = "over_quantity"
                message = f"{serial_items[0].order_line.sku}: every unit on the RMA is already scanned"
    else:
        product_items = [i for i in items if is_product_of(i)]
        if product_items:
            target = next((i for i in product_items if i.reception_status == "awaiting"), None)
            if target is None:
                result = "over_quantity"
                message = (f"{product_items[0].order_line.sku}: a unit beyond the {len(product_items)} "
                           "on the RMA — put it aside")
        elif _looks_like_serial(value) and any(i.order_line.serial_numbers for i in items):
            result = "serial_not_shipped"
            orders = ", ".join(sorted({r.order.number for r in rmas}))
            message = f"serial {value} was never shipped on order {orders} — put the unit aside for review"
        else:
            result = "not_on_order"
            message = f"'{value}' is not on {', '.join(r.number for r in rmas)} — put the unit aside"
    if target is not None:
        target.reception_status = "received"
        target.receipt_id = receipt_id
        if is_serial_of(target):
            target.received_serial = value
        message = f"{target.order_line.sku} {target.order_line.title}: received"
    scan = ItemScan(receipt_id=receipt_id, return_item_id=target.id if target else None, code=value,
                    result=result, message=message[:300], scanned_at=ctx.now())
    session.add(scan)
    if result != "matched":
        audit.record(session, ctx, "item_flagged", "receipt", receipt_id, {"code": value, "result": result})
    session.flush()  # the row gets its id (a Python-side default) before the outbox names it
    add_event(uow, ctx, "item_scan", scan.id, rmas, [scan])
    uow.commit()
    return ScanResult(value, result, target.id if target else None, message)


def _refuse_unidentified(receipt: ParcelReceipt) -> None:
    if receipt.in_quarantine:
        raise StateConflict("This parcel is unidentified and waits in quarantine: match it to an RMA "
                            "from the list of unidentified parcels first.")


def _looks_like_serial(value: str) -> bool:
    return value.isalnum() and not value.isdigit() and 6 <= len(value) <= 40


def add_rma_to_parcel(uow: UnitOfWork, ctx: StationContext, receipt_id: uuid.UUID, code: str) -> ReceiptResult:
    """A second RMA label (or order) turns up in a parcel already received: receive it into the
    same parcel, so that one box can hold the units of several RMAs and orders."""
    require(ctx.actor, RECEIVE)
    session = uow.session
    receipt = session.get(ParcelReceipt, receipt_id)
    if receipt is None:
        raise NotFound("This parcel has not been received yet: scan the parcel label first.")
    _refuse_unidentified(receipt)
    match = find_code(session, code)
    linked = set(session.scalars(select(ReceiptRma.rma_id).where(ReceiptRma.receipt_id == receipt_id)))
    new = [get_rma(session, r.id) for r in match.open_rmas if r.id not in linked]
    if not new:
        if match.rmas and all(r.id in linked for r in match.rmas):
            raise StateConflict(f"{', '.join(r.number for r in match.rmas)} is already in this parcel.")
        if match.rmas:
            ensure_open(session, ctx, get_rma(session, match.rmas[-1].id))
        raise NotFound(f"Order {match.order_number} has no open return authorization to add to this parcel.")
    links = [ReceiptRma(receipt_id=receipt_id, rma_id=r.id) for r in new]
    session.add_all(links)
    for rma in new:
        rma.status = "received"
    all_ids = sorted(linked | {r.id for r in new})
    receipt.expected_weight_g = expected_weight(uow, ctx, all_ids)
    audit.record(session, ctx, "rma_added_to_parcel", "receipt", receipt_id, {"rmas": [r.number for r in new]})
    rmas = [get_rma(session, i) for i in all_ids]
    add_event(uow, ctx, "receipt", receipt_id, rmas, [receipt, *links])
    uow.commit()
    return ReceiptResult(receipt_id, all_ids, [r.number for r in rmas], match,
                         check_weight(ctx, receipt.weight_g, receipt.expected_weight_g or 0,
                                      receipt.scale_division_g), False)
