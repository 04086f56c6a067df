"""Catch keyboard-wedge scans anywhere in the application, without getting in the typist's way.

Installed on the QApplication, the filter sees every key press before the focused widget does
and asks ``devices.wedge.WedgeDetector`` what it is:

- a scan is reported once through ``scanned``, wherever the focus is, and never reaches a
  widget or a shortcut;
- keys typed by hand reach the focused widget — in a text field at once, elsewhere after at
  most the gap threshold (the detector holds them until it knows they are not a scan);
- the first character of a scan that already went into a text field is taken out again.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QLineEdit, QPlainTextEdit, QTextEdit, QWidget

from devices.wedge import GS, Deliver, Retract, Scan, WedgeConfig, WedgeDetector

_TEXT_WIDGETS = (QLineEdit, QPlainTextEdit, QTextEdit)
_MODIFIER_KEYS = {Qt.Key.Key_Shift, Qt.Key.Key_Control, Qt.Key.Key_Alt, Qt.Key.Key_Meta, Qt.Key.Key_AltGr}
_KEY_FOR_CHAR = {"\r": Qt.Key.Key_Return, "\n": Qt.Key.Key_Enter, "\t": Qt.Key.Key_Tab, GS: Qt.Key.Key_BracketRight}


def _char_of(event: QKeyEvent, tab_is_data: bool = False) -> str | None:
    """The character a key press types, GS for Ctrl+] (how wedges type FNC1), else None.

    Tab moves the focus unless the scanner is set to end its scans with it.
    """
    mods = event.modifiers() & ~Qt.KeyboardModifier.ShiftModifier & ~Qt.KeyboardModifier.KeypadModifier
    key = event.key()
    if key == Qt.Key.Key_BracketRight and mods == Qt.KeyboardModifier.ControlModifier:
        return GS
    if mods != Qt.KeyboardModifier.NoModifier:
        return None
    if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
        return "\r"
    if key == Qt.Key.Key_Tab:
        return "\t" if tab_is_data else None
    text = event.text()
    if len(text) == 1 and (text.isprintable() or text in (GS, "\x02", "\x03")):
        return text
    return None


class ScanEventFilter(QObject):
    scanned = Signal(str)

    def __init__(self, config: WedgeConfig | None = None, parent: QObject | None = None,
                 clock_ms: Callable[[], float] | None = None) -> None:
        super().__init__(parent)
        self.detector = WedgeDetector(config or WedgeConfig())
        self._clock_ms = clock_ms or (lambda: time.monotonic() * 1000.0)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._on_deadline)
        self._replaying = False
        self._held_keys: dict[int, int] = {}  # key -> presses held back, so their releases are too
        self._early_target: QWidget | None = None  # where an eager first character went

    def set_config(self, config: WedgeConfig) -> None:
        self._flush(self._clock_ms() + 1e9)
        self.detector = WedgeDetector(config)

    # -- Qt plumbing -------------------------------------------------------------------------
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        etype = event.type()
        if self._replaying or etype not in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease,
                                            QEvent.Type.ShortcutOverride):
            return False
        if not isinstance(obj, QWidget) or not self._is_first_receiver(obj):
            return False
        assert isinstance(event, QKeyEvent)
        if etype == QEvent.Type.ShortcutOverride:
            # A character that might be part of a scan must not fire a shortcut; the key press
            # that follows decides whether it is typing (then replayed to the widget) or a scan.
            if self._char(event) is not None and (self.detector.busy or not self._is_suffix_start(event)):
                event.accept()  # and let it on: filtering it out makes QTest deliver the key twice
            return False
        if etype == QEvent.Type.KeyRelease:
            held = self._held_keys.get(event.key(), 0)
            if held and not event.isAutoRepeat():
                if held == 1:
                    del self._held_keys[event.key()]
                else:
                    self._held_keys[event.key()] = held - 1
                return True
            return False
        ch = self._char(event)
        if ch is None:
            if event.key() in _MODIFIER_KEYS:
                # Scanners press Shift for capitals and Ctrl for ], inside a burst.
                return self.detector.busy
            if self.detector.busy:
                self._flush(self._clock_ms())  # a function key ends whatever was pending
            return False
        now = self._clock_ms()
        eager = isinstance(obj, _TEXT_WIDGETS) and not getattr(obj, "isReadOnly", lambda: False)()
        actions = self.detector.feed(ch, now, eager=eager)
        # The detector answers for this key last: everything before concerns earlier keys.
        # When the detector's last answer is "deliver this very key", let the event itself through
        # (alone: Enter pressed by hand; or as the eager first key of what may become a scan).
        passes_now = bool(actions) and isinstance(actions[-1], Deliver) and actions[-1].text == ch
        eager_now = passes_now and self.detector.delivered_early == 1 and self.detector.pending == 1
        self._run(actions[:-1] if passes_now else actions, obj)
        if eager_now:
            self._early_target = obj
        self._arm_timer()
        if passes_now or eager_now:
            return False  # let this very key event through
        self._held_keys[event.key()] = self._held_keys.get(event.key(), 0) + 1
        return True

    def _char(self, event: QKeyEvent) -> str | None:
        cfg = self.detector.config
        return _char_of(event, "\t" in cfg.suffix or "\t" in cfg.prefix)

    def _is_suffix_start(self, event: QKeyEvent) -> bool:
        suffix = self.detector.config.suffix
        return bool(suffix) and self._char(event) == suffix[0]

    @staticmethod
    def _is_first_receiver(obj: QWidget) -> bool:
        # Key events propagate to parents when ignored; only the first delivery counts.
        focus = QApplication.focusWidget()
        return obj is focus or (focus is None and obj.isWindow())

    def _arm_timer(self) -> None:
        deadline = self.detector.deadline()
        if deadline is None:
            self._timer.stop()
        else:
            self._timer.start(max(0, int(deadline - self._clock_ms()) + 1))

    def _on_deadline(self) -> None:
        self._flush(self._clock_ms())

    def _flush(self, now: float) -> None:
        deadline = self.detector.deadline()
        if deadline is not None:
            self._run(self.detector.tick(max(now, deadline)), QApplication.focusWidget())
        self._arm_timer()

    def _run(self, actions: list[Deliver | Retract | Scan], target: QObject | None) -> None:
        for action in actions:
            if isinstance(action, Scan):
                self._held_keys.clear()
                self.scanned.emit(action.code)
            elif isinstance(action, Retract):
                self._retract(action.count)
            elif isinstance(action, Deliver):
                self._deliver(action.text, QApplication.focusWidget() or target)
        if not self.detector.busy:
            self._early_target = None

    def _retract(self, count: int) -> None:
        widget = self._early_target
        self._early_target = None
        if isinstance(widget, QLineEdit):
            for _ in range(count):
                widget.backspace()
        elif isinstance(widget, (QPlainTextEdit, QTextEdit)):
            cursor = widget.textCursor()
            for _ in range(count):
                cursor.deletePreviousChar()
            widget.setTextCursor(cursor)

    def _deliver(self, text: str, target: QObject | None) -> None:
        if target is None:
            return
        self._replaying = True
        try:
            for ch in text:
                key = _KEY_FOR_CHAR.get(ch)
                if key is None:
                    key = Qt.Key(ord(ch.upper())) if ch.isascii() and ch.isalnum() else Qt.Key.Key_unknown
                mods = Qt.KeyboardModifier.ControlModifier if ch == GS else Qt.KeyboardModifier.NoModifier
                for etype in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
                    QApplication.sendEvent(target, QKeyEvent(etype, key, mods, ch))
        finally:
            self._replaying = False
        self._held_keys.clear()
