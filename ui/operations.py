"""Steps for the database thread, as Anki's collection operations are (aqt/operations).

An operation names its step ("recording the grade": what a refusal or a bug message says it was
doing), captures the station's context when it is submitted — the actor who pressed the key, not
whoever is signed in by the time the job runs — and reports its result or refusal on the GUI
thread. A step that writes then emits ``changed`` once, which the open views listen to.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Signal

from console.context import StationContext
from console.station import Station
from ui import messages
from ui.worker import DatabaseWorker

T = TypeVar("T")


class Operations(QObject):
    changed = Signal(str)  # the step that wrote something

    def __init__(self, worker: DatabaseWorker, station: Station, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        self._station = station

    def run(self, step: str, job: Callable[[StationContext], T], success: Callable[[T], Any] | None = None,
            failure: Callable[[str], Any] | None = None, *, writes: bool = True) -> int:
        """Queue ``job(ctx)`` with the context as it is now; ``success(result)`` or ``failure(message)``
        run on the GUI thread (without ``failure``, the message shows in the feedback line)."""
        ctx = self._station.ctx()

        def done(result: T) -> None:
            if success is not None:
                success(result)
            if writes:
                self.changed.emit(step)

        return self.worker.submit(step, lambda: job(ctx), done, failure if failure is not None else messages.error)
