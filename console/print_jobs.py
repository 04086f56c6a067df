"""What prints when, routed by the station's printer settings into the print queue.

After a decision every received unit gets its disposition (the suggested one unless a person
chose) and its disposition label; an approved exchange prints the exchange slip and an approved
refund the customer's receipt. A decision waiting for review prints only the labels, which
send its units to quarantine until a supervisor decides.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from console import print_queue, printouts
from console.context import StationContext
from console.disposition import dispose
from console.print_queue import enqueue
from console.errors import NotFound
from console.permissions import PRINT, require
from db.models import Decision, Disposition, PrintJob, ReturnAuthorization, ReturnItem
from db.uow import UnitOfWork
from printing.content import DispositionLabel, Document
from printing.render import document_kind, reference, render
from printing.settings import PrinterSettings


@dataclass(frozen=True)
class Queued:
    """A print job stored for the dispatcher: what, for whom, on which printer."""

    job_id: uuid.UUID
    document: str
    reference: str
    printer: str
    decision_id: uuid.UUID | None = None  # the decision it was printed for, if any


def submit(uow: UnitOfWork, ctx: StationContext, settings: PrinterSettings, doc: Document,
           decision_id: uuid.UUID | None = None) -> Queued:
    """Render ``doc`` as its settings say and store the job; the caller commits. The one path from
    a document to the queue: the bench, the review verdict, the history page and the test print."""
    require(ctx.actor, PRINT)
    kind = document_kind(doc)
    route = settings.route(kind)
    payload = render(doc, route.format, route.dpi, route.size, route.copies)
    job_id = enqueue(uow, ctx, kind, reference(doc), route.printer, payload)
    return Queued(job_id, kind, reference(doc), route.printer, decision_id)


def put_away(uow: UnitOfWork, ctx: StationContext, item: ReturnItem, kind: str | None = None, *,
             after: str | None = None) -> DispositionLabel:
    """A unit's disposition (``kind``, or the suggested one) and the label that sends it there."""
    dispose(uow, ctx, item.id, kind, after=after)
    return printouts.disposition_label(uow.session, ctx, item.id)


def print_after_decision(uow: UnitOfWork, ctx: StationContext, settings: PrinterSettings,
                         decision_id: uuid.UUID) -> list[Queued]:
    """At the bench, once a decision is recorded: each received unit's disposition (the
    suggested one unless a person chose) and its label, and for an approved exchange the slip,
    for an approved refund the receipt. The caller commits them together."""
    require(ctx.actor, PRINT)
    session = uow.session
    decision = session.get(Decision, decision_id)
    if decision is None or decision.kind == "deny":
        return []  # a denied unit goes back to the customer: no put-away label
    docs: list[Document] = []
    for line in decision.lines:
        item = session.get(ReturnItem, line.return_item_id)
        if not line.active or item is None or item.reception_status != "received":
            continue
        already = session.scalar(select(Disposition.id).where(Disposition.return_item_id == item.id).limit(1))
        if already is None:
            docs.append(put_away(uow, ctx, item))
        else:
            docs.append(printouts.disposition_label(session, ctx, item.id))
    if decision.status == "approved":
        docs += closing_documents(session, ctx, decision)
    return [submit(uow, ctx, settings, doc, decision.id) for doc in docs]


def closing_documents(session: Session, ctx: StationContext, decision: Decision) -> list[Document]:
    """What the customer's side of an approved decision prints: an exchange's slip, a refund's receipt."""
    if decision.kind == "exchange" and decision.exchange_sku:
        return [printouts.exchange_slip(session, ctx, decision)]
    if decision.kind in printouts.KINDS_WITH_RECEIPT:
        return [printouts.refund_receipt(session, ctx, decision)]
    return []


def reprint_rma(uow: UnitOfWork, ctx: StationContext, rma_number: str) -> list[uuid.UUID]:
    """Everything printed for an RMA again — the latest job of each document for the RMA and for
    each of its units' LPNs — as new jobs (asked for by a person), for the caller to commit.
    Nothing printed yet: refused."""
    require(ctx.actor, PRINT)
    session = uow.session
    rma_id = session.scalar(select(ReturnAuthorization.id).where(ReturnAuthorization.number == rma_number))
    if rma_id is None:
        raise NotFound(f"RMA {rma_number} is not known at this station.")
    lpns = [lpn for lpn in session.scalars(select(ReturnItem.lpn).where(ReturnItem.rma_id == rma_id)) if lpn]
    rows = session.execute(select(PrintJob.id, PrintJob.document, PrintJob.reference)
                           .where(PrintJob.reference.in_([rma_number, *lpns]), PrintJob.reprint_of.is_(None))
                           .order_by(PrintJob.created_at)).all()
    latest: dict[tuple[str, str], uuid.UUID] = {}
    for job_id, document, ref in rows:
        latest[(document, ref)] = job_id  # ordered by time: the last one wins
    if not latest:
        raise NotFound(f"Nothing was printed for {rma_number} yet: it prints when it is decided.")
    return [print_queue.reprint(uow, ctx, job_id) for job_id in latest.values()]
