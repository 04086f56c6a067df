"""Where the GUI's bugs and warnings go: a rotating log file in the data folder, and one message
on screen that says where it is.

Without this, a Python exception in a slot and Qt's own warnings went to stderr, which nobody at
a bench reads, and were lost. ``install`` routes the ``returns_console`` loggers, Qt's messages
and ``sys.excepthook`` to ``<data folder>/logs/console.log`` (five files of 1 MB kept); a bug —
an exception nothing caught, or a database job that raised (the worker's ``bug`` signal) —
also shows a message naming the file. What the person entered stays where it was: the window
goes on.
"""
from __future__ import annotations

import logging
import sys
import traceback
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

LOG_NAME = "console.log"
LOG_BYTES = 1_000_000
LOG_FILES = 5
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

log = logging.getLogger("returns_console.crash")

_QT_LEVELS = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
              QtMsgType.QtWarningMsg: logging.WARNING, QtMsgType.QtCriticalMsg: logging.ERROR,
              QtMsgType.QtFatalMsg: logging.CRITICAL}


class CrashReporter:
    """The log file, and the one message box a bug shows (a second bug while it is open adds no
    second box: the file has both)."""

    def __init__(self, path: Path, handler: logging.Handler) -> None:
        self.path = path
        self.handler = handler
        self.box: QMessageBox | None = None
        self.parent: QWidget | None = None
        self._previous_hook = sys.excepthook
        self._previous_qt: object = None
        self.levels: dict[str, int] = {}  # each logger's level before install

    def excepthook(self, kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            self._previous_hook(kind, exc, tb)
            return
        log.error("uncaught %s: %s\n%s", kind.__name__, exc, "".join(traceback.format_exception(kind, exc, tb)))
        self.show(f"Bug ({kind.__name__}: {exc}).")

    def bug(self, message: str) -> None:
        """The database worker's ``bug`` signal: the traceback is logged already (ui.worker)."""
        log.error("%s", message)
        self.show(message)

    def show(self, what: str) -> None:
        if QApplication.instance() is None:
            return
        text = (f"{what}\n\nThe console goes on, and what you entered is kept. The details are in {self.path}: "
                "give that file to whoever looks after the console.")
        if self.box is not None and self.box.isVisible():
            return
        self.box = QMessageBox(QMessageBox.Icon.Critical, "Something went wrong", text,
                               QMessageBox.StandardButton.Ok, self.parent)
        self.box.setObjectName("crash_message")
        self.box.open()  # not exec(): no nested event loop inside an exception hook

    def uninstall(self) -> None:
        sys.excepthook = self._previous_hook
        qInstallMessageHandler(self._previous_qt)  # type: ignore[arg-type]
        for name, level in self.levels.items():
            logger = logging.getLogger(name)
            logger.removeHandler(self.handler)
            logger.setLevel(level)
        self.handler.close()


def log_path(data_dir: Path) -> Path:
    return data_dir / "logs" / LOG_NAME


def install(data_dir: Path) -> CrashReporter:
    """Route the GUI's logs, Qt's messages and uncaught exceptions to the log file."""
    path = log_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_FILES, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.setLevel(logging.INFO)
    reporter = CrashReporter(path, handler)
    for name in ("returns_console", "ui"):
        logger = logging.getLogger(name)
        reporter.levels[name] = logger.level
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    qt_log = logging.getLogger("returns_console.qt")

    def qt_message(kind: QtMsgType, context: object, message: str) -> None:
        qt_log.log(_QT_LEVELS.get(kind, logging.WARNING), "%s", message)

    reporter._previous_qt = qInstallMessageHandler(qt_message)
    sys.excepthook = reporter.excepthook
    return reporter
