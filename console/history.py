"""Today's parcels at this station: the history screen's list, its search and its status line.

"Today" is the station's local calendar day (midnight to midnight in ``ctx.zone``, 23 or 25
hours long on a DST change), turned into a half-open UTC range on ``received_at``.

Every query starts from this station's receipts of today and reaches the other tables only
through primary keys and indexed foreign keys, so the size of the order history does not matter.
Finding today's receipts scans parcel_receipts once per call, as long as it has no index on
(station_id, received_at): about 30 ms per 300,000 parcels ever received at the station.
Search is done in Python over today's receipts (a few hundred, a few thousand on a busy day):
SQLite's LIKE and lower() fold ASCII only, and a clerk typing "müller" must find "MÜLLER".
"""
from __future__ import annotations

import unicodedata
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console.context import StationContext
from console.errors import InvalidInput
from console.money import Money
from console.risk import weight_mismatch
from console.rmas import OPEN_STATUSES
from db.models import (
    Customer,
    Decision,
    ItemScan,
    Order,
    OrderLine,
    ParcelReceipt,
    ReceiptRma,
    ReturnAuthorization,
    ReturnItem,
    User,
)

MAX_LIMIT = 1000
STATES = ("open", "review", "decided", "unidentified")
DECISION_STATUS_TEXT = {"approved": "decided", "pending_review": "waiting for review", "rejected": "rejected",
                        "conflict": "conflict"}
NOT_DECIDED = "not decided"
# Units that were never going to be in a parcel: not counted as expected.
_NOT_EXPECTED = ("lost_in_transit", "not_required")


@dataclass(frozen=True)
class ParcelRow:
    receipt_id: uuid.UUID
    received_at: datetime  # UTC
    scanned_code: str
    rma_numbers: tuple[str, ...]
    order_numbers: tuple[str, ...]  # one parcel can hold the RMAs of several orders
    customer_names: tuple[str, ...]  # as clerks see them on the bench: the name, unmasked
    clerk: str  # display name of who received the parcel
    weight_g: int | None
    expected_weight_g: int | None
    weight_mismatch: bool
    units_scanned: int
    units_expected: int
    flags: int  # item scans that did not match (not on order, foreign serial, ...), not taken back
    decision_kind: str | None  # the latest decision on the parcel's RMAs
    amount_minor: int | None
    currency: str | None
    decision_status: str  # decided | waiting for review | rejected | conflict | not decided
    state: str  # open | review | decided | unidentified

    @property
    def order_number(self) -> str | None:
        return ", ".join(self.order_numbers) or None

    @property
    def customer_name(self) -> str | None:
        return ", ".join(self.customer_names) or None

    @property
    def amount(self) -> Money | None:
        if self.amount_minor is None or self.currency is None:
            return None
        return Money(self.amount_minor, self.currency)


def local_day_bounds(ctx: StationContext) -> tuple[datetime, datetime]:
    """Start and end (exclusive) of the station's local today, in UTC."""
    today = ctx.local(ctx.now()).date()
    start = datetime.combine(today, time(), tzinfo=ctx.zone)
    end = datetime.combine(today + timedelta(days=1), time(), tzinfo=ctx.zone)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def todays_parcels(session: Session, ctx: StationContext, *, search: str = "", limit: int = 200,
                   offset: int = 0) -> list[ParcelRow]:
    """This station's parcels received today, newest first, optionally only those whose RMA
    number, order number, customer name, scanned code or SKU contains ``search`` (any case)."""
    if not 0 <= limit <= MAX_LIMIT or offset < 0:
        raise InvalidInput(f"ask for 0 to {MAX_LIMIT:,} parcels from position 0 on")
    if search.strip():
        ids = _matching_ids(session, ctx, search)[offset:offset + limit]
    else:
        ids = list(session.scalars(_today_ids(ctx).limit(limit).offset(offset)))
    return _rows(session, ctx, ids)


def count_todays_parcels(session: Session, ctx: StationContext, *, search: str = "") -> int:
    """How many parcels ``todays_parcels`` would list with no limit: for the status line."""
    if search.strip():
        return len(_matching_ids(session, ctx, search))
    start, end = local_day_bounds(ctx)
    return session.scalar(select(func.count()).select_from(ParcelReceipt).where(
        ParcelReceipt.station_id == ctx.station_id, ParcelReceipt.received_at >= start,
        ParcelReceipt.received_at < end)) or 0


# -- queries --------------------------------------------------------------------------------------

