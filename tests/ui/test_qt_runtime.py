"""The Qt binding itself, where a bug in it would take the console down in the middle of a shift."""
from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    text = Signal(str)
    bare = Signal()


def test_emitting_signals_keeps_reference_counts_of_true_and_false() -> None:
    # PySide6 6.12.0 dropped a reference to True on each emit; on Python 3.11 the interpreter
    # aborts ("bool_dealloc") once a few hundred signals have gone out. pyproject excludes it.
    emitter = _Emitter()
    received: list[str] = []
    emitter.text.connect(received.append)
    before = sys.getrefcount(True), sys.getrefcount(False)
    for _ in range(200):
        emitter.text.emit("scan")
        emitter.bare.emit()
    assert (sys.getrefcount(True), sys.getrefcount(False)) == before
    assert len(received) == 200
