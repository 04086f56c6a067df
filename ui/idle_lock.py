"""Locking a station nobody is using: an application-wide event filter that notices input.

Any key, click, wheel or touch anywhere in the application — the window, a dialog, a popup —
counts as someone at the bench, and so does a scan from a serial scanner (the window calls
``touch``). After ``idle_ms`` with none of it, ``idle`` is emitted once; the window then shows
the sign-in screen. A Qt timer rather than the wall clock: a suspended laptop or a changed
system time cannot make it fire early, and nothing polls.

Mouse moves count too: someone reading a long review case with the mouse in hand is there.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QDialog, QLabel, QLineEdit, QVBoxLayout, QWidget

ACTIVITY = frozenset({
    QEvent.Type.KeyPress, QEvent.Type.KeyRelease, QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease,
    QEvent.Type.MouseButtonDblClick, QEvent.Type.MouseMove, QEvent.Type.Wheel, QEvent.Type.TouchBegin,
    QEvent.Type.TouchUpdate, QEvent.Type.ShortcutOverride, QEvent.Type.InputMethod,
})


class IdleLock(QObject):
    """``start()`` arms it (after a sign-in), ``stop()`` disarms it (signed out or locked)."""

    idle = Signal()

    def __init__(self, idle_ms: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if idle_ms <= 0:
            raise ValueError("idle_ms must be positive")
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(idle_ms)
        self._timer.timeout.connect(self.idle)
        self._installed = False

    @property
    def idle_ms(self) -> int:
        return self._timer.interval()

    @property
    def armed(self) -> bool:
        return self._timer.isActive()

    def start(self) -> None:
        app = QApplication.instance()
        if app is not None and not self._installed:
            app.installEventFilter(self)
            self._installed = True
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def uninstall(self) -> None:
        """Leave the application's events alone (the window is closing)."""
        self._timer.stop()
        app = QApplication.instance()
        if app is not None and self._installed:
            app.removeEventFilter(self)
            self._installed = False

    def touch(self) -> None:
        """Someone is here (input Qt does not see as such: a serial scanner's scan)."""
        if self._timer.isActive():
            self._timer.start()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # Each input event reaches the filter once per widget it propagates through; restarting
        # a running timer is cheap, so no attempt is made to count each only once.
        if event.type() in ACTIVITY and self._timer.isActive():
            self._timer.start()
        return False


class ConfirmIdentityDialog(QDialog):
    """"Is it still you?" before a refund that pays out at once (see ``console.reconfirm``).

    A badge scan (the window hands wedge and serial scans to ``badge``) or a PIN typed + Enter
    emits ``entered(secret, is_badge)``; the window checks it on the database worker and calls
    ``refused`` or accepts. Esc cancels: nothing is decided and the parcel stays open.
    """

    entered = Signal(str, bool)

    def __init__(self, who: str, what: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("confirmIdentity")
        self.setWindowTitle("Confirm it is you")
        self.setModal(True)
        col = QVBoxLayout(self)
        self.ask = QLabel(f"{what}: confirm it is you, {who}.\nScan your badge, or type your PIN and press Enter.")
        self.ask.setTextFormat(Qt.TextFormat.PlainText)
        self.ask.setWordWrap(True)
        col.addWidget(self.ask)
        self.pin_field = QLineEdit(objectName="confirmPin")
        self.pin_field.setEchoMode(QLineEdit.EchoMode.Password)
        self.pin_field.setMaxLength(128)
        self.pin_field.returnPressed.connect(self._typed)
        col.addWidget(self.pin_field)
        self.message = QLabel(objectName="confirmMessage")
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)
        col.addWidget(self.message)
        self._checking = False
        self.resize(460, 0)

    def badge(self, code: str) -> None:
        self._send(code.strip(), True)

    def refused(self, message: str) -> None:
        self._checking = False
        self.pin_field.setEnabled(True)
        self.pin_field.clear()
        self.message.setText(message)
        self.pin_field.setFocus(Qt.FocusReason.OtherFocusReason)

    def _typed(self) -> None:
        self._send(self.pin_field.text(), False)

    def _send(self, secret: str, is_badge: bool) -> None:
        if self._checking or not secret:
            return
        self._checking = True
        self.pin_field.setEnabled(False)
        self.message.setText("Checking…")
        self.entered.emit(secret, is_badge)
