"""The warehouse bench's session: the parcel in hand, and each step a clerk takes on it.

Qt-free, in the spirit of Mu's ``logic.Editor``: the window routes keys and draws; this object
holds what is open at the bench and answers what a scan, a key or a reading means now; the
steps themselves are the jobs below, which run on the database thread, each service call in its
own unit of work, with the context captured when the clerk pressed the key (not read later from
a station whose actor the GUI thread may have replaced meanwhile).

States: no parcel open (a scan is a parcel code) -> a parcel open (a scan is an item code, a
grade key grades the selected unit, decide decides, put down puts it down) -> no parcel open.
"""
from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from console.context import Actor, StationContext
from console.deciding import DecideCommand, DecisionResult, Proposal, decide, propose
from console.errors import DomainError, EnvironmentProblem, NotFound
from console.fetch import fetch_code
from console.inspection import UnitInspection, inspect_item
from console.lookup import find_code
from console.photos import MAX_PHOTOS, new_photos
from console.print_jobs import Queued, print_after_decision
from console.receiving import ReceiptResult, ScanResult, WeightCheck, receive_parcel, scan_item, weigh_parcel
from console.reconfirm import must_reconfirm, reconfirm
from console.signin import AccountLocked, locked_message, sign_in, sign_in_badge, sign_out
from console.station import Station
from console.undo import UndoResult, undo_last
from console.unexpected import receive_without_rma, record_unidentified
from console.views import RmaView, load_rma_view
from db.types import utcnow
from db.uow import UnitOfWork
from printing.settings import PrinterSettings

PROMPT_PARCEL = "Scan a parcel: RMA label, return tracking or order barcode"
TYPED_WEIGHT_REASON = "typed at bench"
T = TypeVar("T")


@dataclass(frozen=True)
class Bench:
    """What the bench shows of an open RMA: its view, and the proposal or why there is none yet."""

    view: RmaView
    proposal: Proposal | None
    proposal_note: str


@dataclass(frozen=True)
class Unexpected:
    """A parcel code that opened no RMA: the order it found (if any) and why."""

    code: str
    order_number: str | None
    message: str

    def offer(self) -> str:
        """What F6 would do with it, as the clerk reads it."""
        if self.order_number:
            return (f"Order {self.order_number} has no return authorization. Press F6 to create one and "
                    "receive the parcel on it, or scan another code.")
        return (f"{self.message} Press F6 to record it as an unidentified parcel (weight, photos, quarantined "
                "for matching later).")


@dataclass(frozen=True)
class Weight:
    """The parcel's weight as the bench has it: where it came from decides what is recorded."""

    grams: int | None
    division_g: int | None
    from_scale: bool

    def args(self) -> dict[str, Any]:
        """The weight's keyword arguments for the receiving services."""
        typed = self.grams is not None and not self.from_scale
        return {"weight_g": self.grams,
                "weight_source": None if self.grams is None else "scale" if self.from_scale else "manual",
                "weight_reason": TYPED_WEIGHT_REASON if typed else None,
                "scale_division_g": self.division_g if self.from_scale else None}


def kind_label(kind: str) -> str:
    return kind.replace("_", " ")


def announcement(result: DecisionResult) -> tuple[str, str]:
    """What the bench says once a decision is recorded: (level, text)."""
    again = " (already recorded)" if result.already_existed else ""
    amount = result.amount.format()
    if result.status == "pending_review":
        return "warning", (f"{result.rma_number}: waiting for supervisor review — {kind_label(result.kind)} "
                           f"{amount}{again}. {PROMPT_PARCEL}.")
    what = {"full_refund": f"Refund {amount}", "partial_refund": f"Refund {amount}",
            "store_credit": f"Store credit {amount}", "exchange": "Exchange",
            "deny": "Denial"}.get(result.kind, kind_label(result.kind))
    return "success", f"{result.rma_number}: {what} {result.status}{again}. {PROMPT_PARCEL}."


# -- jobs: on the database thread, each service call in its own unit of work ------------------

def load_bench(station: Station, ctx: StationContext, rma_id: int, kind: str | None) -> Bench:
    with station.read_uow() as uow:
        view = load_rma_view(uow.session, ctx, rma_id)
    try:
        with station.read_uow() as uow:
            proposal: Proposal | None = propose(uow, ctx, rma_id, kind)
        note = ""
    except DomainError as exc:  # not decidable yet (units not scanned or graded): say why
        proposal, note = None, exc.message
    return Bench(view, proposal, note)


