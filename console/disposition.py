"""Where a returned unit goes next, and the license plate (LPN) it carries there."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from console import audit
from console.codes import lpn
from console.context import StationContext
from console.errors import InvalidInput, NotFound, StateConflict
from console.inspection import latest_grades
from console.rmas import add_event, get_rma
from db.models import DISPOSITIONS, Decision, DecisionLine, Disposition, ItemScan, ReturnItem
from db.uow import UnitOfWork

BY_GRADE = {"A": "restock", "B": "restock", "C": "outlet", "D": "refurbish", "F": "recycle"}
BIN_HINTS = {"restock": "RESTOCK", "refurbish": "REFURB", "outlet": "OUTLET", "return_to_vendor": "RTV",
             "recycle": "RECYCLE", "quarantine": "QUARANTINE"}


@dataclass(frozen=True)
class DispositionResult:
    disposition_id: uuid.UUID
    return_item_id: int
    kind: str
    lpn: str
    bin_hint: str


def suggested_disposition(uow: UnitOfWork, item: ReturnItem) -> str:
    """Grade decides, except that a unit under review or flagged at the scan goes to quarantine."""
    session = uow.session
    pending = session.scalar(select(Decision.id).join(DecisionLine).where(
        DecisionLine.return_item_id == item.id, DecisionLine.active, Decision.status == "pending_review"))
    flagged = item.receipt_id is not None and session.scalar(select(ItemScan.id).where(
        ItemScan.receipt_id == item.receipt_id, ItemScan.result != "matched",
        ItemScan.undone_at.is_(None)).limit(1)) is not None
    if pending is not None or flagged:
        return "quarantine"
    grade = latest_grades(session, [item.id]).get(item.id)
    kind = BY_GRADE.get(grade or "F", "quarantine")
    if kind == "refurbish" and item.order_line.category == "electronics":
        return "return_to_vendor"
    return kind


def dispose(uow: UnitOfWork, ctx: StationContext, return_item_id: int, kind: str | None = None, *,
            after: str | None = None) -> DispositionResult:
    """Where a received, graded unit goes now (``kind``, or the suggested one), its LPN and bin,
    audited, with its outbox event; the caller commits. ``after`` says why it moves again (a
    supervisor's verdict: "review"; a verdict central refused: "void")."""
    session = uow.session
    item = session.get(ReturnItem, return_item_id)
    if item is None:
        raise NotFound(f"Return item #{return_item_id} is not known at this station.")
    if item.reception_status != "received":
        raise StateConflict(f"{item.order_line.sku} was not received in a parcel: nothing to put away.")
    if kind is not None and kind not in DISPOSITIONS:
        raise InvalidInput(f"'{kind}' is not a disposition; choose one of {', '.join(DISPOSITIONS)}")
    if kind != "quarantine" and not latest_grades(session, [item.id]):  # quarantine waits for no grade
        raise StateConflict(f"Grade {item.order_line.sku} before deciding where it goes.")
    chosen = kind or suggested_disposition(uow, item)
    # The LPN follows the unit for life; derived from the centrally unique return item id.
    plate = item.lpn or lpn(item.id)
    item.lpn = plate
    rma = get_rma(session, item.rma_id)
    bin_hint = f"{BIN_HINTS[chosen]}-{item.order_line.category.upper()[:4]}"
    disposition = Disposition(return_item_id=item.id, kind=chosen, lpn=plate, bin_hint=bin_hint,
                              user_id=ctx.actor.user_id, station_id=ctx.station_id, decided_at=ctx.now())
    session.add(disposition)
    details = {"kind": chosen, "lpn": plate} | ({"after": after} if after else {})
    audit.record(session, ctx, "item_disposed", "return_item", item.id, details)
    session.flush()  # the row gets its id (a Python-side default) before the outbox names it
    add_event(uow, ctx, "disposition", disposition.id, [rma], [disposition])
    return DispositionResult(disposition.id, item.id, chosen, plate, bin_hint)
