"""`returns-console print …` and `returns-console print-queue …`: documents without the GUI.

``print DOCUMENT --rma R --out FILE`` renders to a file and touches no printer. Without
``--out`` the document goes through the station's print queue to the printer its settings
name (the folder printer on a fresh station), exactly as the console prints it.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from console.config import Settings
from console.errors import InvalidInput, NotFound
from printing.content import DOCUMENTS, Document

if TYPE_CHECKING:  # the commands import these when they run: parsing the command line stays light
    from console.station import Station
    from printing.settings import PrinterSettings


NAMES = ("print", "print-queue")


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("print", help="render a document to a file, or print it through the station's queue",
                       description="Render DOCUMENT for an RMA (every unit's label, or the RMA's latest decision) "
                                   "or for one unit by its LPN.")
    p.add_argument("document", choices=DOCUMENTS)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--rma", help="RMA number (or any code that finds the RMA)")
    which.add_argument("--lpn", help="one unit's LPN (labels and stickers)")
    p.add_argument("--format", choices=("pdf", "zpl", "escpos"), help="default: the document's printer settings")
    p.add_argument("--dpi", type=int, choices=(203, 300, 600), help="default: the document's printer settings")
    p.add_argument("--out", type=Path, help="write the rendered document here instead of printing it")

    q = sub.add_parser("print-queue", help="the station's print queue: list, send, reprint, cancel, retry")
    qs = q.add_subparsers(dest="action", required=True)
    ls = qs.add_parser("list", help="jobs, newest first, as JSON lines")
    ls.add_argument("--status", action="append", help="only jobs in this state (repeatable)")
    run = qs.add_parser("run", help="send due jobs now (and keep going with --forever)")
    run.add_argument("--forever", action="store_true")
    for action in ("reprint", "cancel", "retry"):
        a = qs.add_parser(action, help=f"{action} one job by its id (or the first 8 characters)")
        a.add_argument("job")


def printer_settings(settings: Settings) -> PrinterSettings:
    from printing.settings import load_printer_settings, printers_file

    return load_printer_settings(printers_file(settings.config_file), settings.data_dir)


def _documents(station: Station, document: str, rma: str | None, lpn: str | None) -> list[Document]:
    from console import printouts
    from console.lookup import find_code

    ctx = station.ctx()
    with station.uow() as uow:
        session = uow.session
        if lpn is not None:
            from sqlalchemy import select

            from db.models import ReturnItem
            item_id = session.scalar(select(ReturnItem.id).where(ReturnItem.lpn == lpn.strip().upper()))
            if item_id is None:
                raise NotFound(f"No unit carries the LPN {lpn}.")
            if document == "disposition-label":
                return [printouts.disposition_label(session, ctx, item_id)]
            if document == "lpn-sticker":
                return [printouts.lpn_sticker(session, item_id)]
            raise InvalidInput(f"a {document} is printed for an RMA: use --rma")
        assert rma is not None
        with station.reader() as reader:
            match = find_code(reader, rma)
        if not match.rmas:
            raise NotFound(f"No RMA found for {rma!r}.")
        rma_id = match.rmas[0].id
        if document in ("disposition-label", "lpn-sticker"):
            items = printouts.disposed_items(session, rma_id)
            if not items:
                raise InvalidInput(f"{match.rmas[0].number} has no unit with a disposition yet: grade and put "
                                   "its units away at the bench first (or run `returns-console simulate clerk`).")
            if document == "disposition-label":
                return [printouts.disposition_label(session, ctx, i) for i in items]
            return [printouts.lpn_sticker(session, i) for i in items]
        if document == "exchange-slip":
            return [printouts.exchange_slip(session, ctx, printouts.latest_decision(session, rma_id, ("exchange",)))]
        if document == "refund-receipt":
            decision = printouts.latest_decision(session, rma_id, printouts.KINDS_WITH_RECEIPT)
            return [printouts.refund_receipt(session, ctx, decision)]
        return [printouts.claim_packet(session, ctx, rma_id)]


def cmd_print(args: argparse.Namespace, settings: Settings) -> int:
    from console import print_queue
    from console.station import Station
    from printing.render import document_kind, reference, render_all
    from printing.settings import FORMATS, make_printers

    station = Station.open(settings)
    try:
        docs = _documents(station, args.document, args.rma, args.lpn)
        ps = printer_settings(settings)
        route = ps.route(args.document)
        fmt = args.format or route.format
        if fmt not in FORMATS[args.document]:
            raise InvalidInput(f"a {args.document} can be rendered as {' or '.join(FORMATS[args.document])}, "
                               f"not {fmt}")
        payload = render_all(docs, fmt, args.dpi or route.dpi, route.size, route.copies)
        out: dict[str, Any] = {"document": args.document, "reference": reference(docs[0]), "pages": len(docs),
                               "format": fmt, "bytes": len(payload.data)}
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_bytes(payload.data)
            out["written_to"] = str(args.out)
        else:
            with station.uow() as uow:
                job_id = print_queue.enqueue(uow, station.ctx(), document_kind(docs[0]), reference(docs[0]),
                                             route.printer, payload)
                uow.commit()
            dispatcher = print_queue.Dispatcher(station.sessions, make_printers(ps))
            outcome = dispatcher.send(job_id)
            out.update(job=str(job_id), printer=route.printer, status=outcome.status, message=outcome.message)
        print(json.dumps(out, ensure_ascii=False))
        return 0 if out.get("status", "printed") == "printed" else 1
    finally:
        station.close()


def _view(job: Any) -> dict[str, Any]:
    return {"id": str(job.id), "document": job.document, "reference": job.reference, "printer": job.printer,
            "format": job.format, "status": job.status, "attempts": job.attempts, "last_error": job.last_error,
            "result": job.result, "created_at": job.created_at.isoformat(),
            "reprint_of": str(job.reprint_of) if job.reprint_of else None}


def cmd_print_queue(args: argparse.Namespace, settings: Settings) -> int:
    from console import print_queue
    from console.station import Station
    from printing.settings import make_printers

    station = Station.open(settings)
    try:
        ctx = station.ctx()
        if args.action == "list":
            with station.uow() as uow:
                for job in print_queue.jobs(uow.session, statuses=tuple(args.status) if args.status else None):
                    print(json.dumps(_view(job), ensure_ascii=False))
            return 0
        if args.action == "run":
            dispatcher = print_queue.Dispatcher(station.sessions, make_printers(printer_settings(settings)))
            recovered = dispatcher.recover()
            if recovered:
                print(json.dumps({"uncertain": recovered, "message": "jobs interrupted by a crash: check and reprint"}))
            while True:
                for o in dispatcher.run_once():
                    print(json.dumps({"id": str(o.job_id), "status": o.status, "message": o.message},
                                     ensure_ascii=False), flush=True)
                if not args.forever:
                    return 0
                wait = dispatcher.next_due_in_s()
                time.sleep(min(5.0, wait if wait is not None else 5.0) or 0.2)
        with station.uow() as uow:
            job_id = print_queue.find_job(uow.session, args.job)
            if args.action == "reprint":
                said: dict[str, str] = {"reprint": str(print_queue.reprint(uow, ctx, job_id)), "of": str(job_id)}
            elif args.action == "cancel":
                print_queue.cancel(uow, ctx, job_id)
                said = {"cancelled": str(job_id)}
            else:
                print_queue.retry_now(uow, ctx, job_id)
                said = {"retry": str(job_id)}
            uow.commit()  # the command commits; what it says is what was committed
        print(json.dumps(said))
        return 0
    finally:
        station.close()


def run(args: argparse.Namespace, settings: Settings) -> int:
    return cmd_print(args, settings) if args.command == "print" else cmd_print_queue(args, settings)