def receive_job(station: Station, ctx: StationContext, code: str, weight: Weight, receipt_id: uuid.UUID, *,
                central_asked: bool = False) -> tuple[ReceiptResult, Bench] | Unexpected:
    """A parcel code: its RMA received, or (not known here, nor at central) what F6 can do."""
    try:
        with station.uow() as uow:
            receipt = receive_parcel(uow, ctx, code, receipt_id=receipt_id, **weight.args())
    except NotFound as exc:
        asked = "" if central_asked else ask_central(station, code)
        if asked is True:  # central knew it: now it is here too
            return receive_job(station, ctx, code, weight, receipt_id, central_asked=True)
        with station.uow() as uow:
            try:
                order: str | None = find_code(uow.session, code).order_number
            except (NotFound, DomainError):
                order = None
        return Unexpected(code.strip(), order, exc.message + (asked or ""))
    return receipt, load_bench(station, ctx, receipt.rma_ids[0], None)


def ask_central(station: Station, code: str) -> bool | str:
    """A code the station does not know, asked of central: True if central had it (now copied
    here), else the words to add to the clerk's message. On the database thread: the network
    wait (a few seconds at most) never holds the window."""
    central = station.central_for_lookups()
    if central is None:
        return ""
    try:
        if fetch_code(station.engine, central, code):
            return True
    except EnvironmentProblem:
        return " Central could not be asked (offline): work on; it is asked again at the next scan."
    except DomainError:
        return ""
    return " Central does not know it either."


def receive_unexpected_job(station: Station, ctx: StationContext, code: str, weight: Weight,
                           receipt_id: uuid.UUID) -> tuple[ReceiptResult, Bench]:
    with station.uow() as uow:
        receipt = receive_without_rma(uow, ctx, code, receipt_id=receipt_id, **weight.args())
    return receipt, load_bench(station, ctx, receipt.rma_ids[0], None)


def unidentified_job(station: Station, ctx: StationContext, code: str, weight: Weight, since: float, note: str,
                     receipt_id: uuid.UUID) -> tuple[uuid.UUID, int]:
    # The camera folder is read here, on the database thread: it may be a slow network share.
    photos = new_photos(station.settings.photo_folder, since, ())[:MAX_PHOTOS]
    with station.uow() as uow:
        recorded = record_unidentified(uow, ctx, code or None, photos=photos, note=note, receipt_id=receipt_id,
                                       **weight.args())
    return recorded, len(photos)


def scan_job(station: Station, ctx: StationContext, receipt_id: uuid.UUID, code: str, rma_id: int,
             kind: str | None) -> tuple[ScanResult, Bench]:
    with station.uow() as uow:
        result = scan_item(uow, ctx, receipt_id, code)
    return result, load_bench(station, ctx, rma_id, kind)


def weigh_job(station: Station, ctx: StationContext, receipt_id: uuid.UUID, grams: int,
              division_g: int | None) -> WeightCheck:
    with station.uow() as uow:
        return weigh_parcel(uow, ctx, receipt_id, grams, source="scale", scale_division_g=division_g)


def grade_job(station: Station, ctx: StationContext, return_item_id: int, grade: str, rma_id: int,
              kind: str | None, unit: UnitInspection | None = None) -> Bench:
    unit = unit or UnitInspection()
    with station.uow() as uow:
        inspect_item(uow, ctx, return_item_id, grade, checklist=dict(unit.checklist), notes=unit.notes or None,
                     photos=list(unit.photos))
    return load_bench(station, ctx, rma_id, kind)


def undo_job(station: Station, ctx: StationContext, receipt_id: uuid.UUID, rma_id: int,
             kind: str | None) -> tuple[UndoResult, Bench]:
    with station.uow() as uow:
        result = undo_last(uow, ctx, receipt_id)
    return result, load_bench(station, ctx, rma_id, kind)


def _signing_in(station: Station, check: Callable[[UnitOfWork], T]) -> T:
    try:
        with station.uow() as uow:
            return check(uow)
    except AccountLocked as exc:  # said in the station's time, not UTC
        raise AccountLocked(locked_message(exc.locked_until, station.zone), exc.locked_until) from None


