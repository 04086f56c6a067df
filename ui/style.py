"""The bench's look: one style sheet, and the small label helpers every panel uses."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

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


def value_label(text: str = "", *, name: str | None = None, rich: bool = False) -> QLabel:
    """A value label; plain text unless ``rich`` (names and messages come from data)."""
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    label.setWordWrap(True)
    if name:
        label.setObjectName(name)
    return label


def key_label(text: str) -> QLabel:
    label = QLabel(text)
    label.setProperty("class", "key")
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    return label


def restyle(widget: QWidget) -> None:
    """Re-apply the style sheet after a dynamic property used by a selector changed."""
    widget.style().unpolish(widget)
    widget.style().polish(widget)
