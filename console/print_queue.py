"""The station's persistent print queue.

A job is written (with its rendered bytes) before anything is sent, so a dead printer, a crash
or a restart never loses a printout. The dispatcher sends due jobs one at a time:

    waiting --claim--> sending --ok--> printed
                          |--printer fault (offline, paper out, timeout)--> waiting, retried with backoff
                          '--refused (settings)--> failed: fix the settings, then retry
    sending at start-up --> uncertain: it may have printed; only a person reprints it

"Nothing prints twice unless asked": a job is claimed with a conditional update before it is
sent, so two dispatchers never send the same job, and a job whose fate is unknown after a crash
is never re-sent automatically. A reprint is a new job that points at the one it repeats.
"""
from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, defer, sessionmaker

from console import audit
from console.context import StationContext
from console.errors import NotFound, StateConflict
from db.models import PrintJob
from db.types import utcnow
from db.uow import UnitOfWork, rows_changed
from printing.printers import Printer, PrinterError, PrintPayload

MAX_BACKOFF_S = 300.0
FIRST_BACKOFF_S = 2.0


@dataclass(frozen=True)
class JobView:
    """A print job as the queue screen and the CLI show it (no payload)."""

    id: uuid.UUID
    document: str
    reference: str
    printer: str
    format: str
    copies: int
    status: str
    attempts: int
    last_error: str | None
    result: str | None
    created_at: datetime
    printed_at: datetime | None
    next_attempt_at: datetime
    reprint_of: uuid.UUID | None

    @classmethod
    def of(cls, job: PrintJob) -> JobView:
        return cls(job.id, job.document, job.reference, job.printer, job.format, job.copies, job.status,
                   job.attempts, job.last_error, job.result, job.created_at, job.printed_at, job.next_attempt_at,
                   job.reprint_of)


def enqueue(uow: UnitOfWork, ctx: StationContext, document: str, reference: str, printer: str,
            payload: PrintPayload, *, reprint_of: uuid.UUID | None = None) -> uuid.UUID:
    """Store a job for ``printer``; the dispatcher sends it once the caller commits. Audited, like
    every print."""
    job = PrintJob(id=uuid.uuid4(), station_id=ctx.station_id, document=document, reference=reference,
                   printer=printer, format=payload.format, payload=payload.data, copies=payload.copies,
                   status="waiting", attempts=0, next_attempt_at=ctx.now(), requested_by_id=ctx.actor.user_id,
                   reprint_of=reprint_of, created_at=ctx.now())
    uow.session.add(job)
    audit.record(uow.session, ctx, "reprint_requested" if reprint_of else "print_requested", "print_job", job.id,
                 {"document": document, "reference": reference, "printer": printer, "format": payload.format})
    return job.id


def _job(session: Session, job_id: uuid.UUID) -> PrintJob:
    job = session.get(PrintJob, job_id)
    if job is None:
        raise NotFound(f"Print job {str(job_id)[:8]} is not in this station's queue.")
    return job


def reprint(uow: UnitOfWork, ctx: StationContext, job_id: uuid.UUID, printer: str | None = None) -> uuid.UUID:
    """The same bytes again, as a new job (asked for by a person, so it may print twice); the
    caller commits."""
    old = _job(uow.session, job_id)
    payload = PrintPayload(data=old.payload, format=old.format, name=f"{old.document}-{old.reference}",
                           copies=old.copies)
    return enqueue(uow, ctx, old.document, old.reference, printer or old.printer, payload, reprint_of=old.id)


def cancel(uow: UnitOfWork, ctx: StationContext, job_id: uuid.UUID) -> None:
    job = _job(uow.session, job_id)
    if job.status in ("printed", "cancelled"):
        raise StateConflict(f"The {job.document} for {job.reference} is already {job.status}.")
    if job.status == "sending":
        raise StateConflict(f"The {job.document} for {job.reference} is being sent right now; "
                            "cancel it on the printer if it must not come out.")
    job.status = "cancelled"
    audit.record(uow.session, ctx, "print_cancelled", "print_job", job.id, {"reference": job.reference})


def retry_now(uow: UnitOfWork, ctx: StationContext, job_id: uuid.UUID, printer: str | None = None) -> None:
    """A waiting or failed job goes out at the next dispatch (on another printer if given), once
    the caller commits."""
    job = _job(uow.session, job_id)
    if job.status not in ("waiting", "failed"):
        raise StateConflict(f"The {job.document} for {job.reference} is {job.status}; "
                            + ("reprint it instead." if job.status in ("printed", "uncertain") else "it cannot be retried."))
    job.status = "waiting"
    job.next_attempt_at = ctx.now()
    if printer:
        job.printer = printer


def jobs(session: Session, *, statuses: tuple[str, ...] | None = None, reference: str | None = None,
         limit: int = 200) -> list[JobView]:
    """Newest first, without the rendered bytes (a list never needs them)."""
    query = select(PrintJob).options(defer(PrintJob.payload))
    if statuses:
        query = query.where(PrintJob.status.in_(statuses))
    if reference:
        query = query.where(PrintJob.reference.contains(reference.strip().upper()))
    return [JobView.of(j) for j in session.scalars(query.order_by(PrintJob.created_at.desc()).limit(limit))]


def find_job(session: Session, id_or_prefix: str) -> uuid.UUID:
    """A job by its id, or by the first characters of it as the queue shows them."""
    text = id_or_prefix.strip().lower()
    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    matches = [job_id for job_id in session.scalars(select(PrintJob.id)) if str(job_id).startswith(text)]
    if len(matches) != 1:
        raise NotFound(f"{'No' if not matches else 'More than one'} print job starts with {text!r}.")
    return matches[0]


