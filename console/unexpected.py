"""Parcels that arrive without a return authorization, and parcels nothing can be found for.

* A code that finds the order but no open RMA: ``receive_without_rma`` authorizes a return of
  every unit of the order still returnable (reason ``unexpected_return``, marked as created at
  the bench) and receives the parcel on it, in one transaction. The caller generates the
  receipt id before the first attempt, so a retry after a crash or a double Enter finds the
  parcel and its RMA instead of creating a second one.
* Nothing found at all: ``record_unidentified`` records the parcel with its weight, photos and a
  description, in quarantine and on no RMA; ``unidentified_parcels`` lists what waits there, and
  ``match_unidentified`` attaches one to the RMA a code finds later and releases it.
"""
from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from console import audit
from console.authorization import ReturnLine, authorize_return, quantity_left
from console.card_numbers import free_text
from console.codes import normalize
from console.context import StationContext
from console.errors import InvalidInput, NotFound, PolicyViolation, StateConflict
from console.lookup import CodeMatch, RmaRef, find_code
from console.paid import VOID_RMA_STATUSES
from console.receiving import ReceiptResult, _validate_weight, check_weight, expected_weight
from console.rmas import OPEN_STATUSES, add_event, get_rma, recorded_order
from console.permissions import RECEIVE, require
from console.photos import MAX_PHOTOS
from db.models import OrderLine, ParcelReceipt, ReceiptRma, ReturnAuthorization, User
from db.uow import UnitOfWork

UNEXPECTED_REASON = "unexpected_return"
CREATED_AT_BENCH = "Created at the bench"  # how an RMA made for an unexpected parcel begins its comment


# --- parcels for an order with no return authorization ------------------------------------------

def receive_without_rma(uow: UnitOfWork, ctx: StationContext, code: str, *, weight_g: int | None = None,
                        weight_source: str | None = None, weight_reason: str | None = None,
                        scale_division_g: int | None = None, receipt_id: uuid.UUID | None = None) -> ReceiptResult:
    """Authorize a return of every unit of the order ``code`` finds that is still returnable,
    receive the parcel on that new RMA, and commit both at once.

    Refused when the order already has an open RMA (receive the parcel on it) and when every
    unit of the order is already on a return authorization.
    """
    require(ctx.actor, RECEIVE)
    _validate_weight(weight_g, weight_source, weight_reason, scale_division_g)
    session = uow.session
    receipt_id = receipt_id or uuid.uuid4()
    existing = session.get(ParcelReceipt, receipt_id)
    if existing is not None:  # the same command again (a retry, a double Enter): nothing more is created
        return _existing_result(session, ctx, existing)
    match = find_code(session, code)
    rma = _authorize_unexpected(uow, ctx, match)
    expected = expected_weight(uow, ctx, [rma.id])
    division = scale_division_g if weight_g is not None and weight_source == "scale" else None
    weight = check_weight(ctx, weight_g, expected, division)
    receipt = ParcelReceipt(id=receipt_id, station_id=ctx.station_id, user_id=ctx.actor.user_id,
                            received_at=ctx.now(), scanned_code=normalize(code)[:100], weight_g=weight_g,
                            weight_source=weight_source if weight_g is not None else None,
                            weight_reason=weight_reason, expected_weight_g=expected, scale_division_g=division,
                            order_id=match.order_id, note="unexpected: came without a return authorization")
    session.add(receipt)
    session.flush()
    link = ReceiptRma(receipt_id=receipt.id, rma_id=rma.id)
    session.add(link)
    rma.status = "received"
    audit.record(session, ctx, "unexpected_parcel_received", "receipt", receipt.id,
                 {"rma": rma.number, "order": match.order_number, "units": len(rma.items), "weight_g": weight_g,
                  "expected_g": expected, "weight_mismatch": weight.mismatch})
    add_event(uow, ctx, "receipt", receipt.id, [rma], [receipt, link])
    uow.commit()
    found = dataclasses.replace(match, rmas=[*match.rmas, RmaRef(rma.id, rma.number, rma.status)])
    return ReceiptResult(receipt.id, [rma.id], [rma.number], found, weight, False)


