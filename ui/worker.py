"""The single database worker: every query and every service call runs here, one at a time.

Like Anki's collection operations: the GUI thread submits a callable with what to do with its
result; a QObject living on its own QThread runs it and sends the outcome back through queued
signals, so callbacks always run on the GUI thread and never touch the database themselves.

Outcomes:
- the result goes to ``on_done``;
- a ``DomainError`` (a refusal a clerk can act on) goes to ``on_error`` with its message as is;
- anything else is a bug: its traceback is logged, ``on_error`` gets a message naming the
  exception type, and ``bug`` is emitted. Nothing is swallowed.
"""
from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from console.errors import DomainError

log = logging.getLogger(__name__)

# How long closing the window waits for the step in progress (a commit) to finish.
STOP_WAIT_MS = 30_000


@dataclass(frozen=True)
class Job:
    id: int
    name: str
    fn: Callable[[], Any]
    on_done: Callable[[Any], None] | None
    on_error: Callable[[str], None] | None


class _Executor(QObject):
    """Lives on the database thread; runs jobs in the order they were submitted."""

    done = Signal(object, object)  # job, result
    refused = Signal(object, str)  # job, DomainError.message
    crashed = Signal(object, str)  # job, bug message

    @Slot(object)
    def execute(self, job: Job | None) -> None:
        if job is None:  # the stop marker: every job submitted before it has run
            QThread.currentThread().quit()
            return
        try:
            result = job.fn()
        except DomainError as exc:
            self.refused.emit(job, exc.message)
        except Exception as exc:  # noqa: BLE001 - a bug: reported, logged with its traceback
            log.exception("bug in database job %r", job.name)
            self.crashed.emit(job, f"Bug ({type(exc).__name__}: {exc}) while {job.name}. Nothing more was "
                                   "saved for this step; tell your supervisor, then try again.")
        else:
            self.done.emit(job, result)


class DatabaseWorker(QObject):
    """Owned by the GUI thread. ``submit`` a callable; callbacks run on the GUI thread."""

    busy_changed = Signal(bool)
    idle = Signal()
    bug = Signal(str)
    _dispatch = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._pending: set[int] = set()
        self._stopped = False
        self._thread = QThread()
        self._thread.setObjectName("database")
        self._executor = _Executor()
        self._executor.moveToThread(self._thread)
        self._dispatch.connect(self._executor.execute)  # queued: the executor lives on the thread
        self._executor.done.connect(self._on_done)
        self._executor.refused.connect(self._on_refused)
        self._executor.crashed.connect(self._on_crashed)
        self._thread.finished.connect(self._executor.deleteLater)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def submit(self, name: str, fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[str], None] | None = None) -> int:
        """Queue ``fn`` (``name`` says what it does, for messages: "receiving the parcel")."""
        if self._stopped:
            raise RuntimeError("the database worker is stopped")
        job = Job(next(self._ids), name, fn, on_done, on_error)
        was_busy = self.busy
        self._pending.add(job.id)
        if not was_busy:
            self.busy_changed.emit(True)
        self._dispatch.emit(job)
        return job.id

    def stop(self) -> None:
        """Let the jobs already submitted finish, then end the thread and wait for it."""
        if self._stopped:
            return
        self._stopped = True
        self._dispatch.emit(None)
        if not self._thread.wait(STOP_WAIT_MS):
            log.error("database thread still busy after %d ms; terminating it", STOP_WAIT_MS)
            self._thread.terminate()
            self._thread.wait()
        self._pending.clear()

    def _finish(self, job: Job) -> None:
        self._pending.discard(job.id)
        if not self._pending:
            self.busy_changed.emit(False)
            self.idle.emit()

    @Slot(object, object)
    def _on_done(self, job: Job, result: object) -> None:
        if self._stopped:
            return
        try:
            if job.on_done is not None:
                job.on_done(result)
        finally:  # after the callback, so work it queues keeps the worker busy without a gap
            self._finish(job)

    @Slot(object, str)
    def _on_refused(self, job: Job, message: str) -> None:
        if self._stopped:
            return
        try:
            if job.on_error is not None:
                job.on_error(message)
        finally:
            self._finish(job)

    @Slot(object, str)
    def _on_crashed(self, job: Job, message: str) -> None:
        if self._stopped:
            return
        try:
            self.bug.emit(message)
            if job.on_error is not None:
                job.on_error(message)
        finally:
            self._finish(job)
