"""The sign-in screen: a badge scan, or a user name and PIN, and nothing else of the console.

The page only collects what was typed or scanned and asks for a check; the check (Argon2, the
lockout after repeated failures, the audit events) is ``console.signin``'s and runs on the
database worker, so hashing never holds up the GUI thread.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

STYLE = """
QWidget#signIn { background: #1f2933; }
QWidget#signIn QLabel { color: #ffffff; }
QLabel#signInTitle { font-size: 26pt; font-weight: bold; }
QLabel#signInStation { font-size: 15pt; color: #c8d2dc; }
QLabel#signInHint { font-size: 15pt; }
QFrame#signInCard { background: #ffffff; border-radius: 8px; }
QFrame#signInCard QLabel { color: #111; font-size: 14pt; }
QFrame#signInCard QLineEdit { font-size: 18pt; padding: 6px; border: 2px solid #1f5fbf; border-radius: 4px; }
QLabel#signInMessage { font-size: 14pt; padding: 6px 10px; border-radius: 4px; }
QLabel#signInMessage[level="error"] { background: #b00020; color: #ffffff; }
QLabel#signInMessage[level="info"] { background: #e3e8ee; color: #1f2933; }
QPushButton#signInButton { font-size: 16pt; font-weight: bold; padding: 8px; background: #156b25; color: #fff;
                           border-radius: 4px; }
"""


class SignInPage(QWidget):
    """Emits ``pin_entered(user, pin)`` or ``badge_scanned(code)``; the window checks them."""

    pin_entered = Signal(str, str)
    badge_scanned = Signal(str)

    def __init__(self, station_name: str, station_id: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="signIn")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)  # a plain QWidget paints no background otherwise
        self.setStyleSheet(STYLE)
        self._checking = False
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        title = QLabel("Returns Console", objectName="signInTitle")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(title)
        where = QLabel(f"{station_name} · {station_id}", objectName="signInStation")
        where.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(where)
        outer.addSpacing(16)
        hint = QLabel("Scan your badge — or type your user name and PIN, then Enter", objectName="signInHint")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(hint)
        outer.addSpacing(12)

        card = QFrame(objectName="signInCard")
        card.setFixedWidth(460)
        form = QVBoxLayout(card)
        form.setContentsMargins(24, 20, 24, 20)
        form.setSpacing(6)
        user_caption = QLabel("User name")
        self.user_field = QLineEdit(objectName="signInUser")
        self.user_field.setMaxLength(64)
        user_caption.setBuddy(self.user_field)
        pin_caption = QLabel("PIN or password")
        self.pin_field = QLineEdit(objectName="signInPin")
        self.pin_field.setEchoMode(QLineEdit.EchoMode.Password)
        self.pin_field.setMaxLength(128)
        pin_caption.setBuddy(self.pin_field)
        self.button = QPushButton("Sign in  [Enter]", objectName="signInButton")
        self.button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for widget in (user_caption, self.user_field, pin_caption, self.pin_field):
            form.addWidget(widget)
        form.addSpacing(10)
        form.addWidget(self.button)
        row = QVBoxLayout()
        row.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        row.addWidget(card, 0, Qt.AlignmentFlag.AlignHCenter)
        self.message = QLabel(objectName="signInMessage")
        self.message.setWordWrap(True)
        self.message.setFixedWidth(460)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        row.addSpacing(10)
        row.addWidget(self.message, 0, Qt.AlignmentFlag.AlignHCenter)
        outer.addLayout(row)
        outer.addStretch(2)

        self.user_field.returnPressed.connect(self._user_entered)
        self.pin_field.returnPressed.connect(self._submit)
        self.button.clicked.connect(self._submit)
        self.show_message("info", "Signed out. Nothing is shown until someone signs in.")

    def reset(self, message: str = "") -> None:
        """Empty, with the focus in the user name: the state after a sign-out."""
        self._checking = False
        self.user_field.clear()
        self.pin_field.clear()
        self.user_field.setEnabled(True)
        self.pin_field.setEnabled(True)
        self.button.setEnabled(True)
        self.show_message("info", message or "Signed out. Nothing is shown until someone signs in.")
        self.user_field.setFocus(Qt.FocusReason.OtherFocusReason)

    def show_message(self, level: str, text: str) -> None:
        self.message.setText(text)
        self.message.setProperty("level", level)
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)

    def refused(self, text: str) -> None:
        """The check said no: say why, keep the user name, empty the PIN."""
        self._checking = False
        for widget in (self.user_field, self.pin_field, self.button):
            widget.setEnabled(True)
        self.pin_field.clear()
        self.show_message("error", text)
        (self.pin_field if self.user_field.text() else self.user_field).setFocus(Qt.FocusReason.OtherFocusReason)

    def scan(self, code: str) -> None:
        """A scan while signed out is a badge."""
        if self._checking or not code.strip():
            return
        self._checking = True
        self.show_message("info", "Checking the badge…")
        self.badge_scanned.emit(code.strip())

    def _user_entered(self) -> None:
        if self.user_field.text().strip():
            self.pin_field.setFocus(Qt.FocusReason.OtherFocusReason)

    def _submit(self) -> None:
        if self._checking:
            return
        user, pin = self.user_field.text().strip(), self.pin_field.text()
        if not user:
            self.show_message("error", "Type your user name first (or scan your badge).")
            self.user_field.setFocus(Qt.FocusReason.OtherFocusReason)
            return
        if not pin:
            self.show_message("error", "Type your PIN, then Enter.")
            self.pin_field.setFocus(Qt.FocusReason.OtherFocusReason)
            return
        self._checking = True
        for widget in (self.user_field, self.pin_field, self.button):
            widget.setEnabled(False)
        self.show_message("info", "Checking…")
        self.pin_entered.emit(user, pin)