def _authorize_unexpected(uow: UnitOfWork, ctx: StationContext, match: CodeMatch) -> ReturnAuthorization:
    """An RMA, not committed, for every unit of the matched order not yet on a return authorization.
    Refused while the order has an open RMA: the parcel is received on that one."""
    session = uow.session
    open_rmas = session.scalars(select(ReturnAuthorization.number).where(
        ReturnAuthorization.order_id == match.order_id, ReturnAuthorization.status.in_(OPEN_STATUSES))
        .order_by(ReturnAuthorization.id)).all()
    if open_rmas:
        raise StateConflict(f"Order {match.order_number} already has an open return authorization "
                            f"({', '.join(open_rmas)}): receive the parcel on it by scanning {open_rmas[0]}.")
    if UNEXPECTED_REASON not in ctx.policy.reasons:
        raise PolicyViolation(f"Policy {ctx.policy.version} has no reason code '{UNEXPECTED_REASON}' for parcels "
                              "that come without a return authorization: ask an administrator to add it to the "
                              "policy's [reasons], or create an RMA for the order by hand.")
    lines = session.scalars(select(OrderLine).where(OrderLine.order_id == match.order_id)
                            .order_by(OrderLine.line_no)).all()
    requests = [ReturnLine(line.id, left, UNEXPECTED_REASON) for line in lines
                if (left := quantity_left(uow, line)) > 0]
    if not requests:
        covering = [r.number for r in match.rmas if r.status not in VOID_RMA_STATUSES]
        on = f" ({', '.join(covering)})" if covering else ""
        raise StateConflict(f"Every unit of order {match.order_number} is already on a return authorization{on}: "
                            "nothing is left to return on it. Put the parcel aside for a supervisor.")
    comment = (f"{CREATED_AT_BENCH} by {ctx.actor.display_name} at station {ctx.station_id}: the parcel came "
               "without a return authorization.")
    return authorize_return(uow, ctx, match.order_number, requests, channel="mail", comment=comment)


def _existing_result(session: Session, ctx: StationContext, receipt: ParcelReceipt,
                     match: CodeMatch | None = None) -> ReceiptResult:
    rma_ids = list(session.scalars(select(ReceiptRma.rma_id).where(ReceiptRma.receipt_id == receipt.id)
                                   .order_by(ReceiptRma.rma_id)))
    if not rma_ids:
        raise StateConflict("This parcel was recorded as unidentified and waits in quarantine: match it to an "
                            "RMA from the list of unidentified parcels.")
    rmas = [get_rma(session, i) for i in rma_ids]
    match = match or find_code(session, receipt.scanned_code)
    refs = {r.id for r in match.rmas}
    match = dataclasses.replace(match, rmas=[*match.rmas, *(RmaRef(r.id, r.number, r.status)
                                                            for r in rmas if r.id not in refs)])
    return ReceiptResult(receipt.id, rma_ids, [r.number for r in rmas], match,
                         check_weight(ctx, receipt.weight_g, receipt.expected_weight_g or 0,
                                      receipt.scale_division_g), False)


# --- parcels nothing can be found for ----------------------------------------------------------

@dataclass(frozen=True)
class UnidentifiedParcel:
    receipt_id: uuid.UUID
    received_at: datetime
    station_id: str
    received_by: str
    scanned_code: str | None
    weight_g: int | None
    photos: list[str]
    note: str | None


def _check_photos(photos: list[str]) -> list[str]:
    if isinstance(photos, str) or not isinstance(photos, list | tuple):
        raise InvalidInput("photos must be a list of the photo files' paths")
    if len(photos) > MAX_PHOTOS:
        raise InvalidInput(f"{len(photos)} photos is more than the {MAX_PHOTOS} a parcel can keep: "
                           f"choose the {MAX_PHOTOS} that show it best.")
    for photo in photos:
        if not isinstance(photo, str) or not photo.strip():
            raise InvalidInput(f"photo {photo!r} is not a file path: take the photo again.")
        path = Path(photo)
        if not path.exists():
            raise InvalidInput(f"photo {photo} does not exist: take the photo again, or check the camera folder.")
        if not path.is_file():
            raise InvalidInput(f"photo {photo} is not a file: choose the photo itself, not its folder.")
    return list(photos)


def record_unidentified(uow: UnitOfWork, ctx: StationContext, code: str | None, *, weight_g: int | None,
                        weight_source: str | None, weight_reason: str | None, photos: list[str], note: str,
                        scale_division_g: int | None = None, receipt_id: uuid.UUID | None = None) -> uuid.UUID:
    """Record a parcel that matches no RMA, order or tracking number, in quarantine, and commit.

    ``code`` is whatever could be read from the parcel (a torn label, say), or None; ``photos``
    are paths of files the station camera wrote, stored as given; ``note`` describes the parcel
    (sender, contents, labels) so that it can be matched later. Returns the receipt id.
    """
    require(ctx.actor, RECEIVE)
    _validate_weight(weight_g, weight_source, weight_reason, scale_division_g)
    paths = _check_photos(photos)
    if not (note and note.strip()):
        raise InvalidInput("Describe the parcel (sender, contents, any label or slip) so that it can be "
                           "matched later.")
    session = uow.session
    receipt_id = receipt_id or uuid.uuid4()
    existing = session.get(ParcelReceipt, receipt_id)
    if existing is not None:  # the same command again: the parcel is already recorded
        return existing.id
    scanned = normalize(code or "")[:100]
    if scanned:
        try:
            match = find_code(session, code or "")
        except (NotFound, InvalidInput):
            pass  # nothing found, or a damaged label: the parcel is unidentified indeed
        else:
            if not match.rmas:
                raise StateConflict(f"'{scanned}' finds order {match.order_number}, which has no return "
                                    "authorization: record the parcel as unexpected on that order instead.")
            raise StateConflict(f"'{scanned}' finds {', '.join(r.number for r in match.rmas)}: receive the parcel "
                                "on it rather than as unidentified.")
    now = ctx.now()
    receipt = ParcelReceipt(id=receipt_id, station_id=ctx.station_id, user_id=ctx.actor.user_id, received_at=now,
                            scanned_code=scanned, weight_g=weight_g,
                            weight_source=weight_source if weight_g is not None else None,
                            weight_reason=weight_reason if weight_source == "manual" else None,
                            scale_division_g=scale_division_g if weight_source == "scale" else None,
                            note=free_text(note.strip()), photos=paths, quarantined_at=now)
    session.add(receipt)
    session.flush()
    audit.record(session, ctx, "parcel_unidentified", "receipt", receipt.id,
                 {"code": scanned or None, "weight_g": weight_g, "photos": len(paths)})
    add_event(uow, ctx, "receipt", receipt.id, [], [receipt])
    uow.commit()
    return receipt.id