def _today_ids(ctx: StationContext) -> Any:
    start, end = local_day_bounds(ctx)
    return (select(ParcelReceipt.id)
            .where(ParcelReceipt.station_id == ctx.station_id, ParcelReceipt.received_at >= start,
                   ParcelReceipt.received_at < end)
            .order_by(ParcelReceipt.received_at.desc(), ParcelReceipt.id.desc()))


def _fold(text: str) -> str:
    # NFKC first: a full-width "ＳＯ－９" typed through a Japanese input method is "SO-9".
    return unicodedata.normalize("NFKC", text).casefold()


def _matching_ids(session: Session, ctx: StationContext, search: str) -> list[uuid.UUID]:
    needle = _fold(search.strip())
    compact = "".join(needle.split())  # codes are stored without spaces: "1z 999" finds "1Z999"
    words: dict[uuid.UUID, list[str]] = defaultdict(list)  # names: matched as typed
    codes: dict[uuid.UUID, list[str]] = defaultdict(list)  # codes: matched with spaces removed too
    ordered: list[uuid.UUID] = []
    for receipt_id, scanned, order_no, name in session.execute(
            _today_ids(ctx).add_columns(ParcelReceipt.scanned_code, Order.number, Customer.name)
            .outerjoin(Order, Order.id == ParcelReceipt.order_id)
            .outerjoin(Customer, Customer.id == Order.customer_id)):
        ordered.append(receipt_id)
        codes[receipt_id] += [scanned or "", order_no or ""]
        words[receipt_id].append(name or "")
    for chunk in _chunks(ordered):
        for receipt_id, rma_no, order_no, name in session.execute(
                select(ReceiptRma.receipt_id, ReturnAuthorization.number, Order.number, Customer.name)
                .join(ReturnAuthorization, ReturnAuthorization.id == ReceiptRma.rma_id)
                .join(Order, Order.id == ReturnAuthorization.order_id)
                .join(Customer, Customer.id == Order.customer_id)
                .where(ReceiptRma.receipt_id.in_(chunk))):
            codes[receipt_id] += [rma_no, order_no]
            words[receipt_id].append(name)
        for receipt_id, code in session.execute(
                select(ItemScan.receipt_id, ItemScan.code)
                .where(ItemScan.receipt_id.in_(chunk), ItemScan.undone_at.is_(None))):
            codes[receipt_id].append(code)
        for receipt_id, sku in session.execute(
                select(ReceiptRma.receipt_id, OrderLine.sku).distinct()
                .join(ReturnItem, ReturnItem.rma_id == ReceiptRma.rma_id)
                .join(OrderLine, OrderLine.id == ReturnItem.order_line_id)
                .where(ReceiptRma.receipt_id.in_(chunk))):
            codes[receipt_id].append(sku)

    def hit(receipt_id: uuid.UUID) -> bool:
        if any(needle in _fold(w) for w in words[receipt_id]):
            return True
        return any(needle in c or (compact and compact in c) for c in map(_fold, codes[receipt_id]))

    return [i for i in ordered if hit(i)]


