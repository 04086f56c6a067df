"""The one bridge for messages a clerk reads (qutebrowser's ``message.error``).

Anything — a worker on the database thread, a device adapter, a slot — calls ``error(...)``,
``warning(...)``, ``success(...)`` or ``info(...)``; the main window shows it in the feedback
line. The bridge is a QObject owned by the GUI thread, so a message sent from another thread
reaches the window through a queued signal and no widget is ever touched off the GUI thread.
"""
from __future__ import annotations

import logging
from enum import Enum

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)


class Level(str, Enum):
    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


class MessageBridge(QObject):
    shown = Signal(str, str)  # level, text


_bridge: MessageBridge | None = None


def bridge() -> MessageBridge:
    """The application's bridge; first called on the GUI thread (the main window does)."""
    global _bridge
    if _bridge is None:
        _bridge = MessageBridge()
    return _bridge


def show(level: Level, text: str) -> None:
    log.info("%s: %s", level.value, text)
    bridge().shown.emit(level.value, text)


def info(text: str) -> None:
    show(Level.INFO, text)


def success(text: str) -> None:
    show(Level.SUCCESS, text)


def warning(text: str) -> None:
    show(Level.WARNING, text)


def error(text: str) -> None:
    show(Level.ERROR, text)