def unidentified_parcels(session: Session, *, station_id: str | None = None,
                         limit: int = 200) -> list[UnidentifiedParcel]:
    """Parcels in quarantine waiting to be matched, oldest first."""
    query = (select(ParcelReceipt, User.display_name).join(User, User.id == ParcelReceipt.user_id)
             .where(ParcelReceipt.quarantined_at.is_not(None), ParcelReceipt.identified_at.is_(None))
             .order_by(*recorded_order(session, ParcelReceipt.received_at)).limit(limit))
    if station_id is not None:
        query = query.where(ParcelReceipt.station_id == station_id)
    return [UnidentifiedParcel(r.id, r.received_at, r.station_id, who, r.scanned_code or None, r.weight_g,
                               list(r.photos or []), r.note)
            for r, who in session.execute(query)]


def match_unidentified(uow: UnitOfWork, ctx: StationContext, receipt_id: uuid.UUID, code: str) -> ReceiptResult:
    """Attach an unidentified parcel to what ``code`` finds, release it from quarantine and commit.

    The code's open RMAs take the parcel; an order with no open RMA gets one for its units still
    returnable, as ``receive_without_rma`` does. Matching the same parcel again to the same code
    is answered with the earlier match.
    """
    require(ctx.actor, RECEIVE)
    session = uow.session
    receipt = session.get(ParcelReceipt, receipt_id)
    if receipt is None:
        raise NotFound("This parcel is not known at this station: refresh the list of unidentified parcels.")
    if receipt.quarantined_at is None:
        raise StateConflict("This parcel was received on an RMA, not recorded as unidentified: nothing to match.")
    match = find_code(session, code)
    if receipt.identified_at is not None:
        linked = [get_rma(session, i) for i in session.scalars(
            select(ReceiptRma.rma_id).where(ReceiptRma.receipt_id == receipt_id).order_by(ReceiptRma.rma_id))]
        if any(r.order_id == match.order_id for r in linked):  # the same match again (a retry)
            return _existing_result(session, ctx, receipt, match)
        raise StateConflict(f"This parcel was already matched to {', '.join(r.number for r in linked)} at "
                            f"{ctx.local_time_text(receipt.identified_at)}.")
    rmas = [get_rma(session, r.id) for r in match.open_rmas]
    created = not rmas
    if created:  # the order has no open RMA: one for its units still returnable, as for an unexpected parcel
        rmas = [_authorize_unexpected(uow, ctx, match)]
    links = [ReceiptRma(receipt_id=receipt.id, rma_id=r.id) for r in rmas]
    session.add_all(links)
    for rma in rmas:
        rma.status = "received"
    now = ctx.now()
    receipt.identified_at = now
    receipt.expected_weight_g = expected_weight(uow, ctx, [r.id for r in rmas])
    if created:
        receipt.order_id = match.order_id
    weight = check_weight(ctx, receipt.weight_g, receipt.expected_weight_g, receipt.scale_division_g)
    audit.record(session, ctx, "parcel_identified", "receipt", receipt.id,
                 {"code": match.code, "rmas": [r.number for r in rmas], "rma_created": created,
                  "expected_g": receipt.expected_weight_g, "weight_mismatch": weight.mismatch})
    add_event(uow, ctx, "receipt", receipt.id, rmas, [receipt, *links])
    uow.commit()
    refs = {r.id for r in match.rmas}
    found = dataclasses.replace(match, rmas=[*match.rmas, *(RmaRef(r.id, r.number, r.status)
                                                            for r in rmas if r.id not in refs)])
    return ReceiptResult(receipt.id, [r.id for r in rmas], [r.number for r in rmas], found, weight, False)
