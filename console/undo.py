"""Taking back the last step on the open parcel (Ctrl+Z at the bench), before it is decided.

The steps are the parcel's item scans and the grades of the units those scans received. Taking
one back deletes nothing: the ItemScan or Inspection is marked ``undone_at`` (every reader skips
such rows), the return item goes back to how it was before the step, and an audit event and an
outbox row record the undo in the same transaction. Once any unit of the parcel's RMAs has a
standing decision, nothing is taken back any more: a correction is then a new, audited decision.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from console import audit
from console.context import StationContext
from console.errors import NotFound, StateConflict
from console.inspection import GRADE_LABELS, latest_grades
from console.rmas import OPEN_STATUSES, add_event, ensure_open, get_rma, recorded_order
from console.permissions import RECEIVE, require
from db.models import (
    DecisionLine,
    Disposition,
    Inspection,
    ItemScan,
    ParcelReceipt,
    ReceiptRma,
    ReturnAuthorization,
    ReturnItem,
)
from db.uow import UnitOfWork


@dataclass(frozen=True)
class UndoResult:
    receipt_id: uuid.UUID
    step: str  # scan | grade
    undone_id: uuid.UUID  # the ItemScan or Inspection now marked undone
    return_item_id: int | None  # the unit affected; None for a flagged scan that matched no unit
    message: str  # for the clerk: "Took back the scan of SKU-1 ...: awaiting again on R-..."
    grade_now: str | None = None  # after taking back a grade: the unit's grade now (None: ungraded)


@dataclass(frozen=True)
class _Step:
    scan: ItemScan | None = None
    inspection: Inspection | None = None
    item: ReturnItem | None = None

    @property
    def kind(self) -> str:
        return "scan" if self.scan is not None else "grade"

    def describe(self) -> str:
        if self.inspection is not None:
            assert self.item is not None
            return f"grade {self.inspection.grade} on {_unit(self.item)}"
        assert self.scan is not None
        if self.item is None:
            return f"the flagged scan of '{self.scan.code}' ({self.scan.result.replace('_', ' ')})"
        serial = f" (serial {self.item.received_serial})" if self.item.received_serial else ""
        return f"the scan of {_unit(self.item)}{serial}"


def _unit(item: ReturnItem) -> str:
    return f"{item.order_line.sku} {item.order_line.title}"


def _last_step(session: Session, receipt_id: uuid.UUID) -> _Step | None:
    """The parcel's most recent step not yet taken back, by the time it was recorded (steps at
    the bench are seconds apart; within one table the same instant falls back to insertion order).
    A scan and a grade at the same instant: the grade counts as later, as a grade always follows
    the scan of its unit."""
    scan = session.scalars(
        select(ItemScan).where(ItemScan.receipt_id == receipt_id, ItemScan.undone_at.is_(None))
        .order_by(*[t.desc() for t in recorded_order(session, ItemScan.scanned_at)]).limit(1)).first()
    inspection = session.scalars(
        select(Inspection).join(ReturnItem, ReturnItem.id == Inspection.return_item_id)
        .where(ReturnItem.receipt_id == receipt_id, Inspection.undone_at.is_(None))
        .order_by(*[t.desc() for t in recorded_order(session, Inspection.inspected_at)]).limit(1)).first()
    if inspection is not None and (scan is None or inspection.inspected_at >= scan.scanned_at):
        return _Step(inspection=inspection, item=session.get(ReturnItem, inspection.return_item_id))
    if scan is None:
        return None
    item = session.get(ReturnItem, scan.return_item_id) if scan.return_item_id is not None else None
    if item is not None:
        # A clock set back between the scan and the grade: the unit's grade still goes first.
        graded = session.scalars(
            select(Inspection).where(Inspection.return_item_id == item.id, Inspection.undone_at.is_(None))
            .order_by(*[t.desc() for t in recorded_order(session, Inspection.inspected_at)]).limit(1)).first()
        if graded is not None:
            return _Step(inspection=graded, item=item)
    return _Step(scan=scan, item=item)


def _parcel_rmas(session: Session, receipt_id: uuid.UUID) -> list[ReturnAuthorization]:
    ids = session.scalars(select(ReceiptRma.rma_id).where(ReceiptRma.receipt_id == receipt_id)
                          .order_by(ReceiptRma.rma_id))
    return [get_rma(session, i) for i in ids]


def _decided(session: Session, rmas: list[ReturnAuthorization]) -> str | None:
    """Why nothing can be taken back because a unit of the parcel's RMAs is decided, or None."""
    row = session.execute(
        select(ReturnItem, ReturnAuthorization.number)
        .join(DecisionLine, DecisionLine.return_item_id == ReturnItem.id)
        .join(ReturnAuthorization, ReturnAuthorization.id == ReturnItem.rma_id)
        .where(ReturnItem.rma_id.in_([r.id for r in rmas]), DecisionLine.active)
        .order_by(ReturnItem.id).limit(1)).first()
    if row is None:
        return None
    item, number = row
    return (f"{item.order_line.sku} on {number} is already decided, so this parcel's scans and grades can no "
            "longer be taken back: a correction is a new, audited decision (ask a supervisor).")


