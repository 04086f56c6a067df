"""Supervisor review [F5]: the queue of waiting cases beside the case's evidence, settled from the keyboard.

Type to search; ↑/↓ choose a case; Ctrl+N writes the note; Ctrl+Enter approves; Ctrl+M changes the
amounts (type the refund per unit, Enter, then Ctrl+Enter approves them); Ctrl+R rejects; F5
reads the queue again; Esc closes. Every read and verdict runs on the database worker; who may
settle a case (role, four eyes) is the service's answer, shown here, never decided here.
"""
from __future__ import annotations

import html
import uuid
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QItemSelectionModel, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QDialog, QGridLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
    QPushButton, QSpinBox, QSplitter, QTableView, QTextBrowser, QVBoxLayout, QWidget,
)

from console import review
from console.review import CaseView, QueueEntry, QueueFilters, ReviewResult
from console.station import Station
from printing.settings import PrinterSettings
from ui.review_model import ReviewQueueModel, UnitAmountModel
from ui.worker import DatabaseWorker

KEYS = ("↑/↓ case · Ctrl+N note · Ctrl+Enter approve · Ctrl+M change amounts · Ctrl+R reject · "
        "Ctrl+D contact (logged) · F5 refresh · Esc close")
STYLE = """
QDialog { background: #f4f6f8; }
QWidget { font-size: 12pt; color: #111; }
QTextBrowser { background: #ffffff; border: 1px solid #b8c2cc; }
QLabel#caseTitle { font-size: 15pt; font-weight: bold; color: #1f2933; }
QLabel#reviewStatus { padding: 6px 10px; border-radius: 4px; background: #e3e8ee; }
QLabel#reviewStatus[level="error"] { background: #b00020; color: #ffffff; }
QLabel#reviewStatus[level="success"] { background: #156b25; color: #ffffff; }
QLabel#reviewStatus[level="warning"] { background: #f2b01e; }
QPushButton { padding: 6px 12px; border: 1px solid #7b8794; border-radius: 4px; background: #ffffff; }
QPushButton#approve { background: #156b25; color: #ffffff; font-weight: bold; }
QPushButton#reject { background: #b00020; color: #ffffff; font-weight: bold; }
QPushButton:disabled { background: #c5cdd3; color: #6b7680; }
QTableView { background: #ffffff; gridline-color: #d9e0e6; selection-background-color: #1f5fbf;
             selection-color: #ffffff; }
QHeaderView::section { background: #e3e8ee; padding: 4px 6px; border: none; font-weight: bold; }
"""
KIND_CHOICES = (("all cases", None), ("reviews", "decision"), ("conflicts", "conflict"), ("claims", "claim"))


def _e(text: object) -> str:
    return html.escape(str(text))


def _section(title: str, body: str) -> str:
    return f"<h3 style='margin:6px 0 2px 0;color:#1f2933'>{_e(title)}</h3>{body}"


