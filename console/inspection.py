"""Grading a received unit: A new-sealed, B like-new, C used-good, D damaged, F unsellable / not the item."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from console import audit
from console.card_numbers import free_text
from console.context import StationContext
from console.errors import InvalidInput, NotFound, StateConflict
from console.rmas import add_event, ensure_open, get_rma, recorded_order
from console.permissions import RECEIVE, require
from db.models import GRADES, DecisionLine, Inspection, ReturnItem
from db.uow import UnitOfWork

GRADE_LABELS = {"A": "new, sealed", "B": "like new", "C": "used, good", "D": "damaged", "F": "unsellable / not the item"}
CHECKLIST = {
    "tags_attached": "Tags attached",
    "original_packaging": "Original packaging",
    "accessories_complete": "Accessories complete",
    "signs_of_use": "Signs of use",
    "damage": "Damage",
    "serial_matches": "Serial number matches",
}


@dataclass(frozen=True)
class UnitInspection:
    """A unit's inspection as the clerk has it so far (recorded with its grade)."""

    checklist: dict[str, bool] = field(default_factory=dict)
    notes: str = ""
    photos: tuple[str, ...] = ()


@dataclass(frozen=True)
class InspectionResult:
    inspection_id: uuid.UUID
    return_item_id: int
    grade: str


def inspect_item(uow: UnitOfWork, ctx: StationContext, return_item_id: int, grade: str, *,
                 checklist: dict[str, bool] | None = None, notes: str | None = None,
                 photos: list[str] | None = None) -> InspectionResult:
    """Record a grade (a later inspection of the same unit replaces the earlier one) and commit."""
    require(ctx.actor, RECEIVE)
    session = uow.session
    grade = (grade or "").strip().upper()
    if grade not in GRADES:
        raise InvalidInput(f"grade '{grade}' is not one of {', '.join(GRADES)}")
    unknown = set(checklist or {}) - set(CHECKLIST)
    if unknown:
        raise InvalidInput(f"unknown checklist entries: {', '.join(sorted(unknown))}")
    item = session.get(ReturnItem, return_item_id)
    if item is None:
        raise NotFound(f"Return item #{return_item_id} is not known at this station.")
    rma = get_rma(session, item.rma_id)
    ensure_open(session, ctx, rma)
    if item.reception_status != "received":
        raise StateConflict(f"{item.order_line.sku} has not been scanned in this parcel yet: scan it before grading.")
    decided = session.scalar(select(DecisionLine.decision_id).where(DecisionLine.return_item_id == item.id,
                                                                    DecisionLine.active))
    if decided is not None:
        raise StateConflict(f"{item.order_line.sku} on {rma.number} is already decided; corrections need a new, "
                            "audited decision.")
    inspection = Inspection(return_item_id=item.id, user_id=ctx.actor.user_id, station_id=ctx.station_id,
                            grade=grade, checklist=dict(checklist or {}), notes=free_text(notes), photos=list(photos or []),
                            inspected_at=ctx.now())
    session.add(inspection)
    audit.record(session, ctx, "item_graded", "return_item", item.id, {"grade": grade, "rma": rma.number})
    session.flush()  # the row gets its id (a Python-side default) before the outbox names it
    add_event(uow, ctx, "inspection", inspection.id, [rma], [inspection])
    uow.commit()
    return InspectionResult(inspection.id, item.id, grade)


def latest_inspections(session: Session, item_ids: list[int]) -> dict[int, Inspection]:
    """Each item's most recent inspection not taken back (undone); items never graded are missing."""
    latest: dict[int, Inspection] = {}
    for inspection in session.scalars(
        select(Inspection).where(Inspection.return_item_id.in_(item_ids), Inspection.undone_at.is_(None))
        .order_by(*recorded_order(session, Inspection.inspected_at))
    ):
        latest[inspection.return_item_id] = inspection
    return latest


def latest_grades(session: Session, item_ids: list[int]) -> dict[int, str]:
    """Each item's most recent grade not taken back (undone); items never graded are missing."""
    return {item_id: i.grade for item_id, i in latest_inspections(session, item_ids).items()}
