"""The print dispatcher on its own thread: a printer that takes seconds to time out never
holds up the GUI or the database worker. It sends due jobs when kicked (a job was queued) and
once a second otherwise (retries after a fault), and reports a one-line status."""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping

from PySide6.QtCore import QCoreApplication, QMetaObject, QObject, QThread, QTimer, Qt, Signal, Slot
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from console.print_queue import Dispatcher
from db.models import PrintJob
from printing.printers import Printer

log = logging.getLogger(__name__)

TICK_MS = 1_000


class _Sender(QObject):
    status = Signal(str, int)  # text, jobs needing attention (waiting with an error, failed, uncertain)

    def __init__(self, sessions: sessionmaker[Session], printers: Mapping[str, Printer]) -> None:
        super().__init__()
        self.dispatcher = Dispatcher(sessions, printers)
        self.timer: QTimer | None = None

    @Slot()
    def start(self) -> None:
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self.retry_due)
        self.timer.start()
        try:
            if self.dispatcher.recover():
                log.warning("print jobs interrupted by the last shutdown are marked uncertain")
        except Exception:  # noqa: BLE001 - a broken queue must not stop the console; the status says so
            log.exception("recovering the print queue")
        self.send_due()

    @Slot()
    def retry_due(self) -> None:
        """The once-a-second tick: the status is read again only when a job was sent."""
        self.send_due(report=False)

    @Slot()
    def send_due(self, report: bool = True) -> None:
        """After a kick the status is always reported: a job was queued by someone else."""
        try:
            if self.dispatcher.run_once() or report:
                self._report()
        except Exception as exc:  # noqa: BLE001 - e.g. the database file vanished; keep the console alive
            log.exception("print dispatch")
            self.status.emit(f"printing stopped: {exc}", 1)

    @Slot()
    def stop(self) -> None:
        # The timer dies on this thread (a QTimer may only be stopped where it lives), and the
        # sender goes back to the GUI thread, where Python will delete it.
        if self.timer is not None:
            self.timer.stop()
            self.timer.setParent(None)
            self.timer = None
        app = QCoreApplication.instance()
        if app is not None:
            self.moveToThread(app.thread())

    def _report(self) -> None:
        with self.dispatcher.sessions() as session:
            counts = Counter(dict(session.execute(
                select(PrintJob.status, func.count()).where(PrintJob.status.in_(("waiting", "failed", "uncertain")))
                .group_by(PrintJob.status)).all()))
            last_error = session.scalar(select(PrintJob.last_error).where(
                PrintJob.status.in_(("waiting", "failed")), PrintJob.last_error.is_not(None))
                .order_by(PrintJob.created_at.desc()).limit(1))
        attention = counts["failed"] + counts["uncertain"] + (counts["waiting"] if last_error else 0)
        if not sum(counts.values()):
            text = "printing: all printed"
        else:
            parts = [f"{n} {status}" for status, n in sorted(counts.items()) if n]
            text = "printing: " + ", ".join(parts) + (f" — {last_error}" if last_error else "")
        self.status.emit(text, attention)


class PrintWorker(QObject):
    """Owns the dispatcher thread. ``status_changed(text, attention)``; ``kick()`` after queueing."""

    status_changed = Signal(str, int)
    _kick = Signal()

    def __init__(self, sessions: sessionmaker[Session], printers: Mapping[str, Printer],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread(self)
        self._thread.setObjectName("printing")
        self._sender = _Sender(sessions, printers)
        self._sender.moveToThread(self._thread)
        self._thread.started.connect(self._sender.start)
        self._kick.connect(self._sender.send_due)
        self._sender.status.connect(self.status_changed)
        self._thread.start()

    def kick(self) -> None:
        self._kick.emit()

    def stop(self, wait_ms: int = 10_000) -> None:
        """At close: the job being sent finishes (or times out) first, so none is left 'sending'."""
        if self._thread.isRunning():
            # Blocking: the sender must have let go of its timer before the loop ends (a posted
            # call may be dropped once quit() is asked).
            QMetaObject.invokeMethod(self._sender, "stop", Qt.ConnectionType.BlockingQueuedConnection)
            self._thread.quit()
            self._thread.wait(wait_ms)