def evidence_html(case: CaseView, local: Callable[[Any], str]) -> tuple[str, str]:
    """The case's evidence as two columns: the parcel and its units | the risk and the customer."""
    left: list[str] = []
    for p in case.parcels:
        weight = "not weighed" if p.weight_g is None else f"{p.weight_g:,} g"
        expected = f"{p.expected_weight_g:,} g ± {p.tolerance_g:,} g" if p.expected_weight_g else "—"
        flag = " <b style='color:#b00020'>does not match</b>" if p.weight_mismatch else ""
        red = " style='color:#b00020'"
        scans = "".join(
            f"<li{red if s.flagged else ''}>{_e(s.code)} — {_e(s.result.replace('_', ' '))}"
            f"{(': ' + _e(s.message)) if s.message and s.flagged else ''}{' (taken back)' if s.undone else ''}</li>"
            for s in p.scans) or "<li>no scans at this station</li>"
        photos = "".join(f"<li>{_e(ph)}</li>" for ph in p.photos)
        left.append(_section(f"Parcel at {p.station_id}, received by {p.received_by} {local(p.received_at)}",
                             f"Weight {weight}, expected {expected}{flag}<ul>{scans}</ul>"
                             + (f"Parcel photos:<ul>{photos}</ul>" if photos else "")
                             + (f"<p>Parcel note: {_e(p.note)}</p>" if p.note else "")))
    for u in case.units:
        checks = ", ".join(f"{'✔' if v else '✘'} {_e(k.replace('_', ' '))}" for k, v in u.checklist.items()) or "—"
        serial = ""
        if u.received_serial:
            shipped = u.received_serial in u.serials_shipped
            serial = (f"<br>Serial {_e(u.received_serial)}"
                      + ("" if shipped else " <b style='color:#b00020'>not shipped on this order</b>"))
        deductions = "".join(f"<li>{_e(label)}: −{_e(m.format())}</li>" for label, m in u.deductions)
        photos = "".join(f"<li>{_e(ph)}</li>" for ph in u.photos) or "<li>no photos</li>"
        left.append(_section(
            f"{u.sku} — {u.title}",
            f"Grade <b>{_e(u.grade or '—')}</b> (at decision {_e(u.grade_at_decision or '—')}) · "
            f"{_e(u.reception_status)} · reason: {_e(u.reason)}<br>Checklist: {checks}{serial}"
            f"<br>Paid {_e(u.paid.format())}, refund {_e(u.refund.format())}"
            + (f"<ul>{deductions}</ul>" if deductions else "")
            + (f"<br>Note: {_e(u.notes)}" if u.notes else "") + f"<ul>{photos}</ul>"))
    right: list[str] = []
    score = "—" if case.risk_score is None else str(case.risk_score)
    signals = "".join(f"<tr><td align='right'><b>{s.weight}</b></td><td>{_e(s.message)}</td></tr>"
                      for s in case.signals) or "<tr><td></td><td>no signals recorded here</td></tr>"
    right.append(_section(f"Risk score {score}", f"<table cellspacing='4'>{signals}</table>"))
    if case.review_reasons:
        right.append(_section("Why it waits", "<ul>" + "".join(f"<li>{_e(r)}</li>" for r in case.review_reasons)
                              + "</ul>"))
    if case.conflicts:
        right.append(_section("Sync conflicts", "<ul>" + "".join(f"<li style='color:#b00020'>{_e(c)}</li>"
                                                                 for c in case.conflicts) + "</ul>"))
    if case.clerk_note:
        right.append(_section("Clerk's note", _e(case.clerk_note).replace("\n", "<br>")))
    c = case.customer
    history = "".join(
        f"<li>{_e(r.rma_number)} ({_e(r.order_number)}) {_e(r.status)} {local(r.created_at)}"
        f"{' — <b>other customer, same address</b>: ' + _e(r.customer_name) if r.same_address_only else ''}</li>"
        for r in c.other_returns) or "<li>no other returns</li>"
    right.append(_section(
        f"Customer: {c.name}",
        f"{_e(c.email)} · {_e(c.phone or '—')}{' (masked)' if c.contact_masked else ''} · {_e(c.loyalty_tier)}<br>"
        f"{c.orders_count} orders, {c.returns_count} returns, {c.claims_count} claims"
        + (f"<br>{'<br>'.join(_e(line) for line in c.address)}" if c.address else "")
        + f"<ul>{history}</ul>"))
    if case.approvals:
        right.append(_section("Earlier verdicts", "<ul>" + "".join(
            f"<li>{_e(a.verdict)} by {_e(a.supervisor)} {local(a.decided_at)}: {_e(a.note)}"
            f"{' — <b>refused at central</b>: ' + _e(a.refused_reason) if a.refused_reason else ''}</li>"
            for a in case.approvals) + "</ul>"))
    if case.missing_evidence:
        right.append(f"<p style='color:#5c4100'>Not at this station: {_e(', '.join(case.missing_evidence))} "
                     "(recorded at the receiving station).</p>")
    return "".join(left), "".join(right)