def backoff_s(attempts: int, rng: random.Random | None = None) -> float:
    """2, 4, 8 … seconds up to five minutes, ±20 % so that stations do not retry in step."""
    base = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** max(0, attempts - 1))
    return base * (0.8 + 0.4 * (rng or random).random())


@dataclass(frozen=True)
class Outcome:
    job_id: uuid.UUID
    status: str
    message: str


class Dispatcher:
    """Sends due jobs. Runs on a worker thread in the console and in `returns-console print-queue`;
    every state change is its own short write transaction (a unit of work: its commit carries an
    audit row to central) that starts with the write."""

    def __init__(self, sessions: sessionmaker[Session], printers: Mapping[str, Printer],
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.sessions = sessions
        self.printers = printers
        self.clock = clock

    def recover(self) -> int:
        """At start-up: jobs left 'sending' by a crash become 'uncertain' (never re-sent by themselves)."""
        with UnitOfWork(self.sessions) as uow:
            count = rows_changed(
                uow.session, update(PrintJob).where(PrintJob.status == "sending")
                .values(status="uncertain", last_error="The console stopped while this was being sent: check the "
                        "printer, and reprint it if it did not come out."))
            uow.commit()
        return count or 0

    def due(self, limit: int = 20) -> list[uuid.UUID]:
        with self.sessions() as session:
            return list(session.scalars(select(PrintJob.id).where(PrintJob.status == "waiting",
                                                                  PrintJob.next_attempt_at <= self.clock())
                                        .order_by(PrintJob.created_at).limit(limit)))

    def next_due_in_s(self) -> float | None:
        """Seconds until the next waiting job is due (0 if one is due now), None if none waits."""
        with self.sessions() as session:
            at = session.scalar(select(PrintJob.next_attempt_at).where(PrintJob.status == "waiting")
                                .order_by(PrintJob.next_attempt_at).limit(1))
        return None if at is None else max(0.0, (at - self.clock()).total_seconds())

    def run_once(self) -> list[Outcome]:
        return [self.send(job_id) for job_id in self.due()]

    def send(self, job_id: uuid.UUID) -> Outcome:
        with UnitOfWork(self.sessions) as uow:
            claimed = rows_changed(
                uow.session, update(PrintJob).where(PrintJob.id == job_id, PrintJob.status == "waiting")
                .values(status="sending", attempts=PrintJob.attempts + 1))
            uow.commit()
            if not claimed:
                return Outcome(job_id, "skipped", "another dispatcher or a person took this job")
            job = uow.session.get(PrintJob, job_id)
            assert job is not None
            payload = PrintPayload(job.payload, job.format, f"{job.document}-{job.reference}", job.copies)
            printer = self.printers.get(job.printer)
            attempts, printer_name = job.attempts, job.printer
        if printer is None:
            return self._finish(job_id, "failed", error=f"Printer '{printer_name}' is not set up at this station: "
                                "choose another printer for it, or set it up in the printer settings.")
        try:
            result = printer.send(payload)
        except PrinterError as exc:
            if exc.retryable:
                return self._finish(job_id, "waiting", error=exc.message,
                                    next_at=self.clock() + timedelta(seconds=backoff_s(attempts)))
            return self._finish(job_id, "failed", error=exc.message)
        except Exception as exc:  # noqa: BLE001 - a backend bug must not leave the job 'sending' forever
            return self._finish(job_id, "failed", error=f"Printing failed unexpectedly ({exc!r}).")
        return self._finish(job_id, "printed", result=result)

    def _finish(self, job_id: uuid.UUID, status: str, *, error: str | None = None, result: str | None = None,
                next_at: datetime | None = None) -> Outcome:
        values: dict[str, object] = {"status": status, "last_error": error}
        if result is not None:
            values["result"] = result[:200]
        if status == "printed":
            values["printed_at"] = self.clock()
        if next_at is not None:
            values["next_attempt_at"] = next_at
        with UnitOfWork(self.sessions) as uow:
            session = uow.session
            # The write lock from BEGIN on: the audit row below reads the chain's last row, and
            # another writer must not add one in between (see console.audit.append).
            session.connection(execution_options={"sqlite_begin": "immediate"})
            finished = rows_changed(
                session, update(PrintJob).where(PrintJob.id == job_id, PrintJob.status == "sending").values(**values))
            if finished and status == "printed":
                self._audit_printed(session, job_id, result)
            uow.commit()  # with the audit row's outbox event
        return Outcome(job_id, status, error or result or "")

    def _audit_printed(self, session: Session, job_id: uuid.UUID, result: str | None) -> None:
        """Every print is audited: the request when it is queued, the paper when it comes out. The
        dispatcher is nobody; the event names who asked for the print."""
        job = session.execute(select(PrintJob.station_id, PrintJob.requested_by_id, PrintJob.document,
                                     PrintJob.reference, PrintJob.printer, PrintJob.copies, PrintJob.attempts,
                                     PrintJob.reprint_of).where(PrintJob.id == job_id)).one()
        audit.append(session, job.station_id, job.requested_by_id, self.clock(), "document_printed", "print_job",
                     job_id, {"document": job.document, "reference": job.reference, "printer": job.printer,
                              "copies": job.copies, "attempts": job.attempts,
                              "reprint_of": str(job.reprint_of) if job.reprint_of else None,
                              "result": (result or "")[:200]})
