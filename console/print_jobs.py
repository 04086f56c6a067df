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

from console import printouts
from console.context import StationContext
from console.disposition import dispose
from console.print_queue import enqueue
from db.models import Decision, Disposition, ReturnItem
from db.uow import UnitOfWork
from printing.content import Document
from printing.render import document_kind, reference, render
from printing.settings import PrinterSettings


@dataclass(frozen=True)
class Queued:
    job_id: uuid.UUID
    document: str
    reference: str
    printer: str


def submit(uow: UnitOfWork, ctx: StationContext, settings: PrinterSettings, doc: Document) -> Queued:
    """Render ``doc`` as its settings say and store the job (committed)."""
    kind = document_kind(doc)
    route = settings.route(kind)
    payload = render(doc, route.format, route.dpi, route.size, route.copies)
    job_id = enqueue(uow, ctx, kind, reference(doc), route.printer, payload)
    return Queued(job_id, kind, reference(doc), route.printer)


def print_after_decision(uow: UnitOfWork, ctx: StationContext, settings: PrinterSettings,
                         decision_id: uuid.UUID) -> list[Queued]:
    session = uow.session
    decision = session.get(Decision, decision_id)
    if decision is None or decision.kind == "deny":
        return []  # a denied unit goes back to the customer: no put-away label
    queued: list[Queued] = []
    for line in decision.lines:
        item = session.get(ReturnItem, line.return_item_id)
        if not line.active or item is None or item.reception_status != "received":
            continue
        already = session.scalar(select(Disposition.id).where(Disposition.return_item_id == item.id).limit(1))
        if already is None:
            dispose(uow, ctx, item.id)
        queued.append(submit(uow, ctx, settings, printouts.disposition_label(session, ctx, item.id)))
    if decision.status == "approved":
        if decision.kind == "exchange":
            queued.append(submit(uow, ctx, settings, printouts.exchange_slip(session, ctx, decision)))
        elif decision.kind in printouts.KINDS_WITH_RECEIPT:
            queued.append(submit(uow, ctx, settings, printouts.refund_receipt(session, ctx, decision)))
    return queued
