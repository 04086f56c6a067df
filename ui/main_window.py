"""The scan station: one window, driven from the scan field and function keys.

The window only routes: a scan, a key or a button becomes a job for the database worker, and
the job's result is drawn. Which parcel a code finds, whether a unit matches, what a grade costs
and whether a supervisor must look are all answered by the services in ``console``.

States: no parcel open (a scan is a parcel code) -> a parcel open (a scan is an item code,
F1..F5 grade the selected row, F12 decides, Esc puts the parcel down) -> no parcel open.
"""
from __future__ import annotations

import html
from collections.abc import Callable
import textwrap
import uuid
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from PySide6.QtCore import QEvent, QItemSelectionModel, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QStackedWidget,
    QApplication,
    QComboBox,
    QDialog,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from console.deciding import DecideCommand, DecisionResult, Proposal, decide, propose
from console.errors import DomainError, EnvironmentProblem, NotAllowed, NotFound
from console.context import Actor
from console.lookup import find_code
from console.permissions import MANAGE_USERS, require
from console.permissions import REVIEW
from console.reconfirm import must_reconfirm, reconfirm
from console.signin import AccountLocked, locked_message, sign_in, sign_in_badge, sign_out
from console.undo import UndoResult, undo_last
from console.unexpected import receive_without_rma, record_unidentified
from db.types import utcnow
from db.uow import UnitOfWork
from console.inspection import GRADE_LABELS, inspect_item
from console.money import Money
from console.receiving import ReceiptResult, ScanResult, WeightCheck, receive_parcel, scan_item, weigh_parcel
from console.station import Station
from console.sync_runner import SyncStatus
from console.fetch import fetch_code
from console.views import RmaView, load_rma_view
from db.models import DECISION_KINDS
from console.print_jobs import Queued, print_after_decision
from devices.settings import DeviceSettings
from printing.settings import PrinterSettings, default_settings, make_printers
from ui import messages
from ui.devices import DeviceHub, wait_for_stopped_scales
from ui.devices_page import DevicesPage
from ui.history_page import HistoryPage
from ui.review_page import ReviewPage
from ui.idle_lock import ConfirmIdentityDialog, IdleLock
from ui.print_page import PrintQueuePage
from ui.printers_page import PrintersPage
from ui.print_worker import PrintWorker
from ui.item_model import ItemTableModel
from ui.inspect_panel import CHECK_KEYS, MAX_PHOTOS, InspectPanel, UnitInspection, new_photos
from ui.sign_in_page import SignInPage
from ui.sounds import Sounds
from ui.sync_process import SyncProcess, describe_sync
from ui.users_page import UsersPage
from ui.worker import DatabaseWorker

GRADE_KEYS = (("A", "F1"), ("B", "F2"), ("C", "F3"), ("D", "F4"), ("F", "F5"))
# F5 and F3 open review and users only with no parcel open (with one, they grade F and C).
BENCH_KEYS = ("F1–F5 grade · ^1–^5 checklist · ^Z undo · F12 decide · Esc put down · "
              "F6 unexpected · F7 today · F5 review · F3 users · ^L sign out")
PROMPT_PARCEL = "Scan a parcel: RMA label, return tracking or order barcode"
TYPED_WEIGHT_REASON = "typed at bench"

STYLE = """
QMainWindow, QWidget#central { background: #f4f6f8; }
QScrollArea, QWidget#details { background: #ffffff; }
QWidget { font-size: 13pt; color: #111; }
QFrame#topBar { background: #1f2933; }
QFrame#topBar QLabel { color: #ffffff; font-size: 12pt; }
QFrame#topBar QLabel#printStatus[attention="true"], QFrame#topBar QLabel#syncStatus[attention="true"] {
    background: #b00020; padding: 2px 6px; font-weight: bold; }
QLabel#prompt { font-size: 16pt; font-weight: bold; color: #1f2933; }
QLineEdit#scanField { font-size: 22pt; padding: 6px; border: 3px solid #1f5fbf; border-radius: 4px;
                      background: #ffffff; }
QSpinBox#weight { font-size: 16pt; padding: 4px; min-width: 190px; }
QLabel#feedback { font-size: 17pt; padding: 8px 12px; border-radius: 4px; }
QLabel#feedback[level="info"] { background: #e3e8ee; color: #1f2933; }
QLabel#feedback[level="success"] { background: #156b25; color: #ffffff; }
QLabel#feedback[level="warning"] { background: #f2b01e; color: #111111; }
QLabel#feedback[level="error"] { background: #b00020; color: #ffffff; }
QGroupBox { font-weight: bold; border: 1px solid #b8c2cc; border-radius: 4px; margin-top: 14px;
            padding-top: 8px; background: #ffffff; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px; }
QLabel[class="key"] { color: #52606d; }
QLabel#weightCheck[mismatch="true"] { color: #b00020; font-weight: bold; }
QLabel#amount { font-size: 28pt; font-weight: bold; color: #0b3d91; }
QLabel#review { background: #fff3cd; color: #5c4100; padding: 6px; border: 1px solid #f2b01e; }
QLabel#proposalNote, QLabel#risk, QLabel#paid { color: #52606d; font-size: 12pt; }
QLabel#deductions { font-size: 12pt; }
QTableView { font-size: 12pt; background: #ffffff; gridline-color: #d9e0e6; selection-background-color: #1f5fbf;
             selection-color: #ffffff; }
QHeaderView::section { font-size: 12pt; background: #e3e8ee; padding: 4px 6px; border: none; font-weight: bold; }
QPushButton { padding: 6px 10px; border: 1px solid #7b8794; border-radius: 4px; background: #ffffff; }
QPushButton:disabled { color: #9aa5b1; }
QPushButton[class="grade"] { font-size: 14pt; min-height: 84px; min-width: 120px; }
QPushButton#decide { font-size: 18pt; font-weight: bold; min-height: 52px; background: #156b25; color: #ffffff; }
QPushButton#decide:disabled { background: #c5cdd3; color: #6b7680; }
QComboBox#kind { font-size: 15pt; padding: 4px; }
QStatusBar QLabel { font-size: 11pt; }
QGroupBox#inspect QPushButton { font-size: 12pt; padding: 4px 6px; }
QGroupBox#inspect QPushButton:checked { background: #156b25; color: #ffffff; font-weight: bold; }
"""


@dataclass(frozen=True)
class Bench:
    """What the window draws for an open RMA: its view, and the proposal or why there is none yet."""

    view: RmaView
    proposal: Proposal | None
    proposal_note: str


# -- jobs: these run on the database thread, each service call in its own unit of work --------

def load_bench(station: Station, rma_id: int, kind: str | None) -> Bench:
    ctx = station.ctx()
    with station.read_uow() as uow:
        view = load_rma_view(uow.session, ctx, rma_id)
    try:
        with station.read_uow() as uow:
            proposal: Proposal | None = propose(uow, ctx, rma_id, kind)
        note = ""
    except DomainError as exc:  # not decidable yet (units not scanned or graded): say why
        proposal, note = None, exc.message
    return Bench(view, proposal, note)


@dataclass(frozen=True)
class Unexpected:
    """A parcel code that opened no RMA: the order it found (if any) and why."""

    code: str
    order_number: str | None
    message: str