def sign_in_job(station: Station, user: str, pin: str) -> Actor:
    return _signing_in(station, lambda uow: sign_in(uow, station.settings.station_id, user, pin, utcnow()))


def badge_job(station: Station, code: str) -> Actor:
    return _signing_in(station, lambda uow: sign_in_badge(uow, station.settings.station_id, code, utcnow()))


def sign_out_job(station: Station, ctx: StationContext, reason: str | None = None) -> None:
    with station.uow() as uow:
        sign_out(uow, ctx, reason=reason)


def reconfirm_job(station: Station, ctx: StationContext, secret: str, is_badge: bool) -> datetime:
    """The signed-in person's PIN or badge again: the time of the check."""
    return _signing_in(station, lambda uow: reconfirm(uow, ctx, secret, badge=is_badge))


def decide_job(station: Station, ctx: StationContext, command: DecideCommand) -> DecisionResult:
    with station.uow() as uow:
        return decide(uow, ctx, command)


def print_job(station: Station, ctx: StationContext, printers: PrinterSettings,
              decision_id: uuid.UUID) -> list[Queued]:
    with station.uow() as uow:
        queued = print_after_decision(uow, ctx, printers, decision_id)
        uow.commit()  # the labels, slip or receipt and the dispositions they print, together
    return queued


# -- the session --------------------------------------------------------------------------------

