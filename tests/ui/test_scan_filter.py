"""The application-wide scan filter, driven by real Qt key events as a wedge scanner and a person send them."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit, QPushButton, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from devices.wedge import GS, WedgeConfig
from ui.scan_filter import ScanEventFilter

# The offscreen platform says it cannot propagate a plain widget's size hints; nothing to fix.
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


class Bench(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.field = QLineEdit()
        self.notes = QLineEdit()
        self.button = QPushButton("Decide")
        layout = QVBoxLayout(self)
        for w in (self.field, self.notes, self.button):
            layout.addWidget(w)
        self.shortcut_hits: list[str] = []
        for seq in ("1", "R", "F12"):
            sc = QShortcut(QKeySequence(seq), self)
            sc.activated.connect(lambda s=seq: self.shortcut_hits.append(s))
        self.submitted: list[str] = []
        self.field.returnPressed.connect(lambda: self.submitted.append(self.field.text()))


@pytest.fixture
def bench(qtbot: QtBot) -> Iterator[tuple[Bench, ScanEventFilter, list[str]]]:
    w = Bench()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.field.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is w.field)
    filt = ScanEventFilter(WedgeConfig(max_gap_ms=50))
    got: list[str] = []
    filt.scanned.connect(got.append)
    app = QApplication.instance()
    assert app is not None
    app.installEventFilter(filt)
    yield w, filt, got
    app.removeEventFilter(filt)


def scanner_types(widget: QWidget, text: str) -> None:
    """A wedge scanner: the whole code and Enter within a few milliseconds."""
    for ch in text:
        if ch == GS:
            QTest.keyClick(widget, Qt.Key.Key_BracketRight, Qt.KeyboardModifier.ControlModifier)
        else:
            QTest.keyClick(widget, ch)
    QTest.keyClick(widget, Qt.Key.Key_Return)


def person_types(qtbot: QtBot, widget: QWidget, text: str) -> None:
    for ch in text:
        QTest.keyClick(widget, ch)
        qtbot.wait(120)


def test_a_scan_in_a_text_field_is_captured_and_leaves_no_trace(bench, qtbot: QtBot) -> None:
    w, _, got = bench
    w.field.setText("half-typed ")
    w.field.end(False)
    scanner_types(w.field, "R-0001234X")
    qtbot.waitUntil(lambda: got == ["R-0001234X"], timeout=1000)
    qtbot.wait(80)
    assert w.field.text() == "half-typed "  # the first character went in early and was taken back
    assert w.submitted == []  # the scan's Enter never reached the field
    assert w.shortcut_hits == []  # "R" and "1" are shortcuts here, and the scan triggered neither


def test_keys_typed_by_hand_reach_the_field(bench, qtbot: QtBot) -> None:
    w, _, got = bench
    person_types(qtbot, w.field, "SO-1")
    QTest.keyClick(w.field, Qt.Key.Key_Return)
    assert w.field.text() == "SO-1"
    assert w.submitted == ["SO-1"]
    assert got == []


def test_a_scan_is_captured_wherever_the_focus_is(bench, qtbot: QtBot) -> None:
    w, _, got = bench
    w.button.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is w.button)
    scanner_types(w.button, f"]C10109506000134352{GS}10ABC")
    qtbot.waitUntil(lambda: len(got) == 1, timeout=1000)
    assert got == [f"]C10109506000134352{GS}10ABC"]  # Ctrl+] arrived as ASCII 29
    assert w.shortcut_hits == []


def test_a_key_held_back_off_a_text_field_is_delivered_and_still_fires_its_shortcut_path(bench, qtbot: QtBot) -> None:
    w, _, got = bench
    w.notes.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is w.notes)
    person_types(qtbot, w.notes, "ok")
    assert w.notes.text() == "ok"
    QTest.keyClick(w.notes, Qt.Key.Key_F12)  # a function key is never held back
    assert w.shortcut_hits == ["F12"]
    assert got == []


def test_typing_then_scanning_then_typing_in_one_field(bench, qtbot: QtBot) -> None:
    w, _, got = bench
    person_types(qtbot, w.field, "ab")
    scanner_types(w.field, "4006381333931")
    qtbot.waitUntil(lambda: got == ["4006381333931"], timeout=1000)
    person_types(qtbot, w.field, "c")
    assert w.field.text() == "abc"