def _put_away(session: Session, step: _Step) -> str | None:
    if step.item is None:
        return None
    placed = session.scalars(select(Disposition).where(Disposition.return_item_id == step.item.id)
                             .order_by(Disposition.decided_at.desc()).limit(1)).first()
    if placed is None:
        return None
    return (f"{_unit(step.item)} was already put away ({placed.lpn}, bin {placed.bin_hint}), so "
            f"{step.describe()} can no longer be taken back: fetch the unit and ask a supervisor.")


def last_undoable(session: Session, receipt_id: uuid.UUID) -> str | None:
    """What Ctrl+Z would take back on this parcel, as a phrase for a hint ("the scan of SKU-1 ...",
    "grade B on SKU-1 ..."), or None when there is nothing it could take back."""
    receipt = session.get(ParcelReceipt, receipt_id)
    if receipt is None:
        return None
    rmas = _parcel_rmas(session, receipt_id)
    if any(r.status not in OPEN_STATUSES for r in rmas) or _decided(session, rmas):
        return None
    step = _last_step(session, receipt_id)
    if step is None or _put_away(session, step):
        return None
    return step.describe()


def undo_last(uow: UnitOfWork, ctx: StationContext, receipt_id: uuid.UUID) -> UndoResult:
    """Take back the parcel's last scan or grade and commit.

    A matched scan: the unit is awaiting again (its received serial and parcel cleared), so it
    can be scanned again. A flagged scan: withdrawn. A grade: the unit has its previous grade
    again, or none. The step's row is kept, marked undone; an audit event says who took it back.
    """
    require(ctx.actor, RECEIVE)
    session = uow.session
    receipt = session.get(ParcelReceipt, receipt_id)
    if receipt is None:
        raise NotFound("This parcel has not been received yet: there is nothing to take back.")
    rmas = _parcel_rmas(session, receipt_id)
    refusal = _decided(session, rmas)
    if refusal:
        raise StateConflict(refusal)
    for rma in rmas:
        ensure_open(session, ctx, rma)
    step = _last_step(session, receipt_id)
    if step is None:
        raise StateConflict("Nothing to take back on this parcel: no scan or grade is left to undo.")
    if refusal := _put_away(session, step):
        raise StateConflict(refusal)
    what = step.describe()
    now = ctx.now()
    if step.inspection is not None:
        inspection, item = step.inspection, step.item
        assert item is not None
        rma = get_rma(session, item.rma_id)
        inspection.undone_at = now
        session.flush()
        grade_now = latest_grades(session, [item.id]).get(item.id)
        after = f"graded {grade_now} ({GRADE_LABELS[grade_now]}) again" if grade_now else "ungraded again"
        audit.record(session, ctx, "grade_undone", "return_item", item.id,
                     {"inspection": str(inspection.id), "grade": inspection.grade, "grade_now": grade_now,
                      "rma": rma.number, "receipt": str(receipt_id)})
        add_event(uow, ctx, "grade_undone", inspection.id, [rma], [inspection])
        uow.commit()
        return UndoResult(receipt_id, "grade", inspection.id, item.id, f"Took back {what}: {after}.", grade_now)
    scan, item = step.scan, step.item
    assert scan is not None
    if item is not None and (item.reception_status != "received" or item.receipt_id != receipt_id):
        raise StateConflict(f"{_unit(item)} is no longer received in this parcel "
                            f"({item.reception_status.replace('_', ' ')}): its scan cannot be taken back.")
    scan.undone_at = now
    details: dict[str, object] = {"scan": str(scan.id), "code": scan.code, "result": scan.result}
    if item is not None:
        rma = get_rma(session, item.rma_id)
        details |= {"return_item_id": item.id, "rma": rma.number, "serial": item.received_serial}
        item.reception_status = "awaiting"
        item.received_serial = None
        item.receipt_id = None
        after = f"awaiting again on {rma.number}"
    else:
        after = "withdrawn"
    audit.record(session, ctx, "scan_undone", "receipt", receipt_id, details)
    add_event(uow, ctx, "scan_undone", scan.id, rmas, [receipt, scan])
    uow.commit()
    return UndoResult(receipt_id, "scan", scan.id, item.id if item else None, f"Took back {what}: {after}.")