def _rows(session: Session, ctx: StationContext, ids: list[uuid.UUID]) -> list[ParcelRow]:
    if not ids:
        return []
    receipts = {r.id: r for r in session.scalars(select(ParcelReceipt).where(ParcelReceipt.id.in_(ids)))}
    clerks = dict(session.execute(select(User.id, User.display_name)
                                  .where(User.id.in_({r.user_id for r in receipts.values()}))).all())

    rmas: dict[uuid.UUID, list[tuple[int, str, str]]] = defaultdict(list)  # receipt -> (rma id, number, status)
    orders: dict[uuid.UUID, list[tuple[str, str]]] = defaultdict(list)  # receipt -> (order number, customer)
    for receipt_id, rma_id, rma_no, status, order_no, name in session.execute(
            select(ReceiptRma.receipt_id, ReturnAuthorization.id, ReturnAuthorization.number,
                   ReturnAuthorization.status, Order.number, Customer.name)
            .join(ReturnAuthorization, ReturnAuthorization.id == ReceiptRma.rma_id)
            .join(Order, Order.id == ReturnAuthorization.order_id)
            .join(Customer, Customer.id == Order.customer_id)
            .where(ReceiptRma.receipt_id.in_(ids))
            .order_by(ReturnAuthorization.number)):
        rmas[receipt_id].append((rma_id, rma_no, status))
        orders[receipt_id].append((order_no, name))
    order_only = {r.order_id for r in receipts.values() if r.order_id is not None}
    if order_only:
        by_order = {oid: (number, name) for oid, number, name in session.execute(
            select(Order.id, Order.number, Customer.name).join(Customer, Customer.id == Order.customer_id)
            .where(Order.id.in_(order_only)))}
        for receipt in receipts.values():
            if receipt.order_id in by_order:
                orders[receipt.id].insert(0, by_order[receipt.order_id])

    rma_ids = {rma_id for links in rmas.values() for rma_id, _, _ in links}
    items: dict[int, list[tuple[uuid.UUID | None, str]]] = defaultdict(list)  # rma -> (receipt, reception)
    latest: dict[int, tuple[datetime, str, int, str, str]] = {}  # rma -> its latest live decision
    if rma_ids:
        for rma_id, item_receipt, reception in session.execute(
                select(ReturnItem.rma_id, ReturnItem.receipt_id, ReturnItem.reception_status)
                .where(ReturnItem.rma_id.in_(rma_ids))):
            items[rma_id].append((item_receipt, reception))
        for decided_rma, decided_at, kind, amount, currency, status in session.execute(
                select(Decision.rma_id, Decision.decided_at, Decision.kind, Decision.amount_minor,
                       Decision.currency, Decision.status)
                .where(Decision.rma_id.in_(rma_ids), Decision.status != "superseded")):
            assert decided_rma is not None  # the IN above matches no decision without an RMA
            if decided_rma not in latest or decided_at > latest[decided_rma][0]:
                latest[decided_rma] = (decided_at, kind, amount, currency, status)
    flags = dict(session.execute(
        select(ItemScan.receipt_id, func.count())
        .where(ItemScan.receipt_id.in_(ids), ItemScan.result != "matched", ItemScan.undone_at.is_(None))
        .group_by(ItemScan.receipt_id)).all())

    rows = []
    for receipt_id in ids:
        r = receipts.get(receipt_id)
        if r is None:
            continue
        links = rmas.get(receipt_id, [])
        units = [(rid, reception) for rma_id, _, _ in links for rid, reception in items.get(rma_id, [])]
        decisions = [latest[rma_id] for rma_id, _, _ in links if rma_id in latest]
        decision = max(decisions, key=lambda d: d[0]) if decisions else None
        tolerance = ctx.policy.weight_tolerance_g(r.expected_weight_g or 0, r.scale_division_g)
        rows.append(ParcelRow(
            receipt_id=r.id, received_at=r.received_at, scanned_code=r.scanned_code,
            rma_numbers=tuple(number for _, number, _ in links),
            order_numbers=_unique(number for number, _ in orders.get(receipt_id, [])),
            customer_names=_unique(name for _, name in orders.get(receipt_id, [])),
            clerk=clerks.get(r.user_id, f"user #{r.user_id}"),
            weight_g=r.weight_g, expected_weight_g=r.expected_weight_g,
            weight_mismatch=weight_mismatch(r.weight_g, r.expected_weight_g, tolerance),
            units_scanned=sum(1 for rid, reception in units if rid == r.id and reception == "received"),
            # Units of the parcel's RMAs that came in another parcel are not expected in this one.
            units_expected=sum(1 for rid, reception in units
                               if rid in (None, r.id) and reception not in _NOT_EXPECTED),
            flags=flags.get(receipt_id, 0),
            decision_kind=decision[1] if decision else None,
            amount_minor=decision[2] if decision else None,
            currency=decision[3] if decision else None,
            decision_status=DECISION_STATUS_TEXT.get(decision[4], decision[4]) if decision else NOT_DECIDED,
            state=_state(r, [status for _, _, status in links], decision[4] if decision else None),
        ))
    return rows


def _state(receipt: ParcelReceipt, rma_statuses: list[str], decision_status: str | None) -> str:
    """What the history screen shows first. Clerk work left on any RMA of the parcel comes before
    a supervisor's: a parcel with one RMA in review and another still open is ``open``."""
    if receipt.in_quarantine or not rma_statuses:
        return "unidentified"
    if any(s in OPEN_STATUSES for s in rma_statuses):
        return "open"
    if "pending_review" in rma_statuses or decision_status in ("pending_review", "conflict"):
        return "review"
    return "decided"


def _chunks(ids: list[uuid.UUID], size: int = 500) -> list[list[uuid.UUID]]:
    # Today's receipts are read once; their ids then go to the other tables in bounded IN lists.
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def _unique(values: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))