def _weight_args(weight_g: int | None, scale_division_g: int | None, from_scale: bool) -> dict[str, Any]:
    return {"weight_g": weight_g,
            "weight_source": None if weight_g is None else "scale" if from_scale else "manual",
            "weight_reason": TYPED_WEIGHT_REASON if weight_g is not None and not from_scale else None,
            "scale_division_g": scale_division_g if from_scale else None}


def receive_job(station: Station, code: str, weight_g: int | None, receipt_id: uuid.UUID,
                scale_division_g: int | None = None, from_scale: bool = False, *, central_asked: bool = False,
                ) -> tuple[ReceiptResult, Bench] | Unexpected:
    try:
        with station.uow() as uow:
            receipt = receive_parcel(uow, station.ctx(), code, receipt_id=receipt_id,
                                     **_weight_args(weight_g, scale_division_g, from_scale))
    except NotFound as exc:
        asked = "" if central_asked else ask_central(station, code)
        if asked is True:  # central knew it: now it is here too
            return receive_job(station, code, weight_g, receipt_id, scale_division_g, from_scale,
                               central_asked=True)
        with station.uow() as uow:
            try:
                order: str | None = find_code(uow.session, code).order_number
            except (NotFound, DomainError):
                order = None
        return Unexpected(code.strip(), order, exc.message + (asked or ""))
    return receipt, load_bench(station, receipt.rma_ids[0], None)


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


def receive_unexpected_job(station: Station, code: str, weight_g: int | None, receipt_id: uuid.UUID,
                           scale_division_g: int | None, from_scale: bool) -> tuple[ReceiptResult, Bench]:
    with station.uow() as uow:
        receipt = receive_without_rma(uow, station.ctx(), code, receipt_id=receipt_id,
                                      **_weight_args(weight_g, scale_division_g, from_scale))
    return receipt, load_bench(station, receipt.rma_ids[0], None)


def unidentified_job(station: Station, code: str, weight_g: int | None, scale_division_g: int | None,
                     from_scale: bool, since: float, note: str, receipt_id: uuid.UUID) -> tuple[uuid.UUID, int]:
    # The camera folder is read here, on the database thread: it may be a slow network share.
    photos = new_photos(station.settings.photo_folder, since, ())[:MAX_PHOTOS]
    with station.uow() as uow:
        recorded = record_unidentified(uow, station.ctx(), code or None, photos=photos, note=note,
                                       receipt_id=receipt_id, **_weight_args(weight_g, scale_division_g, from_scale))
    return recorded, len(photos)


def scan_job(station: Station, receipt_id: uuid.UUID, code: str, rma_id: int, kind: str | None
             ) -> tuple[ScanResult, Bench]:
    with station.uow() as uow:
        result = scan_item(uow, station.ctx(), receipt_id, code)
    return result, load_bench(station, rma_id, kind)


def weigh_job(station: Station, receipt_id: uuid.UUID, grams: int, division_g: int | None) -> WeightCheck:
    with station.uow() as uow:
        return weigh_parcel(uow, station.ctx(), receipt_id, grams, source="scale", scale_division_g=division_g)


def grade_job(station: Station, return_item_id: int, grade: str, rma_id: int, kind: str | None,
              unit: UnitInspection | None = None) -> Bench:
    unit = unit or UnitInspection()
    with station.uow() as uow:
        inspect_item(uow, station.ctx(), return_item_id, grade, checklist=dict(unit.checklist),
                     notes=unit.notes or None, photos=list(unit.photos))
    return load_bench(station, rma_id, kind)


def undo_job(station: Station, receipt_id: uuid.UUID, rma_id: int, kind: str | None) -> tuple[UndoResult, Bench]:
    with station.uow() as uow:
        result = undo_last(uow, station.ctx(), receipt_id)
    return result, load_bench(station, rma_id, kind)


def _signing_in(station: Station, check: Callable[[UnitOfWork], Actor]) -> Actor:
    try:
        with station.uow() as uow:
            return check(uow)
    except AccountLocked as exc:  # said in the station's time, not UTC
        raise AccountLocked(locked_message(exc.locked_until, station.zone), exc.locked_until) from None


def sign_in_job(station: Station, user: str, pin: str) -> Actor:
    return _signing_in(station, lambda uow: sign_in(uow, station.settings.station_id, user, pin, utcnow()))


def badge_job(station: Station, code: str) -> Actor:
    return _signing_in(station, lambda uow: sign_in_badge(uow, station.settings.station_id, code, utcnow()))


def sign_out_job(station: Station, reason: str | None = None) -> None:
    with station.uow() as uow:
        sign_out(uow, station.ctx(), reason=reason)


def reconfirm_job(station: Station, secret: str, is_badge: bool) -> None:
    try:
        with station.uow() as uow:
            reconfirm(uow, station.ctx(), secret, badge=is_badge)
    except AccountLocked as exc:  # said in the station's time, not UTC
        raise AccountLocked(locked_message(exc.locked_until, station.zone), exc.locked_until) from None


def decide_job(station: Station, command: DecideCommand) -> DecisionResult:
    with station.uow() as uow:
        return decide(uow, station.ctx(), command)


def print_job(station: Station, printers: PrinterSettings, decision_id: uuid.UUID) -> list[Queued]:
    with station.uow() as uow:
        return print_after_decision(uow, station.ctx(), printers, decision_id)


# -- widgets ----------------------------------------------------------------------------------

class ScanField(QLineEdit):
    """The scan field; Up/Down move the item selection so the clerk never leaves it."""

    step = Signal(int)

    # The window's own keys (its shortcuts), which a line edit would otherwise keep: Ctrl+Z is
    # its undo, Ctrl+K and Ctrl+E its Emacs-style editing on X11.
    window_keys: frozenset[str] = frozenset()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            if QKeySequence(event.keyCombination()).toString() in self.window_keys:
                event.ignore()  # not the field's: the window's shortcut gets it
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Up and not event.modifiers():
            self.step.emit(-1)
            return
        if event.key() == Qt.Key.Key_Down and not event.modifiers():
            self.step.emit(1)
            return
        super().keyPressEvent(event)


def kind_label(kind: str) -> str:
    return kind.replace("_", " ")


def _value(text: str = "", *, name: str | None = None, rich: bool = False) -> QLabel:
    """A value label; plain text unless ``rich`` (names and messages come from data)."""
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    label.setWordWrap(True)
    if name:
        label.setObjectName(name)
    return label


def _key(text: str) -> QLabel:
    label = QLabel(text)
    label.setProperty("class", "key")
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    return label