class ReviewPage(QDialog):
    """The queue (left) and the case (right); the verdict row below the case."""

    def __init__(self, station: Station, worker: DatabaseWorker, printers: PrinterSettings,
                 kick_printing: Callable[[], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.station = station
        self.worker = worker
        self.printers = printers
        self.kick_printing = kick_printing
        self.case: CaseView | None = None
        self._claim: QueueEntry | None = None  # a claim chosen in the queue (claims have no case view)
        self._approval_id = uuid.uuid4()  # one per case shown: a retried press is the same verdict
        self._case_generation = 0
        self.setWindowTitle(f"Supervisor review — {station.settings.station_name}")
        self.setStyleSheet(STYLE)
        self.resize(1360, 780)
        col = QVBoxLayout(self)

        filters = QHBoxLayout()
        self.search = QLineEdit(objectName="reviewSearch")
        self.search.setPlaceholderText("search RMA, order, customer, clerk, station, reason")
        self.kind = QComboBox()
        for label, value in KIND_CHOICES:
            self.kind.addItem(label, value)
        self.from_station = QLineEdit()
        self.from_station.setPlaceholderText("station id")
        self.from_station.setMaximumWidth(130)
        self.min_amount = QSpinBox()
        self.min_amount.setRange(0, 10_000_000)
        self.min_amount.setSpecialValueText("any amount")
        self.min_amount.setPrefix("≥ ")
        self.min_amount.setSingleStep(100)
        self.sort = QComboBox()
        self.sort.addItem("oldest, then largest", "oldest")
        self.sort.addItem("largest first", "largest")
        for caption, widget in (("Search", self.search), ("Kind", self.kind), ("Station", self.from_station),
                                ("Amount", self.min_amount), ("Sort", self.sort)):
            label = QLabel(caption)
            label.setBuddy(widget)
            filters.addWidget(label)
            filters.addWidget(widget, 3 if widget is self.search else 0)
        self.count_label = QLabel()
        filters.addWidget(self.count_label)
        col.addLayout(filters)

        split = QSplitter(Qt.Orientation.Horizontal)
        col.addWidget(split, 1)
        self.model = ReviewQueueModel(station.ctx(), self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the search field keeps the keyboard; ↑/↓ move
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._case_chosen())
        split.addWidget(self.table)

        case_box = QWidget()
        case_col = QVBoxLayout(case_box)
        case_col.setContentsMargins(6, 0, 0, 0)
        self.case_title = QLabel("Choose a case (↑/↓)", objectName="caseTitle")
        self.case_title.setWordWrap(True)
        case_col.addWidget(self.case_title)
        sides = QHBoxLayout()
        self.parcel_view = QTextBrowser(objectName="parcelEvidence")
        self.risk_view = QTextBrowser(objectName="riskEvidence")
        for view in (self.parcel_view, self.risk_view):
            view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            view.setOpenLinks(False)
            sides.addWidget(view, 1)
        case_col.addLayout(sides, 1)
        self.units = UnitAmountModel(self)
        self.units_table = QTableView(objectName="unitAmounts")
        self.units_table.setModel(self.units)
        self.units_table.verticalHeader().setVisible(False)
        self.units_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.units_table.setMaximumHeight(140)
        self.units_table.setEditTriggers(QAbstractItemView.EditTrigger.AnyKeyPressed
                                         | QAbstractItemView.EditTrigger.DoubleClicked
                                         | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.units.dataChanged.connect(lambda *_: self._amounts_changed())
        case_col.addWidget(self.units_table)
        verdict = QGridLayout()
        self.note = QLineEdit(objectName="reviewNote")
        self.note.setPlaceholderText("note for the clerk and the audit trail (required)")
        note_label = QLabel("Note [Ctrl+N]")
        note_label.setBuddy(self.note)
        verdict.addWidget(note_label, 0, 0)
        verdict.addWidget(self.note, 0, 1, 1, 3)
        self.approve_button = QPushButton("Approve [Ctrl+Enter]", objectName="approve")
        self.amounts_button = QPushButton("Change amounts [Ctrl+M]")
        self.reject_button = QPushButton("Reject [Ctrl+R]", objectName="reject")
        for n, button in enumerate((self.approve_button, self.amounts_button, self.reject_button)):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            verdict.addWidget(button, 1, n + 1)
            button.setAutoDefault(False)  # Enter in the note field must never press Approve
        self.approve_button.clicked.connect(self.approve_case)
        self.amounts_button.clicked.connect(self.change_amounts)
        self.reject_button.clicked.connect(self.reject_case)
        case_col.addLayout(verdict)
        split.addWidget(case_box)
        split.setSizes([640, 720])

        self.status = QLabel(KEYS, objectName="reviewStatus")
        self.status.setWordWrap(True)
        col.addWidget(self.status)

        self._debounce = QTimer(self, singleShot=True, interval=250)
        self._debounce.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        self.from_station.textChanged.connect(lambda _t: self._debounce.start())
        self.min_amount.valueChanged.connect(lambda _v: self._debounce.start())
        self.kind.currentIndexChanged.connect(lambda _i: self.refresh())
        self.sort.currentIndexChanged.connect(lambda _i: self.refresh())
        for keys, slot in (("Up", lambda: self._move(-1)), ("Down", lambda: self._move(1)),
                           ("Ctrl+Return", self.approve_case), ("Ctrl+Enter", self.approve_case),
                           ("Ctrl+R", self.reject_case), ("Ctrl+D", self.show_contact),
                           ("Ctrl+M", self.change_amounts), ("Ctrl+N", self._focus_note), ("F5", self.refresh)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.activated.connect(slot)
        self._draw_case(None)
        self.search.setFocus()
        self.refresh()

    # -- the queue --------------------------------------------------------------------------------

    def filters(self) -> QueueFilters:
        return QueueFilters(station=self.from_station.text().strip() or None, kind=self.kind.currentData(),
                            min_amount_major=self.min_amount.value() or None, text=self.search.text(),
                            sort=self.sort.currentData())

    def refresh(self) -> None:
        station, filters = self.station, self.filters()
        keep = self.case.decision_id if self.case is not None else None

        def read() -> list[QueueEntry]:
            with station.read_uow() as uow:
                return review.review_queue(uow, station.ctx(), filters)

        def done(entries: list[QueueEntry]) -> None:
            if not shiboken6.isValid(self):
                return
            self.model.set_rows(entries)
            self.count_label.setText(f"{len(entries)} waiting")
            self.table.resizeColumnsToContents()
            self.table.setColumnWidth(8, 320)
            row = self.model.row_of(keep) if keep is not None else None
            if entries:
                self._select(row if row is not None else 0)
            else:
                self._draw_case(None)

        self.worker.submit("reading the review queue", read, done, self._failed)

    def _select(self, row: int) -> None:
        index = self.model.index(row, 0)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().setCurrentIndex(index, flags)
        self.table.scrollTo(index)

    def selected(self) -> QueueEntry | None:
        index = self.table.selectionModel().currentIndex()
        return self.model.row(index.row()) if index.isValid() else None

    def _move(self, delta: int) -> None:
        if self.units_table.hasFocus():
            return  # ↑/↓ move between the units while amounts are typed
        count = self.model.rowCount()
        if count:
            current = self.table.selectionModel().currentIndex()
            self._select(max(0, min(count - 1, (current.row() if current.isValid() else -1) + delta)))

    # -- the case -------------------------------------------------------------------------------------

    def _case_chosen(self) -> None:
        entry = self.selected()
        self._case_generation += 1
        if entry is None or entry.kind == "claim":
            self._draw_case(None, entry)
            return
        self._read_case(entry.id)

    def show_contact(self) -> None:
        """Ctrl+D: the customer's e-mail and phone for this case, unmasked — logged with the reason."""
        if self.case is None:
            self._say("error", "Choose a case first (↑/↓).")
            return
        self._case_generation += 1
        self._read_case(self.case.decision_id, reveal="contacting the customer about this case")

    def _read_case(self, decision_id: uuid.UUID, reveal: str | None = None) -> None:
        station, generation = self.station, self._case_generation

        def read() -> CaseView:
            # Reading is read-only; showing contact details writes their audit event.
            with (station.uow() if reveal else station.read_uow()) as uow:
                return review.review_case(uow, station.ctx(), decision_id, reveal=reveal)

        def done(case: CaseView) -> None:
            if shiboken6.isValid(self) and generation == self._case_generation:
                self._draw_case(case)

        self.worker.submit("reading the case", read, done, self._failed)

    def _draw_case(self, case: CaseView | None, entry: QueueEntry | None = None) -> None:
        self.case = case
        self._approval_id = uuid.uuid4()
        self._claim = entry if case is None and entry is not None and entry.kind == "claim" else None
        if case is None:
            self.case_title.setText("Claim: " + entry.summary + " — approve the claimed amount or reject it, "
                                    "with a note" if entry is not None else "No case chosen")
            self.parcel_view.setHtml("")
            self.risk_view.setHtml("")
            self.units.set_units((), "USD")
        else:
            local = self.station.ctx().local_time_text
            self.case_title.setText(
                f"{case.rma_number} · {case.kind.replace('_', ' ')} {case.amount.format()} · decided by "
                f"{case.decided_by} at {case.station_id} {local(case.decided_at)} · {case.status.replace('_', ' ')}")
            left, right = evidence_html(case, local)
            self.parcel_view.setHtml(left)
            self.risk_view.setHtml(right)
            self.units.set_units(case.units, case.amount.currency)
            self.units_table.resizeRowsToContents()
            if case.why_not:
                self._say("warning", case.why_not)
            elif case.signing_note:
                self._say("warning", case.signing_note)
            else:
                self._say("info", KEYS)
        may = (case is not None and case.may_settle) or self._claim is not None
        for button in (self.approve_button, self.reject_button, self.amounts_button):
            button.setEnabled(may)
        self.amounts_button.setEnabled(may and case is not None and case.kind in ("full_refund", "partial_refund",
                                                                                   "store_credit"))

    def _amounts_changed(self) -> None:
        if self.units.problem:
            self._say("error", self.units.problem)
        elif self.case is not None and self.units.changed():
            self._say("info", f"Approve now pays {self.units.total().format()} instead of "
                              f"{self.case.amount.format()} (shipping refunds unchanged): Ctrl+Enter with a note.")

    # -- verdicts ----------------------------------------------------------------------------------

    def _focus_note(self) -> None:
        self.note.setFocus()

    def change_amounts(self) -> None:
        if self.case is None or not self.amounts_button.isEnabled():
            return
        self.units_table.setFocus()
        index = self.units.index(0, UnitAmountModel.REFUND)
        self.units_table.setCurrentIndex(index)
        # Straight into the cell's editor: typed keys then go to a text field, which the scan
        # filter lets through at once (a table would have them held as a possible scan).
        self.units_table.edit(index)
        self._say("info", "Type the refund for the unit and Enter; ↑/↓ another unit; then Ctrl+N for the note "
                          "and Ctrl+Enter to approve.")

    # Not approve/reject: QDialog.reject is what Esc calls (it closes the page).
    def approve_case(self) -> None:
        self._settle(reject=False)

    def reject_case(self) -> None:
        self._settle(reject=True)

    def _settle(self, *, reject: bool) -> None:
        case = self.case
        if case is None and self._claim is not None:
            return self._settle_claim(self._claim, reject=reject)
        if case is None:
            self._say("error", "Choose a case first (↑/↓).")
            return
        station, note, approval_id = self.station, self.note.text(), self._approval_id
        amounts = None if reject else (self.units.changed() or None)
        printers = self.printers

        def job() -> tuple[ReviewResult, int, str | None]:
            with station.uow() as uow:
                if reject:
                    result = review.reject(uow, station.ctx(), case.decision_id, note, approval_id=approval_id)
                else:
                    result = review.approve(uow, station.ctx(), case.decision_id, note, amounts,
                                            approval_id=approval_id)
            # The verdict is committed: a printing problem now must not read as if it were not.
            try:
                with station.uow() as uow:  # this bench received the parcel: its printouts, now
                    printed = len(review.print_settled_reviews(uow, station.ctx(), printers))
            except Exception as exc:  # noqa: BLE001 - reported beside the verdict; the sync retries
                return result, 0, f"{type(exc).__name__}: {exc}"
            return result, printed, None

        def done(outcome: tuple[ReviewResult, int, str | None]) -> None:
            result, printed, print_problem = outcome
            if printed:
                self.kick_printing()
            if not shiboken6.isValid(self):
                return
            words = {"approved": "Approved", "partial": "Approved with a changed amount", "rejected": "Rejected"}
            paid = f", {result.amount.format()}" if result.verdict != "rejected" else ""
            where = f"; {printed} printout(s) queued here" if printed else "; it prints where the parcel was received"
            if print_problem:
                self._say("warning", f"{words[result.verdict]}: {result.rma_number}{paid} (recorded). The printouts "
                          f"could not be queued ({print_problem}); the next sync pass tries again — or reprint "
                          "from the print queue [F10].")
            else:
                self._say("success", f"{words[result.verdict]}: {result.rma_number}{paid}{where}.")
            self.note.clear()
            self.case = None
            self.refresh()

        self.worker.submit("recording the verdict", job, done, self._failed)

    def _settle_claim(self, entry: QueueEntry, *, reject: bool) -> None:
        """A claim: the claimed amount approved, or rejected (another amount: `review approve --amount`)."""
        from console.claim_review import settle_claim

        station, note = self.station, self.note.text()

        def job() -> object:
            with station.uow() as uow:
                return settle_claim(uow, station.ctx(), entry.id, note, reject=reject)

        def done(verdict: object) -> None:
            if not shiboken6.isValid(self):
                return
            self._say("success", f"Claim {verdict.status}: {verdict.amount.format()}.")  # type: ignore[attr-defined]
            self.note.clear()
            self._claim = None
            self.refresh()

        self.worker.submit("recording the verdict on the claim", job, done, self._failed)

    def _failed(self, message: str) -> None:
        if shiboken6.isValid(self):
            self._say("error", message)

    def _say(self, level: str, text: str) -> None:
        self.status.setText(text)
        self.status.setProperty("level", level)
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)