class Workbench:
    """What is open at one bench, on the GUI thread; the jobs above do the work.

    A result comes back for the parcel view it was asked for (``generation``): once that parcel
    is put down, ``current(generation)`` is False and the result is not drawn over the next one.
    While a parcel is being received or decided (``holding``), later scans wait in ``held``.
    """

    def __init__(self, station: Station) -> None:
        self.station = station
        self.receipt: ReceiptResult | None = None
        self.bench: Bench | None = None
        self.decision_id = uuid.uuid4()
        self.chosen_kind: str | None = None  # None: what policy proposes
        self.generation = 0
        self.holding = False
        self.held: deque[str] = deque()
        # The last parcel code that opened no RMA, offered to F6 (create the RMA / record it).
        self.unexpected: Unexpected | None = None
        # The grade last asked for per unit of the open parcel (its job may not have run yet).
        self.pending_grades: dict[int, str] = {}
        # The last stable scale reading taken before a parcel was scanned: (grams, division).
        self.scale_weight: tuple[int, int | None] | None = None
        # The parcel view the scale read in progress was asked for: a reading for a parcel that
        # was put down meanwhile is not the weight of whatever is open now.
        self.scale_asked_in: int | None = None
        # The idle lock keeps an open parcel for the person who had it (their user id).
        self.parcel_kept_for: int | None = None
        # An actor signed in before the window opened (tests, screenshots) proved nothing here:
        # the window's start counts as their check, as a sign-in would.
        self._started_at = utcnow()

    # -- state --------------------------------------------------------------------------------

    @property
    def parcel_open(self) -> bool:
        return self.receipt is not None

    @property
    def number(self) -> str | None:
        """The open RMA's number (None with nothing drawn yet)."""
        return self.bench.view.number if self.bench else None

    def current(self, generation: int) -> bool:
        return generation == self.generation

    def put_down(self) -> None:
        """Back to 'scan a parcel'. Nothing is deleted: what was recorded stays recorded."""
        self.generation += 1
        self.receipt = None
        self.bench = None
        self.chosen_kind = None
        self.decision_id = uuid.uuid4()
        self.pending_grades.clear()
        self.unexpected = None  # F6 acts only on the scan just before it
        self.scale_weight = None

    def opened(self, receipt: ReceiptResult, bench: Bench) -> None:
        self.receipt, self.bench, self.unexpected = receipt, bench, None

    def weighed(self, check: WeightCheck) -> None:
        assert self.receipt is not None
        self.receipt = replace(self.receipt, weight=check)

    def ctx(self) -> StationContext:
        """The context a step runs with: captured when it is asked for, on the GUI thread."""
        return self.station.ctx()

    # -- rules --------------------------------------------------------------------------------

    def weight(self, typed_grams: int) -> Weight:
        """The weight in the box, and whether it is the scale's: only if nobody retyped what the
        scale put there (0 is 'not weighed')."""
        grams = typed_grams or None
        scale = self.scale_weight
        from_scale = scale is not None and grams == scale[0]
        return Weight(grams, scale[1] if scale is not None and from_scale else None, from_scale)

    def scale_reading(self, grams: int, division: int | None) -> bool:
        """A stable reading arrived: True if it is the open parcel's weight to record now. With no
        parcel open it is kept for the next parcel code."""
        if self.receipt is None:
            self.scale_weight = (grams, division)
            return False
        return True

    def reading_is_current(self) -> bool:
        """Whether the scale reading that just arrived was asked for the parcel view open now."""
        asked_in, self.scale_asked_in = self.scale_asked_in, None
        return asked_in == self.generation

    def needs_weighing(self) -> bool:
        return self.receipt is not None and self.receipt.weight.weight_g is None

    def identity_checked_at(self) -> datetime:
        checked = self.station.actor.identity_checked_at
        return checked if checked is not None else self._started_at

    def identity_confirmed(self, at: datetime) -> None:
        """The PIN or badge was just checked again: the actor carries it to the services."""
        self.station.actor = replace(self.station.actor, identity_checked_at=at)

    def must_reconfirm(self) -> bool:
        """A refund that pays at once, on a PIN or badge check older than the idle span, asks for
        it again first (console.reconfirm; ``decide`` refuses it too, whoever calls it)."""
        proposal = self.bench.proposal if self.bench else None
        if proposal is None:
            return False
        within = self.ctx().reconfirm_within
        return within is not None and must_reconfirm(proposal.kind, proposal.needs_review,
                                                     proposal.quote.amount_minor, self.identity_checked_at(),
                                                     utcnow(), within)

    def decide_command(self, replacement: str) -> DecideCommand:
        assert self.bench is not None
        return DecideCommand(self.bench.view.id, kind=self.chosen_kind, decision_id=self.decision_id,
                             exchange_sku=replacement or None)

    def choose_kind(self, kind: str | None) -> None:
        """The clerk's kind; the policy's own proposal is no override."""
        proposal = self.bench.proposal if self.bench else None
        self.chosen_kind = None if proposal is not None and kind == proposal.proposed_kind else kind

    def grade_for(self, item_id: int, drawn: str | None) -> str | None:
        """The grade last asked for, not the one last drawn: a grade key's job may still be queued."""
        return self.pending_grades.get(item_id, drawn)

    def signed_in(self, user_id: int) -> bool:
        """Someone signed in: True if the parcel open is theirs to go on with (back after the idle
        lock); else it is for putting down."""
        kept_for, self.parcel_kept_for = self.parcel_kept_for, None
        return self.parcel_open and kept_for == user_id

    def locked(self) -> None:
        """The idle lock: the open parcel stays for the person who had it."""
        self.parcel_kept_for = self.station.actor.user_id if self.parcel_open else None

    def welcome(self, actor: Actor, theirs: bool) -> str:
        """What a person reads on signing in: their parcel still open, or what was put down."""
        number = self.number
        if theirs:
            return f"Welcome back, {actor.display_name}. {number or 'The parcel'} is still open."
        note = f"{number} was put down; its scans and grades are kept. " if self.parcel_open and number else ""
        if actor.signer is not None and actor.signer.enrolled:
            # A supervisor's first sign-in here (or with a new PIN or badge): central takes their
            # verdicts once an admin confirms this key, checking the fingerprint with them.
            note += (f"Your new signing key at this station has fingerprint {actor.signer.fingerprint}: read it to "
                     "a central admin, who confirms it before your verdicts count. ")
        return f"Welcome, {actor.display_name}. {note}{PROMPT_PARCEL}."

    def lock_message(self, minutes: float) -> str:
        """The sign-in screen's line after the idle lock, with the parcel kept for its person."""
        seconds = max(1, round(minutes * 60))
        span = (f"{minutes:g} minute{'s' if minutes != 1 else ''}" if minutes >= 1
                else f"{seconds} second{'s' if seconds != 1 else ''}")
        number, name = self.number, self.station.actor.display_name
        kept = f" {number} stays open for {name}: sign in again to go on." if number else ""
        return f"The station locked after {span} without use.{kept}"

    @staticmethod
    def unidentified_note(typed: str, code: str) -> str:
        return typed or ("no code found on the parcel" if not code else f"scanned {code}: nothing matched")