def _restyle(widget: QWidget) -> None:
    """Re-apply the style sheet after a dynamic property used by a selector changed."""
    widget.style().unpolish(widget)
    widget.style().polish(widget)


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
        self.item_model = ItemTableModel(self)

        # What is open at the bench; everything else is drawn from the last Bench.
        self._receipt: ReceiptResult | None = None
        self._bench: Bench | None = None
        self._decision_id = uuid.uuid4()
        self._chosen_kind: str | None = None  # None: what policy proposes
        self._generation = 0  # results for a parcel view that was put down are dropped
        self._holding = False  # a parcel is being received or decided: later scans wait
        self._held: deque[str] = deque()
        self._closed = False
        self._signed_in = not sign_in
        self._shortcut_list: list[QShortcut] = []
        # The last parcel code that opened no RMA, offered to F6 (create the RMA / record it).
        self._unexpected: Unexpected | None = None
        # The grade last asked for per unit of the open parcel (its job may not have run yet).
        self._pending_grades: dict[int, str] = {}
        # The last stable scale reading taken before a parcel was scanned: (grams, division).
        self._scale_weight: tuple[int, int | None] | None = None
        # The parcel view (generation) the scale read in progress was asked for: a reading for a
        # parcel that was put down meanwhile is not the weight of whatever is open now.
        self._scale_asked_in: int | None = None
        self.devices = DeviceHub(devices or DeviceSettings(), self)
        self.printing = PrintWorker(station.sessions, make_printers(self.printer_settings), self)
        self.sounds = Sounds(station.settings.data_dir / "sounds", self, enabled=station.settings.sounds)
        self.sync = SyncProcess(station.settings, self) if sync else None
        # The idle lock: after idle_lock_minutes without input the sign-in screen comes back. A
        # parcel open then stays open for the same person (``_parcel_kept_for``); anyone else
        # signing in puts it down. ``_identity_checked_at`` is the last PIN or badge check, which
        # a refund that pays at once may not be older than (console.reconfirm).
        self.idle_lock = IdleLock(max(1, round(station.settings.idle_lock_minutes * 60_000)), self)
        self.idle_lock.idle.connect(self.lock_idle)
        self._parcel_kept_for: int | None = None
        self._identity_checked_at = utcnow()
        self._confirm: ConfirmIdentityDialog | None = None

        self._build()
        self._shortcuts()
        messages.bridge().shown.connect(self._show_feedback)
        self.worker.busy_changed.connect(self._on_busy)
        self._start_devices()
        self.printing.status_changed.connect(self._on_print_status)
        if self.sync is not None:
            self.sync.status_changed.connect(self._on_sync_status)
            self.sync.stopped.connect(self._on_sync_stopped)
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
        central = QWidget(objectName="central")
        root = QVBoxLayout(central)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)
        self.pages.addWidget(central)
        self.bench_page = central
        self.sign_in_page = SignInPage(self.station.settings.station_name, self.station.settings.station_id)
        self.sign_in_page.pin_entered.connect(self._check_pin)
        self.sign_in_page.badge_scanned.connect(self._check_badge)
        self.pages.addWidget(self.sign_in_page)

        top = QFrame(objectName="topBar")
        top_row = QHBoxLayout(top)
        top_row.setContentsMargins(12, 6, 12, 6)
        settings, actor = self.station.settings, self.station.actor
        self.station_label = QLabel(f"<b>{settings.station_name}</b> · {settings.station_id}")
        self.user_label = QLabel(objectName="userLabel")
        self.user_label.setToolTip("Sign out or switch user [Ctrl+L]")
        self._draw_user(actor)
        top_row.addWidget(self.station_label)
        top_row.addSpacing(16)
        top_row.addStretch(1)
        self.device_label = QLabel(objectName="deviceStatus")
        top_row.addWidget(self.device_label)
        top_row.addSpacing(16)
        self.print_label = QLabel("printing: starting…", objectName="printStatus")
        self.print_label.setToolTip("The print queue [F10]: preview, reprint, retry, cancel; printer settings [F11]")
        top_row.addWidget(self.print_label)
        top_row.addSpacing(16)
        self.sync_label = QLabel("sync: starting…", objectName="syncStatus")
        self.sync_label.setToolTip("Pushes every decision to the central database; work goes on while it is offline")
        self.sync_label.setVisible(self.sync is not None)
        top_row.addWidget(self.sync_label)
        top_row.addSpacing(16)
        top_row.addWidget(self.user_label)
        root.addWidget(top)

        body = QVBoxLayout()
        body.setContentsMargins(12, 8, 12, 4)
        body.setSpacing(8)
        root.addLayout(body, 1)

        self.prompt = QLabel(objectName="prompt")
        body.addWidget(self.prompt)

        scan_row = QHBoxLayout()
        self.scan_field = ScanField(objectName="scanField")
        self.scan_field.setPlaceholderText("scan or type, then Enter")
        self.scan_field.returnPressed.connect(self._on_enter)
        self.scan_field.step.connect(self._move_selection)
        scan_row.addWidget(self.scan_field, 1)
        weight_caption = QLabel("Weight [Tab]")
        self.weight = QSpinBox(objectName="weight")
        self.weight.setRange(0, 100_000)
        self.weight.setSuffix(" g")
        self.weight.setSpecialValueText("not weighed")
        self.weight.setSingleStep(10)
        self.weight.setToolTip("Grams, typed from the scale's display (0 = not weighed); Enter goes back to the scan field")
        self.weight.lineEdit().returnPressed.connect(self._refocus)
        weight_caption.setBuddy(self.weight)
        scan_row.addWidget(weight_caption)
        scan_row.addWidget(self.weight)
        body.addLayout(scan_row)

        self.feedback = QLabel(objectName="feedback")
        self.feedback.setTextFormat(Qt.TextFormat.PlainText)
        self.feedback.setWordWrap(True)
        self.feedback.setMinimumHeight(48)
        body.addWidget(self.feedback)

        main = QHBoxLayout()
        main.setSpacing(12)
        body.addLayout(main, 1)
        left = QVBoxLayout()
        main.addLayout(left, 1)
        main.addWidget(self._decision_panel())

        left.addWidget(self._rma_panel())
        self.table = QTableView()
        self.table.setModel(self.item_model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the scan field keeps the keyboard
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(34)
        header = self.table.horizontalHeader()
        # An RMA has a handful of units, so sizing the short columns to their contents is cheap;
        # the title takes what is left.
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(60)
        self.table.setMinimumHeight(150)
        left.addWidget(self.table, 1)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._show_inspection())
        self.inspect_panel = InspectPanel()
        self.inspect_panel.changed.connect(self._inspection_changed)
        self.inspect_panel.attach_requested.connect(self.attach_photos)
        self.inspect_panel.note_field.returnPressed.connect(lambda: self._refocus(force=True))
        left.addWidget(self.inspect_panel)

        grades = QHBoxLayout()
        self.grade_buttons: dict[str, QPushButton] = {}
        for grade, key in GRADE_KEYS:
            button = QPushButton(f"{grade}  [{key}]\n" + textwrap.fill(GRADE_LABELS[grade], 14))
            button.setProperty("class", "grade")
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setToolTip(f"Grade the selected unit {grade}: {GRADE_LABELS[grade]} ({key})")
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            button.clicked.connect(lambda _=False, g=grade: self.grade_selected(g))
            grades.addWidget(button)
            self.grade_buttons[grade] = button
        left.addLayout(grades)

        self.busy_label = QLabel("ready")
        self.statusBar().addPermanentWidget(self.busy_label)
        self.statusBar().showMessage(BENCH_KEYS)
        self.setTabOrder(self.scan_field, self.weight)
        self.setTabOrder(self.weight, self.scan_field)

    def _rma_panel(self) -> QGroupBox:
        box = QGroupBox("Return")
        grid = QGridLayout(box)
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(4)
        self.rma_label = _value(name="rmaNumber", rich=True)
        self.customer_label = _value()
        self.contact_label = _value()
        self.order_label = _value()
        self.delivered_label = _value()
        self.weight_check_label = _value(name="weightCheck")
        self.weight_check_label.setWordWrap(False)  # one line: the group box does not grow for a wrap
        placed = ((("RMA", self.rma_label), 0, 0, 1), (("Order", self.order_label), 0, 2, 1),
                  (("Customer", self.customer_label), 1, 0, 1), (("Contact", self.contact_label), 1, 2, 1),
                  (("Delivered", self.delivered_label), 2, 0, 3), (("Weight", self.weight_check_label), 3, 0, 3))
        for (caption, value), row, col, span in placed:
            grid.addWidget(_key(caption), row, col, Qt.AlignmentFlag.AlignTop)
            grid.addWidget(value, row, col + 1, 1, span, Qt.AlignmentFlag.AlignTop)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        return box

    def _decision_panel(self) -> QGroupBox:
        box = QGroupBox("Decision")
        box.setFixedWidth(380)
        col = QVBoxLayout(box)
        col.setSpacing(6)
        kind_row = QHBoxLayout()
        kind_caption = QLabel("Kind [Ctrl+K]")
        self.kind_combo = QComboBox(objectName="kind")
        for kind in DECISION_KINDS:
            self.kind_combo.addItem(kind_label(kind), kind)
        self.kind_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.kind_combo.activated.connect(self._on_kind_chosen)
        self.kind_combo.installEventFilter(self)
        kind_caption.setBuddy(self.kind_combo)
        kind_row.addWidget(kind_caption)
        kind_row.addWidget(self.kind_combo, 1)
        col.addLayout(kind_row)
        # An exchange needs the replacement: scanned (from the shelf) or typed into this field.
        self.replacement_row = QWidget()
        replacement_layout = QHBoxLayout(self.replacement_row)
        replacement_layout.setContentsMargins(0, 0, 0, 0)
        replacement_caption = QLabel("Replacement [Ctrl+E]")
        self.replacement_field = QLineEdit(objectName="replacement")
        self.replacement_field.setPlaceholderText("scan or type the SKU")
        self.replacement_field.setMaxLength(40)
        self.replacement_field.returnPressed.connect(lambda: self._refocus(force=True))
        replacement_caption.setBuddy(self.replacement_field)
        replacement_layout.addWidget(replacement_caption)
        replacement_layout.addWidget(self.replacement_field, 1)
        self.replacement_row.hide()
        col.addWidget(self.replacement_row)
        # The details scroll rather than squeeze when there are many reasons or a small screen.
        details = QWidget(objectName="details")
        inner = QVBoxLayout(details)
        inner.setContentsMargins(0, 0, 4, 0)
        inner.setSpacing(6)
        self.policy_kind_label = _value(rich=True)
        inner.addWidget(self.policy_kind_label)
        self.amount_label = _value(name="amount")
        self.amount_label.setWordWrap(False)
        inner.addWidget(self.amount_label)
        self.paid_label = _value(name="paid")
        inner.addWidget(self.paid_label)
        inner.addWidget(_key("Deductions"))
        self.deductions_label = _value(name="deductions", rich=True)
        inner.addWidget(self.deductions_label)
        self.risk_label = _value(name="risk")
        inner.addWidget(self.risk_label)
        self.review_label = _value(name="review", rich=True)
        inner.addWidget(self.review_label)
        self.proposal_note = _value(name="proposalNote")
        inner.addWidget(self.proposal_note)
        inner.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(details)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        col.addWidget(scroll, 1)
        self.decide_button = QPushButton("Decide  [F12]", objectName="decide")
        self.decide_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.decide_button.setToolTip("Record the decision (F12 or Ctrl+Enter)")
        self.decide_button.clicked.connect(self.decide)
        col.addWidget(self.decide_button)
        self.abandon_button = QPushButton("Put parcel down  [Esc]")
        self.abandon_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.abandon_button.setToolTip("Back to 'scan a parcel'; what was recorded stays recorded")
        self.abandon_button.clicked.connect(self.abandon)
        col.addWidget(self.abandon_button)
        return box

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
        return self._receipt is not None

    def _reset_parcel(self) -> None:
        """Back to 'scan a parcel'. Nothing is deleted: what was recorded stays recorded."""
        self._generation += 1
        self._receipt = None
        self._bench = None
        self._chosen_kind = None
        self._decision_id = uuid.uuid4()
        self.item_model.clear()
        self.inspect_panel.clear()
        self._pending_grades.clear()
        self._unexpected = None  # F6 acts only on the scan just before it
        self.weight.setValue(0)
        self.weight.setEnabled(True)
        self._scale_weight = None
        self.prompt.setText(PROMPT_PARCEL)
        for label in (self.rma_label, self.customer_label, self.contact_label, self.order_label,
                      self.delivered_label, self.weight_check_label):
            label.setText("—")
        self._set_mismatch(False)
        self._draw_proposal(None, "")
        self._update_enabled()
        self._refocus(force=True)

    def _update_enabled(self) -> None:
        open_ = self.parcel_open
        for button in self.grade_buttons.values():
            button.setEnabled(open_)
        self.kind_combo.setEnabled(open_ and self._bench is not None)
        self.decide_button.setEnabled(open_ and self._bench is not None and self._bench.proposal is not None)
        self.abandon_button.setEnabled(open_)

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
        if self._holding:
            self._held.append(code)
            return
        if self._receipt is None:
            self._receive(code)
        else:
            self._scan_item(code)

    def _receive(self, code: str) -> None:
        grams = self.weight.value() or None
        scale = self._scale_weight
        from_scale = scale is not None and grams == scale[0]  # not retyped since the scale read it
        division = scale[1] if scale is not None and from_scale else None
        self._holding = True
        self._unexpected = None
        generation = self._generation
        self.prompt.setText(f"Looking up {code.strip()[:40]}…")

        def done(outcome: tuple[ReceiptResult, Bench] | Unexpected) -> None:
            self._release()
            if generation != self._generation:
                return
            if isinstance(outcome, Unexpected):
                self._offer_unexpected(outcome)
            else:
                self._unexpected = None
                receipt, bench = outcome
                self._open_parcel(receipt, bench)
            self._drain()

        def failed(message: str) -> None:
            self._release()
            self.prompt.setText(PROMPT_PARCEL)
            messages.error(message)
            self._drain()

        self.worker.submit("receiving the parcel", lambda: receive_job(self.station, code, grams, uuid.uuid4(), division, from_scale),
                           done, failed)

    def _release(self) -> None:
        self._holding = False
        self._refocus()

    def _drain(self) -> None:
        while self._held and not self._holding:
            self.submit_scan(self._held.popleft())

    def _open_parcel(self, receipt: ReceiptResult, bench: Bench) -> None:
        self._receipt = receipt
        self.weight.setEnabled(False)
        self._draw_bench(bench, select_item=None)
        if self.item_model.rowCount() and not self.table.selectionModel().hasSelection():
            self._select_row(0)
        rma = bench.view.number
        self.prompt.setText(f"{rma} open: scan each unit, grade it [F1–F5], decide [F12]")
        note = ""
        if len(receipt.rma_numbers) > 1:
            note = f" This parcel also holds {', '.join(receipt.rma_numbers[1:])}; this screen shows {rma}."
        if receipt.returned_to_sender:
            note += " Returned to sender: received on a new RMA."
        messages.success(f"Parcel received for {', '.join(receipt.rma_numbers)}. Scan the units.{note}")
        self._update_enabled()
        if receipt.weight.weight_g is None and self.devices.has_scale:
            self._ask_scale()  # the parcel is on the scale now; the weight follows
        self.parcel_shown.emit(rma)

    def _scan_item(self, code: str) -> None:
        assert self._receipt is not None and self._bench is not None
        receipt_id, rma_id, kind = self._receipt.receipt_id, self._bench.view.id, self._chosen_kind
        generation = self._generation

        def done(outcome: tuple[ScanResult, Bench]) -> None:
            if generation != self._generation:
                return
            result, bench = outcome
            self._draw_bench(bench, select_item=result.return_item_id)
            if result.flagged:
                QApplication.beep()
                messages.warning(result.message)
            else:
                messages.success(result.message)
            self._refocus()

        self.worker.submit("matching the scanned unit",
                           lambda: scan_job(self.station, receipt_id, code, rma_id, kind), done, self._failed)

    def grade_selected(self, grade: str) -> None:
        if grade == "C" and not self.parcel_open and not self._holding:
            return self.open_users_page()  # F3 with no parcel open: the users page
        if grade == "F" and not self.parcel_open and not self._holding:
            return self.open_review()  # F5 with no parcel open: supervisor review
        if self._bench is None:
            messages.error("Scan a parcel first, then the unit, then grade it.")
            return self._refocus(force=True)
        row = self._selected_row()
        if row is None:
            messages.error("Choose a unit with ↑/↓ first, then grade it.")
            return self._refocus(force=True)
        item = self.item_model.item(row)
        rma_id, kind, generation = self._bench.view.id, self._chosen_kind, self._generation

        def done(bench: Bench) -> None:
            if generation != self._generation:
                return
            self._draw_bench(bench, select_item=item.id)
            messages.success(f"{item.sku} graded {grade} ({GRADE_LABELS[grade]}).")
            self._refocus()

        unit = self.inspect_panel.inspection(item.id)  # with a note still being typed
        self._pending_grades[item.id] = grade
        self.inspect_panel.recorded(item.id, True)
        self.worker.submit("recording the grade",
                           lambda: grade_job(self.station, item.id, grade, rma_id, kind, unit), done, self._failed)
        self._refocus(force=True)

    def _on_kind_chosen(self, index: int) -> None:
        if self._bench is None:
            return
        kind = self.kind_combo.itemData(index)
        proposal = self._bench.proposal
        self._chosen_kind = None if proposal is not None and kind == proposal.proposed_kind else kind
        rma_id, chosen, generation = self._bench.view.id, self._chosen_kind, self._generation

        def done(bench: Bench) -> None:
            if generation == self._generation:
                self._draw_bench(bench, select_item=None)
                self._refocus()

        self.worker.submit("working out the proposal", lambda: load_bench(self.station, rma_id, chosen),
                           done, self._failed)
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
        if self._bench is None or self._receipt is None:
            messages.error("Nothing to decide: scan a parcel first.")
            return self._refocus(force=True)
        if self._holding:
            return  # a decision is already on its way; its UUID would make a second one a no-op anyway
        exchange = self.kind_combo.currentData() == "exchange"
        replacement = self.replacement_field.text().strip() if exchange else ""
        if exchange and not replacement:
            messages.error("An exchange needs the replacement: scan it or type its SKU [Ctrl+E], then F12.")
            return self._focus_replacement()
        command = DecideCommand(self._bench.view.id, kind=self._chosen_kind, decision_id=self._decision_id,
                                exchange_sku=replacement or None)
        proposal = self._bench.proposal
        if proposal is not None and must_reconfirm(
                proposal.kind, proposal.needs_review, proposal.quote.amount_minor, self._identity_checked_at,
                utcnow(), timedelta(minutes=self.station.settings.idle_lock_minutes)):
            return self._ask_identity(f"{kind_label(proposal.kind).capitalize()} {proposal.amount.format()}")
        self._holding = True
        self.decide_button.setEnabled(False)

        generation = self._generation

        def done(result: DecisionResult) -> None:
            self._release()
            if generation == self._generation:
                self._reset_parcel()
            self._announce(result)
            self._print_after(result)
            self._drain()

        def failed(message: str) -> None:
            self._release()
            self._update_enabled()
            messages.error(message)
            self._drain()

        self.worker.submit("recording the decision", lambda: decide_job(self.station, command), done, failed)
        self._refocus(force=True)

    def abandon(self) -> None:
        """Esc: put the parcel view down. Already-recorded steps stay; the RMA can be scanned again."""
        popup_open = self.kind_combo.view().isVisible()
        if popup_open:
            self.kind_combo.hidePopup()
            return self._refocus(force=True)
        side_fields = (self.kind_combo, self.replacement_field, self.inspect_panel.note_field, self.weight,
                       self.weight.lineEdit())
        if QApplication.focusWidget() in side_fields:
            return self._refocus(force=True)  # Esc leaves the field; a second Esc puts the parcel down
        if self._receipt is None:
            self.scan_field.clear()
            self._unexpected = None  # Esc: F6 no longer acts on the last scan
            return self._refocus(force=True)
        if self._holding:
            messages.info("The decision is being recorded; wait a moment.")
            return self._refocus(force=True)
        number = self._bench.view.number if self._bench else ", ".join(self._receipt.rma_numbers)
        self._reset_parcel()
        messages.info(f"{number} put down; what was scanned and graded is saved. {PROMPT_PARCEL}.")

    def _print_after(self, result: DecisionResult) -> None:
        """Labels, slip or receipt for the decision: queued on the database worker, sent by the
        print worker; a printer fault shows in the top bar and never loses the job."""
        settings = self.printer_settings

        def queued(jobs: list[Queued]) -> None:
            if jobs:
                self.printing.kick()
                self.print_label.setText(f"printing: {len(jobs)} queued for {result.rma_number}…")

        self.worker.submit("queueing the printouts", lambda: print_job(self.station, settings, result.decision_id),
                           queued, lambda message: messages.error(f"Not printed: {message}"))

    def _on_print_status(self, text: str, attention: int) -> None:
        self._set_status_label(self.print_label, text if len(text) <= 90 else text[:89] + "…",
                               text + "\nThe print queue [F10]: preview, reprint, retry, cancel", bool(attention))

    def _on_sync_status(self, status: SyncStatus) -> None:
        short, full, attention = describe_sync(status, self.station.settings.time_zone)
        self._set_status_label(self.sync_label, short, full, attention)

    def _on_sync_stopped(self, text: str) -> None:
        self._set_status_label(self.sync_label, "sync: stopped", text, True)

    def _set_status_label(self, label: QLabel, text: str, tooltip: str, attention: bool) -> None:
        label.setText(text)
        label.setToolTip(tooltip)
        wanted = "true" if attention else "false"
        if label.property("attention") != wanted:
            # Re-polishing is the costly part: only when the colour actually changes.
            label.setProperty("attention", wanted)
            _restyle(label)

    def open_print_queue(self) -> None:
        page = PrintQueuePage(self.station, self.worker, self.printing.kick, self)
        page.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        page.finished.connect(lambda _r: self._refocus(force=True))
        page.open()

    def open_printers_page(self) -> None:
        page = PrintersPage(self.station, self.printer_settings, self.worker, self.printing.kick, self)
        page.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        page.finished.connect(lambda _r: self._printers_page_closed(page.saved))
        page.open()

    def _printers_page_closed(self, saved: PrinterSettings | None) -> None:
        if saved is not None and not self._closed:
            self.printer_settings = saved
            messages.success("Printer settings saved: " + ", ".join(
                f"{doc.replace('-', ' ')} → {route.printer} ({route.format})" for doc, route in saved.documents.items()))
        self._refocus(force=True)

    def _failed(self, message: str) -> None:
        messages.error(message)
        self._refocus()

    def _announce(self, result: DecisionResult) -> None:
        if self.sync is not None:
            self.sync.kick()  # to central now rather than at the next interval
        again = " (already recorded)" if result.already_existed else ""
        if result.status == "pending_review":
            messages.warning(f"{result.rma_number}: waiting for supervisor review — "
                             f"{kind_label(result.kind)} {result.amount.format()}{again}. {PROMPT_PARCEL}.")
            return
        what = {"full_refund": f"Refund {result.amount.format()}", "partial_refund": f"Refund {result.amount.format()}",
                "store_credit": f"Store credit {result.amount.format()}", "exchange": "Exchange",
                "deny": "Denial"}.get(result.kind, kind_label(result.kind))
        messages.success(f"{result.rma_number}: {what} {result.status}{again}. {PROMPT_PARCEL}.")

    # -- inspection, undo -----------------------------------------------------------------

    def _show_inspection(self) -> None:
        row = self._selected_row()
        if row is None or self._bench is None:
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
        """Ctrl+I: the camera's pictures taken since the parcel was opened; with none, a file
        dialog (the folder it opens is the camera's)."""
        if self.inspect_panel.item_id is None:
            messages.error("Choose a unit with ↑/↓ first; photos belong to a unit.")
            return self._refocus(force=True)
        folder = self.station.settings.photo_folder
        since, used = self.inspect_panel.opened_at, self.inspect_panel.used_photos()
        item_id, generation = self.inspect_panel.item_id, self._generation

        def found(paths: list[str]) -> None:
            if generation != self._generation or self.inspect_panel.item_id != item_id:
                return  # another unit or parcel by now: these pictures are not for it
            if not paths:
                chosen, _ = QFileDialog.getOpenFileNames(self, "Attach photos", str(folder),
                                                         "Pictures (*.jpg *.jpeg *.png *.heic *.webp)")
                paths = list(chosen)
            added = self.inspect_panel.add_photos(paths)
            if added:
                messages.success(f"{added} photo{'s' if added != 1 else ''} attached.")
            elif paths:
                messages.error(f"No photo attached: at most {MAX_PHOTOS} per unit, and each only once.")
            else:
                messages.info(f"No new pictures in {folder}: take them with the bench camera, then Ctrl+I again.")
            self._refocus(force=True)

        # Listed on the database thread: the camera folder may be a slow network share.
        self.worker.submit("looking for the camera's pictures", lambda: new_photos(folder, since, used),
                           found, self._failed)
        self._refocus(force=True)

    def _inspection_changed(self, item_id: int, unit: UnitInspection) -> None:
        """A change to a unit that has a grade is recorded at once (the latest inspection counts);
        an ungraded unit's is recorded with its grade."""
        if self._bench is None:
            return
        item = next((i for i in self._bench.view.items if i.id == item_id), None)
        # The grade last asked for, not the one last drawn: a grade key's job may still be queued.
        grade = self._pending_grades.get(item_id, item.grade if item else None)
        if item is None or grade is None or item.decided:
            return
        rma_id, kind, generation = self._bench.view.id, self._chosen_kind, self._generation
        self.inspect_panel.recorded(item_id, True)

        def done(bench: Bench) -> None:
            if generation == self._generation:
                self._draw_bench(bench, select_item=item_id)

        self.worker.submit("recording the inspection",
                           lambda: grade_job(self.station, item_id, grade, rma_id, kind, unit), done, self._failed)

    def undo(self) -> None:
        """Ctrl+Z: take back the last scan or grade of the open parcel (before it is decided)."""
        if self._receipt is None or self._bench is None:
            messages.error("Nothing to undo: no parcel is open. Decided parcels are corrected by a new decision.")
            return self._refocus(force=True)
        if self._holding:
            return
        receipt_id, rma_id, kind, generation = (self._receipt.receipt_id, self._bench.view.id, self._chosen_kind,
                                                self._generation)

        def done(outcome: tuple[UndoResult, Bench]) -> None:
            if generation != self._generation:
                return
            result, bench = outcome
            if result.return_item_id is not None:  # the database's word for that unit again
                self._pending_grades.pop(result.return_item_id, None)
                self.inspect_panel.forget(result.return_item_id)
            self._draw_bench(bench, select_item=result.return_item_id)
            messages.warning(result.message)
            self._refocus()

        self.worker.submit("undoing the last step", lambda: undo_job(self.station, receipt_id, rma_id, kind),
                           done, self._failed)
        self._refocus(force=True)

    # -- unexpected parcels --------------------------------------------------------------

    def _offer_unexpected(self, unexpected: Unexpected) -> None:
        self._unexpected = unexpected
        self.prompt.setText(PROMPT_PARCEL)
        if unexpected.order_number:
            messages.error(f"Order {unexpected.order_number} has no return authorization. Press F6 to create one "
                           "and receive the parcel on it, or scan another code.")
        else:
            messages.error(f"{unexpected.message} Press F6 to record it as an unidentified parcel (weight, "
                           "photos, quarantined for matching later).")

    def handle_unexpected(self) -> None:
        """F6 after a code that opened no RMA: an RMA from the order it found, or an unidentified
        parcel; without such a code, an unidentified parcel with no code at all."""
        if self._receipt is not None:
            messages.error("A parcel is open: decide it or put it down [Esc] first.")
            return self._refocus(force=True)
        if self._holding:
            return
        unexpected = self._unexpected or Unexpected("", None, "")
        grams = self.weight.value() or None
        scale = self._scale_weight
        from_scale = scale is not None and grams == scale[0]
        division = scale[1] if scale is not None and from_scale else None
        self._holding = True
        generation = self._generation

        if unexpected.order_number:
            def opened(outcome: tuple[ReceiptResult, Bench]) -> None:
                self._release()
                self._unexpected = None
                if generation == self._generation:
                    receipt, bench = outcome
                    self._open_parcel(receipt, bench)
                self._drain()

            self.worker.submit("creating the RMA", lambda: receive_unexpected_job(
                self.station, unexpected.code, grams, uuid.uuid4(), division, from_scale), opened, self._unheld)
            return

        since = self.inspect_panel.opened_at
        note = self.scan_field.text().strip()
        self.scan_field.clear()

        def recorded(outcome: tuple[uuid.UUID, int]) -> None:
            receipt_id, photos = outcome
            self._release()
            self._unexpected = None
            weight = f"{grams:,} g" if grams else "not weighed"
            messages.warning(f"Unidentified parcel recorded ({weight}, {photos} photo"
                             f"{'s' if photos != 1 else ''}): put it on the quarantine shelf, labelled "
                             f"{str(receipt_id)[:8].upper()}. {PROMPT_PARCEL}.")
            self.weight.setValue(0)
            self._scale_weight = None
            self.inspect_panel.clear()  # the next parcel's pictures count from now
            self._drain()

        receipt_id = uuid.uuid4()
        self.worker.submit("recording the unidentified parcel", lambda: unidentified_job(
            self.station, unexpected.code, grams, division, from_scale, since,
            note or ("no code found on the parcel" if not unexpected.code else f"scanned {unexpected.code}: nothing matched"),
            receipt_id), recorded, self._unheld)

    def _unheld(self, message: str) -> None:
        self._release()
        messages.error(message)
        self._drain()

    # -- history ---------------------------------------------------------------------------

    def open_users_page(self) -> None:
        """F3 with no parcel open: the users page, for admins (each step is checked again by the
        service, whatever the page shows)."""
        try:
            require(self.station.actor, MANAGE_USERS)
        except NotAllowed as exc:
            messages.error(exc.message)
            return self._refocus(force=True)
        page = UsersPage(self.station, self.worker, self)
        page.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        page.finished.connect(lambda _r: self._refocus(force=True))
        page.open()

    def open_history(self) -> None:
        page = HistoryPage(self.station, self.worker, self.printing.kick, self)
        page.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        page.finished.connect(lambda _r: self._refocus(force=True))
        page.open()

    # -- supervisor review -----------------------------------------------------------------------

    def open_review(self) -> None:
        """F5 with no parcel open: the review queue, for supervisors and admins (the services check
        the role and four eyes again for every read and verdict)."""
        try:
            require(self.station.actor, REVIEW)
        except NotAllowed as exc:
            messages.error(exc.message)
            return self._refocus(force=True)
        page = ReviewPage(self.station, self.worker, self.printer_settings, self.printing.kick, self)
        page.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        page.finished.connect(lambda _r: self._refocus(force=True))
        page.open()

    # -- signing in and out ------------------------------------------------------------------

    def _draw_user(self, actor: Actor) -> None:
        self.user_label.setText(f"<b>{html.escape(actor.display_name)}</b> · {actor.role} · Ctrl+L")

    def _show_sign_in(self, message: str) -> None:
        self._signed_in = False
        self.idle_lock.stop()
        for shortcut in self._shortcut_list:
            shortcut.setEnabled(False)
        self.pages.setCurrentWidget(self.sign_in_page)
        self.statusBar().showMessage("Scan a badge, or type a user name and PIN")
        self.sign_in_page.reset(message)

    def _check_pin(self, user: str, pin: str) -> None:
        self.worker.submit("checking the sign-in", lambda: sign_in_job(self.station, user, pin),
                           self._signed_in_as, self._sign_in_refused)

    def _check_badge(self, code: str) -> None:
        self.worker.submit("checking the badge", lambda: badge_job(self.station, code),
                           self._signed_in_as, self._sign_in_refused)

    def _sign_in_refused(self, message: str) -> None:
        self.sounds.play("bad")
        self.sign_in_page.refused(message)

    def _signed_in_as(self, actor: Actor) -> None:
        if self._signed_in:
            return
        kept_for, self._parcel_kept_for = self._parcel_kept_for, None
        self.station.actor = actor
        self._signed_in = True
        self._identity_checked_at = utcnow()
        for shortcut in self._shortcut_list:
            shortcut.setEnabled(True)
        self._draw_user(actor)
        self.sign_in_page.reset()
        self.pages.setCurrentWidget(self.bench_page)
        self.statusBar().showMessage(BENCH_KEYS)
        self.idle_lock.start()
        number = self._bench.view.number if self._bench else None
        if self.parcel_open and kept_for == actor.user_id:  # back after the idle lock: go on
            messages.success(f"Welcome back, {actor.display_name}. {number or 'The parcel'} is still open.")
            return self._refocus(force=True)
        # Someone else (or nobody kept a parcel): put it down; everything recorded stays recorded.
        note = f"{number} was put down; its scans and grades are kept. " if self.parcel_open and number else ""
        if actor.signer is not None and actor.signer.enrolled:
            # A supervisor's first sign-in here (or with a new PIN or badge): central takes their
            # verdicts once an admin confirms this key, checking the fingerprint with them.
            note += (f"Your new signing key at this station has fingerprint {actor.signer.fingerprint}: read it to "
                     "a central admin, who confirms it before your verdicts count. ")
        self._reset_parcel()
        messages.success(f"Welcome, {actor.display_name}. {note}{PROMPT_PARCEL}.")

    def lock_idle(self) -> None:
        """The idle lock fired: the sign-in screen, with every page and dialog closed. An open
        parcel stays open for the same person signing in again (console.signin audits the sign-out
        with reason "idle")."""
        if not self._signed_in or self._closed:
            return
        if self._holding:  # a step is being recorded: lock once it is, not in the middle of it
            QTimer.singleShot(500, self.lock_idle)
            return
        for dialog in self.findChildren(QDialog):
            if dialog.isVisible():
                dialog.reject()
        actor = self.station.actor
        number = self._bench.view.number if self._bench else None
        self._parcel_kept_for = actor.user_id if self.parcel_open else None
        self.worker.submit("locking the station", lambda: sign_out_job(self.station, "idle"), None, messages.error)
        minutes = self.station.settings.idle_lock_minutes
        seconds = max(1, round(minutes * 60))
        span = (f"{minutes:g} minute{'s' if minutes != 1 else ''}" if minutes >= 1
                else f"{seconds} second{'s' if seconds != 1 else ''}")
        kept = f" {number} stays open for {actor.display_name}: sign in again to go on." if number else ""
        self._show_sign_in(f"The station locked after {span} without use.{kept}")

    def _ask_identity(self, what: str) -> None:
        """Before a refund that pays at once, when the last PIN or badge check is older than the
        idle time (console.reconfirm): a badge scan or the PIN, checked on the worker; then the
        decision goes on as if F12 were pressed again."""
        if self._confirm is not None:
            return
        dialog = ConfirmIdentityDialog(self.station.actor.display_name, what, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._confirm = dialog
        generation = self._generation

        def confirmed(_result: None) -> None:
            self._identity_checked_at = utcnow()
            if self._confirm is dialog:
                dialog.accept()
                if generation == self._generation:
                    self.decide()

        def check(secret: str, is_badge: bool) -> None:
            self.worker.submit("checking it is you", lambda: reconfirm_job(self.station, secret, is_badge),
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
        self._parcel_kept_for = None
        if self._holding:
            messages.info("A step is being recorded; sign out when it is done.")
            return
        number = self._bench.view.number if self._bench else None
        self._reset_parcel()
        self.worker.submit("signing out", lambda: sign_out_job(self.station), None, messages.error)
        note = f"{number} was put down; its scans and grades are kept. " if number else ""
        self._show_sign_in(f"{note}Signed out. Scan a badge or type a user name and PIN.")

    # -- drawing --------------------------------------------------------------------------

    def _draw_bench(self, bench: Bench, select_item: int | None) -> None:
        keep = select_item if select_item is not None else self._selected_item_id()
        self._bench = bench
        view = bench.view
        self.item_model.set_items(view.items)
        for item in view.items:
            self.inspect_panel.load(item.id, UnitInspection(dict(getattr(item, "checklist", {}) or {}),
                                                            getattr(item, "notes", None) or "",
                                                            tuple(getattr(item, "photos", ()) or ())))
        row = self.item_model.row_of(keep) if keep is not None else None
        if row is not None:
            self._select_row(row)
        self._show_inspection()
        self.rma_label.setText(f"<b>{view.number}</b>  ({view.status.replace('_', ' ')}, {view.channel})")
        self.order_label.setText(view.order_number)
        self.customer_label.setText(f"{view.customer_name} · {view.loyalty_tier} tier")
        self.contact_label.setText(" · ".join(filter(None, (view.customer_email, view.customer_phone))))
        delivered = self._local_date(view.delivered_at) if view.delivered_at else "not delivered"
        window = f" — {view.window.describe()}" if view.window else ""
        self.delivered_label.setText(delivered + window)
        check = self._receipt.weight if self._receipt else None
        self._draw_weight(view, check)
        self._draw_proposal(bench.proposal, bench.proposal_note)
        self._update_enabled()

    def _draw_weight(self, view: RmaView, check: WeightCheck | None) -> None:
        expected = f"expected {view.expected_weight_g:,} g"
        if check is None:
            self.weight_check_label.setText(expected)
            self._set_mismatch(False)
            return
        self.weight_check_label.setText(check.message)  # it names the expected weight
        self.weight_check_label.setToolTip(check.message)
        self._set_mismatch(check.mismatch)

    def _set_mismatch(self, mismatch: bool) -> None:
        self.weight_check_label.setProperty("mismatch", "true" if mismatch else "false")
        _restyle(self.weight_check_label)

    def _draw_proposal(self, proposal: Proposal | None, note: str) -> None:
        if proposal is None:
            self.kind_combo.setCurrentIndex(-1)
            self.replacement_row.hide()
            self.replacement_field.clear()
            self.policy_kind_label.setText("")
            self.amount_label.setText("—")
            self.paid_label.setText("")
            self.deductions_label.setText("")
            self.risk_label.setText("")
            self.review_label.hide()
            self.proposal_note.setText(note)
            self.proposal_note.setVisible(bool(note))
            return
        self.kind_combo.setCurrentIndex(self.kind_combo.findData(proposal.kind))
        was_visible = self.replacement_row.isVisible()
        self.replacement_row.setVisible(proposal.kind == "exchange")
        if proposal.kind == "exchange" and not was_visible:
            self._focus_replacement()
        chosen = "" if proposal.kind == proposal.proposed_kind else " — changed by you"
        self.policy_kind_label.setText(f"Policy proposes: <b>{kind_label(proposal.proposed_kind)}</b>{chosen}")
        self.amount_label.setText(proposal.amount.format())
        quote = proposal.quote
        paid = f"paid {self._money(quote.paid_minor, proposal.currency)}"
        if quote.shipping_refund_minor:
            paid += f" + shipping {self._money(quote.shipping_refund_minor, proposal.currency)}"
        if quote.store_credit_bonus_minor:
            paid += f" · bonus {self._money(quote.store_credit_bonus_minor, proposal.currency)}"
        self.paid_label.setText(paid)
        rows = "".join(f"<tr><td>{html.escape(d.label)}</td><td align='right' style='white-space:nowrap'>"
                       f"&minus;&nbsp;{self._money(d.amount_minor, proposal.currency)}</td></tr>"
                       for d in proposal.quote.deductions)
        self.deductions_label.setText(f"<table width='100%' cellspacing='0' cellpadding='1'>{rows}</table>"
                                      if rows else "none")
        rules = self.station.policy.risk
        risk = f"Risk score {proposal.risk_score} (supervisor review at {rules.review_at_or_above} or above)"
        if proposal.risk_outcome == "suggest_deny":
            risk = f"Risk score {proposal.risk_score}: at {rules.suggest_deny_at_or_above} or above, denial suggested"
        self.risk_label.setText(risk)
        if proposal.needs_review or proposal.signals:
            parts = ["<b>Goes to supervisor review:</b>"] if proposal.needs_review else []
            parts += [f"• {html.escape(r)}" for r in proposal.review_reasons]
            if proposal.signals:
                parts.append("<b>Risk signals:</b>")
                parts += [f"• <b>+{s.weight}</b> {html.escape(s.message)}" for s in proposal.signals]
            self.review_label.setText("<br>".join(parts))
            self.review_label.show()
        else:
            self.review_label.hide()
        self.proposal_note.setText(" ".join(proposal.quote.notes))
        self.proposal_note.setVisible(bool(proposal.quote.notes))

    @staticmethod
    def _money(minor: int, currency: str) -> str:
        return Money(minor, currency).format()

    def _local_date(self, moment: datetime) -> str:
        return self.station.ctx().local(moment).strftime("%d %b %Y")

    def _show_feedback(self, level: str, text: str) -> None:
        self.sounds.for_level(level)
        self.feedback.setText(text)
        self.feedback.setProperty("level", level)
        _restyle(self.feedback)

    def _on_busy(self, busy: bool) -> None:
        self.busy_label.setText("working…" if busy else "ready")

    # -- selection and focus --------------------------------------------------------------

    def _selected_row(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def _selected_item_id(self) -> int | None:
        row = self._selected_row()
        return self.item_model.item(row).id if row is not None else None

    def _select_row(self, row: int) -> None:
        index = self.item_model.index(row, 0)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().setCurrentIndex(index, flags)
        self.table.scrollTo(index)

    def _move_selection(self, delta: int) -> None:
        rows = self.item_model.rowCount()
        if not rows:
            return
        current = self._selected_row()
        row = 0 if current is None else max(0, min(rows - 1, current + delta))
        self._select_row(row)

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

    # -- lifecycle ------------------------------------------------------------------------

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
        self._scale_asked_in = self._generation
        return True

    def _on_weighed(self, grams: int, division: int | None) -> None:
        asked_in, self._scale_asked_in = self._scale_asked_in, None
        if asked_in != self._generation:
            # Asked for a parcel that was put down: not this parcel's weight. A parcel opened
            # while that read was running is weighed now.
            if self._receipt is not None and self._receipt.weight.weight_g is None:
                self._ask_scale()
            return
        if self._receipt is None:
            self._scale_weight = (grams, division)
            self.weight.setValue(grams)
            return
        receipt_id, generation = self._receipt.receipt_id, self._generation

        def done(check: WeightCheck) -> None:
            if generation != self._generation or self._bench is None or self._receipt is None:
                return
            self._receipt = replace(self._receipt, weight=check)
            self._draw_weight(self._bench.view, check)
            if check.mismatch:
                messages.error(f"{check.message}. Open the parcel and check its contents.")
            else:
                messages.success(f"Weight OK: {check.message}.")

        self.worker.submit("recording the weight", lambda: weigh_job(self.station, receipt_id, grams, division),
                           done, messages.error)

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
