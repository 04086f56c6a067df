"""The warehouse bench's window: layout, key routing and drawing.

What is open and what a key means now live in ``console.workbench`` (Qt-free, the bench session);
every step runs there as a job on the database thread through ``ui.operations``. Which parcel a
code finds, whether a unit matches, what a grade costs and whether a supervisor must look are all
answered by the services in ``console``.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QLabel,
    QMainWindow,
    QStackedWidget,
)

from console import workbench as jobs
from console.context import Actor, StationContext
from console.deciding import DecisionResult
from console.errors import NotAllowed
from console.inspection import GRADE_LABELS, UnitInspection
from console.permissions import MANAGE_USERS, REVIEW, require
from console.print_jobs import Queued
from console.receiving import ReceiptResult, ScanResult, WeightCheck
from console.reconfirm import IdentityCheckNeeded
from console.station import Station
from console.undo import UndoResult
from console.workbench import PROMPT_PARCEL, Bench, Unexpected, Workbench, kind_label
from devices.settings import DeviceSettings
from printing.settings import PrinterSettings, default_settings, make_printers
from ui import messages
from ui.devices import DeviceHub, wait_for_stopped_scales
from ui.bench_page import GRADE_KEYS, BenchPage
from ui.devices_page import DevicesPage
from ui.history_page import HistoryPage
from ui.idle_lock import ConfirmIdentityDialog, IdleLock
from ui.inspect_panel import CHECK_KEYS
from ui.item_model import ItemTableModel
from ui.operations import Operations
from ui.print_page import PrintQueuePage
from ui.print_worker import PrintWorker
from ui.printers_page import PrintersPage
from ui.review_page import ReviewPage
from ui.sign_in_page import SignInPage
from ui.sounds import Sounds
from ui.style import STYLE, restyle
from ui.sync_process import SyncProcess
from ui.users_page import UsersPage
from ui.worker import DatabaseWorker

# F5 and F3 open review and users only with no parcel open (with one, they grade F and C).
BENCH_KEYS = ("F1–F5 grade · ^1–^5 checklist · ^Z undo · F12 decide · Esc put down · "
              "F6 unexpected · F7 today · F5 review · F3 users · ^L sign out")


class MainWindow(QMainWindow):
    # Emitted once a parcel's RMA is fully drawn (its number): what scan-to-screen measures, and
    # what tests and the screenshot command wait for.
    parcel_shown = Signal(str)

    def __init__(self, station: Station, devices: DeviceSettings | None = None,
                 printers: PrinterSettings | None = None, *, sign_in: bool = False, sync: bool = False) -> None:
        """``sign_in``: start at the sign-in screen (the console); otherwise ``station.actor``
        is signed in already (tests, screenshots, benchmarks). ``sync``: run the sync worker
        process (the console and the stall benchmark); otherwise nothing is pushed to central."""
        super().__init__()
        self.station = station
        self.printer_settings = printers or default_settings(station.settings.data_dir)
        self.setWindowTitle(f"Returns Console — {station.settings.station_name}")
        self.resize(1280, 760)  # fits a 1366×768 bench screen with its task bar
        # Fixed, so the window does not grow under the clerk as longer texts arrive (the layout
        # would otherwise move the minimum with its contents).
        self.setMinimumSize(1180, 640)
        self.setStyleSheet(STYLE)

        self.worker = DatabaseWorker(self)
        self.ops = Operations(self.worker, station, self)
        self.item_model = ItemTableModel(self)
        # What is open at the bench (console.workbench); everything else is drawn from its Bench.
        self.work = Workbench(station)
        self._closed = False
        self._signed_in = not sign_in
        self._shortcut_list: list[QShortcut] = []
        self.devices = DeviceHub(devices or DeviceSettings(), self)
        self.printing = PrintWorker(station.sessions, make_printers(self.printer_settings), self)
        self.sounds = Sounds(station.settings.data_dir / "sounds", self, enabled=station.settings.sounds)
        self.sync = SyncProcess(station.settings, self) if sync else None
        # The idle lock: after idle_lock_minutes without input the sign-in screen comes back. A
        # parcel open then stays open for the same person; anyone else signing in puts it down.
        self.idle_lock = IdleLock(max(1, round(station.settings.idle_lock_minutes * 60_000)), self)
        self.idle_lock.idle.connect(self.lock_idle)
        self._confirm: ConfirmIdentityDialog | None = None

        self._build()
        self._shortcuts()
        messages.bridge().shown.connect(self._show_feedback)
        self.worker.busy_changed.connect(lambda busy: self.busy_label.setText("working…" if busy else "ready"))
        self._start_devices()
        self.printing.status_changed.connect(self.top.print_status)
        if self.sync is not None:
            self.sync.status_changed.connect(self.top.sync_status)
            self.sync.stopped.connect(self.top.sync_stopped)
            # After the first paint: the child's start-up (its own imports) is not the clerk's wait.
            QTimer.singleShot(0, self.sync.start)
        self._reset_parcel()
        if self._signed_in:
            self.idle_lock.start()
            messages.info("Ready. " + PROMPT_PARCEL + ".")
        else:
            self._show_sign_in("")

    # -- layout ---------------------------------------------------------------------------

    def _build(self) -> None:
        self.pages = QStackedWidget()
        self.setCentralWidget(self.pages)
        settings = self.station.settings
        page = self.bench_page = BenchPage(settings, self.item_model, syncing=self.sync is not None)
        self.pages.addWidget(page)
        self.sign_in_page = SignInPage(settings.station_name, settings.station_id)
        self.sign_in_page.pin_entered.connect(self._check_pin)
        self.sign_in_page.badge_scanned.connect(self._check_badge)
        self.pages.addWidget(self.sign_in_page)
        # The page's parts by their own names: what the keys, the tests and the benchmarks reach.
        self.top, self.prompt, self.scan_field, self.weight = page.top, page.prompt, page.scan_field, page.weight
        self.feedback, self.decision, self.rma, self.table = page.feedback, page.decision, page.rma, page.table
        self.inspect_panel, self.grade_buttons = page.inspect_panel, page.grade_buttons
        self.user_label, self.device_label = page.top.user_label, page.top.device_label
        self.print_label, self.sync_label = page.top.print_label, page.top.sync_label
        self.kind_combo, self.replacement_row = page.decision.kind_combo, page.decision.replacement_row
        self.replacement_field, self.decide_button = page.decision.replacement_field, page.decision.decide_button
        self.amount_label, self.review_label = page.decision.amount_label, page.decision.review_label
        self.rma_label, self.weight_check_label = page.rma.rma_label, page.rma.weight_check_label

        self.top.draw_user(self.station.actor)
        self.scan_field.returnPressed.connect(self._on_enter)
        self.scan_field.step.connect(self.table.move_selection)
        self.weight.lineEdit().returnPressed.connect(self._refocus)
        self.kind_combo.activated.connect(self._on_kind_chosen)
        self.kind_combo.installEventFilter(self)
        for field in (self.replacement_field, self.inspect_panel.note_field):
            field.returnPressed.connect(lambda: self._refocus(force=True))
        self.decide_button.clicked.connect(self.decide)
        self.decision.abandon_button.clicked.connect(self.abandon)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._show_inspection())
        self.inspect_panel.changed.connect(self._inspection_changed)
        self.inspect_panel.attach_requested.connect(self.attach_photos)
        page.graded.connect(self.grade_selected)
        self.busy_label = QLabel("ready")
        self.statusBar().addPermanentWidget(self.busy_label)
        self.statusBar().showMessage(BENCH_KEYS)

    def _shortcuts(self) -> None:
        def bind(keys: str | QKeySequence.StandardKey, slot: Any) -> None:
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(slot)
            self._shortcut_list.append(shortcut)

        for grade, key in GRADE_KEYS:
            bind(key, lambda g=grade: self.grade_selected(g))
        bind("F12", self.decide)
        bind("Ctrl+Return", self.decide)
        bind("Ctrl+Enter", self.decide)
        bind("Escape", self.abandon)
        bind("Ctrl+K", self._focus_kind)
        bind("Ctrl+E", self._focus_replacement)
        bind("F8", self.weigh)
        bind("F9", self.open_devices_page)
        bind("F10", self.open_print_queue)
        bind("F11", self.open_printers_page)
        bind("Ctrl+Z", self.undo)
        bind("F6", self.handle_unexpected)
        bind("F7", self.open_history)
        bind("Ctrl+L", self.sign_out)
        bind("Ctrl+N", self._focus_note)
        bind("Ctrl+I", self.attach_photos)
        for n in range(len(CHECK_KEYS)):
            bind(f"Ctrl+{n + 1}", lambda i=n: self.toggle_check(i))
        self.scan_field.window_keys = frozenset(s.key().toString() for s in self._shortcut_list)

    # -- state ----------------------------------------------------------------------------

    @property
    def parcel_open(self) -> bool:
        return self.work.parcel_open

    def _reset_parcel(self) -> None:
        """Back to 'scan a parcel'. Nothing is deleted: what was recorded stays recorded."""
        self.work.put_down()
        self.item_model.clear()
        self.inspect_panel.clear()
        self.weight.setValue(0)
        self.weight.setEnabled(True)
        self.prompt.setText(PROMPT_PARCEL)
        self.rma.clear()
        self.decision.draw(None, "", self.station.policy.risk)
        self._update_enabled()
        self._refocus(force=True)

    def _update_enabled(self) -> None:
        open_, bench = self.parcel_open, self.work.bench
        for button in self.grade_buttons.values():
            button.setEnabled(open_)
        self.kind_combo.setEnabled(open_ and bench is not None)
        self.decide_button.setEnabled(open_ and bench is not None and bench.proposal is not None)
        self.decision.abandon_button.setEnabled(open_)

    # -- input ----------------------------------------------------------------------------

    def _on_enter(self) -> None:
        code = self.scan_field.text()
        self.scan_field.clear()
        self.submit_scan(code)

    def submit_scan(self, code: str) -> None:
        """A scan (or typed code + Enter): a parcel code when no parcel is open, else an item;
        a badge while nobody is signed in."""
        self.idle_lock.touch()  # a serial scanner's scan is someone at the bench too
        if not self._signed_in:
            self.sign_in_page.scan(code)
            return
        if self._confirm is not None:
            self._confirm.badge(code)  # "is it still you?" before a refund: a badge scan answers
            return
        users = next((p for p in self.findChildren(UsersPage) if p.isVisible()), None)
        if users is not None:
            return users.badge_scanned(code)  # a badge for the user chosen on the users page
        if self.replacement_row.isVisible() and QApplication.focusWidget() is self.replacement_field:
            self.replacement_field.setText(code.strip().upper())  # the replacement taken from the shelf
            messages.info(f"Replacement {code.strip().upper()}: F12 decides the exchange.")
            return self._refocus(force=True)
        if self.work.holding:
            self.work.held.append(code)
            return
        if self.work.receipt is None:
            self._receive(code)
        else:
            self._scan_item(code)

    def _hold(self) -> int:
        """A parcel is being received or decided: later scans wait. The view it is for."""
        self.work.holding = True
        return self.work.generation

    def _receive(self, code: str) -> None:
        weight, station = self.work.weight(self.weight.value()), self.station
        generation = self._hold()
        self.work.unexpected = None
        self.prompt.setText(f"Looking up {code.strip()[:40]}…")

        def done(outcome: tuple[ReceiptResult, Bench] | Unexpected) -> None:
            self._release()
            if self.work.current(generation):
                if isinstance(outcome, Unexpected):  # F6 can act on it
                    self.work.unexpected = outcome
                    self.prompt.setText(PROMPT_PARCEL)
                    messages.error(outcome.offer())
                else:
                    self._open_parcel(*outcome)
            self._drain()

        def failed(message: str) -> None:
            self._release()
            self.prompt.setText(PROMPT_PARCEL)
            messages.error(message)
            self._drain()

        self.ops.run("receiving the parcel", lambda ctx: jobs.receive_job(station, ctx, code, weight, uuid.uuid4()),
                     done, failed)

    def _release(self) -> None:
        self.work.holding = False
        self._refocus()

    def _drain(self) -> None:
        while self.work.held and not self.work.holding:
            self.submit_scan(self.work.held.popleft())

    def _open_parcel(self, receipt: ReceiptResult, bench: Bench) -> None:
        self.work.opened(receipt, bench)
        self.weight.setEnabled(False)
        self._draw_bench(bench, select_item=None)
        if self.item_model.rowCount() and not self.table.selectionModel().hasSelection():
            self.table.select_row(0)
        rma = bench.view.number
        self.prompt.setText(f"{rma} open: scan each unit, grade it [F1–F5], decide [F12]")
        note = ""
        if len(receipt.rma_numbers) > 1:
            note = f" This parcel also holds {', '.join(receipt.rma_numbers[1:])}; this screen shows {rma}."
        if receipt.returned_to_sender:
            note += " Returned to sender: received on a new RMA."
        messages.success(f"Parcel received for {', '.join(receipt.rma_numbers)}. Scan the units.{note}")
        self._update_enabled()
        if self.work.needs_weighing() and self.devices.has_scale:
            self._ask_scale()  # the parcel is on the scale now; the weight follows
        self.parcel_shown.emit(rma)

    def _on_bench(self, generation: int, select_item: int | None = None,
                  then: str | None = None) -> Callable[[Bench], None]:
        """What a step's new Bench does when it comes back: drawn, if its parcel is still open."""
        def done(bench: Bench) -> None:
            if self.work.current(generation):
                self._draw_bench(bench, select_item=select_item)
                if then:
                    messages.success(then)
                self._refocus()
        return done

    def _scan_item(self, code: str) -> None:
        work, station = self.work, self.station
        assert work.receipt is not None and work.bench is not None
        receipt_id, rma_id, kind, generation = work.receipt.receipt_id, work.bench.view.id, work.chosen_kind, \
            work.generation

        def done(outcome: tuple[ScanResult, Bench]) -> None:
            if not work.current(generation):
                return
            result, bench = outcome
            self._draw_bench(bench, select_item=result.return_item_id)
            if result.flagged:
                QApplication.beep()
                messages.warning(result.message)
            else:
                messages.success(result.message)
            self._refocus()

        self.ops.run("matching the scanned unit",
                     lambda ctx: jobs.scan_job(station, ctx, receipt_id, code, rma_id, kind), done, self._failed)

    def grade_selected(self, grade: str) -> None:
        if grade == "C" and not self.parcel_open and not self.work.holding:
            return self.open_users_page()  # F3 with no parcel open: the users page
        if grade == "F" and not self.parcel_open and not self.work.holding:
            return self.open_review()  # F5 with no parcel open: supervisor review
        if self.work.bench is None:
            messages.error("Scan a parcel first, then the unit, then grade it.")
            return self._refocus(force=True)
        row = self.table.selected_row()
        if row is None:
            messages.error("Choose a unit with ↑/↓ first, then grade it.")
            return self._refocus(force=True)
        item = self.item_model.item(row)
        self._record_inspection(item.id, grade, f"{item.sku} graded {grade} ({GRADE_LABELS[grade]}).")
        self._refocus(force=True)

    def _record_inspection(self, item_id: int, grade: str, said: str | None,
                           unit: UnitInspection | None = None) -> None:
        assert self.work.bench is not None
        station, rma_id, kind = self.station, self.work.bench.view.id, self.work.chosen_kind
        unit = unit or self.inspect_panel.inspection(item_id)  # with a note still being typed
        self.work.pending_grades[item_id] = grade
        self.inspect_panel.recorded(item_id, True)
        step = "recording the grade" if said else "recording the inspection"
        self.ops.run(step, lambda ctx: jobs.grade_job(station, ctx, item_id, grade, rma_id, kind, unit),
                     self._on_bench(self.work.generation, item_id, said), self._failed)

    def _on_kind_chosen(self, index: int) -> None:
        if self.work.bench is None:
            return
        self.work.choose_kind(self.kind_combo.itemData(index))
        station, rma_id, chosen = self.station, self.work.bench.view.id, self.work.chosen_kind
        self.ops.run("working out the proposal", lambda ctx: jobs.load_bench(station, ctx, rma_id, chosen),
                     self._on_bench(self.work.generation), self._failed, writes=False)
        self._refocus()  # still on the kind box while ↑/↓ choose

    def _focus_replacement(self) -> None:
        if self.replacement_row.isVisible():
            self.replacement_field.setFocus(Qt.FocusReason.ShortcutFocusReason)
            self.replacement_field.selectAll()
        else:
            messages.error("Choose the kind 'exchange' first [Ctrl+K]; then scan or type the replacement.")

    def _focus_kind(self) -> None:
        """Ctrl+K: the keyboard to the kind; ↑/↓ change it at once, Enter or Esc go back to scanning
        (Alt+↓ opens the list)."""
        if self.kind_combo.isEnabled():
            self.kind_combo.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # Enter in the kind box: done choosing, back to scanning.
        if (watched is self.kind_combo and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent)
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not self.kind_combo.view().isVisible()):
            self._refocus(force=True)
            return True
        return super().eventFilter(watched, event)

    def decide(self) -> None:
        work, station = self.work, self.station
        if work.bench is None or work.receipt is None:
            messages.error("Nothing to decide: scan a parcel first.")
            return self._refocus(force=True)
        if work.holding:
            return  # a decision is already on its way; its UUID would make a second one a no-op anyway
        exchange = self.kind_combo.currentData() == "exchange"
        replacement = self.replacement_field.text().strip() if exchange else ""
        if exchange and not replacement:
            messages.error("An exchange needs the replacement: scan it or type its SKU [Ctrl+E], then F12.")
            return self._focus_replacement()
        command, proposal = work.decide_command(replacement), work.bench.proposal
        what = f"{kind_label(proposal.kind).capitalize()} {proposal.amount.format()}" if proposal else ""
        if work.must_reconfirm():
            return self._ask_identity(what)
        generation = self._hold()
        self.decide_button.setEnabled(False)

        def done(result: DecisionResult | IdentityCheckNeeded) -> None:
            self._release()
            if isinstance(result, IdentityCheckNeeded):  # the service's own check (a clock moved on)
                self._update_enabled()
                if work.current(generation):
                    self._ask_identity(what)
                return self._drain()
            if work.current(generation):
                self._reset_parcel()
            self._announce(result)
            self._print_after(result)
            self._drain()

        def failed(message: str) -> None:
            self._release()
            self._update_enabled()
            messages.error(message)
            self._drain()

        def deciding(ctx: StationContext) -> DecisionResult | IdentityCheckNeeded:
            try:
                return jobs.decide_job(station, ctx, command)
            except IdentityCheckNeeded as exc:
                return exc

        self.ops.run("recording the decision", deciding, done, failed)
        self._refocus(force=True)

    def abandon(self) -> None:
        """Esc: put the parcel view down. Already-recorded steps stay; the RMA can be scanned again."""
        if self.kind_combo.view().isVisible():
            self.kind_combo.hidePopup()
            return self._refocus(force=True)
        side_fields = (self.kind_combo, self.replacement_field, self.inspect_panel.note_field, self.weight,
                       self.weight.lineEdit())
        if QApplication.focusWidget() in side_fields:
            return self._refocus(force=True)  # Esc leaves the field; a second Esc puts the parcel down
        if self.work.receipt is None:
            self.scan_field.clear()
            self.work.unexpected = None  # Esc: F6 no longer acts on the last scan
            return self._refocus(force=True)
        if self.work.holding:
            messages.info("The decision is being recorded; wait a moment.")
            return self._refocus(force=True)
        number = self.work.number or ", ".join(self.work.receipt.rma_numbers)
        self._reset_parcel()
        messages.info(f"{number} put down; what was scanned and graded is saved. {PROMPT_PARCEL}.")

    def _print_after(self, result: DecisionResult) -> None:
        """Labels, slip or receipt for the decision: queued on the database worker, sent by the
        print worker; a printer fault shows in the top bar and never loses the job."""
        station, settings = self.station, self.printer_settings

        def queued(jobs_: list[Queued]) -> None:
            if jobs_:
                self.printing.kick()
                self.print_label.setText(f"printing: {len(jobs_)} queued for {result.rma_number}…")

        self.ops.run("queueing the printouts", lambda ctx: jobs.print_job(station, ctx, settings, result.decision_id),
                     queued, lambda message: messages.error(f"Not printed: {message}"))

    def _open_page(self, page: QDialog) -> None:
        """A page over the bench (window-modal, deleted when closed); it refreshes when a step
        writes something, and gives the keyboard back to the scan field when it closes."""
        page.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        page.finished.connect(lambda _r: self._refocus(force=True))
        if hasattr(page, "refresh"):
            self.ops.changed.connect(page.refresh)  # Qt drops the connection with the page
        page.open()

    def open_print_queue(self) -> None:
        self._open_page(PrintQueuePage(self.station, self.worker, self.printing.kick, self))

    def open_printers_page(self) -> None:
        page = PrintersPage(self.station, self.printer_settings, self.worker, self.printing.kick, self)
        page.finished.connect(lambda _r: self._printers_page_closed(page.saved))
        self._open_page(page)

    def _printers_page_closed(self, saved: PrinterSettings | None) -> None:
        if saved is not None and not self._closed:
            self.printer_settings = saved
            messages.success("Printer settings saved: " + ", ".join(
                f"{doc.replace('-', ' ')} → {route.printer} ({route.format})" for doc, route in saved.documents.items()))

    def _failed(self, message: str) -> None:
        messages.error(message)
        self._refocus()

    def _announce(self, result: DecisionResult) -> None:
        if self.sync is not None:
            self.sync.kick()  # to central now rather than at the next interval
        level, text = jobs.announcement(result)
        messages.show(messages.Level(level), text)

    # -- inspection, undo -----------------------------------------------------------------

    def _show_inspection(self) -> None:
        row = self.table.selected_row()
        if row is None or self.work.bench is None:
            self.inspect_panel.show_unit(None, None)
            return
        item = self.item_model.item(row)
        self.inspect_panel.show_unit(item.id, f"{item.sku} ({row + 1} of {self.item_model.rowCount()})")

    def toggle_check(self, index: int) -> None:
        if not self.inspect_panel.toggle(index):
            messages.error("Choose a unit with ↑/↓ first, then tick its checklist.")
        self._refocus(force=True)

    def _focus_note(self) -> None:
        if self.inspect_panel.note_field.isEnabled():
            self.inspect_panel.note_field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        else:
            messages.error("Scan a parcel and choose a unit first; the note belongs to a unit.")

    def attach_photos(self) -> None:
        """Ctrl+I: the camera's new pictures for the selected unit (or a file dialog)."""
        generation = self.work.generation
        self.inspect_panel.attach_photos(self.ops, self.station.settings.photo_folder,
                                         lambda: self.work.current(generation), lambda: self._refocus(force=True))

    def _inspection_changed(self, item_id: int, unit: UnitInspection) -> None:
        """A change to a unit that has a grade is recorded at once (the latest inspection counts);
        an ungraded unit's is recorded with its grade."""
        if self.work.bench is None:
            return
        item = next((i for i in self.work.bench.view.items if i.id == item_id), None)
        grade = self.work.grade_for(item_id, item.grade if item else None)
        if item is None or grade is None or item.decided:
            return
        self._record_inspection(item_id, grade, None, unit)

    def undo(self) -> None:
        """Ctrl+Z: take back the last scan or grade of the open parcel (before it is decided)."""
        work, station = self.work, self.station
        if work.receipt is None or work.bench is None:
            messages.error("Nothing to undo: no parcel is open. Decided parcels are corrected by a new decision.")
            return self._refocus(force=True)
        if work.holding:
            return
        receipt_id, rma_id, kind, generation = work.receipt.receipt_id, work.bench.view.id, work.chosen_kind, \
            work.generation

        def done(outcome: tuple[UndoResult, Bench]) -> None:
            if not work.current(generation):
                return
            result, bench = outcome
            if result.return_item_id is not None:  # the database's word for that unit again
                work.pending_grades.pop(result.return_item_id, None)
                self.inspect_panel.forget(result.return_item_id)
            self._draw_bench(bench, select_item=result.return_item_id)
            messages.warning(result.message)
            self._refocus()

        self.ops.run("undoing the last step", lambda ctx: jobs.undo_job(station, ctx, receipt_id, rma_id, kind),
                     done, self._failed)
        self._refocus(force=True)

    # -- unexpected parcels --------------------------------------------------------------

    def handle_unexpected(self) -> None:
        """F6 after a code that opened no RMA: an RMA from the order it found, or an unidentified
        parcel; without such a code, an unidentified parcel with no code at all."""
        work, station = self.work, self.station
        if work.receipt is not None:
            messages.error("A parcel is open: decide it or put it down [Esc] first.")
            return self._refocus(force=True)
        if work.holding:
            return
        unexpected = work.unexpected or Unexpected("", None, "")
        weight = work.weight(self.weight.value())
        generation = self._hold()

        if unexpected.order_number:
            def opened(outcome: tuple[ReceiptResult, Bench]) -> None:
                self._release()
                work.unexpected = None
                if work.current(generation):
                    self._open_parcel(*outcome)
                self._drain()

            self.ops.run("creating the RMA", lambda ctx: jobs.receive_unexpected_job(
                station, ctx, unexpected.code, weight, uuid.uuid4()), opened, self._unheld)
            return

        since = self.inspect_panel.opened_at
        note = work.unidentified_note(self.scan_field.text().strip(), unexpected.code)
        self.scan_field.clear()

        def recorded(outcome: tuple[uuid.UUID, int]) -> None:
            receipt_id, photos = outcome
            self._release()
            work.unexpected = None
            said = f"{weight.grams:,} g" if weight.grams else "not weighed"
            messages.warning(f"Unidentified parcel recorded ({said}, {photos} photo"
                             f"{'s' if photos != 1 else ''}): put it on the quarantine shelf, labelled "
                             f"{str(receipt_id)[:8].upper()}. {PROMPT_PARCEL}.")
            self.weight.setValue(0)
            work.scale_weight = None
            self.inspect_panel.clear()  # the next parcel's pictures count from now
            self._drain()

        receipt_id = uuid.uuid4()
        self.ops.run("recording the unidentified parcel", lambda ctx: jobs.unidentified_job(
            station, ctx, unexpected.code, weight, since, note, receipt_id), recorded, self._unheld)

    def _unheld(self, message: str) -> None:
        self._release()
        messages.error(message)
        self._drain()

    # -- pages ----------------------------------------------------------------------------

    def open_users_page(self) -> None:
        """F3 with no parcel open: the users page, for admins (each step is checked again by the
        service, whatever the page shows)."""
        if self._may(MANAGE_USERS):
            self._open_page(UsersPage(self.station, self.worker, self))

    def open_history(self) -> None:
        self._open_page(HistoryPage(self.station, self.worker, self.printing.kick, self))

    def open_review(self) -> None:
        """F5 with no parcel open: the review queue, for supervisors and admins (the services check
        the role and four eyes again for every read and verdict)."""
        if self._may(REVIEW):
            self._open_page(ReviewPage(self.station, self.worker, self.printer_settings, self.printing.kick, self))

    def _may(self, permission: str) -> bool:
        try:
            require(self.station.actor, permission)
        except NotAllowed as exc:
            messages.error(exc.message)
            self._refocus(force=True)
            return False
        return True

    # -- signing in and out ------------------------------------------------------------------

    def _show_sign_in(self, message: str) -> None:
        self._signed_in = False
        self.idle_lock.stop()
        for shortcut in self._shortcut_list:
            shortcut.setEnabled(False)
        self.pages.setCurrentWidget(self.sign_in_page)
        self.statusBar().showMessage("Scan a badge, or type a user name and PIN")
        self.sign_in_page.reset(message)

    def _check_pin(self, user: str, pin: str) -> None:
        self._check("checking the sign-in", lambda station: jobs.sign_in_job(station, user, pin))

    def _check_badge(self, code: str) -> None:
        self._check("checking the badge", lambda station: jobs.badge_job(station, code))

    def _check(self, step: str, job: Callable[[Station], Actor]) -> None:
        station = self.station
        self.ops.run(step, lambda _ctx: job(station), self._signed_in_as, self._sign_in_refused)

    def _sign_in_refused(self, message: str) -> None:
        self.sounds.play("bad")
        self.sign_in_page.refused(message)

    def _signed_in_as(self, actor: Actor) -> None:
        if self._signed_in:
            return
        theirs = self.work.signed_in(actor.user_id)
        self.station.actor = actor  # with the time of this PIN or badge check
        self._signed_in = True
        for shortcut in self._shortcut_list:
            shortcut.setEnabled(True)
        self.top.draw_user(actor)
        self.sign_in_page.reset()
        self.pages.setCurrentWidget(self.bench_page)
        self.statusBar().showMessage(BENCH_KEYS)
        self.idle_lock.start()
        welcome = self.work.welcome(actor, theirs)
        if theirs:  # back after the idle lock: go on
            messages.success(welcome)
            return self._refocus(force=True)
        self._reset_parcel()  # someone else: put it down; everything recorded stays recorded
        messages.success(welcome)

    def lock_idle(self) -> None:
        """The idle lock fired: the sign-in screen, with every page and dialog closed. An open
        parcel stays open for the same person signing in again (console.signin audits the sign-out
        with reason "idle")."""
        if not self._signed_in or self._closed:
            return
        if self.work.holding:  # a step is being recorded: lock once it is, not in the middle of it
            QTimer.singleShot(500, self.lock_idle)
            return
        for dialog in self.findChildren(QDialog):
            if dialog.isVisible():
                dialog.reject()
        station = self.station
        self.work.locked()
        # The sign-out is the locked person's: the context is taken now, before anyone signs in.
        self.ops.run("locking the station", lambda ctx: jobs.sign_out_job(station, ctx, "idle"))
        self._show_sign_in(self.work.lock_message(station.settings.idle_lock_minutes))

    def _ask_identity(self, what: str) -> None:
        """Before a refund that pays at once, when the last PIN or badge check is older than the
        idle time (console.reconfirm): a badge scan or the PIN, checked on the worker; then the
        decision goes on as if F12 were pressed again."""
        if self._confirm is not None:
            return
        dialog = ConfirmIdentityDialog(self.station.actor.display_name, what, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._confirm = dialog
        generation = self.work.generation

        def confirmed(at: datetime) -> None:
            self.work.identity_confirmed(at)
            if self._confirm is dialog:
                dialog.accept()
                if self.work.current(generation):
                    self.decide()

        def check(secret: str, is_badge: bool) -> None:
            station = self.station
            self.ops.run("checking it is you", lambda ctx: jobs.reconfirm_job(station, ctx, secret, is_badge),
                         confirmed, lambda message: dialog.refused(message) if self._confirm is dialog else None)

        def closed(_result: int) -> None:
            self._confirm = None
            if _result != QDialog.DialogCode.Accepted:
                messages.info("Not decided: the parcel stays open. F12 asks again.")
            self._refocus(force=True)

        dialog.entered.connect(check)
        dialog.finished.connect(closed)
        dialog.open()
        dialog.pin_field.setFocus(Qt.FocusReason.OtherFocusReason)

    def sign_out(self) -> None:
        """Ctrl+L: sign out (to hand the bench over). An open parcel is put down first; what was
        recorded stays, and the next person finds it by scanning it again."""
        if not self._signed_in:
            return
        self.work.parcel_kept_for = None
        if self.work.holding:
            messages.info("A step is being recorded; sign out when it is done.")
            return
        number, station = self.work.number, self.station
        self._reset_parcel()
        self.ops.run("signing out", lambda ctx: jobs.sign_out_job(station, ctx))
        note = f"{number} was put down; its scans and grades are kept. " if number else ""
        self._show_sign_in(f"{note}Signed out. Scan a badge or type a user name and PIN.")

    # -- drawing --------------------------------------------------------------------------

    def _draw_bench(self, bench: Bench, select_item: int | None) -> None:
        keep = select_item if select_item is not None else self.table.selected_item_id()
        self.work.bench = bench
        view = bench.view
        self.item_model.set_items(view.items)
        for item in view.items:
            self.inspect_panel.load(item.id, UnitInspection(dict(getattr(item, "checklist", {}) or {}),
                                                            getattr(item, "notes", None) or "",
                                                            tuple(getattr(item, "photos", ()) or ())))
        row = self.item_model.row_of(keep) if keep is not None else None
        if row is not None:
            self.table.select_row(row)
        self._show_inspection()
        self.rma.draw(view, self.work.receipt.weight if self.work.receipt else None, self._local_date)
        if self.decision.draw(bench.proposal, bench.proposal_note, self.station.policy.risk):
            self._focus_replacement()  # an exchange: the replacement is scanned or typed next
        self._update_enabled()

    def _local_date(self, moment: datetime) -> str:
        return self.station.ctx().local(moment).strftime("%d %b %Y")

    def _show_feedback(self, level: str, text: str) -> None:
        self.sounds.for_level(level)
        self.feedback.setText(text)
        self.feedback.setProperty("level", level)
        restyle(self.feedback)

    # -- selection and focus --------------------------------------------------------------

    def _refocus(self, force: bool = False) -> None:
        """Give the keyboard back to the scan field, unless the clerk is typing a weight or
        choosing a kind right now (``force`` after an action taken from the keyboard)."""
        if self._closed:
            return
        focus = QApplication.focusWidget()
        busy_elsewhere = focus is not None and (focus in (self.weight, self.weight.lineEdit(), self.kind_combo,
                                                          self.replacement_field, self.inspect_panel.note_field)
                                                or self.kind_combo.view().isVisible())
        if force or not busy_elsewhere:
            self.scan_field.setFocus(Qt.FocusReason.OtherFocusReason)

    # -- devices --------------------------------------------------------------------------

    def weigh(self) -> None:
        """F8: read the scale now (again), or type the weight when there is no scale."""
        if self.devices.has_scale:
            if self._ask_scale():
                messages.info("Weighing… keep the parcel still on the scale.")
        elif self.parcel_open:
            messages.error("No scale is set up at this station: set one up on the devices page [F9].")
        else:
            self.weight.setFocus(Qt.FocusReason.ShortcutFocusReason)
            self.weight.selectAll()

    def _ask_scale(self) -> bool:
        if not self.devices.read_scale():
            return False
        self.work.scale_asked_in = self.work.generation
        return True

    def _on_weighed(self, grams: int, division: int | None) -> None:
        work, station = self.work, self.station
        if not work.reading_is_current():
            # Asked for a parcel that was put down: not this parcel's weight. A parcel opened
            # while that read was running is weighed now.
            if work.needs_weighing():
                self._ask_scale()
            return
        if not work.scale_reading(grams, division):
            self.weight.setValue(grams)  # kept for the next parcel code
            return
        assert work.receipt is not None
        receipt_id, generation = work.receipt.receipt_id, work.generation

        def done(check: WeightCheck) -> None:
            if not work.current(generation) or work.bench is None or work.receipt is None:
                return
            work.weighed(check)
            self.rma.draw_weight(work.bench.view, check)
            if check.mismatch:
                messages.error(f"{check.message}. Open the parcel and check its contents.")
            else:
                messages.success(f"Weight OK: {check.message}.")

        self.ops.run("recording the weight", lambda ctx: jobs.weigh_job(station, ctx, receipt_id, grams, division),
                     done)

    def open_devices_page(self) -> None:
        # The page tests the devices itself: the window lets go of them meanwhile (one reader
        # per port). The stopped hub stays until the page closes, so closing the window with
        # the page open finds a hub to stop, not a deleted one.
        current = self.devices.settings
        self.devices.stop()
        page = DevicesPage(self.station.settings.config_file, current, self)
        page.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        page.finished.connect(lambda _result: self._devices_page_closed(page.saved or current, page.saved is not None))
        page.open()  # window-modal, without a nested event loop

    def _devices_page_closed(self, settings: DeviceSettings, saved: bool) -> None:
        if self._closed:
            return  # the window closed the page on its way out
        self.devices.deleteLater()
        self.devices = DeviceHub(settings, self)
        self._start_devices()
        if saved:
            messages.success("Device settings saved: " + self.devices.status_text())
        self._refocus(force=True)

    def _start_devices(self) -> None:
        self.devices.scanned.connect(self.submit_scan)
        self.devices.weighed.connect(self._on_weighed)
        self.devices.scale_failed.connect(messages.error)
        self.devices.status_changed.connect(self.device_label.setText)
        self.devices.start()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._closed:
            self._closed = True
            for page in self.findChildren(DevicesPage):
                page.reject()  # stops the page's test devices
            for page in [*self.findChildren(PrintQueuePage), *self.findChildren(PrintersPage)]:
                page.reject()
            self.devices.stop()
            wait_for_stopped_scales()  # each port closed before the window is gone
            self.printing.stop()
            if self.sync is not None:
                self.sync.stop()
            self.sounds.stop()
            self.idle_lock.uninstall()
            self.worker.stop()
            messages.bridge().shown.disconnect(self._show_feedback)
        super().closeEvent(event)
