"""The scan field: a scanner's keys and a clerk's typing, with ↑/↓ moving the unit selection."""
from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import QLineEdit


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
